"""E-mail: every message is a set of templates, rendered here and sent by one task.

A message called `<name>` is three templates in `templates/emails/`: `<name>.subject.txt` (one line),
`<name>.txt` (the plain-text body) and `<name>.html` (the same words as HTML, extending
`emails/base.html`: inline CSS only, nothing loaded from elsewhere). `render` fills them; `emails_queue`
queues each e-mail as its own `leads.tasks.send_email_task` once the transaction commits, and that
task retries SMTP and connection errors with backoff. One e-mail per task, so a retry re-sends only
the e-mail that failed, never the ones that already went out.

An app that records "this was e-mailed" (routing's `Assignment.notified_at`) registers a hook with
`on_sent`; the task calls it only after the mail server took the e-mail, so the record is never set for
an e-mail that was not sent (the reconciler sends what is still unrecorded).

Dates and times are shown in the team's time zone, and say so: "14:30 (Berlin time), 2 Dec".
Links are absolute, from `settings.PORTAL_BASE_URL`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from leadportal.celery import send

log = logging.getLogger(__name__)

# The team works from Berlin; no user or lead carries a time zone of its own.
TEAM_TIME_ZONE = ZoneInfo("Europe/Berlin")
TEAM_TIME_ZONE_NAME = "Berlin time"


@dataclass(frozen=True)
class Email:
    """One rendered e-mail to one recipient (a pool's reps do not see each other's addresses)."""

    to: str
    subject: str
    text: str
    html: str
    # What it is, for its sender's key (e.g. "lead_assigned"); and the key itself: an e-mail with a key
    # goes out once, however often it is queued (leads.models.SentEmail).
    name: str = ""
    key: str = ""
    # Extra headers, e.g. List-Unsubscribe on the e-mails a lead gets (leads.consent).
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def message(self, connection: BaseEmailBackend | None = None) -> EmailMultiAlternatives:
        message = EmailMultiAlternatives(
            self.subject,
            self.text,
            settings.DEFAULT_FROM_EMAIL,
            [self.to],
            connection=connection,
            headers=dict(self.headers) or None,
        )
        message.attach_alternative(self.html, "text/html")
        return message


def render(name: str, context: dict[str, object], *, to: str) -> Email:
    """The e-mail `name` for `to`, its dates in the team's time zone."""
    context = {"portal_url": portal_url(), "time_zone_name": TEAM_TIME_ZONE_NAME, **context}
    with timezone.override(TEAM_TIME_ZONE):
        subject = render_to_string(f"emails/{name}.subject.txt", context)
        text = render_to_string(f"emails/{name}.txt", context)
        html = render_to_string(f"emails/{name}.html", context)
    # A header is one line: a company name with a line break in it must not start another header.
    return Email(to=to, subject=" ".join(subject.split()), text=text.strip() + "\n", html=html, name=name)


def portal_url() -> str:
    return settings.PORTAL_BASE_URL.rstrip("/")


def link(viewname: str, *args: object) -> str:
    """The absolute URL of a page of the portal, for an e-mail."""
    return portal_url() + reverse(viewname, args=args)


def when(moment: datetime) -> str:
    """A moment as a person reads it, with the zone said: "14:30 (Berlin time), 2 Dec"."""
    local = timezone.localtime(moment, TEAM_TIME_ZONE)
    return f"{local:%H:%M} ({TEAM_TIME_ZONE_NAME}), {local.day} {local:%b}"


def day(moment: datetime) -> str:
    """The day of a moment in the team's time zone: "2 Dec 2026"."""
    local = timezone.localtime(moment, TEAM_TIME_ZONE)
    return f"{local.day} {local:%b %Y}"


# --- sending ----------------------------------------------------------------------------------------

# The sending task's retries (leads.tasks): after 1, 2, 4 … seconds, at most RETRY_BACKOFF_MAX apart.
MAX_RETRIES = 8
RETRY_BACKOFF_MAX = 300
# How long a queued e-mail may still be trying (about 5 minutes).
RETRYING_FOR = timedelta(seconds=sum(min(2**n, RETRY_BACKOFF_MAX) for n in range(MAX_RETRIES)) + 60)

SentHook = Callable[[int], None]
_sent_hooks: dict[str, SentHook] = {}


def on_sent(name: str, hook: SentHook) -> None:
    """Register `hook(pk)`, called by the sending task after the mail server took an e-mail queued with
    `sent=(name, pk)`. Apps register from `AppConfig.ready()` (so a worker knows them before its first
    task). The hook must be safe to call twice (a pool's e-mails share one record)."""
    _sent_hooks[name] = hook


def emails_queue(
    emails: Iterable[Email],
    *,
    sent: tuple[str, int] | None = None,
    refused: Callable[[], None] | None = None,
) -> int:
    """Queue each e-mail for `send_email_task` once the transaction commits (at once outside one).
    Returns the number queued; with the broker down they are not, and whoever records the work
    durably (routing's `notified_at`) sends them later. `refused()` runs once if the broker took
    none of them, so that record can say at once that nothing is on its way (and the reconciler's
    next run queues them again, instead of waiting for retries that never started)."""
    from .tasks import send_email_task

    if sent is not None and sent[0] not in _sent_hooks:
        raise LookupError(f"No e-mail hook registered as {sent[0]!r}")
    payloads = [(email.as_dict(), list(sent) if sent else None) for email in emails]

    def ring() -> None:
        taken = [send(send_email_task, *payload) for payload in payloads]
        if refused is not None and payloads and not any(taken):
            refused()

    transaction.on_commit(ring)
    return len(payloads)


# Keys are needed while a copy of their e-mail may still be queued: routing asks again for at most a
# day (routing.drift.NOTIFY_WINDOW), and a week leaves room for a long outage.
SENT_KEYS_KEPT = timedelta(days=7)


def sent_keys_prune(now: datetime | None = None) -> int:
    """Forget the keys of e-mails sent longer ago than SENT_KEYS_KEPT; returns how many."""
    from .models import SentEmail

    cutoff = (now or timezone.now()) - SENT_KEYS_KEPT
    deleted, _ = SentEmail.objects.filter(sent_at__lt=cutoff).delete()
    return deleted


def _stored_key(key: str) -> str:
    """The key as stored: itself, or its SHA-256 where it is longer than the column."""
    return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def email_send(email: Email, *, sent: tuple[str, int] | None = None) -> None:
    """Hand `email` to the mail server (errors propagate: the task retries them), then run the
    `sent` hook. Used by `send_email_task`; call the task, not this, from services."""
    from .models import SentEmail

    hook = _sent_hooks[sent[0]] if sent else None  # an unknown hook fails before anything is sent
    key = _stored_key(email.key)
    if not (key and SentEmail.objects.filter(key=key).exists()):
        with get_connection(fail_silently=False) as connection:
            email.message(connection).send()
        if key:
            # Between the send and this row, a crash sends it again: at least once, never lost.
            SentEmail.objects.get_or_create(key=key)
    if hook is not None and sent is not None:
        hook(sent[1])
