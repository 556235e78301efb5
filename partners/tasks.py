"""Thin Celery tasks for the partner loop: safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="partners.tasks.chase_feedback", expires=3000)
def chase_feedback_task() -> dict[str, int]:
    """Hourly: remind partners whose feedback is due or overdue, take back leads past the escalation
    limit. Every step is recorded before its e-mail goes out, so a second run sends nothing twice."""
    return services.feedback_chase()
