"""In-app notifications: the dashboard's bell and its list (leads.models.Notification).

The apps that know what happened write them, in the transaction that made it happen: routing (a
lead handed to you, taken back from you, an SLA about to run out — its beat job), partners (feedback
overdue). They call `notify` here (they sit above leads; leads imports neither). Each notice carries
the event's `key`: the same event told twice (a job run again, a retried task) is one notice.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone

from .models import Lead, Notification, Role, User

Kind = Notification.Kind
LIST_LIMIT = 50


def notify(
    *, users: Iterable[User | int | None], kind: str, key: str, text: str, lead: Lead | None = None, url: str = ""
) -> int:
    """One notice per person for this event (`key`); those already told are skipped. Returns how
    many were offered. Meant to run inside the caller's transaction, so it is there iff the event is."""
    now = timezone.now()
    rows = [
        Notification(
            user_id=user if isinstance(user, int) else user.pk,
            kind=kind,
            key=key[:120],
            text=text[:500],
            lead=lead,
            url=url[:500],
            created_at=now,
        )
        for user in dict.fromkeys(users)
        if user is not None
    ]
    if not rows:
        return 0
    # ignore_conflicts: the unique (user, kind, key) turns a repeat into nothing, race-free.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


NOTIFIED_ROLES = frozenset({Role.SALES_REP, Role.SALES_MANAGER, Role.MARKETING, Role.PARTNER})


def has_notifications(user: User | None) -> bool:
    """Who has a bell: the people of the dashboard and the partner portal (not API clients)."""
    return user is not None and user.is_authenticated and user.is_active and user.role in NOTIFIED_ROLES


def unread_count(user: User) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def recent(user: User) -> QuerySet[Notification]:
    """The person's own notices, newest first (nobody else's, ever)."""
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the person's notices read (all of them, or those named); another's are untouched."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
