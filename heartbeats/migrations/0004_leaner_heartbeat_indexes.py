"""Fewer index entries per heartbeat.

Every heartbeat inserts a heartbeat row and updates its service row (a non-HOT update: the
deadline is indexed), and each index of either table costs an entry per beat. Dropped: the
heartbeat ``service_id`` index (``heartbeat_service_time_idx`` starts with ``service_id``), the
``v1_id`` unique index over every row (replaced by a partial one over imported rows only), and the
``varchar_pattern_ops`` twin of the service ``team`` index (teams are only matched for equality).

On PostgreSQL the new partial unique index is built with ``CREATE INDEX CONCURRENTLY`` before the
old one is dropped, so heartbeats keep being written during the upgrade, however large the table
(hence ``atomic = False``).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "heartbeat_v1_id_uniq"


def create_partial_unique(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")  # a failed earlier try
        schema_editor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON heartbeats_heartbeat (v1_id) "
            "WHERE v1_id IS NOT NULL"
        )
    else:
        schema_editor.execute(
            f"CREATE UNIQUE INDEX {INDEX} ON heartbeats_heartbeat (v1_id) WHERE v1_id IS NOT NULL"
        )


def drop_partial_unique(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("heartbeats", "0003_service_consecutive_failures_service_cron_expression_and_more"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="heartbeat",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("v1_id__isnull", False)),
                        fields=("v1_id",),
                        name=INDEX,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(create_partial_unique, drop_partial_unique, elidable=False),
            ],
        ),
        migrations.AlterField(
            model_name="heartbeat",
            name="v1_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="heartbeat",
            name="service",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="heartbeats",
                to="heartbeats.service",
            ),
        ),
        migrations.AlterField(
            model_name="service",
            name="team",
            field=models.CharField(default="site-reliability", max_length=100),
        ),
        migrations.AddIndex(
            model_name="service",
            index=models.Index(fields=["team"], name="service_team_idx"),
        ),
    ]
