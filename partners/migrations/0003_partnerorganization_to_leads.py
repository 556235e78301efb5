"""PartnerOrganization is leads.PartnerOrganization now (leads 0014): the feedback and the reminders
point at it there, and the model leaves the partners state. State only: the table
partners_partnerorganization and its rows stay (the model keeps that db_table), no SQL runs."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0014_partnerorganization_from_partners"),
        ("partners", "0002_feedback_and_policy"),
        # Every other foreign key has left partners.PartnerOrganization before it is deleted.
        ("routing", "0007_partnerorganization_in_leads"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="partnerfeedback",
                    name="organization",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="feedback", to="leads.partnerorganization"),
                ),
                migrations.AlterField(
                    model_name="feedbackreminder",
                    name="organization",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="reminders", to="leads.partnerorganization"),
                ),
                migrations.DeleteModel(name="PartnerOrganization"),
            ],
            database_operations=[],
        ),
    ]
