"""What routing adds to the rep dashboard: navigation, lead-page panels and the team's figures.

Registered from RoutingConfig.ready() through `leads.dashboard`, so `leads` stays unaware of routing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Min, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from leads import dashboard
from leads.auth import signed_in_user
from leads.formatting import format_datetime
from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, Role, Stage, StageChange, User

from . import selectors
from .forms import ReassignForm, RejectForm
from .models import Account, Assignment, RepProfile, Team


def register() -> None:
    dashboard.register_nav("My queue", "leads:queue", roles=[Role.SALES_REP], order=10)
    # A manager's "/app/" is the team page; their own queue (escalations, their own leads) is here.
    dashboard.register_nav("My queue", "leads:my-queue", roles=[Role.SALES_MANAGER], order=45)
    dashboard.register_nav("Pool", "routing:pool", order=20)
    dashboard.register_nav("Availability", "routing:availability", order=30)
    dashboard.register_nav("Team", "routing:team", roles=[Role.SALES_MANAGER], order=40)
    dashboard.register_nav("Funnel", "routing:funnel", roles=[Role.SALES_MANAGER], order=50)
    dashboard.register_banner(away_banner)
    dashboard.register_lead_panel("actions", "routing/_accept_reject.html", accept_reject_panel, order=10)
    dashboard.register_lead_panel("actions", "routing/_reassign.html", reassign_panel, order=90)
    dashboard.register_lead_panel("side", "routing/_routing.html", routing_panel, order=30)


def away_banner(user: User) -> tuple[str, str, str] | None:
    """"You are away until …" over every page while the rep is marked away (routing skips them)."""
    profile = RepProfile.objects.filter(user=user).only("away_until").first()
    if profile is None or not profile.is_away():
        return None
    text = gettext("You are marked away until %(until)s: routing hands you no new leads.") % {
        "until": format_datetime(profile.away_until)
    }
    return text, gettext("Change your availability"), reverse("routing:availability")


# --- lead-page panels ------------------------------------------------------------------------------


def accept_reject_panel(request: HttpRequest, lead: Lead) -> dict[str, Any] | None:
    """Shown to the assignee while the lead waits for acceptance."""
    if lead.stage != Stage.MQL or lead.owner_id != request.user.pk:
        return None
    assignment = Assignment.objects.filter(
        lead=lead, user=signed_in_user(request), status=Assignment.Status.ACTIVE
    ).first()
    if assignment is None:
        return None
    return {"assignment": assignment, "reject_form": RejectForm(), "now": timezone.now()}


def reassign_panel(request: HttpRequest, lead: Lead) -> dict[str, Any] | None:
    """A manager's reassign form; after "at capacity", the same choice with "hand over anyway"."""
    if signed_in_user(request).role != Role.SALES_MANAGER or lead.stage not in OPEN_STAGES:
        return None
    confirm = getattr(request, "reassign_confirm", None)
    if confirm:
        form = ReassignForm(initial={"to_user": confirm["to_user"].pk, "note": confirm["note"], "over_capacity": True})
        return {"form": form, "confirm": confirm}
    return {"form": ReassignForm()}


def routing_panel(request: HttpRequest, lead: Lead) -> dict[str, Any]:
    from .admin import render_trace  # one reading of the trace for the admin and the dashboard

    assignments = list(selectors.lead_assignments(lead)[:20])
    account = Account.objects.select_related("owner").filter(domain=lead.company_domain).first()
    return {
        "assignments": [(a, render_trace(a.trace)) for a in assignments],
        "account": account if lead.company_domain else None,
    }


# --- the team page ---------------------------------------------------------------------------------


def teams_of(manager: User) -> QuerySet[Team]:
    """The teams a sales manager runs; a manager without a team of their own sees every team."""
    managed = Team.objects.filter(manager=manager)
    return managed if managed.exists() else Team.objects.all()


def team_members(teams: QuerySet[Team]) -> list[RepProfile]:
    return list(RepProfile.objects.filter(team__in=teams).select_related("user", "team").order_by("user__username"))


def rep_load(members: list[RepProfile], now) -> list[dict[str, Any]]:
    """Per rep: open leads against capacity, waiting for acceptance and overdue — one query."""
    ids = [m.user_id for m in members]
    counts = {
        row["owner_id"]: row
        for row in Lead.objects.filter(owner_id__in=ids, stage__in=OPEN_STAGES)
        .values("owner_id")
        .annotate(
            open=Count("pk"),
            waiting=Count("pk", filter=Q(respond_by__isnull=False)),
            overdue=Count("pk", filter=Q(respond_by__lt=now)),
        )
    }
    rows = []
    for member in members:
        figures = counts.get(member.user_id, {"open": 0, "waiting": 0, "overdue": 0})
        rows.append(
            {
                "profile": member,
                "open": figures["open"],
                "waiting": figures["waiting"],
                "overdue": figures["overdue"],
                "percent": min(100, round(100 * figures["open"] / member.capacity)) if member.capacity else 100,
                "away": member.is_away(now),
            }
        )
    return rows


TEAM_ROW_FIELDS = (
    "company",
    "first_name",
    "last_name",
    "email",
    "score",
    "grade",
    "stage",
    "respond_by",
    "handed_over_at",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
)


def team_open_leads(member_ids: list[int]) -> QuerySet[Lead]:
    """The team's open leads, most urgent first, with only the columns a row shows."""
    return (
        Lead.objects.filter(owner_id__in=member_ids, stage__in=OPEN_STAGES)
        .select_related("owner")
        .only(*TEAM_ROW_FIELDS)
        .order_by(F("respond_by").asc(nulls_last=True), F("handed_over_at").desc(nulls_last=True), "-pk")
    )


def stalled_pool(teams) -> QuerySet[Assignment]:
    """Pooled leads of these teams that nobody claimed in time (the manager was told)."""
    return (
        Assignment.objects.filter(status=Assignment.Status.POOLED, escalated_at__isnull=False, pool_team__in=teams)
        .select_related("lead")
        .order_by("assigned_at")
    )


def unassigned_queue() -> QuerySet[Assignment]:
    return Assignment.objects.filter(status=Assignment.Status.UNASSIGNED).select_related("lead").order_by("assigned_at")


# The steps after the handover, in order: reaching one counts as having reached those before it
# (a lead qualified straight from MQL to SQL was accepted too, whatever the history skipped).
FUNNEL_STEPS = (Stage.SAL, Stage.SQL, Stage.WON)
PERIODS = (7, 30, 90, 365)


def funnel_cohort(teams, since: datetime, until: datetime) -> dict[int, datetime]:
    """The leads first handed over to these teams (to one of their reps, or into one of their pools)
    in [since, until]: {lead id: when}. A lead handed over before the period and again in it (a
    recycled lead, a reassignment) belongs to the period of its first handover, so no lead is
    counted twice across periods."""
    members = RepProfile.objects.filter(team__in=teams).values("user_id")
    return dict(
        Assignment.objects.filter(Q(user_id__in=members) | Q(pool_team__in=teams))
        .values("lead_id")
        .annotate(first=Min("assigned_at"))
        .filter(first__gte=since, first__lte=until)
        .values_list("lead_id", "first")
    )


def funnel_steps(cohort: dict[int, datetime], changes: list[tuple[int, str, datetime]]) -> list[dict[str, Any]]:
    """The funnel of a cohort, from its leads' stage changes (lead id, stage reached, when): for each
    step, how many of the cohort reached it (at any time since their handover, up to now), with its
    share of the cohort and of the previous step. Pure: every step is at most the previous one, and
    every share is between 0 and 100 %. Lost is a side branch: the cohort's leads lost since."""
    rank: dict[str, int] = {stage: i + 1 for i, stage in enumerate(FUNNEL_STEPS)}
    reached: dict[int, int] = dict.fromkeys(cohort, 0)
    lost: set[int] = set()
    for lead_id, stage, at in changes:
        if lead_id not in cohort or at < cohort[lead_id]:
            continue  # before this team had it: another team's funnel
        if stage in rank:
            reached[lead_id] = max(reached[lead_id], rank[stage])
        elif stage == Stage.LOST:
            lost.add(lead_id)
    total = len(cohort)
    counts = [(Stage.MQL, total)] + [
        (stage, sum(1 for level in reached.values() if level >= rank[stage])) for stage in FUNNEL_STEPS
    ]

    def share(n: int, of: int) -> int | None:
        return round(100 * n / of) if of else None

    steps, previous = [], None
    for stage, n in counts:
        steps.append(
            {
                "stage": "Handed over" if stage == Stage.MQL else Stage(stage).label,
                "code": stage,
                "count": n,
                "width": share(n, total) or 0,
                "of_cohort": share(n, total),
                "of_previous": None if previous is None else share(n, previous),
            }
        )
        previous = n
    steps.append(
        {
            "stage": Stage.LOST.label,
            "code": Stage.LOST,
            "count": len(lost),
            "width": share(len(lost), total) or 0,
            "of_cohort": share(len(lost), total),
            "of_previous": None,
        }
    )
    return steps


def funnel(teams, days: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The teams' funnel for the leads first handed over to them in the last `days` (see
    `funnel_cohort`): how many of those reached SAL, SQL and won by now (`funnel_steps`). Two queries."""
    now = now or timezone.now()
    cohort = funnel_cohort(teams, now - timedelta(days=days), now)
    changes = list(
        StageChange.objects.filter(lead_id__in=list(cohort), to_stage__in=[*FUNNEL_STEPS, Stage.LOST]).values_list(
            "lead_id", "to_stage", "at"
        )
    )
    return funnel_steps(cohort, changes)
