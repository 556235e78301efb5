"""Thin Celery tasks of `leads`: the one task that sends e-mail (every app's messages)."""

from __future__ import annotations

from smtplib import SMTPException
from typing import Any

from celery import shared_task

from .mail import MAX_RETRIES, RETRY_BACKOFF_MAX

# The mail server refused for now or could not be reached: worth trying again. SMTPException and
# ConnectionError are OSErrors; they are named for the reader. A template error is a bug: no retry.
MAIL_ERRORS = (SMTPException, ConnectionError, OSError)


@shared_task(
    name="leads.tasks.send_email",
    acks_late=True,
    autoretry_for=MAIL_ERRORS,
    retry_backoff=True,  # 1, 2, 4 … seconds, with jitter
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=MAX_RETRIES,  # about 4 minutes of trying (mail.RETRYING_FOR), then the worker logs the failure
)
def send_email_task(email: dict[str, Any], sent: list | None = None) -> None:
    """Send one rendered e-mail (`leads.mail.Email.as_dict()`); then call its `sent` hook, if any.
    One e-mail per task: a retry sends only this one again, never an e-mail that already went out."""
    from . import mail

    mail.email_send(mail.Email(**email), sent=(sent[0], sent[1]) if sent else None)


@shared_task(name="leads.tasks.prune_sent_emails", ignore_result=True)
def prune_sent_emails_task() -> int:
    """Daily: the sent-e-mail keys older than a week go (leads.mail.SENT_KEYS_KEPT)."""
    from . import mail

    return mail.sent_keys_prune()
