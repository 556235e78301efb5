"""The changes feed's key in a side table (leads.LeadChange), kept by database triggers (leads.sql)."""

from django.db import migrations, models

import leads.sql


def install_triggers(apps, schema_editor):
    """The triggers, then a key for every lead already stored."""
    alias = schema_editor.connection.alias
    leads.sql.change_triggers_install(alias)
    leads.sql.change_keys_backfill(alias)


def drop_triggers(apps, schema_editor):
    leads.sql.change_triggers_drop(schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0016_erasure"),
    ]

    operations = [
        migrations.CreateModel(
            name="LeadChange",
            fields=[
                ("lead_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("change_xid", models.BigIntegerField()),
                ("change_seq", models.BigIntegerField()),
                ("deleted", models.BooleanField(default=False)),
            ],
            options={
                "indexes": [models.Index(fields=["change_xid", "change_seq"], name="leadchange_key")],
            },
        ),
        migrations.RunPython(install_triggers, drop_triggers),
    ]
