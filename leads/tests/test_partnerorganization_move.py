"""PartnerOrganization moved from partners to leads by state only (leads 0014, routing 0007, partners 0003):
a database migrated before the move keeps its organisations, every row pointing at them, the
database's foreign keys and the permissions granted on them; and it migrates back."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("leads", "0013_json_within_limits"),
    ("partners", "0002_feedback_and_policy"),
    ("routing", "0006_release_leads_left_held"),
]
MOVE = [
    ("leads", "0014_partnerorganization_from_partners"),
    ("partners", "0003_partnerorganization_to_leads"),
    ("routing", "0007_partnerorganization_in_leads"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_the_latest_migrations_afterwards():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # as the other tests expect the database
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


def _foreign_key(table: str, column: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    (target,) = [c["foreign_key"] for c in constraints.values() if c["foreign_key"] and c["columns"] == [column]]
    return target


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_move_keeps_its_organisations_and_everything_pointing_at_them(
    at_the_latest_migrations_afterwards,
):
    from django.contrib.contenttypes.models import ContentType

    old = _migrate(BEFORE)
    old_type = old.get_model("contenttypes", "ContentType").objects.get(model="partnerorganization")
    assert old_type.app_label == "partners"  # as a database from before the move has it
    org = old.get_model("partners", "PartnerOrganization").objects.create(name="Alpine", territories=["AT"])
    other = old.get_model("partners", "PartnerOrganization").objects.create(name="Nordic")
    user = old.get_model("leads", "User").objects.create(username="pia", role="partner", partner_organization=org)
    lead = old.get_model("leads", "Lead").objects.create(email="a@initech.example", partner=org)
    rule = old.get_model("routing", "RoutingRule").objects.create(name="Austria", target="partners")
    rule.partners.set([org, other])
    old.get_model("routing", "Assignment").objects.create(lead=lead, partner=org, status="accepted")
    old.get_model("routing", "RoutingCounter").objects.create(rule=rule, partner=org, assigned=3)
    old.get_model("partners", "PartnerFeedback").objects.create(
        lead=lead, organization=org, user=user, status="contacted"
    )
    group = old.get_model("auth", "Group").objects.create(name="Sales managers")
    view = old.get_model("auth", "Permission").objects.get(content_type=old_type, codename="view_partnerorganization")
    group.permissions.add(view)

    new = _migrate(MOVE)
    ContentType.objects.clear_cache()

    Org = new.get_model("leads", "PartnerOrganization")
    assert list(Org.objects.values_list("pk", "name", "territories")) == [
        (org.pk, "Alpine", ["AT"]),
        (other.pk, "Nordic", []),
    ]
    assert new.get_model("leads", "User").objects.get(pk=user.pk).partner_organization_id == org.pk
    assert new.get_model("leads", "Lead").objects.get(pk=lead.pk).partner_id == org.pk
    rule_now = new.get_model("routing", "RoutingRule").objects.get(pk=rule.pk)
    assert sorted(rule_now.partners.values_list("pk", flat=True)) == [org.pk, other.pk]
    assert list(new.get_model("routing", "Assignment").objects.values_list("partner_id", flat=True)) == [org.pk]
    assert list(new.get_model("routing", "RoutingCounter").objects.values_list("partner_id", "assigned")) == [
        (org.pk, 3)
    ]
    feedback = new.get_model("partners", "PartnerFeedback").objects.get()
    assert (feedback.organization_id, feedback.organization.name) == (org.pk, "Alpine")
    # The permission granted before is the same row, now leads.view_partnerorganization.
    new_type = new.get_model("contenttypes", "ContentType").objects.get(model="partnerorganization")
    assert (new_type.pk, new_type.app_label) == (old_type.pk, "leads")
    assert list(new.get_model("auth", "Group").objects.get(pk=group.pk).permissions.values_list("pk", flat=True)) == [
        view.pk
    ]

    # The database's own foreign keys still point at the table, and still hold.
    assert _foreign_key("leads_lead", "partner_id") == ("partners_partnerorganization", "id")
    assert _foreign_key("leads_user", "partner_organization_id") == ("partners_partnerorganization", "id")
    assert _foreign_key("partners_partnerfeedback", "organization_id") == ("partners_partnerorganization", "id")
    assert _foreign_key("routing_routingrule_partners", "partnerorganization_id") == (
        "partners_partnerorganization",
        "id",
    )
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM partners_partnerorganization WHERE id = %s", [org.pk])
    assert Org.objects.filter(pk=org.pk).exists()

    # And back: the content type returns to partners, the rows stay.
    back = _migrate(BEFORE)
    ContentType.objects.clear_cache()
    assert back.get_model("contenttypes", "ContentType").objects.get(pk=old_type.pk).app_label == "partners"
    assert back.get_model("partners", "PartnerOrganization").objects.count() == 2
