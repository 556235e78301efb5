"""Every write of the webhooks app: subscriptions (create, update, delete, resume), deliveries
(send, replay). One transaction each; the HTTP call of a delivery runs outside any transaction.

How a delivery goes out: it is *claimed* (its row locked with SKIP LOCKED, `claimed_until` set for
`CLAIM_SECONDS`) in a short transaction, POSTed with no transaction open, and its outcome recorded
in another. Two workers never send one delivery at once; a worker killed between claim and record
leaves a claim that runs out, and the delivery is sent again (at least once: receivers deduplicate
by event id). 2xx is delivered. A failure is retried with exponential backoff (30 s doubling, at
most an hour apart, ±10 % jitter) until `WEBHOOK_RETRY_FOR_HOURS` after the first attempt, then the
delivery has failed. `WEBHOOK_PAUSE_AFTER` failed attempts in a row, or a delivery giving up, pause
the subscription: its deliveries wait until it is resumed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from leadportal.celery import enqueue
from leads.conditions import ConditionError, lead_condition
from leads.errors import Invalid
from leads.models import User

from . import guard, transport
from .models import EventType, WebhookDelivery, WebhookEvent, WebhookFilterCondition, WebhookSubscription
from .outbox import TASK_CHUNK
from .tasks import deliver_task

log = logging.getLogger(__name__)

# A claim covers one POST (connect + read timeouts) with room to record it.
CLAIM_SECONDS = 60
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 3600.0
JITTER = 0.1
# Due deliveries the beat job hands to workers per run.
DUE_BATCH = 200

D = WebhookDelivery.Status


class WebhookInvalid(Invalid):
    """A subscription a person or client asked for that does not make sense: 400, field by field."""


# --- subscriptions -----------------------------------------------------------------------------------


def subscription_errors(*, name: str | None, url: str | None, events: Sequence[str] | None, filter: Any) -> dict:
    """What is wrong with these values (only those given, not None), by field."""
    errors: dict[str, str] = {}
    if name is not None and not name.strip():
        errors["name"] = "Give the subscription a name."
    if url is not None:
        try:
            guard.check_url(url)
        except guard.Refused as refused:
            errors["url"] = str(refused)
    if events is not None:
        if not isinstance(events, list | tuple) or not events:
            errors["events"] = f"Name at least one event type: {', '.join(EventType.values)}."
        elif unknown := sorted({str(e) for e in events} - set(EventType.values)):
            errors["events"] = f"Unknown event type(s): {', '.join(unknown)}; use {', '.join(EventType.values)}."
    if filter is not None:
        try:
            filter_parse(filter)
        except ConditionError as exc:
            errors["filter"] = str(exc)
    return errors


def filter_parse(filter: Any) -> list[tuple[str, str, str]]:
    """A filter as the API sends it — a list of {"field", "operator", "value"}, all must hold — as
    (field, operator, value-as-text) rows, each checked like a routing or scoring rule's condition."""
    if not isinstance(filter, list):
        raise ConditionError('A filter is a list of conditions: [{"field": …, "operator": …, "value": …}].')
    rows = []
    for number, item in enumerate(filter, start=1):
        if not isinstance(item, Mapping) or set(item) - {"field", "operator", "value"} or "field" not in item:
            raise ConditionError(f'Condition {number}: give "field", "operator" and "value".')
        field, op, value = item.get("field"), item.get("operator", ""), item.get("value", "")
        if not isinstance(field, str) or not isinstance(op, str):
            raise ConditionError(f"Condition {number}: field and operator are names.")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif not isinstance(value, str | int | float):
            raise ConditionError(f"Condition {number}: the value is text, a number or a list.")
        value = str(value)
        if len(value) > 1000:
            raise ConditionError(f"Condition {number}: the value has at most 1000 characters.")
        try:
            lead_condition(field, op, value)
        except ConditionError as exc:
            raise ConditionError(f"Condition {number}: {exc}") from None
        rows.append((field, op, value))
    return rows


def _check(errors: dict) -> None:
    if errors:
        raise WebhookInvalid(errors)


def subscription_create(
    *,
    name: str,
    url: str,
    events: Sequence[str],
    filter: Sequence[Mapping[str, Any]] | None = None,
    secret: str = "",
    active: bool = True,
    actor: User | None = None,
) -> WebhookSubscription:
    """A new subscription; its secret is generated unless given (and shown once, by the caller).
    The URL's host is resolved and checked before the transaction opens (no DNS inside one)."""
    _check(subscription_errors(name=name, url=url, events=events, filter=list(filter or [])))
    with transaction.atomic():
        subscription = WebhookSubscription(
            name=name.strip(), url=url, events=_ordered(events), active=active, created_by=actor
        )
        if secret:
            subscription.secret = secret
        subscription.save()
        _set_filter(subscription, list(filter or []))
    return subscription


def subscription_update(
    *,
    subscription: WebhookSubscription,
    name: str | None = None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    filter: Sequence[Mapping[str, Any]] | None = None,
    secret: str | None = None,
    active: bool | None = None,
) -> WebhookSubscription:
    """Change what is given (None: unchanged); a new URL is checked again (before the transaction)."""
    _check(subscription_errors(name=name, url=url, events=events, filter=None if filter is None else list(filter)))
    with transaction.atomic():
        return _update(subscription, name, url, events, filter, secret, active)


def _update(
    subscription: WebhookSubscription,
    name: str | None,
    url: str | None,
    events: Sequence[str] | None,
    filter: Sequence[Mapping[str, Any]] | None,
    secret: str | None,
    active: bool | None,
) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    if name is not None:
        subscription.name = name.strip()
    if url is not None:
        subscription.url = url
    if events is not None:
        subscription.events = _ordered(events)
    if secret:
        subscription.secret = secret
    if active is not None:
        subscription.active = active
    subscription.save()
    if filter is not None:
        _set_filter(subscription, list(filter))
    return subscription


def _ordered(events: Sequence[str]) -> list[str]:
    return [t for t in EventType.values if t in set(events)]


def _set_filter(subscription: WebhookSubscription, filter: list) -> None:
    subscription.conditions.all().delete()
    WebhookFilterCondition.objects.bulk_create(
        WebhookFilterCondition(subscription=subscription, field=f, operator=o, value=v)
        for f, o, v in filter_parse(filter)
    )
    subscription.save(update_fields=["updated_at"])  # bulk_create sends no post_save: the cache is told here


@transaction.atomic
def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Gone with its deliveries (the events stay, for the other subscriptions and erasure)."""
    subscription.delete()


@transaction.atomic
def subscription_resume(*, subscription: WebhookSubscription, actor: User | None = None) -> WebhookSubscription:
    """Lift a pause: the failures in a row start from 0, and the deliveries that waited are due now,
    each with a fresh retry window; they are queued after the commit."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    now = timezone.now()
    subscription.paused_at = None
    subscription.paused_reason = ""
    subscription.consecutive_failures = 0
    subscription.save(update_fields=["paused_at", "paused_reason", "consecutive_failures", "updated_at"])
    waiting = WebhookDelivery.objects.filter(subscription=subscription, status=D.PENDING)
    waiting.update(next_attempt_at=now, first_attempt_at=None, attempts=0, claimed_until=None)
    _ring(list(waiting.order_by("pk").values_list("pk", flat=True)))
    return subscription


# --- deliveries --------------------------------------------------------------------------------------


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery, actor: User | None = None) -> WebhookDelivery:
    """Send a delivery again (the same event id): pending, due now, a fresh retry window."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status = D.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.first_attempt_at = None
    delivery.attempts = 0
    delivery.claimed_until = None
    delivery.delivered_at = None
    delivery.save(
        update_fields=["status", "next_attempt_at", "first_attempt_at", "attempts", "claimed_until", "delivered_at"]
    )
    _ring([delivery.pk])
    return delivery


def _ring(ids: list[int]) -> None:
    for start in range(0, len(ids), TASK_CHUNK):
        enqueue(deliver_task, ids[start : start + TASK_CHUNK])


def _due(now: datetime) -> Q:
    return Q(
        status=D.PENDING,
        next_attempt_at__lte=now,
        subscription__active=True,
        subscription__paused_at__isnull=True,
    ) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def delivery_claim(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """Take one due delivery for this worker (None: not due, delivered, paused, or another worker
    holds it). One short transaction; the row lock is skipped, not waited for."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "subscription")
            .filter(_due(now), pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        delivery.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
        delivery.save(update_fields=["claimed_until"])
    return delivery


def deliveries_send(*, delivery_ids: Sequence[int]) -> dict[str, int]:
    """Send each of these deliveries that is due, one after the other (claim, POST, record); what
    another worker holds or what is not due is skipped. Returns counts by outcome."""
    counts = {"delivered": 0, "failed": 0, "skipped": 0}
    for delivery_id in delivery_ids:
        delivery = delivery_claim(delivery_id=delivery_id)
        if delivery is None:
            counts["skipped"] += 1
            continue
        outcome = _post(delivery)
        delivery_record(delivery=delivery, outcome=outcome)
        counts["delivered" if outcome.delivered else "failed"] += 1
    return counts


def _post(delivery: WebhookDelivery) -> transport.Outcome:
    event, subscription = delivery.event, delivery.subscription
    sent_at = timezone.now().replace(microsecond=0)  # the timestamp header has whole seconds
    body = transport.body_of(
        event_id=str(event.pk), type=event.type, created_at=event.created_at, sent_at=sent_at, data=event.payload
    )
    headers = transport.headers_for(
        event_id=str(event.pk), type=event.type, sent_at=sent_at, secret=subscription.secret, body=body
    )
    return transport.post(url=subscription.url, body=body, headers=headers)


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: 30 s doubling, at most an hour,
    with ±10 % jitter so that a receiver coming back is not hit by every delivery at once."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    return base * (1 + random.uniform(-JITTER, JITTER))


@transaction.atomic
def delivery_record(*, delivery: WebhookDelivery, outcome: transport.Outcome, now: datetime | None = None) -> None:
    """Store one attempt's outcome (the claim is released), and the subscription's run of failures:
    reset by a success; WEBHOOK_PAUSE_AFTER in a row, or a delivery giving up, pause it."""
    now = now or timezone.now()
    first = delivery.first_attempt_at or now
    fields: dict[str, Any] = {
        "attempts": F("attempts") + 1,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "claimed_until": None,
        "response_code": outcome.response_code,
        "last_error": outcome.error,
    }
    subscriptions = WebhookSubscription.objects.filter(pk=delivery.subscription_id)
    if outcome.delivered:
        fields |= {"status": D.DELIVERED, "delivered_at": now, "next_attempt_at": None}
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        subscriptions.exclude(consecutive_failures=0).update(consecutive_failures=0)
        return
    attempts = delivery.attempts + 1
    gave_up = now - first >= timedelta(hours=settings.WEBHOOK_RETRY_FOR_HOURS)
    if gave_up:
        fields |= {"status": D.FAILED, "next_attempt_at": None}
    else:
        fields["next_attempt_at"] = now + timedelta(seconds=backoff(attempts))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    subscriptions.update(consecutive_failures=F("consecutive_failures") + 1)
    failures = subscriptions.values_list("consecutive_failures", flat=True).first() or 0
    url = delivery.subscription.url
    if gave_up:
        hours = settings.WEBHOOK_RETRY_FOR_HOURS
        reason = f"Paused: a delivery gave up after {hours:g} h of failed attempts; last: {outcome.error}"
    elif failures >= settings.WEBHOOK_PAUSE_AFTER:
        reason = f"Paused after {failures} failed attempts in a row; last: {outcome.error}"
    else:
        return
    paused = subscriptions.filter(paused_at__isnull=True).update(paused_at=now, paused_reason=reason[:500])
    if paused:
        log.warning("Webhook subscription %s (%s) paused: %s", delivery.subscription_id, url, reason)


def due_delivery_ids(*, limit: int = DUE_BATCH, now: datetime | None = None) -> list[int]:
    """Due deliveries (pending, due, unclaimed, subscription active and not paused), oldest due
    first, at most `limit`: what the beat job hands to workers, including those whose bell was lost."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(_due(now)).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]
    )


def deliveries_due_queue(*, limit: int = DUE_BATCH) -> int:
    """Queue the due deliveries for the workers, in chunks; returns how many."""
    ids = due_delivery_ids(limit=limit)
    _ring(ids)
    return len(ids)


PRUNE_BATCH = 10_000


def events_prune(*, now: datetime | None = None) -> int:
    """Delete events (with their deliveries) older than WEBHOOK_KEEP_DAYS that have nothing left to
    send: the delivery log is for looking back a while, not an archive of personal data. In
    batches of PRUNE_BATCH, one transaction each; returns how many events went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    pruned = 0
    while True:
        with transaction.atomic():
            ids = list(
                WebhookEvent.objects.filter(created_at__lt=cutoff)
                .exclude(deliveries__status=D.PENDING)
                .values_list("pk", flat=True)[:PRUNE_BATCH]
            )
            if not ids:
                return pruned
            WebhookDelivery.objects.filter(event_id__in=ids).delete()
            WebhookEvent.objects.filter(pk__in=ids).delete()
        pruned += len(ids)


PING = "webhook.ping"


def subscription_ping(*, subscription: WebhookSubscription) -> transport.Outcome:
    """Send a signed test event (`webhook.ping`, a fresh id, `data` {"subscription": id}) at once and
    say what the receiver answered. Nothing is recorded or retried; no transaction is open while it
    waits (at most the WEBHOOK_TIMEOUT)."""
    import uuid

    now = timezone.now().replace(microsecond=0)
    event_id = str(uuid.uuid4())
    body = transport.body_of(
        event_id=event_id, type=PING, created_at=now, sent_at=now, data={"subscription": subscription.pk}
    )
    headers = transport.headers_for(event_id=event_id, type=PING, sent_at=now, secret=subscription.secret, body=body)
    return transport.post(url=subscription.url, body=body, headers=headers)
