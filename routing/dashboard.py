"""What routing adds to the rep dashboard: navigation, lead-page panels and the team's figures.

Registered from RoutingConfig.ready() through `leads.dashboard`, so `leads` stays unaware of routing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from leads import dashboard
from leads.auth import signed_in_user
from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, Role, Stage, StageChange, User

from . import selectors
from .forms import ReassignForm, RejectForm
from .models import Account, Assignment, RepProfile, Team

FUNNEL = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON)


def register() -> None:
    dashboard.register_nav("My queue", "leads:queue", order=10)
    dashboard.register_nav("Pool", "routing:pool", order=20)
    dashboard.register_nav("Availability", "routing:availability", order=30)
    dashboard.register_nav("Team", "routing:team", roles=[Role.SALES_MANAGER], order=40)
    dashboard.register_nav("Funnel", "routing:funnel", roles=[Role.SALES_MANAGER], order=50)
    dashboard.register_lead_panel("actions", "routing/_accept_reject.html", accept_reject_panel, order=10)
    dashboard.register_lead_panel("actions", "routing/_reassign.html", reassign_panel, order=90)
    dashboard.register_lead_panel("side", "routing/_routing.html", routing_panel, order=30)


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


def funnel(member_ids: list[int], days: int, now=None) -> list[dict[str, Any]]:
    """The team's funnel over the last `days`: leads handed over (MQL) and how many of them moved on
    to SAL, SQL and won in that period, with the conversion from each step to the next."""
    since = (now or timezone.now()) - timedelta(days=days)
    handed = (
        Assignment.objects.filter(user_id__in=member_ids, assigned_at__gte=since).values("lead_id").distinct().count()
    )
    moved = dict(
        StageChange.objects.filter(at__gte=since, lead__owner_id__in=member_ids, to_stage__in=[*FUNNEL, Stage.LOST])
        .values("to_stage")
        .annotate(n=Count("lead_id", distinct=True))
        .values_list("to_stage", "n")
    )
    counts = {Stage.MQL: handed, **{stage: moved.get(stage, 0) for stage in FUNNEL[1:]}}
    top = max(counts.values()) or 1
    steps, previous = [], None
    for stage in FUNNEL:
        n = counts[stage]
        steps.append(
            {
                "stage": Stage(stage).label,
                "code": stage,
                "count": n,
                "width": round(100 * n / top),
                "conversion": None if previous is None else (round(100 * n / previous) if previous else 0),
            }
        )
        previous = n
    lost = moved.get(Stage.LOST, 0)
    steps.append(
        {"stage": "Lost", "code": Stage.LOST, "count": lost, "width": round(100 * lost / top), "conversion": None}
    )
    return steps
