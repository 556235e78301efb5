"""Drift in routing that the reconciler (loop.reconciler) finds and repairs.

An MQL's routing is recorded by its state, not by a queued message: an MQL with no open assignment
(waiting for acceptance, pooled or visibly unassigned) is an MQL whose routing has not happened.
A routing task lost with a dead worker or a broker outage is thus found here and done again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef
from django.db.models.functions import Coalesce

from leads.models import Lead, Stage

from . import services
from .models import Assignment

REPAIR_LIMIT = 200  # MQLs routed (or notifications sent) per reconciler run
NOTIFY_WINDOW = timedelta(days=1)  # an e-mail older than this is not worth sending any more


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.LOOP_STALE_AFTER)


def _unrouted(now: datetime):
    """MQLs with no open assignment that have been MQL for longer than the stale time."""
    return (
        Lead.objects.filter(stage=Stage.MQL)
        .exclude(Exists(Assignment.objects.filter(lead=OuterRef("pk"), status__in=Assignment.OPEN)))
        .annotate(mql_at=Coalesce(Max("stage_changes__at"), F("updated_at")))
        .filter(mql_at__lt=_cutoff(now))
    )


def unrouted_count(now: datetime, window: object = None) -> int:
    return _unrouted(now).count()


def unrouted_repair(now: datetime, window: object = None, limit: int = REPAIR_LIMIT) -> int:
    """Route them here and now (lead_route is safe to run twice: an open assignment is kept)."""
    repaired = 0
    for lead_id in _unrouted(now).order_by("mql_at").values_list("pk", flat=True)[:limit]:
        services.lead_route(lead_id=lead_id)
        repaired += 1
    return repaired


def _unnotified(now: datetime):
    """Open assignments whose e-mail was not sent: since they were made, or since an escalation
    (a pooled lead nobody claimed in time) asked for it again."""
    return Assignment.objects.annotate(asked_at=Coalesce("escalated_at", "assigned_at")).filter(
        status__in=(Assignment.Status.ACTIVE, Assignment.Status.POOLED, Assignment.Status.UNASSIGNED),
        notified_at=None,
        asked_at__lt=_cutoff(now),
        asked_at__gte=now - NOTIFY_WINDOW,
    )


def unnotified_count(now: datetime, window: object = None) -> int:
    return _unnotified(now).count()


def unnotified_repair(now: datetime, window: object = None, limit: int = REPAIR_LIMIT) -> int:
    ids = list(_unnotified(now).order_by("asked_at").values_list("pk", flat=True)[:limit])
    if ids:
        services.assignments_notify(assignment_ids=ids)
    return len(ids)
