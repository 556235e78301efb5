"""Thin Celery tasks for routing: take ids, call a service, safe to run twice. Named `*_task`; the
registered names stay those of the first release, so messages already queued still find them."""

from __future__ import annotations

import time

from celery import shared_task

from leadportal import logs
from leadportal.celery import transient_retry

# A task that waited longer than this in the queue means the workers are behind: it then looks for
# other MQLs waiting and places them together. A worker that keeps up skips that look (one query
# per lead, which grows with the MQLs of the last hour) and routes its lead alone.
BEHIND_AFTER_S = 0.25


RETRY = transient_retry(backoff_max=30)


@shared_task(name="routing.tasks.route_lead", acks_late=True, **RETRY)
def route_lead_task(lead_id: int, queued_at: float | None = None) -> int | None:
    """Route an MQL (a lead that already has an open assignment keeps it), together with other MQLs
    still waiting for their own task when the worker is behind (or when the queueing time is unknown)."""
    from . import services

    logs.bind(lead_id=lead_id)
    behind = queued_at is None or time.time() - queued_at > BEHIND_AFTER_S
    return services.leads_route_waiting(lead_id=lead_id, limit=services.ROUTE_BATCH if behind else 1)


@shared_task(name="routing.tasks.notify_assignments", acks_late=True, **RETRY)
def notify_assignments_task(assignment_ids: list[int]) -> int:
    """Queue the e-mails of new assignments (assignee, partner or a pool's reps), after the routing
    committed. `leads.tasks.send_email_task` sends them and retries SMTP errors."""
    from . import services

    return services.assignments_notify(assignment_ids=assignment_ids)


@shared_task(name="routing.tasks.enforce_sla", expires=55)
def enforce_sla_task() -> int:
    """Every minute: assignments past their deadline are reassigned or escalated."""
    from . import services

    return services.sla_enforce()


@shared_task(name="routing.tasks.retry_unassigned", expires=290)
def retry_unassigned_task() -> int:
    """Every five minutes: leads in the unassigned queue get another chance."""
    from . import services

    return services.unassigned_retry()


@shared_task(name="routing.tasks.notify_sla_soon", expires=55)
def notify_sla_soon_task() -> int:
    """Every minute: reps whose lead's acceptance deadline is minutes away are told in the app (once)."""
    from . import tell

    return tell.sla_soon()
