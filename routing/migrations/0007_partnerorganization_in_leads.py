"""Routing's foreign keys to PartnerOrganization now name leads.PartnerOrganization (moved there by
state only in leads 0014): the same table, the same columns and constraints, so no SQL runs."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0014_partnerorganization_from_partners"),
        ("routing", "0006_release_leads_left_held"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="partner",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="assignments", to="leads.partnerorganization"),
                ),
                migrations.AlterField(
                    model_name="routingcounter",
                    name="partner",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to="leads.partnerorganization"),
                ),
                # The through table (routing_routingrule_partners) keeps its name and its
                # partnerorganization_id column: both come from the model's name, which did not change.
                migrations.AlterField(
                    model_name="routingrule",
                    name="partners",
                    field=models.ManyToManyField(blank=True, related_name="+", to="leads.partnerorganization"),
                ),
            ],
            database_operations=[],
        ),
    ]
