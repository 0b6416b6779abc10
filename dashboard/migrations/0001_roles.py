"""The dashboard's role groups: admin, operator, viewer (see dashboard/roles.py)."""

from django.db import migrations

from dashboard.roles import groups_ensure


def create(apps, schema_editor):
    groups_ensure(apps.get_model("auth", "Group"))


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
