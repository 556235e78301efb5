"""The webhooks app's per-process cache (the kind and the registry: `leads.caches`).

The subscriptions as the outbox needs them — which event types anybody wants, and each active
subscription's types and filter — so that recording an event nobody wants costs no query: capture
(~200 requests/s) and the rest ask on every change. Emptied on any save or delete of a subscription
or its filter in this process; another process's change is seen after `WEBHOOK_CACHE_SECONDS` at most.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from leads.caches import ProcessCache, clear_on_change
from leads.conditions import Condition, ConditionError

from .models import WebhookFilterCondition, WebhookSubscription


@dataclass(frozen=True)
class Wanted:
    """An active subscription as the outbox matches it."""

    id: int
    events: frozenset[str]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Subscriptions:
    all: tuple[Wanted, ...]
    types: frozenset[str]  # every type at least one active subscription wants

    def wanting(self, type_: str) -> list[Wanted]:
        return [wanted for wanted in self.all if type_ in wanted.events] if type_ in self.types else []


subscriptions = ProcessCache("webhooks.subscriptions", max_entries=1, ttl=settings.WEBHOOK_CACHE_SECONDS)
clear_on_change(subscriptions, WebhookSubscription, WebhookFilterCondition)


def _load(_key: object) -> Subscriptions:
    rows = list(WebhookSubscription.objects.filter(active=True).prefetch_related("conditions"))
    found = []
    for row in rows:
        try:
            conditions = tuple(c.condition() for c in row.conditions.all())
        except ConditionError:
            continue  # refused on every door; a hand-edited row matches nothing rather than everything
        found.append(Wanted(row.pk, frozenset(row.events), conditions))
    return Subscriptions(tuple(found), frozenset(t for wanted in found for t in wanted.events))


def active() -> Subscriptions:
    """The active subscriptions, from the cache (one query for both tables when it is empty)."""
    return subscriptions.get("active", _load)


def clear() -> None:
    subscriptions.clear()
