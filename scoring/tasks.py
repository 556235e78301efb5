"""Thin Celery tasks: take ids, call a service, safe to run twice. Named `*_task`, apart from the
services they call; their registered names are those of the first release.

Every task here retries transient database and broker errors with backoff; the work it stands for
is recorded in the database (pending rows, a run's cursor), so a task that is lost altogether is
redone by the reconciler (loop.reconciler) instead.
"""

from __future__ import annotations

from celery import shared_task

from leadportal import logs
from leadportal.celery import send, transient_retry

from . import selectors, services
from .models import RescoreRun

RETRY = transient_retry(backoff_max=60)


@shared_task(name="scoring.tasks.rescore_leads", acks_late=True, **RETRY)
def rescore_leads_task(lead_ids: list[int]) -> int:
    """Rescore leads after their events or profile changed (these, and others waiting: see
    services.rescore_pending)."""
    if len(lead_ids) == 1:  # a batch's ids would only lengthen every line
        logs.bind(lead_id=lead_ids[0])
    return len(services.rescore_pending(lead_ids=lead_ids))


@shared_task(name="scoring.tasks.rescore_run_step", acks_late=True, **RETRY)
def rescore_run_step_task(run_id: int, cursor: int | None = None) -> None:
    """One batch of a full rescoring; queues the next until the run is done."""
    moved_to = services.rescore_run_step(run_id=run_id, cursor=cursor)
    if moved_to is not None:
        send(rescore_run_step_task, run_id, moved_to)


@shared_task(name="scoring.tasks.decay_all", expires=3600)
def decay_all_task() -> int | None:
    """Daily: rescore every lead with the active model, so silence lowers engagement."""
    model = selectors.active_model()
    if model is None or RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING).exists():
        return None
    return services.rescore_run_start(model=model, kind=RescoreRun.Kind.DECAY).pk
