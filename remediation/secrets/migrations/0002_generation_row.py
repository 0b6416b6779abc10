"""The one SecretsGeneration row, so that every change only updates it (two first-ever changes
racing to insert it would otherwise collide)."""

import uuid

from django.db import migrations


def create(apps, schema_editor):
    SecretsGeneration = apps.get_model("secrets", "SecretsGeneration")
    SecretsGeneration.objects.get_or_create(pk=1, defaults={"token": uuid.uuid4()})


class Migration(migrations.Migration):
    dependencies = [("secrets", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
