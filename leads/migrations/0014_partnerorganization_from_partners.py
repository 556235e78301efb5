"""PartnerOrganization moves from `partners` into `leads` (the lowest layer: users, leads and routing
refer to it as much as partners does). The move is of Django's state only: the table keeps its name
(partners_partnerorganization, db_table on the model), its rows, ids, constraint and the foreign keys
pointing at it stay as they are; no SQL runs. partners 0003 removes the model from the partners state
once every foreign key (here, routing 0007, partners 0003) points at leads.PartnerOrganization.

The content type is renamed too (partners → leads), so the permissions granted on partner
organisations (view/change in the demo's staff groups) and the admin's history keep pointing at it.
On a fresh database there is no content type yet (post_migrate creates them): nothing to rename."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if ContentType.objects.using(db).filter(app_label=target, model="partnerorganization").exists():
        return  # already there (created by post_migrate): the old one is stale, remove_stale_contenttypes drops it
    ContentType.objects.using(db).filter(app_label=source, model="partnerorganization").update(app_label=target)


def content_type_to_leads(apps, schema_editor):
    _move_content_type(apps, schema_editor, "partners", "leads")


def content_type_to_partners(apps, schema_editor):
    _move_content_type(apps, schema_editor, "leads", "partners")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("leads", "0013_json_within_limits"),
        # The table, its policy columns and constraint as partners left them.
        ("partners", "0002_feedback_and_policy"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PartnerOrganization",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=200, unique=True)),
                        ("active", models.BooleanField(default=True)),
                        ("territories", models.JSONField(blank=True, default=list, help_text="ISO country codes")),
                        ("products", models.JSONField(blank=True, default=list)),
                        ("capacity", models.PositiveIntegerField(default=50, help_text="Maximum open leads")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("feedback_deadline_days", models.PositiveSmallIntegerField(default=5, help_text="The partner reports on a lead (contacted, meeting, won, lost …) within this many days")),
                        ("remind_after_days", models.PositiveSmallIntegerField(default=3, help_text="First reminder ('feedback due') after this many days without a report")),
                        ("remind_every_days", models.PositiveSmallIntegerField(default=2, help_text="Once the deadline has passed, remind again every this many days")),
                        ("escalate_after_days", models.PositiveSmallIntegerField(default=14, help_text="Still no report after this many days: the lead is taken back and rerouted")),
                        ("channel_manager", models.ForeignKey(blank=True, help_text="Told when a lead is taken back from this partner", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="managed_partners", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "partners_partnerorganization",
                        "ordering": ["name"],
                        "constraints": [
                            models.CheckConstraint(condition=models.Q(("feedback_deadline_days__gte", 1), ("remind_after_days__gte", 1), ("remind_after_days__lte", models.F("feedback_deadline_days")), ("remind_every_days__gte", 1), ("escalate_after_days__gt", models.F("feedback_deadline_days"))), name="partner_policy_in_order", violation_error_message="Policy days must be in order: 1 ≤ first reminder ≤ deadline < escalation, and reminders at least every day."),
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="partner",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="leads", to="leads.partnerorganization"),
                ),
                migrations.AlterField(
                    model_name="user",
                    name="partner_organization",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="users", to="leads.partnerorganization"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_leads, content_type_to_partners, elidable=False),
    ]
