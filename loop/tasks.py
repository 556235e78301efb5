"""The reconciler as a beat task (settings.CELERY_BEAT_SCHEDULE: every minute, and nightly in full)."""

from __future__ import annotations

from celery import shared_task

from . import reconciler


@shared_task(acks_late=True)
def reconcile_task(full: bool = False) -> dict[str, int] | None:
    run = reconciler.reconcile(full=full)
    return run.found if run else None
