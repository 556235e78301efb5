"""Thin Celery tasks for routing: take ids, call a service, safe to run twice."""

from __future__ import annotations

import smtplib
import time

from celery import shared_task

from leadportal.celery import TRANSIENT_ERRORS
from leads.models import Lead

from . import selectors, services
from .models import Assignment

# A task that waited longer than this in the queue means the workers are behind: it then looks for
# other MQLs waiting and places them together. A worker that keeps up skips that look (one query
# per lead, which grows with the MQLs of the last hour) and routes its lead alone.
BEHIND_AFTER_S = 0.25


RETRY = {"autoretry_for": TRANSIENT_ERRORS, "retry_backoff": 1, "retry_backoff_max": 30, "max_retries": 8}


@shared_task(acks_late=True, **RETRY)
def route_lead(lead_id: int, queued_at: float | None = None) -> int | None:
    """Route an MQL (a lead that already has an open assignment keeps it), together with other MQLs
    still waiting for their own task when the worker is behind (or when the queueing time is unknown)."""
    behind = queued_at is None or time.time() - queued_at > BEHIND_AFTER_S
    return services.route_waiting(lead_id=lead_id, limit=services.ROUTE_BATCH if behind else 1)


@shared_task(
    acks_late=True,
    autoretry_for=(*TRANSIENT_ERRORS, smtplib.SMTPException),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=6,
)
def notify_assignments(assignment_ids: list[int]) -> None:
    """E-mail the assignees of new assignments (or a pool's reps), after the routing committed."""
    services.notify_many(assignment_ids)


@shared_task(expires=55)
def enforce_sla() -> int:
    """Every minute: assignments past their acceptance deadline are reassigned or escalated."""
    return services.sla_enforce()


@shared_task(expires=290)
def retry_unassigned() -> int:
    """Every five minutes: leads in the unassigned queue get another chance (reps may be back) —
    never with someone who had them before (a partner that declined, a rep who let the SLA pass)."""
    ids = list(Assignment.objects.filter(status=Assignment.Status.UNASSIGNED).values_list("lead_id", flat=True)[:500])
    for lead in Lead.objects.filter(pk__in=ids).only("pk"):
        services.route_lead(lead_id=lead.pk, exclude=selectors.previous_assignees(lead))
    return len(ids)
