"""Thin Celery tasks of the webhooks app (default queue). Safe to run twice: a delivery is claimed
before it is sent, and one that is delivered, not due or held by another worker is skipped."""

from __future__ import annotations

from celery import shared_task

from leadportal.celery import transient_retry

RETRY = transient_retry(backoff_max=60)


@shared_task(name="webhooks.tasks.deliver", acks_late=True, **RETRY)
def deliver_task(delivery_ids: list[int]) -> dict[str, int]:
    """Send these deliveries (those still due), one after the other."""
    from . import services

    return services.deliveries_send(delivery_ids=delivery_ids)


@shared_task(name="webhooks.tasks.send_due", **RETRY)
def send_due_task() -> int:
    """Beat, every WEBHOOK_SEND_DUE_EVERY seconds: queue the due deliveries (retries, a lost bell)."""
    from . import services

    return services.deliveries_due_queue()


@shared_task(name="webhooks.tasks.prune", **RETRY)
def prune_task() -> int:
    """Beat, daily: events older than WEBHOOK_KEEP_DAYS with nothing left to send go."""
    from . import services

    return services.events_prune()
