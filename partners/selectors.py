"""Reads of the partner loop: a partner's leads, feedback history, and outcome figures per organisation."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from leads.models import Lead, PartnerOrganization, Role, User
from routing.models import Assignment

from .models import REPORT_STATUSES, FeedbackStatus, PartnerFeedback

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

DAY = timedelta(days=1)


def _days(field: str) -> ExpressionWrapper:
    """A number-of-days column as a duration: PostgreSQL multiplies an interval, SQLite stores
    durations as microseconds (and refuses integer × interval)."""
    unit = Value(DAY) if connection.vendor == "postgresql" else Value(int(DAY.total_seconds() * 1_000_000))
    return ExpressionWrapper(F(field) * unit, output_field=DurationField())


class FeedbackDue(TypedDict):
    """What partner_leads annotates each lead with."""

    feedback_due_at: datetime | None


if TYPE_CHECKING:
    PartnerLead = WithAnnotations[Lead, FeedbackDue]


def partner_leads(user: User) -> QuerySet[PartnerLead]:
    """The leads routed to the user's organisation (none for anyone who is not a partner user), with
    their feedback prefetched and `feedback_due_at` annotated: the handover plus the organisation's
    deadline while no report has come in since the handover, else NULL."""
    if user.role != Role.PARTNER or not user.partner_organization_id:
        return Lead.objects.none().annotate(feedback_due_at=Value(None, output_field=DateTimeField()))
    org_id = user.partner_organization_id
    first_report = (
        PartnerFeedback.objects.filter(
            lead=OuterRef("pk"),
            organization_id=org_id,
            status__in=REPORT_STATUSES,
            at__gte=OuterRef("handed_over_at"),
        )
        .order_by("at")
        .values("at")[:1]
    )
    return (
        Lead.objects.filter(partner_id=org_id)
        .select_related("partner")
        .prefetch_related(
            Prefetch(
                "partner_feedback",
                queryset=PartnerFeedback.objects.filter(organization_id=org_id).order_by("-at", "-pk"),
                to_attr="my_feedback",
            )
        )
        .annotate(
            first_report_at=Subquery(first_report),
            feedback_due_at=Case(
                When(
                    Q(handed_over_at__isnull=False, first_report_at__isnull=True),
                    then=ExpressionWrapper(
                        F("handed_over_at") + _days("partner__feedback_deadline_days"),
                        output_field=DateTimeField(),
                    ),
                ),
                default=None,
                output_field=DateTimeField(),
            ),
        )
    )


def feedback_history(organization: PartnerOrganization) -> QuerySet[PartnerFeedback]:
    """The organisation's feedback, newest first (for its portal page and the admin)."""
    return PartnerFeedback.objects.filter(organization=organization).select_related("lead", "user")


@dataclass(frozen=True)
class PartnerPerformance:
    """Outcome figures of one partner organisation, over every handover it has had.

    - acceptance_rate: accepted / decided handovers (accepted, declined, or taken back unanswered);
    - median_first_response: handover → first response (feedback of any kind, or an acceptance or
      rejection through the routing API);
    - feedback_compliance: accepted handovers with a report (anything but a bare acceptance) within
      the organisation's deadline / accepted handovers whose deadline has passed or that have a report;
    - win_rate: won / (won + lost) handovers; won_value: sum of won deal values by currency.
    Rates are None when there is nothing to divide by yet.
    """

    organization_id: int
    handovers: int = 0
    waiting: int = 0
    accepted: int = 0
    declined: int = 0
    acceptance_rate: float | None = None
    median_first_response: timedelta | None = None
    feedback_compliance: float | None = None
    won: int = 0
    lost: int = 0
    win_rate: float | None = None
    won_value: dict[str, Decimal] = field(default_factory=dict)


class Median(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(0.5): the median inside the database (NULLs are left out)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False


def _earliest(a: str, b: str) -> Case:
    """The earlier of two nullable datetimes, NULL only if both are (portable: on SQLite, MIN(a, b)
    is NULL as soon as one of them is)."""
    return Case(
        When(**{f"{a}__isnull": True}, then=F(b)),
        When(**{f"{b}__isnull": True}, then=F(a)),
        When(**{f"{a}__lte": F(b)}, then=F(a)),
        default=F(b),
        output_field=DateTimeField(),
    )


class _HandoverTimes(TypedDict):
    """What _handovers annotates each partner assignment with."""

    first_feedback_at: datetime | None
    first_report_at: datetime | None
    won_at: datetime | None
    lost_at: datetime | None
    rejected_at: datetime | None
    deadline: datetime
    answered_at: datetime | None
    first_response_at: datetime | None
    response_delay: timedelta | None


class _PerformanceRow(TypedDict):
    """partner_performance's row per partner: the partner and its aggregates."""

    partner_id: int
    handovers: int
    waiting: int
    decided: int
    accepted: int
    declined: int
    owes_report: int
    in_time: int
    won: int
    lost: int
    median: NotRequired[timedelta | None]


def _handovers(
    organization_ids: list[int] | None, now: datetime
) -> QuerySet[WithAnnotations[Assignment, _HandoverTimes]]:
    feedback = PartnerFeedback.objects.filter(
        lead=OuterRef("lead_id"), organization=OuterRef("partner_id"), at__gte=OuterRef("assigned_at")
    )
    handovers = Assignment.objects.filter(partner__isnull=False)
    if organization_ids is not None:
        handovers = handovers.filter(partner_id__in=organization_ids)
    first_of = lambda qs: Subquery(qs.order_by("at").values("at")[:1])  # noqa: E731
    return (
        handovers.annotate(
            first_feedback_at=first_of(feedback),
            first_report_at=first_of(feedback.filter(status__in=REPORT_STATUSES)),
            won_at=first_of(feedback.filter(status=FeedbackStatus.WON)),
            lost_at=first_of(feedback.filter(status=FeedbackStatus.LOST)),
            rejected_at=Case(When(status=Assignment.Status.REJECTED, then=F("ended_at")), output_field=DateTimeField()),
            deadline=ExpressionWrapper(
                F("assigned_at") + _days("partner__feedback_deadline_days"), output_field=DateTimeField()
            ),
        )
        .annotate(
            answered_at=_earliest("accepted_at", "rejected_at"),
        )
        .annotate(
            first_response_at=_earliest("first_feedback_at", "answered_at"),
        )
        .annotate(
            response_delay=ExpressionWrapper(F("first_response_at") - F("assigned_at"), output_field=DurationField()),
        )
    )


def partner_performance(
    organization: PartnerOrganization | None = None, *, now: datetime | None = None
) -> dict[int, PartnerPerformance]:
    """Outcome figures by organisation id: of one organisation, or of all (every organisation has an
    entry, zeros included). Computed in the database in a constant number of queries (two on
    PostgreSQL, three on SQLite, which has no median aggregate), so a routing strategy can weigh
    every partner candidate with one call.
    """
    now = now or timezone.now()
    ids = [organization.pk] if organization else list(PartnerOrganization.objects.values_list("pk", flat=True))
    handovers = _handovers([organization.pk] if organization else None, now)
    decided = ~Q(status=Assignment.Status.ACTIVE)
    owes_report = Q(accepted_at__isnull=False) & (Q(deadline__lte=now) | Q(first_report_at__isnull=False))
    aggregates: dict[str, Aggregate] = {
        "handovers": Count("pk"),
        "waiting": Count("pk", filter=~decided),
        "decided": Count("pk", filter=decided),
        "accepted": Count("pk", filter=Q(accepted_at__isnull=False)),
        "declined": Count("pk", filter=Q(status=Assignment.Status.REJECTED)),
        "owes_report": Count("pk", filter=owes_report),
        "in_time": Count("pk", filter=owes_report & Q(first_report_at__lte=F("deadline"))),
        "won": Count("pk", filter=Q(won_at__isnull=False)),
        "lost": Count("pk", filter=Q(lost_at__isnull=False, won_at__isnull=True)),
    }
    postgres = connection.vendor == "postgresql"
    if postgres:
        aggregates["median"] = Median("response_delay", output_field=DurationField())
    # The plugin types a values() row by its values() fields only; the aggregates are _PerformanceRow's.
    per_partner = handovers.values("partner_id").annotate(**aggregates).order_by()
    rows = {row["partner_id"]: cast(_PerformanceRow, row) for row in per_partner}
    if not postgres:
        delays: dict[int, list[timedelta]] = {}
        for partner_id, delay in handovers.filter(response_delay__isnull=False).values_list(
            "partner_id", "response_delay"
        ):
            if delay is not None:  # the filter left none out; said again for mypy
                delays.setdefault(partner_id, []).append(delay)
        for partner_id, values in delays.items():
            rows[partner_id]["median"] = _median(values)
    won_value: dict[int, dict[str, Decimal]] = {}
    won_feedback = PartnerFeedback.objects.filter(status=FeedbackStatus.WON, organization_id__in=ids)
    for org_id, currency, total in (
        won_feedback.values("organization_id", "currency")
        .annotate(total=Sum("deal_value"))
        .order_by("organization_id", "currency")
        .values_list("organization_id", "currency", "total")
    ):
        won_value.setdefault(org_id, {})[currency] = total
    result = {}
    for org_id in ids:
        row = rows.get(org_id)
        if row is None:
            result[org_id] = PartnerPerformance(organization_id=org_id, won_value=won_value.get(org_id, {}))
            continue
        result[org_id] = PartnerPerformance(
            organization_id=org_id,
            handovers=row["handovers"],
            waiting=row["waiting"],
            accepted=row["accepted"],
            declined=row["declined"],
            acceptance_rate=_rate(row["accepted"], row["decided"]),
            median_first_response=row.get("median"),
            feedback_compliance=_rate(row["in_time"], row["owes_report"]),
            won=row["won"],
            lost=row["lost"],
            win_rate=_rate(row["won"], row["won"] + row["lost"]),
            won_value=won_value.get(org_id, {}),
        )
    return result


def performance_score(p: PartnerPerformance) -> float:
    """One number for routing ("performance-weighted"): the chance a lead is accepted × the chance
    an accepted deal is won × how reliably the partner reports back. Counts are smoothed (one
    success and one failure assumed), so a new partner starts at 0.5 × 0.5 × 1 and the score moves
    with evidence; never below 0.05, so nobody is starved of the chance to improve."""
    decided = p.handovers - p.waiting
    acceptance = (p.accepted + 1) / (decided + 2)
    winning = (p.won + 1) / (p.won + p.lost + 2)
    reporting = 0.5 + 0.5 * (p.feedback_compliance if p.feedback_compliance is not None else 1.0)
    return max(0.05, round(acceptance * winning * reporting, 4))


def partner_weights() -> dict[int, float]:
    """Every organisation's performance_score by id: what routing weighs partner candidates by
    (registered with routing.selectors.register_partner_weights in PartnersConfig.ready())."""
    return {org_id: performance_score(p) for org_id, p in partner_performance().items()}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[timedelta]) -> timedelta:
    seconds = statistics.median(v.total_seconds() for v in values)
    return timedelta(seconds=seconds)
