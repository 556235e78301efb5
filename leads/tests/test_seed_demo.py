import io
import math
import re
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.core.management import call_command
from django.db.models import Count, Q
from django.utils import timezone

from leads.lifecycle import OPEN_STAGES
from leads.models import Activity, Lead, LostReason, PartnerOrganization, Role, Stage, StageChange, User
from leads.selectors import lead_facts
from leads.tokens import token_authenticate
from routing import selectors as routing_selectors
from routing import services as routing_services
from routing.models import Assignment, RepProfile, RoutingRule
from scoring import engine
from scoring import selectors as scoring_selectors
from scoring.models import PendingRescore


def test_seed_demo_creates_every_persona_and_realistic_leads_and_is_idempotent(
    db, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # as `make run` does: tasks run after commits
        call_command("seed_demo")
    counts = (Lead.objects.count(), Activity.objects.count(), StageChange.objects.count(), User.objects.count())
    first_output = capsys.readouterr().out

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
    # The demo tokens' keys are printed when they are made, once (only their hashes are kept).
    keys = dict(re.findall(r"API token of the (integration user|marketing manager) .*?: (\S{40})$", first_output, re.M))
    integration, reader = (
        token_authenticate(key=keys["integration user"]),
        token_authenticate(key=keys["marketing manager"]),
    )
    assert (integration.user.username, integration.scope_list) == ("integration", ["capture"])
    assert (reader.user.username, reader.scope_list) == ("marketing", ["read"])
    again = capsys.readouterr().out
    assert keys["integration user"] not in again
    assert f"made by an earlier run ({integration.prefix}…)" in again
    assert "token_create --user integration --scopes capture --name Demo" in again
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
    assert scoring_selectors.active_model_id() is not None
    assert set(Lead.objects.filter(stage=Stage.MQL).values_list("assignments__status", flat=True)) <= {
        "active",
        "pooled",
        "closed",
    }
    assert not Assignment.objects.filter(status="unassigned").exists()
    used = set(Assignment.objects.exclude(rule=None).values_list("rule__name", flat=True))
    assert used == set(RoutingRule.objects.values_list("name", flat=True))  # every strategy is exercised


# --- the demo tells the truth ---------------------------------------------------------------------

HANDOVER_SUBJECT = re.compile(r"^(New lead for you|New lead in the pool|Escalated to you)")
# "Score 85, grade C." (a partner's mail) or "Why this score: 85, grade C" (a rep's hand-over mail)
SCORE_SHOWN = re.compile(r"(?:Score|Why this score:) (-?\d+), grade ([A-D])\b")
ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


class HandoverRecorder(locmem.EmailBackend):
    """Django's in-memory backend that also notes, on each message, the stored score of the lead
    named in it as it was when the message went out (the one point where the test looks in)."""

    def send_messages(self, messages):
        for message in messages:
            address = ADDRESS.search(message.body)
            message.lead_then = (
                Lead.objects.filter(email=address[1])
                .values("pk", "score", "grade", "score_rev", "scored_rev", "scoring_version")
                .first()
                if address
                else None
            )
        return super().send_messages(messages)


def _check_loop(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_loop", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def _shown(score: float, grade: str) -> tuple[str, str]:
    return f"{score:.0f}", grade or "–"


@pytest.mark.django_db(transaction=True)  # as `make run` seeds: each service commits, its tasks run after
def test_seed_demo_tells_the_truth(settings):
    settings.EMAIL_BACKEND = f"{__name__}.HandoverRecorder"
    started = timezone.now()

    call_command("seed_demo", stdout=io.StringIO())

    now = timezone.now()
    model = scoring_selectors.active_engine_model()
    leads = {lead.pk: lead for lead in Lead.objects.select_related("owner").order_by("pk")}
    assert len(leads) == 300

    # Scored before routed: every stored score is the active model's, from the lead's current inputs,
    # computed during the seeding, and exactly what the engine makes of its data for that instant.
    facts = defaultdict(list)
    for lead_id, kind, at, props in Activity.objects.values_list("lead_id", "type", "occurred_at", "properties"):
        facts[lead_id].append(engine.ActivityFact(kind, at, props or {}))
    wrong = []
    for lead in leads.values():
        ok = lead.scoring_version == model.version and lead.scored_rev == lead.score_rev
        ok = ok and lead.scored_at is not None and started <= lead.scored_at <= now
        if ok:
            expected = engine.score_lead(model, lead_facts(lead), facts[lead.pk], lead.scored_at)
            ok = (
                math.isclose(lead.fit_score, expected.fit, abs_tol=1e-6)
                and math.isclose(lead.engagement_score, expected.engagement, abs_tol=1e-6)
                and math.isclose(lead.score, expected.total, abs_tol=1e-6)
                and lead.grade == expected.grade
            )
        if not ok:
            wrong.append(lead.pk)
    assert wrong == []
    assert PendingRescore.objects.count() == 0

    # Every MQL qualifies under the active model; no MAL lead sits above the threshold un-promoted.
    mqls = Lead.objects.filter(stage=Stage.MQL)
    assert mqls.count() >= 20
    assert mqls.filter(score__lt=model.mql_threshold).count() == 0
    below = [pk for pk, score, grade in mqls.values_list("pk", "score", "grade") if score < model.mql_threshold]
    ungraded = [pk for pk, score, grade in mqls.values_list("pk", "score", "grade") if grade > model.min_grade]
    assert (below, ungraded) == ([], [])
    assert Lead.objects.filter(stage=Stage.MAL, score__gte=model.mql_threshold).count() == 0
    assert Lead.objects.filter(stage=Stage.MAL).count() >= 50

    # The hand-over e-mails carry the real score and grade: the lead had been scored by the active
    # model from the inputs it had then, and the e-mail shows that score; where nothing changed the
    # lead's inputs since (partner feedback, a story moved back in time), it is the stored score now.
    handovers = [m for m in mail.outbox if HANDOVER_SUBJECT.match(m.subject)]
    handed_over = set(Assignment.objects.exclude(status=Assignment.Status.UNASSIGNED).values_list("lead_id", flat=True))
    assert {m.lead_then["pk"] for m in handovers if m.lead_then} == handed_over
    unscored, misstated, zeros, unchanged = [], [], [], set()
    for message in handovers:
        then, shown = message.lead_then, SCORE_SHOWN.search(message.body)
        assert then is not None and shown is not None, message.body
        if then["scoring_version"] != model.version or then["scored_rev"] != then["score_rev"]:
            unscored.append(then["pk"])
        lead = leads[then["pk"]]
        if shown.groups() != _shown(then["score"], then["grade"]):
            misstated.append((then["pk"], shown.groups(), _shown(then["score"], then["grade"])))
        if lead.score_rev == then["score_rev"]:
            unchanged.add(lead.pk)
            if shown.groups() != _shown(lead.score, lead.grade):
                misstated.append((lead.pk, shown.groups(), _shown(lead.score, lead.grade)))
        if shown[1] == "0" and (f"{lead.score:.0f}" != "0" or f"{then['score']:.0f}" != "0"):
            zeros.append(lead.pk)
    assert (unscored, misstated, zeros) == ([], [], [])
    waiting = set(Lead.objects.filter(stage=Stage.MQL, assignments__isnull=False).values_list("pk", flat=True))
    assert waiting and waiting <= unchanged  # every MQL's e-mail shows the score it has now

    # A year of history where reports need it, and consistent: won leads with their value and date,
    # lost ones with a reason, owned by reps (or a partner's); stage changes over the last 12 months.
    won, lost = Lead.objects.filter(stage=Stage.WON), Lead.objects.filter(stage=Stage.LOST)
    assert won.count() >= 10 and lost.count() >= 10
    unvalued = Q(deal_value__isnull=True) | Q(deal_value__lte=0) | Q(deal_currency="") | Q(closed_at=None)
    assert won.filter(unvalued).count() == 0
    assert lost.filter(Q(lost_reason="") | Q(closed_at=None)).count() == 0
    assert set(lost.values_list("lost_reason", flat=True)) <= set(LostReason.values)
    assert len(set(lost.values_list("lost_reason", flat=True))) >= 3
    closed = [lead for lead in leads.values() if lead.stage in (Stage.WON, Stage.LOST)]
    by_rep = [lead.pk for lead in closed if lead.owner and lead.owner.role == Role.SALES_REP and not lead.partner_id]
    by_partner = [lead.pk for lead in closed if lead.owner is None and lead.partner_id]
    assert sorted(by_rep + by_partner) == sorted(lead.pk for lead in closed)
    month = lambda at: (now - at).days // 30  # noqa: E731
    assert {month(lead.closed_at) for lead in closed} == set(range(12))
    assert {month(at) for at in StageChange.objects.values_list("at", flat=True)} == set(range(12))
    broken = []
    for lead in leads.values():
        moves = list(lead.stage_changes.order_by("at", "pk"))
        path = [Stage.NEW] + [m.to_stage for m in moves]
        if any(m.from_stage != path[i] for i, m in enumerate(moves)) or path[-1] != lead.stage:
            broken.append((lead.pk, "path"))
        if moves and (lead.created_at > moves[0].at or moves[-1].at > now):
            broken.append((lead.pk, "dates"))
        if lead.stage in (Stage.WON, Stage.LOST) and (
            abs(lead.closed_at - moves[-1].at) > timedelta(minutes=1)
            or lead.handed_over_at is None
            or lead.handed_over_at > lead.closed_at
        ):
            broken.append((lead.pk, "closed"))
    assert broken == []

    # After seeding the reconciler finds nothing to do.
    for args in ((), ("--full",)):
        code, out = _check_loop(*args)
        assert (code, out.strip().splitlines()[-1].endswith("Drift found: 0.")) == (0, True), out

    # Reps start with headroom: 60–70 % of their capacity in open leads.
    loads = {
        profile.user.username: (
            Lead.objects.filter(owner=profile.user, stage__in=OPEN_STAGES).count(),
            profile.capacity,
        )
        for profile in RepProfile.objects.select_related("user")
    }
    assert set(loads) == {"rep1", "rep2", "rep3"}
    assert [name for name, (n, capacity) in loads.items() if not 0.6 <= n / capacity <= 0.7] == [], loads
    seen_by_routing = routing_selectors.candidates(("rep", p.user_id) for p in RepProfile.objects.all())
    assert sorted(c.open_leads for c in seen_by_routing.values()) == sorted(n for n, _ in loads.values())

    # The pool holds leads that a rep of its team, below capacity, really claims.
    pool_rule = RoutingRule.objects.get(target=RoutingRule.Target.POOL)
    pooled = Assignment.objects.filter(rule=pool_rule, status=Assignment.Status.POOLED).order_by("pk")
    assert pooled.count() >= 3
    rep = User.objects.filter(rep_profile__team=pool_rule.team).order_by("username").first()
    lead = pooled.first().lead
    assert routing_selectors.pool_for(rep).filter(lead=lead).exists()
    claimed = routing_services.pool_claim(user=rep, lead=lead)
    claimed.refresh_from_db()
    lead.refresh_from_db()
    assert (claimed.status, claimed.user_id, lead.owner_id, lead.stage) == (
        Assignment.Status.ACTIVE,
        rep.pk,
        rep.pk,
        Stage.MQL,
    )
    assert pooled.count() >= 2  # more are left for the others
