"""The outbox: an event and its deliveries, written in the transaction that made the change.

`record` is the one way in (routing and partners call it where assignments are created and accepted
and feedback is stored; `webhooks.receivers` calls it for what `leads` announces inside its
transactions). It writes the WebhookEvent and one WebhookDelivery per active subscription that
wants the type and whose filter matches the lead, in the caller's transaction, and rings the broker
only after the commit (`leadportal.celery.enqueue`): a rollback leaves no event, a broker outage
leaves pending deliveries that the beat job (`webhooks.tasks.send_due_task`) sends.

Nobody wanting the type costs no query (the subscriptions are cached per process: webhooks.caches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadportal.celery import enqueue
from leads.conditions import LEAD_FIELDS, evaluate
from leads.models import Lead

from . import caches
from .models import EventType, WebhookDelivery, WebhookEvent

# Deliveries per task message: a task sends them one after the other (each with its own claim).
TASK_CHUNK = 20

# What a payload says of the lead: who, where it stands, who holds it. Erasure replaces it.
LEAD_DATA_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "company_domain",
    "job_title",
    "industry",
    "company_size",
    "country",
    "language",
    "product_interest",
    "source",
    "campaign",
    "consent_status",
    "stage",
    "score",
    "fit_score",
    "engagement_score",
    "grade",
)

ERASED = {"erased": True}


def wants(*types: str) -> bool:
    """Does any active subscription want one of these types? No query once the cache holds them."""
    wanted = caches.active().types
    return any(t in wanted for t in types)


def lead_data(lead: Lead) -> dict[str, Any]:
    """The lead as a payload shows it (JSON types only)."""
    data: dict[str, Any] = {"id": lead.pk}
    for field in LEAD_DATA_FIELDS:
        value = getattr(lead, field)
        data[field] = (
            float(value) if field in ("score", "fit_score", "engagement_score") and value is not None else value
        )
    data["country"] = str(lead.country or "")
    data["owner_id"] = lead.owner_id
    data["partner_id"] = lead.partner_id
    data["deal_value"] = str(lead.deal_value) if lead.deal_value is not None else None
    data["deal_currency"] = lead.deal_currency
    data["lost_reason"] = lead.lost_reason
    data["created_at"] = lead.created_at.isoformat() if lead.created_at else None
    data["updated_at"] = lead.updated_at.isoformat() if lead.updated_at else None
    return data


def _facts(lead: Lead) -> dict[str, Any]:
    facts = {field: getattr(lead, field) for field in LEAD_FIELDS}
    facts["country"] = str(lead.country or "")
    return facts


def record(type: str, lead: Lead | int, data: Mapping[str, Any] | None = None) -> WebhookEvent | None:
    """Record one event about `lead` (the instance as the change left it, or its id) for every
    subscription that wants it; None when none does. `data` is added to the payload beside "lead"."""
    events = record_many(type, [(lead, data or {})])
    return events[0] if events else None


def record_many(type: str, items: Sequence[tuple[Lead | int, Mapping[str, Any]]]) -> list[WebhookEvent]:
    """`record` for several leads at once (a routing batch): a few statements for all of them."""
    if type not in EventType.values:
        raise ValueError(f"{type!r} is not a webhook event type.")
    wanted = caches.active().wanting(type)
    if not wanted or not items:
        return []
    leads = _leads([lead for lead, _ in items])
    now = timezone.now()
    events: list[WebhookEvent] = []
    deliveries: list[WebhookDelivery] = []
    for lead_or_id, data in items:
        lead = leads.get(lead_or_id if isinstance(lead_or_id, int) else lead_or_id.pk)
        if lead is None:
            continue
        facts = _facts(lead)
        matching = [w.id for w in wanted if all(evaluate(c, facts) for c in w.conditions)]
        if not matching:
            continue
        event = WebhookEvent(type=type, lead_id=lead.pk, payload={"lead": lead_data(lead), **data})
        events.append(event)
        deliveries += [WebhookDelivery(subscription_id=s, event=event, next_attempt_at=now) for s in matching]
    return _write(events, deliveries)


def record_erased(*, lead_id: int) -> WebhookEvent | None:
    """`lead.erased`: every earlier event of the lead is scrubbed to {"lead": {"id", "erased"}} (this
    app's copies of its personal data), and the erasure is sent to every subscription that wants it
    and either has no filter or was sent something about this lead (the lead's data can no longer be
    matched, and those are the receivers holding a copy)."""
    scrubbed = {"lead": {"id": lead_id, **ERASED}}
    WebhookEvent.objects.filter(lead_id=lead_id).update(payload=scrubbed)
    wanted = caches.active().wanting(EventType.LEAD_ERASED)
    if not wanted:
        return None
    unfiltered = {w.id for w in wanted if not w.conditions}
    filtered = {w.id for w in wanted if w.conditions}
    if filtered:
        unfiltered |= set(
            WebhookDelivery.objects.filter(event__lead_id=lead_id, subscription_id__in=filtered)
            .values_list("subscription_id", flat=True)
            .distinct()
        )
    if not unfiltered:
        return None
    now = timezone.now()
    event = WebhookEvent(type=EventType.LEAD_ERASED, lead_id=lead_id, payload=scrubbed)
    deliveries = [WebhookDelivery(subscription_id=s, event=event, next_attempt_at=now) for s in sorted(unfiltered)]
    return _write([event], deliveries)[0]


def _leads(leads: list[Lead | int]) -> dict[int, Lead]:
    found = {lead.pk: lead for lead in leads if isinstance(lead, Lead)}
    missing = [lead for lead in leads if isinstance(lead, int) and lead not in found]
    if missing:
        found.update(Lead.objects.in_bulk(missing))
    return found


def _write(events: list[WebhookEvent], deliveries: list[WebhookDelivery]) -> list[WebhookEvent]:
    if not events:
        return []
    with transaction.atomic(savepoint=False):  # the caller's transaction (no savepoint), or one of its own
        WebhookEvent.objects.bulk_create(events)
        created = WebhookDelivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in created]
    from .tasks import deliver_task

    for start in range(0, len(ids), TASK_CHUNK):
        enqueue(deliver_task, ids[start : start + TASK_CHUNK])
    return events
