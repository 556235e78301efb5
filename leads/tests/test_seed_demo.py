from django.core.management import call_command
from django.db.models import Count
from rest_framework.authtoken.models import Token

from leads.models import Activity, Lead, Role, Stage, StageChange, User
from partners.models import PartnerOrganization


def test_seed_demo_creates_every_persona_and_realistic_leads_and_is_idempotent(
    db, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # as `make run` does: tasks run after commits
        call_command("seed_demo")
    counts = (Lead.objects.count(), Activity.objects.count(), StageChange.objects.count(), User.objects.count())

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")

    assert (Lead.objects.count(), Activity.objects.count(), StageChange.objects.count(), User.objects.count()) == counts
    assert counts[0] == 300
    roles = dict(User.objects.values_list("username", "role"))
    assert roles == {
        "admin": "",
        "marketing": Role.MARKETING,
        "salesmanager": Role.SALES_MANAGER,
        "rep1": Role.SALES_REP,
        "rep2": Role.SALES_REP,
        "rep3": Role.SALES_REP,
        "integration": Role.INTEGRATION,
        "partner-a": Role.PARTNER,
        "partner-b": Role.PARTNER,
    }
    assert PartnerOrganization.objects.count() == 2
    assert User.objects.get(username="rep1").check_password("leadportal")
    output = capsys.readouterr().out
    assert f"integration user (capture, events): {Token.objects.get(user__username='integration').key}" in output
    assert f"marketing manager (reads every lead): {Token.objects.get(user__username='marketing').key}" in output
    assert set(Lead.objects.values_list("stage", flat=True)) == set(Stage.values)
    assert Lead.objects.values("country").distinct().count() >= 10
    # Every lead's stage is where its recorded history leads.
    for lead in Lead.objects.exclude(stage=Stage.NEW).annotate(n=Count("stage_changes")):
        assert lead.stage_changes.latest("at", "pk").to_stage == lead.stage
    assert not Lead.objects.filter(stage=Stage.NEW, stage_changes__isnull=False).exists()
    # Leads past MQL belong to a rep or a partner; an MQL is assigned or waits in the pool.
    in_sales = Lead.objects.filter(stage__in=[Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST])
    assert not in_sales.filter(owner__isnull=True, partner__isnull=True).exists()
    assert Lead.objects.filter(partner__isnull=False).exists()
    from routing.models import Assignment, RoutingRule
    from scoring.models import ScoringModel

    assert ScoringModel.objects.filter(status="active").count() == 1
    assert set(Lead.objects.filter(stage=Stage.MQL).values_list("assignments__status", flat=True)) <= {
        "active",
        "pooled",
        "closed",
    }
    assert not Assignment.objects.filter(status="unassigned").exists()
    used = set(Assignment.objects.exclude(rule=None).values_list("rule__name", flat=True))
    assert used == set(RoutingRule.objects.values_list("name", flat=True))  # every strategy is exercised
