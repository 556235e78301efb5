"""Thin Celery tasks: take ids, call a service, safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import selectors, services
from .models import PendingRescore, RescoreRun

STALLED_AFTER = timedelta(minutes=5)


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def rescore_leads(lead_ids: list[int]) -> int:
    """Rescore leads after their events or profile changed (these, and others waiting: see
    services.rescore_pending)."""
    return len(services.rescore_pending(lead_ids=lead_ids))


@shared_task(acks_late=True)
def rescore_run_step(run_id: int) -> None:
    """One batch of a full rescoring; queues the next until the run is done."""
    if services.rescore_run_step(run_id=run_id):
        rescore_run_step.delay(run_id)


@shared_task(expires=3600)
def decay_all() -> int | None:
    """Daily: rescore every lead with the active model, so silence lowers engagement."""
    model = selectors.active_model()
    if model is None or RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING).exists():
        return None
    return services.rescore_run_start(model=model, kind=RescoreRun.Kind.DECAY).pk


@shared_task(expires=60)
def recover_stalled() -> None:
    """Every few minutes: re-queue work that was lost (broker down when queuing, a worker killed)."""
    cutoff = timezone.now() - STALLED_AFTER
    stale = list(PendingRescore.objects.filter(requested_at__lt=cutoff).values_list("lead_id", flat=True)[:5000])
    for start in range(0, len(stale), services.TASK_CHUNK):
        rescore_leads.delay(stale[start : start + services.TASK_CHUNK])
    for run_id in RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING, updated_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        rescore_run_step.delay(run_id)
