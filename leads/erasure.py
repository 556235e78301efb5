"""Data subject requests (GDPR Art. 15 and 17): everything the portal holds about a person, and
erasing it.

`lead_export` gathers the lead's profile, consent, activities, stage history and BANT, and asks the
other apps for what they hold (routing: assignments; partners: feedback) through
`signals.personal_data_requested` — `leads` never imports them.

`lead_erase` anonymises the person in one transaction and keeps the lead row for the reports'
anonymous counts (stage, score, company, country, source, dates, deal value):

- the e-mail becomes `erased-<id>@erased.invalid`; names, phone, job title, custom attributes go;
- every activity keeps its type and time but only the properties in KEPT_PROPERTIES (what scoring
  and the reports read: page, asset, campaign …; a URL loses its query string), so free text — notes,
  call summaries, form answers, reasons — goes; stage-change reasons and BANT notes go too;
- consent becomes `withdrawn`, the lead is suppressed for marketing, and a lead that marketing or
  sales had not yet taken (new, MAL, MQL) is disqualified, so it is never scored into a rep's queue;
- the admin's change log names it "Erased person #<id>";
- `signals.lead_erased_in_transaction` lets the apps that keep copies scrub them in the same
  transaction (routing: assignment notes; partners: feedback notes; webhooks: earlier payloads, and
  the `lead.erased` event);
- the SHA-256 of the address goes to `ErasedEmail`: a capture, an event or an import of it is refused
  until the person opts in again (a capture with `double_opt_in`; its confirmation deletes the row).

Who erased it and when is on the lead (`erased_at`, `erased_by`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from . import signals
from .errors import Refused
from .models import Activity, ConsentStatus, ErasedEmail, Lead, Qualification, SentEmail, Stage, StageChange, User

ERASED_DOMAIN = "erased.invalid"  # .invalid never resolves (RFC 2606): no mail can reach it
ERASED_REASON = "Erased at the person's request"
BLOCKED_MESSAGE = (
    "This person's data was erased at their request. They can be captured again only with their new consent: "
    'send "double_opt_in": true.'
)

# Activity properties that say what happened, not who: kept by an erasure (scoring rules and reports
# read them). Everything else — free text, form answers, anything an integration sent — goes.
KEPT_PROPERTIES = frozenset(
    {
        "url",
        "page",
        "asset",
        "campaign",
        "form",
        "webinar",
        "channel",
        "created",
        "fields",
        "touch",
        "from",
        "to",
        "consent",
        "consent_source",
        "partner",
        "status",
        "outcome",
        "lost_reason",
    }
)
# Stages an erasure takes the lead out of: nobody in sales works it yet, so it must not get there.
UNTAKEN_STAGES = frozenset({Stage.NEW, Stage.MAL, Stage.MQL})

# Everything the lead row holds about the person, read from the model so a field added later is in
# the export too; only bookkeeping is left out (owner and partner are named by lead_export itself).
_NOT_EXPORTED = frozenset({"score_rev", "scored_rev", "owner", "partner", "erased_by"})
_LEAD_FIELDS = tuple(f.name for f in Lead._meta.concrete_fields if f.name not in _NOT_EXPORTED)


def email_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def blocked_emails(emails: Iterable[str]) -> set[str]:
    """Of these e-mail addresses (normalised), those whose person was erased and has not opted in again."""
    by_digest = {email_digest(email): email.strip().lower() for email in emails}
    if not by_digest:
        return set()
    found = ErasedEmail.objects.filter(digest__in=list(by_digest)).values_list("digest", flat=True)
    return {by_digest[digest] for digest in found}


def unblock(email: str) -> None:
    """The person opted in again (a confirmed double opt-in): their address may be captured again."""
    ErasedEmail.objects.filter(digest=email_digest(email)).delete()


def _value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool, dict, list)):
        return str(value)  # Decimal, Country
    return value


def lead_export(lead: Lead) -> dict[str, Any]:
    """Everything the portal holds about the lead's person, as JSON-ready data."""
    profile = {field: _value(getattr(lead, field)) for field in _LEAD_FIELDS}
    profile["owner"] = lead.owner.get_username() if lead.owner_id and lead.owner else None
    profile["partner"] = lead.partner.name if lead.partner_id and lead.partner else None
    data: dict[str, Any] = {
        "exported_at": timezone.now().isoformat(),
        "lead": profile,
        "activities": [
            {
                "type": a.type,
                "occurred_at": a.occurred_at.isoformat(),
                "source": a.source,
                "properties": a.properties,
                "recorded_by": a.created_by.get_username() if a.created_by else None,
            }
            for a in lead.activities.select_related("created_by").order_by("occurred_at", "id")
        ],
        "stage_history": [
            {
                "from": change.from_stage,
                "to": change.to_stage,
                "at": change.at.isoformat(),
                "reason": change.reason,
                "by": change.actor.get_username() if change.actor else None,
            }
            for change in lead.stage_changes.select_related("actor").order_by("at", "id")
        ],
        "qualification": _qualification(lead),
    }
    for _receiver, sections in signals.personal_data_requested.send(sender="leads", lead=lead):
        if isinstance(sections, dict):
            data.update(sections)
    return data


def _qualification(lead: Lead) -> dict[str, Any] | None:
    q = Qualification.objects.filter(lead=lead).first()
    if q is None:
        return None
    return {
        criterion: {"confirmed": getattr(q, criterion), "note": getattr(q, f"{criterion}_note")}
        for criterion in Qualification.CRITERIA
    } | {"updated_at": q.updated_at.isoformat()}


def kept_properties(properties: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in properties.items() if key in KEPT_PROPERTIES}
    if isinstance(kept.get("url"), str):
        parts = urlsplit(kept["url"])
        kept["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return kept


@transaction.atomic
def lead_erase(*, lead: Lead, actor: User | None) -> Lead:
    """Anonymise the lead's person (see the module's docstring); Refused if it was erased already."""
    from .services import lead_transition  # services imports this module (the capture's block)

    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.erased_at is not None:
        raise Refused(f"This person's data was erased already, on {lead.erased_at:%Y-%m-%d %H:%M} UTC.")
    email, now = lead.email, timezone.now()

    changed = []
    for activity in Activity.objects.filter(lead=lead).only("id", "properties"):
        kept = kept_properties(activity.properties)
        if kept != activity.properties:
            activity.properties = kept
            changed.append(activity)
    Activity.objects.bulk_update(changed, ["properties"], batch_size=500)
    StageChange.objects.filter(lead=lead).exclude(reason="").update(reason="")
    Qualification.objects.filter(lead=lead).update(budget_note="", authority_note="", need_note="", timing_note="")
    if lead.stage in UNTAKEN_STAGES:
        lead = lead_transition(lead=lead, to_stage=Stage.DISQUALIFIED, reason=ERASED_REASON, actor=actor)

    Lead.objects.filter(pk=lead.pk).update(
        email=f"erased-{lead.pk}@{ERASED_DOMAIN}",
        first_name="",
        last_name="",
        phone="",
        job_title="",
        attributes={},
        consent_status=ConsentStatus.WITHDRAWN,
        consent_at=now,
        marketing_suppressed=True,
        erased_at=now,
        erased_by=actor,
        updated_at=now,
    )
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Lead), object_id=str(lead.pk)).update(
        object_repr=f"Erased person #{lead.pk}"
    )
    SentEmail.objects.filter(key__contains=email).delete()
    ErasedEmail.objects.get_or_create(digest=email_digest(email))
    signals.lead_erased_in_transaction.send(
        sender="leads", lead_id=lead.pk, actor_id=actor.pk if actor else None, email=email
    )
    return Lead.objects.get(pk=lead.pk)
