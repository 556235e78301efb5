"""Consent: the double opt-in and its withdrawal, the one place that gives or takes it.

A lead's `consent_status` is `none`, `pending` (a confirmation e-mail is out), `confirmed` (the person
opened the link and confirmed) or `withdrawn`. Only `consent_confirm` — the person's own click on a
signed, unexpired link — makes it `confirmed`; a capture that merely says so is refused by the API
(leads.services.capture_consent). Withdrawal (an `unsubscribe` event, the unsubscribe link of any
e-mail, a capture or update with `withdrawn`) always wins and stays until a new confirmed opt-in.
Marketing reads `consent_status`: only `confirmed` may be marketed to. (`marketing_suppressed` is the
handover's — routing/handover.py — and says a salesperson or partner holds the lead; withdrawal does
not write it.)

Links are `django.core.signing` tokens of the lead, its e-mail and the moment they were issued,
salted per purpose so a confirmation token is no unsubscribe token. A confirmation link lasts
`CONSENT_LINK_MAX_AGE_DAYS` and does nothing once consent was withdrawn after it was issued; an
unsubscribe link never expires. Opening a link (GET) changes nothing — mail scanners prefetch links —
the page's button (POST) does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from . import erasure, mail
from .models import Activity, ActivityType, ConsentStatus, Lead, Stage

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
_SALT = "leads.consent."

# Where the lead's language is unknown: German for the German-speaking countries, else English.
GERMAN_COUNTRIES = {"DE", "AT", "CH", "LI"}


def max_age() -> timedelta:
    return timedelta(days=settings.CONSENT_LINK_MAX_AGE_DAYS)


def token_for(lead: Lead, purpose: str) -> str:
    """A signed token naming the lead, its e-mail and the moment it was issued."""
    return signing.dumps({"l": lead.pk, "e": lead.email, "t": time.time()}, salt=_SALT + purpose, compress=True)


def link_for(lead: Lead, purpose: str) -> str:
    return mail.link(f"consent-{purpose}", token_for(lead, purpose))


@dataclass(frozen=True)
class Reading:
    """What a link's token says: its lead (None if the link is tampered, expired or the lead is gone)
    and, if not, why."""

    lead: Lead | None
    problem: str = ""  # "invalid", "expired"
    issued_at: float = 0.0


def token_read(token: str, purpose: str) -> Reading:
    age = max_age() if purpose == CONFIRM else None
    try:
        data = signing.loads(token, salt=_SALT + purpose, max_age=age)
    except signing.SignatureExpired:
        return Reading(None, "expired")
    except signing.BadSignature:
        return Reading(None, "invalid")
    if not (isinstance(data, dict) and isinstance(data.get("l"), int) and isinstance(data.get("e"), str)):
        return Reading(None, "invalid")
    lead = Lead.objects.filter(pk=data["l"], email=data["e"]).first()
    if lead is None:
        return Reading(None, "invalid")
    return Reading(lead, issued_at=float(data.get("t") or 0))


def language_of(lead: Lead) -> str:
    """The confirmation e-mail's language: the lead's where known, else by its country."""
    if lead.language:
        return "de" if lead.language.lower().startswith("de") else "en"
    return "de" if str(lead.country) in GERMAN_COUNTRIES else "en"


def masked(email: str) -> str:
    """The e-mail as a public page shows it: "a***@acme.example"."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def consent_request(*, lead: Lead) -> bool:
    """Inside the capture's transaction: ask the lead to confirm (the e-mail goes out after the
    commit). `none` becomes `pending`; a withdrawn lead stays withdrawn until it confirms. A lead
    whose consent is confirmed already is sent nothing. Returns whether an e-mail was queued."""
    if lead.consent_status == ConsentStatus.CONFIRMED:
        return False
    if lead.consent_status == ConsentStatus.NONE:
        lead.consent_status, lead.consent_at = ConsentStatus.PENDING, timezone.now()
        lead.save(update_fields=["consent_status", "consent_at", "updated_at"])
    lang = language_of(lead)
    unsubscribe_url = link_for(lead, UNSUBSCRIBE)
    email = mail.render(
        f"consent_confirm_{lang}",
        {
            "name": lead.first_name,
            "url": link_for(lead, CONFIRM),
            "unsubscribe_url": unsubscribe_url,
            "days": settings.CONSENT_LINK_MAX_AGE_DAYS,
        },
        to=lead.email,
    )
    return mail.emails_queue([replace(email, headers=unsubscribe_headers(unsubscribe_url))]) == 1


def unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058: the mail client's own "Unsubscribe" button POSTs to the link
    (`List-Unsubscribe=One-Click`), which withdraws consent at once (leads.views.consent_page)."""
    return {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@transaction.atomic
def consent_confirm(*, token: str, source: str = "double opt-in link") -> tuple[str, Lead | None]:
    """The person confirmed through the link: consent `confirmed` now, recorded with its source on
    a `profile_update` activity, and a new lead becomes marketing's (new → mal). Returns (outcome,
    lead): "confirmed", "already" (nothing changed), "invalid", "expired" or "withdrawn" (consent was
    withdrawn after the link was issued: it changes nothing)."""
    from .services import lead_transition, score_inputs_changed

    reading = token_read(token, CONFIRM)
    if reading.lead is None:
        return reading.problem, None
    lead = Lead.objects.select_for_update().get(pk=reading.lead.pk)
    if lead.consent_status == ConsentStatus.CONFIRMED:
        return "already", lead
    if (
        lead.consent_status == ConsentStatus.WITHDRAWN
        and lead.consent_at is not None
        and reading.issued_at <= lead.consent_at.timestamp()
    ):
        return "withdrawn", lead
    now = timezone.now()
    lead.consent_status, lead.consent_at = ConsentStatus.CONFIRMED, now
    lead.save(update_fields=["consent_status", "consent_at", "updated_at"])
    _record(lead, now, source, ConsentStatus.CONFIRMED)
    score_inputs_changed([lead.pk])
    erasure.unblock(lead.email)  # an erased person who opted in again may be captured again
    if lead.stage == Stage.NEW:
        lead = lead_transition(lead=lead, to_stage=Stage.MAL, reason="Opt-in confirmed")
    return "confirmed", lead


def consent_withdraw(*, lead_ids: list[int], source: str) -> list[int]:
    """Inside the caller's transaction: withdraw these leads' consent (those not withdrawn already);
    return the ids changed. Marketing reads `withdrawn` as "do not contact"."""
    now = timezone.now()
    ids = list(
        Lead.objects.filter(pk__in=lead_ids)
        .exclude(consent_status=ConsentStatus.WITHDRAWN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if ids:
        Lead.objects.filter(pk__in=ids).update(consent_status=ConsentStatus.WITHDRAWN, consent_at=now, updated_at=now)
        for pk in ids:
            _record(Lead(pk=pk), now, source, ConsentStatus.WITHDRAWN)
        from .services import score_inputs_changed

        score_inputs_changed(ids)
    return ids


@transaction.atomic
def consent_unsubscribe(*, token: str) -> tuple[str, Lead | None]:
    """The unsubscribe link: "withdrawn", "already" or "invalid"."""
    reading = token_read(token, UNSUBSCRIBE)
    if reading.lead is None:
        return reading.problem, None
    changed = consent_withdraw(lead_ids=[reading.lead.pk], source="unsubscribe link")
    return ("withdrawn" if changed else "already"), reading.lead


def _record(lead: Lead, now, source: str, status: str) -> None:
    Activity.objects.create(
        lead=lead,
        type=ActivityType.PROFILE_UPDATE,
        occurred_at=now,
        source="consent",
        properties={"fields": ["consent_at", "consent_status"], "consent": status, "consent_source": source},
    )
