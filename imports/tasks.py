"""Thin Celery tasks of the imports: take ids, call a service, safe to run twice."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from leadportal.celery import send, transient_retry

RETRY = transient_retry(backoff_max=60)
log = logging.getLogger("leadportal.imports")


@shared_task(name="imports.tasks.import_job_run", bind=True, acks_late=True, **RETRY)
def import_job_run_task(self: Task, job_id: int) -> int | None:
    """Import a job's rows from its cursor to the end (a batch per transaction). A second message
    for a job that a live run holds does nothing; a retry of this task (same id) goes on."""
    from leadportal.celery import TRANSIENT_ERRORS

    from . import services

    token = self.request.id or f"inline-{job_id}"
    try:
        job = services.import_job_run(job_id=job_id, token=token)
    except TRANSIENT_ERRORS:
        raise  # retried with backoff; the cursor says where to go on
    except Exception as exc:
        log.exception("import_failed", extra={"job_id": job_id})
        services.import_job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        return None
    return job.done_rows if job else None


@shared_task(name="imports.tasks.import_jobs_resume", expires=25)
def import_jobs_resume_task() -> int:
    """Beat (every 30 s): queue the imports whose worker died or whose message was lost; they go
    on from their cursor."""
    from . import services

    return sum(send(import_job_run_task, job_id) for job_id in services.import_jobs_stalled())
