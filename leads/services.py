"""Every write the outside world can trigger on a lead: one transaction each."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from . import consent, erasure, signals, sql
from .errors import Invalid
from .lifecycle import TransitionRefused, check_transition
from .models import (
    Activity,
    ActivityType,
    ConsentStatus,
    Lead,
    LostReason,
    Qualification,
    Stage,
    StageChange,
    User,
)

# Who the lead is: the person and the company (what a partner is shown of a lead's profile too).
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "phone",
    "company",
    "company_domain",
    "job_title",
    "industry",
    "company_size",
    "annual_revenue",
    "country",
    "language",
    "product_interest",
)

# A capture's attribution, kept as one unit: the lead's own fields hold the first touch, the
# `latest_*` fields the latest one (see lead_capture).
TOUCH_FIELDS: tuple[str, ...] = (
    "source",
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
LATEST_TOUCH_FIELDS: tuple[str, ...] = (*(f"latest_{field}" for field in TOUCH_FIELDS), "latest_touch_at")

# Profile fields that capture and update may set (stage, scores and ownership have their own services).
PROFILE_FIELDS: tuple[str, ...] = (*CONTACT_FIELDS, *TOUCH_FIELDS, "consent_status", "consent_at")

# Stage, scores and ownership: written by their own services only (lifecycle, scoring, routing's
# hand-over), so the API and the admin show them read-only.
STATE_FIELDS: tuple[str, ...] = (
    "stage",
    "score",
    "fit_score",
    "engagement_score",
    "grade",
    "owner",
    "partner",
    "marketing_suppressed",
)

CAPTURE_RETRIES = 3

# Limits of what a rep (or a CRM) writes on a lead, shared by the services, the forms and the API.
NOTE_MAX_LENGTH = 5000
CONTACT_SUMMARY_MAX_LENGTH = 2000
BANT_NOTE_MAX_LENGTH = 1000
CLOSE_NOTE_MAX_LENGTH = 4000  # partner feedback's notes (up to 4,000) close deals too
DEAL_VALUE_LIMIT = Decimal(10) ** 12  # Lead.deal_value: 14 digits, 2 of them after the point
CONTACT_KINDS: tuple[str, ...] = (ActivityType.CALL, ActivityType.MEETING)
# How far a client's clock may run ahead of ours before its "it happened now" lies in the future.
CLOCK_SKEW = timedelta(minutes=1)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL stores neither NUL nor lone surrogates


class LeadInvalid(Invalid, ValueError):
    """Input a lead service refuses, field by field; nothing was written.

    `errors` maps a field — the service's keyword argument, or NON_FIELD_ERRORS — to its messages.
    The API answers 400 with them, the dashboard shows them on its form: the rule lives here once.
    (Still a ValueError, as it was before it became an AppError.)
    """

    def __init__(self, errors: Mapping[str, str | Sequence[str]]) -> None:
        super().__init__(errors)
        self.errors = self.field_errors()

    def renamed(self, names: Mapping[str, str]) -> LeadInvalid:
        """The same errors under another door's field names (the API's `deal_value` for `amount`)."""
        return LeadInvalid({names.get(field, field): messages for field, messages in self.errors.items()})


def _text_error(value: str, *, max_length: int, missing: str = "") -> str:
    """What is wrong with a text a person wrote ("" if nothing): missing, too long, unstorable."""
    if missing and not value.strip():
        return missing
    if len(value) > max_length:
        return f"At most {max_length} characters (this has {len(value)})."
    if UNSTORABLE.search(value):
        return "This text contains characters that cannot be stored."
    return ""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def lead_capture(
    *, data: Mapping[str, Any], source: str = "", actor: User | None = None, double_opt_in: bool = False
) -> tuple[Lead, bool]:
    """Create or update the lead with this e-mail; return (lead, created).

    Consent follows `capture_consent`: a capture never confirms it (`confirmed` is refused unless
    the lead's consent is confirmed already), `withdrawn` always wins, `none` erases nothing. With
    `double_opt_in` the lead is sent the confirmation e-mail (leads.consent) after the commit.

    New non-empty values fill or overwrite profile fields; empty values never erase what is known.
    Custom `attributes` are merged key by key. Records a `captured` activity.

    Attribution (TOUCH_FIELDS: source, campaign, utm_*) is a touch, kept as one unit. The first
    capture that brings one is the lead's first touch and stays in `source`, `campaign`, `utm_*`.
    Every later capture that brings any of them is the latest touch: all seven go to `latest_*`
    together (what it did not send is blank, never an older touch's value), with `latest_touch_at`.
    The `captured` activity carries the touch it recorded as `touch`. The `source` argument is the
    door's default ("api"): used only for a lead's first touch when the data names none, so a later
    capture without a source never writes it over a real one.

    Two simultaneous captures of one e-mail make one lead: the unique constraint refuses the
    second insert, and the retry finds and updates the row the first one committed.
    """
    email, values, asked_consent, touch, attributes = capture_input(data)

    for attempt in range(CAPTURE_RETRIES):
        try:
            with transaction.atomic():
                return _capture_once(email, values, touch, attributes, source, actor, asked_consent, double_opt_in)
        except IntegrityError:
            # Another capture of the same e-mail committed between our read and our insert.
            if attempt == CAPTURE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _touch(data: Mapping[str, Any]) -> dict[str, str] | None:
    """The capture's attribution as one unit (every TOUCH_FIELD, blank where not sent), or None
    when it sends none. The campaign defaults to the UTM campaign."""
    touch = {field: str(data.get(field) or "").strip() for field in TOUCH_FIELDS}
    if not any(touch.values()):
        return None
    touch["campaign"] = touch["campaign"] or touch["utm_campaign"]
    return touch


def capture_input(data: Mapping[str, Any]) -> tuple[str, dict[str, Any], str | None, dict[str, str] | None, dict]:
    """A capture's validated data as (email, profile values, asked consent, touch, attributes): the
    e-mail normalised, empty values dropped (they never erase), the touch as one unit. Shared by
    lead_capture and lead_capture_many."""
    email = normalise_email(data["email"])
    values = {
        f: data[f]
        for f in PROFILE_FIELDS
        if f not in TOUCH_FIELDS and f not in CONSENT_FIELDS and f in data and data[f] not in (None, "")
    }
    return email, values, data.get("consent_status") or None, _touch(data), dict(data.get("attributes") or {})


def _capture_apply(
    lead: Lead | None,
    email: str,
    values: dict[str, Any],
    touch: dict[str, str] | None,
    attributes: dict[str, Any],
    default_source: str,
    asked_consent: str | None,
    now: datetime,
) -> tuple[Lead, bool, list[str], dict[str, Any]]:
    """One capture's changes, in memory: the lead (a new unsaved one when `lead` is None, else
    `lead` itself, changed), whether it is new, the fields changed and the `captured` activity's
    properties. Writes nothing: lead_capture saves one row, lead_capture_many a batch. The one
    place the capture's rules (consent, first and latest touch, merge) are applied."""
    created = lead is None
    status = capture_consent(lead.consent_status if lead else ConsentStatus.NONE, asked_consent)
    if status is not None:
        values = {**values, "consent_status": status, "consent_at": now}
    if lead is None or not any(getattr(lead, field) for field in TOUCH_FIELDS):
        # The first touch (a lead made by an event, without attribution, gets its first here too).
        if default_source and not (touch or {}).get("source"):
            touch = {**(touch or dict.fromkeys(TOUCH_FIELDS, "")), "source": default_source}
        values = {**values, **{field: value for field, value in (touch or {}).items() if value}}
    elif touch is not None:
        latest = {f"latest_{field}": value for field, value in touch.items()}
        values = {**values, **latest, "latest_touch_at": now}
    if lead is None:
        lead = Lead(**{"company_domain": email_domain(email), **values}, email=email, attributes=attributes)
        changed = sorted([*values, *(["attributes"] if attributes else [])])
    else:
        changed = _apply(lead, values)
        if not lead.company_domain:
            lead.company_domain = email_domain(email)
            changed.append("company_domain")
        merged = {**lead.attributes, **attributes}
        if merged != lead.attributes:
            lead.attributes = merged
            changed.append("attributes")
    properties: dict[str, Any] = {"created": created, "fields": sorted(changed)}
    if touch is not None:
        properties["touch"] = touch
    return lead, created, changed, properties


def _capture_once(
    email: str,
    values: dict[str, Any],
    touch: dict[str, str] | None,
    attributes: dict[str, Any],
    default_source: str,
    actor: User | None,
    asked_consent: str | None,
    double_opt_in: bool,
) -> tuple[Lead, bool]:
    found = Lead.objects.select_for_update().filter(email=email).first()
    if found is None and not double_opt_in and erasure.blocked_emails([email]):
        raise LeadInvalid({"email": erasure.BLOCKED_MESSAGE})
    now = timezone.now()
    lead, created, changed, properties = _capture_apply(
        found, email, values, touch, attributes, default_source, asked_consent, now
    )
    if created:
        lead.save()
    elif changed:
        lead.save(update_fields=[*changed, "updated_at"])
    Activity.objects.create(
        lead=lead,
        type=ActivityType.CAPTURED,
        occurred_at=now,
        source=default_source,
        properties=properties,
        created_by=actor,
    )
    score_inputs_changed([lead.pk])
    lead.score_rev += 1  # read under the row lock, so exact
    if created or changed:
        signals.lead_saved_in_transaction.send(
            sender="leads", lead_ids=[lead.pk], created=created, fields=sorted(changed), leads=[lead]
        )
    # One announcement for the profile change and the capture activity together.
    signals.announce(signals.lead_captured, lead_ids=[lead.pk], created=created)
    if double_opt_in:
        consent.consent_request(lead=lead)
    return _accept_on_opt_in(lead), created


CONSENT_FIELDS = ("consent_status", "consent_at")
CONSENT_CONFIRMED_BY_CAPTURE = (
    'A capture cannot confirm consent: send "double_opt_in": true and the lead confirms through the e-mail\'s link.'
)


def capture_consent(current: str, asked: str | None) -> str | None:
    """The consent status a capture or update that asks for `asked` leaves (None: unchanged).

    `withdrawn` is always honoured; `pending` only where there is no consent yet; `none` erases
    nothing; `confirmed` is refused (LeadInvalid) unless the consent is confirmed already — only
    the person's confirmed double opt-in gives it (leads.consent.consent_confirm)."""
    if not asked or asked == current:
        return None
    if asked == ConsentStatus.WITHDRAWN:
        return asked
    if asked == ConsentStatus.PENDING and current == ConsentStatus.NONE:
        return asked
    if asked == ConsentStatus.CONFIRMED:
        raise LeadInvalid({"consent_status": CONSENT_CONFIRMED_BY_CAPTURE})
    return None


def _accept_on_opt_in(lead: Lead) -> Lead:
    """A new lead whose double opt-in is confirmed becomes marketing's (new → mal)."""
    if lead.stage == Stage.NEW and lead.consent_status == ConsentStatus.CONFIRMED:
        return lead_transition(lead=lead, to_stage=Stage.MAL, reason="Opt-in confirmed")
    return lead


def _apply(lead: Lead, values: Mapping[str, Any]) -> list[str]:
    changed = []
    for field, value in values.items():
        if getattr(lead, field) != value:
            setattr(lead, field, value)
            changed.append(field)
    return changed


@transaction.atomic
def lead_update(*, lead: Lead, data: Mapping[str, Any], actor: User | None = None) -> Lead:
    """Change profile fields (an empty value clears a field); records a profile_update activity."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    changes = {f: v for f, v in data.items() if f in PROFILE_FIELDS and f not in CONSENT_FIELDS}
    status = capture_consent(lead.consent_status, data.get("consent_status") or None)
    if status is not None:
        changes.update(consent_status=status, consent_at=timezone.now())
    changed = _apply(lead, changes)
    if "attributes" in data and data["attributes"] != lead.attributes:
        lead.attributes = data["attributes"]
        changed.append("attributes")
    if not changed:
        return lead
    lead.save(update_fields=[*changed, "updated_at"])
    Activity.objects.create(
        lead=lead,
        type=ActivityType.PROFILE_UPDATE,
        occurred_at=timezone.now(),
        properties={"fields": sorted(changed)},
        created_by=actor,
    )
    score_inputs_changed([lead.pk])
    lead.score_rev += 1  # read under the row lock, so exact
    signals.lead_saved_in_transaction.send(
        sender="leads", lead_ids=[lead.pk], created=False, fields=sorted(changed), leads=[lead]
    )
    signals.announce(signals.profile_changed, lead_ids=[lead.pk])
    return _accept_on_opt_in(lead)


@transaction.atomic
def lead_transition(*, lead: Lead, to_stage: str, reason: str = "", actor: User | None = None) -> Lead:
    """Move the lead to `to_stage` or raise TransitionRefused; records a StageChange and an Activity.

    The row is locked first, so two concurrent moves are checked one after the other against the
    stage the other one left.
    """
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    from_stage = lead.stage
    check_transition(from_stage, to_stage, reason)
    now = timezone.now()
    lead.stage = to_stage
    lead.save(update_fields=["stage", "updated_at"])
    change, entry = _record_move(lead.pk, from_stage, to_stage, reason, actor, now)
    change.save(force_insert=True)
    entry.save(force_insert=True)
    return lead


# Moves the lifecycle allows that a plain "move it to this stage" does not make: they need data (BANT,
# the deal's value, the reason it was lost) or belong to someone (only the assignee accepts). Each
# names the operation that makes it (the API's endpoint of that name) and why.
MOVES_ELSEWHERE: dict[tuple[str, str], tuple[str, str]] = {
    (Stage.MQL, Stage.SAL): ("accept", "Only the lead's assignee accepts it."),
    (Stage.SAL, Stage.SQL): (
        "qualify",
        "A lead becomes sales-qualified when its BANT is recorded: all four criteria confirmed, each with a note.",
    ),
    (Stage.SQL, Stage.WON): ("close", "Closing a deal as won needs its value and currency."),
    (Stage.SAL, Stage.LOST): ("close", "Closing a deal as lost needs a reason from the list."),
    (Stage.SQL, Stage.LOST): ("close", "Closing a deal as lost needs a reason from the list."),
}


class TransitionElsewhere(TransitionRefused):
    """A move the lifecycle allows but not as a plain move: `use` names the operation that makes it."""

    def __init__(self, *, lead_id: int, from_stage: str, to_stage: str, use: str, message: str) -> None:
        super().__init__(from_stage, to_stage, message)
        self.lead_id = lead_id
        self.use = use

    def body(self) -> dict[str, Any]:
        # The API endpoint that makes this move (this app's /qualify/ and /close/, routing's /accept/).
        url = reverse(f"lead-{self.use}", kwargs={"pk": self.lead_id})
        return {**super().body(), "detail": f"{self.message} Use POST {url}.", "use": url}


@transaction.atomic
def lead_move(*, lead: Lead, to_stage: str, reason: str = "", actor: User | None = None) -> Lead:
    """A move asked for by its target stage alone (the API's /transition/): `lead_transition`, but
    the moves of MOVES_ELSEWHERE raise TransitionElsewhere, which names the operation to use.
    Checked under the row lock, against the stage found there."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    check_transition(lead.stage, to_stage, reason)
    if (lead.stage, to_stage) in MOVES_ELSEWHERE:
        use, message = MOVES_ELSEWHERE[(lead.stage, to_stage)]
        raise TransitionElsewhere(lead_id=lead.pk, from_stage=lead.stage, to_stage=to_stage, use=use, message=message)
    return lead_transition(lead=lead, to_stage=to_stage, reason=reason, actor=actor)


def _record_move(
    lead_id: int, from_stage: str, to_stage: str, reason: str, actor: User | None, at: datetime
) -> tuple[StageChange, Activity]:
    """What every move leaves: the audit row and the timeline entry (to be saved by the caller), and
    its announcements (in this transaction, and after the commit)."""
    signals.announce_stage_change(
        lead_id=lead_id, from_stage=from_stage, to_stage=to_stage, actor_id=actor.pk if actor else None, reason=reason
    )
    return (
        StageChange(lead_id=lead_id, from_stage=from_stage, to_stage=to_stage, actor=actor, reason=reason, at=at),
        Activity(
            lead_id=lead_id,
            type=ActivityType.STAGE_CHANGE,
            occurred_at=at,
            properties={"from": from_stage, "to": to_stage, "reason": reason},
            created_by=actor,
        ),
    )


def lead_transition_many(*, moves: Mapping[int, tuple[str, str]], actor: User | None = None) -> list[int]:
    """`lead_transition` for many leads at once (a rescoring batch promoting MQLs): `moves` maps a
    lead id to (to_stage, reason). In the caller's transaction; the leads are locked (again, in id
    order) and each move is checked against the stage found under the lock — a refused one is
    skipped. A few statements for the batch; the same StageChange, Activity and `stage_changed`
    announcement per lead as `lead_transition`. Returns the ids of the leads that moved."""
    if not moves:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lead_transition_many runs inside the caller's transaction.")
    lock_leads(moves)
    stages = dict(Lead.objects.filter(pk__in=list(moves)).values_list("pk", "stage"))
    now = timezone.now()
    by_move: dict[tuple[str, str], list[int]] = {}
    for lead_id in sorted(moves):
        to_stage, reason = moves[lead_id]
        from_stage = stages.get(lead_id)
        if from_stage is None:
            continue
        try:
            check_transition(from_stage, to_stage, reason)
        except TransitionRefused:
            continue
        by_move.setdefault((from_stage, to_stage), []).append(lead_id)
    moved: list[int] = []
    changes, entries = [], []
    for (from_stage, to_stage), ids in by_move.items():
        Lead.objects.filter(pk__in=ids).update(stage=to_stage, updated_at=now)
        for lead_id in ids:
            change, entry = _record_move(lead_id, from_stage, to_stage, moves[lead_id][1], actor, now)
            changes.append(change)
            entries.append(entry)
        moved += ids
    StageChange.objects.bulk_create(changes)
    Activity.objects.bulk_create(entries)
    return sorted(moved)


def qualification_errors(criteria: Mapping[str, tuple[bool, str]]) -> dict[str, str]:
    """BANT's rules as messages by criterion (empty: fine): at least one criterion, only the four,
    and a confirmed criterion says what confirms it."""
    if not criteria:
        return {NON_FIELD_ERRORS: f"Give at least one of {', '.join(Qualification.CRITERIA)}."}
    unknown = set(criteria) - set(Qualification.CRITERIA)
    if unknown:
        return {NON_FIELD_ERRORS: f"Unknown BANT criteria: {', '.join(sorted(unknown))}."}
    errors = {}
    for name, (confirmed, note) in criteria.items():
        missing = f"Say what confirms the {name}." if confirmed else ""
        if message := _text_error(note, max_length=BANT_NOTE_MAX_LENGTH, missing=missing):
            errors[name] = message
    return errors


@transaction.atomic
def lead_qualify(*, lead: Lead, criteria: Mapping[str, tuple[bool, str]], actor: User | None = None) -> Qualification:
    """Record BANT for an accepted lead: `criteria` maps budget/authority/need/timing to
    (confirmed, note). Criteria not given keep their value. All four confirmed moves sal → sql.
    Raises LeadInvalid (qualification_errors) or, for a lead not in SAL/SQL, TransitionRefused."""
    if errors := qualification_errors(criteria):
        raise LeadInvalid(errors)
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    if lead.stage not in (Stage.SAL, Stage.SQL):
        raise TransitionRefused(lead.stage, Stage.SQL, "Accept the lead before qualifying it.")
    qualification, _ = Qualification.objects.get_or_create(lead=lead)
    for name, (confirmed, note) in criteria.items():
        setattr(qualification, name, bool(confirmed))
        setattr(qualification, f"{name}_note", note.strip())
    qualification.updated_by = actor
    qualification.save()
    Activity.objects.create(
        lead=lead,
        type=ActivityType.QUALIFICATION,
        occurred_at=timezone.now(),
        properties={
            name: {"confirmed": getattr(qualification, name), "note": getattr(qualification, f"{name}_note")}
            for name in Qualification.CRITERIA
        },
        created_by=actor,
    )
    score_inputs_changed([lead.pk])  # a behaviour rule may score BANT
    if qualification.complete and lead.stage == Stage.SAL:
        lead_transition(lead=lead, to_stage=Stage.SQL, reason="BANT confirmed", actor=actor)
    return qualification


def close_errors(*, won: bool, amount: Decimal | None, currency: str, reason: str, note: str) -> dict[str, str]:
    """Closing's rules as messages by field (empty: fine): won has a value > 0 and a currency and no
    lost reason; lost has a reason from LostReason and no value or currency."""
    errors = {}
    if won:
        if amount is None or not amount.is_finite() or amount <= 0:
            errors["amount"] = "A won deal needs its value (greater than 0)."
        elif amount >= DEAL_VALUE_LIMIT or amount != amount.quantize(Decimal("0.01")):
            errors["amount"] = "A deal value has at most 12 digits before the decimal point and 2 after it."
        if not re.fullmatch("[A-Z]{3}", currency):
            errors["currency"] = "A currency is a three-letter ISO 4217 code, e.g. EUR."
        if reason:
            errors["reason"] = "A won deal has no lost reason."
    else:
        if reason not in LostReason.values:
            errors["reason"] = f"A lost deal needs a reason, one of: {', '.join(LostReason.values)}."
        if amount is not None:
            errors["amount"] = "A lost deal has no value."
        if currency:
            errors["currency"] = "A lost deal has no currency."
    if message := _text_error(note, max_length=CLOSE_NOTE_MAX_LENGTH):
        errors["note"] = message
    return errors


@transaction.atomic
def lead_close(
    *,
    lead: Lead,
    won: bool,
    amount: Decimal | int | None = None,
    currency: str = "",
    reason: str = "",
    note: str = "",
    actor: User | None = None,
) -> Lead:
    """Close the deal: won (with its value; the currency defaults to EUR) or lost (with a reason
    from LostReason and a note). Raises LeadInvalid (close_errors); the lifecycle table decides from
    which stages, a refused move raises TransitionRefused. Sets deal_value, deal_currency,
    lost_reason and closed_at, and ends any response deadline."""
    if amount is not None and not isinstance(amount, Decimal):
        amount = Decimal(amount)
    currency = currency.strip().upper() or ("EUR" if won else "")
    reason, note = reason.strip(), note.strip()
    if errors := close_errors(won=won, amount=amount, currency=currency, reason=reason, note=note):
        raise LeadInvalid(errors)
    if won:
        assert amount is not None  # close_errors refused a won deal without its value
        amount = amount.quantize(Decimal("0.01"))  # "25000" from a form reads as the API's "25000.00"
    label = f"won {amount} {currency}" if won else LostReason(reason).label
    label += f": {note}" if note else ""
    # The deal's facts are written first, under the row lock, so that the move's in-transaction
    # announcement (a webhook's lead.closed) sees them; a refused move rolls them back with it.
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    lead.deal_value = amount if won else None
    lead.deal_currency = currency if won else ""
    lead.lost_reason = "" if won else reason
    lead.closed_at = timezone.now()
    lead.save(update_fields=["deal_value", "deal_currency", "lost_reason", "closed_at", "updated_at"])
    # The deadline (respond_by) is the handover's: the move's in-transaction announcement stops it.
    return lead_transition(lead=lead, to_stage=Stage.WON if won else Stage.LOST, reason=label, actor=actor)


def lead_note_add(*, lead: Lead, text: str, actor: User | None = None) -> Activity:
    """A note on the lead's timeline (type `note`, properties {"text"}). Raises LeadInvalid."""
    text = text.strip()
    if message := _text_error(text, max_length=NOTE_MAX_LENGTH, missing="Write the note."):
        raise LeadInvalid({"text": message})
    return activity_record(lead=lead, type=ActivityType.NOTE, properties={"text": text}, actor=actor)


def lead_contact_log(
    *,
    lead: Lead,
    kind: str,
    summary: str,
    occurred_at: datetime | None = None,
    actor: User | None = None,
) -> Activity:
    """A call or meeting that took place, on the lead's timeline (type `call`/`meeting`, properties
    {"summary"}) at `occurred_at` (default: now). Raises LeadInvalid for a time in the future (beyond
    CLOCK_SKEW) or before the lead was created — nobody called a lead the portal did not know."""
    now = timezone.now()
    summary = summary.strip()
    errors = {}
    if kind not in CONTACT_KINDS:
        errors["kind"] = f"One of: {', '.join(CONTACT_KINDS)}."
    if message := _text_error(summary, max_length=CONTACT_SUMMARY_MAX_LENGTH, missing="Say what was discussed."):
        errors["summary"] = message
    if occurred_at is not None:
        if timezone.is_naive(occurred_at):
            errors["occurred_at"] = "Give the time with its time zone."
        elif occurred_at > now + CLOCK_SKEW:
            errors["occurred_at"] = "This time lies in the future: log a call or meeting once it has taken place."
        elif occurred_at < lead.created_at - CLOCK_SKEW:
            errors["occurred_at"] = f"This time is before the lead was created ({lead.created_at:%Y-%m-%d %H:%M} UTC)."
    if errors:
        raise LeadInvalid(errors)
    return activity_record(
        lead=lead, type=kind, occurred_at=occurred_at or now, properties={"summary": summary}, actor=actor
    )


@transaction.atomic
def activity_record(
    *,
    lead: Lead,
    type: str,
    occurred_at: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    actor: User | None = None,
) -> Activity:
    """Add one entry to a lead's timeline (a note, a call, a meeting …)."""
    lock_leads([lead.pk])
    activity = Activity.objects.create(
        lead=lead,
        type=type,
        occurred_at=occurred_at or timezone.now(),
        properties=dict(properties or {}),
        created_by=actor,
    )
    score_inputs_changed([lead.pk])
    signals.announce(signals.activities_recorded, lead_ids=[lead.pk])
    return activity


def lock_leads(lead_ids: Iterable[int]) -> None:
    """Lock these lead rows, in id order, until the transaction ends (FOR NO KEY UPDATE on
    PostgreSQL: inserting an activity that refers to a lead does not wait for it)."""
    ids = sorted(set(lead_ids))
    if ids:
        list(Lead.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk"))


def score_inputs_changed(lead_ids: Iterable[int]) -> None:
    """Inside the transaction that changed what these leads' scores are computed from: raise their
    `score_rev` and send `signals.score_inputs_changed`, whose receivers record the rescoring
    durably in this same transaction.

    Lock order: every writer of a lead's score inputs or of its score locks the lead rows first, in
    id order (`lock_leads`, or `select_for_update` of the one lead), before it writes anything else,
    so a rescoring and an event batch that share leads serialise on them and cannot deadlock; the
    revision tells a rescoring whether it read the inputs as they are now.
    """
    ids = sorted(set(lead_ids))
    if not ids:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("score_inputs_changed must run inside the transaction of the change.")
    Lead.objects.filter(pk__in=ids).update(score_rev=F("score_rev") + 1)
    signals.score_inputs_changed.send(sender="leads", lead_ids=ids)


@transaction.atomic
def events_ingest(*, events: Iterable[dict[str, Any]], actor: User | None = None) -> dict[str, int]:
    """Store a batch of validated events in one transaction; return what happened.

    Each event names its lead by `lead` (an id) or `email`; an unknown e-mail captures a new lead.
    An event whose (source, external_id) is already stored — earlier or in the same batch — is a
    duplicate and is counted, not stored. Set-based: a constant number of queries per batch.
    """
    events = list(events)
    leads_created = _leads_for_emails(events)

    seen: set[tuple[str, str]] = set()
    rows: list[tuple] = []
    repeated = 0
    for event in events:
        source, external_id = event.get("source", ""), event.get("external_id") or None
        if external_id:
            if (source, external_id) in seen:
                repeated += 1
                continue
            seen.add((source, external_id))
        row = (event["lead_id"], event["type"], event["occurred_at"], event.get("properties") or {}, source)
        rows.append((*row, external_id))
    # The leads first, in id order, then their activities: a rescoring that holds some of these leads
    # waits for us or we for it, never both (see score_inputs_changed).
    lock_leads({row[0] for row in rows})
    stored_for = _insert_activities(rows, actor)
    if stored_for:
        score_inputs_changed(stored_for)
        # An unsubscribe withdraws consent (stored ones only: a duplicate was counted before).
        unsubscribed = {row[0] for row in rows if row[1] == ActivityType.UNSUBSCRIBE} & set(stored_for)
        consent.consent_withdraw(lead_ids=sorted(unsubscribed), source="unsubscribe event")
        signals.announce(signals.activities_recorded, lead_ids=sorted(set(stored_for)))
    return {"stored": len(stored_for), "duplicates": len(events) - len(stored_for), "leads_created": leads_created}


def _insert_activities(rows: list[tuple], actor: User | None) -> list[int]:
    """Insert (lead_id, type, occurred_at, properties, source, external_id) rows, skipping those whose
    (source, external_id) is already stored; return the lead id of every row stored
    (`leads.sql.activities_insert`: one statement on PostgreSQL)."""
    return sql.activities_insert(rows, actor_id=actor.pk if actor else None, now=timezone.now())


def _leads_for_emails(events: list[dict[str, Any]]) -> int:
    """Set `lead_id` on events that name an e-mail, creating the leads that do not exist yet."""
    emails = {normalise_email(e["email"]) for e in events if not e.get("lead_id")}
    if not emails:
        return 0
    found = dict(Lead.objects.filter(email__in=emails).values_list("email", "pk"))
    missing = emails - found.keys()
    if blocked := erasure.blocked_emails(missing):
        # An event cannot bring an erased person back; the batch is refused whole, like any invalid item.
        raise LeadInvalid({"email": f"{erasure.BLOCKED_MESSAGE} ({len(blocked)} of the batch's addresses)"})
    if missing:
        sources = {normalise_email(e["email"]): e.get("source", "") for e in events if e.get("email")}
        Lead.objects.bulk_create(
            [Lead(email=m, company_domain=email_domain(m), source=sources.get(m, "")) for m in sorted(missing)],
            ignore_conflicts=True,
        )
        found.update(Lead.objects.filter(email__in=missing).values_list("email", "pk"))
        created = sorted(found[m] for m in missing)
        signals.lead_saved_in_transaction.send(sender="leads", lead_ids=created, created=True, fields=[], leads=[])
    for event in events:
        if not event.get("lead_id"):
            event["lead_id"] = found[normalise_email(event["email"])]
    return len(missing)


# --- many captures at once (a CSV import's batch) ------------------------------------------------

# Rows per call the callers aim for: one transaction, a handful of statements.
CAPTURE_MANY_BATCH = 1000


def lead_capture_many(
    *, rows: Sequence[Mapping[str, Any]], source: str, actor: User | None = None, double_opt_in: bool = False
) -> list[tuple[int, bool]]:
    """`lead_capture` for a batch of validated rows (a CSV import's ~1,000): returns (lead id,
    created) per row, in order. In one transaction (the caller's, as a savepoint, if there is one).

    The same rules, by the same code (`capture_input`, `_capture_apply`): dedup by normalised
    e-mail, non-empty values fill or overwrite, attributes merge, the first touch stays, a later
    one goes to `latest_*`, a `captured` activity per row (with `source`), consent per
    `capture_consent`. Rows of one e-mail are applied in order, as consecutive captures would be.
    Set-based: the existing leads are locked in one SELECT … FOR UPDATE (in id order, the lock
    order every writer of score inputs keeps: see score_inputs_changed), new ones bulk-inserted,
    changed ones bulk-updated, the activities bulk-inserted, one `score_inputs_changed` for all and
    one `lead_captured` announcement for the new leads and one for the others.

    A concurrent capture that inserts one of the new e-mails first makes our insert fail on the
    unique constraint: the batch is rolled back and redone, finding that lead (so one lead).

    As in lead_capture, a new lead for the e-mail of a person erased at their request is refused
    (LeadInvalid, the whole batch) unless `double_opt_in`: callers leave such rows out first
    (leads.erasure.blocked_emails), as the CSV import does.

    With `double_opt_in`, leads of the batch whose consent is `none` are sent the confirmation
    e-mail (a person who withdrew, or has one pending, is not asked again by a list).
    """
    prepared = [capture_input(row) for row in rows]
    if not prepared:
        return []
    for attempt in range(CAPTURE_RETRIES):
        try:
            with transaction.atomic():
                return _capture_many_once(prepared, source, actor, double_opt_in)
        except IntegrityError:
            # Another capture of one of these e-mails committed between our read and our insert.
            if attempt == CAPTURE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _capture_many_once(
    prepared: list[tuple[str, dict[str, Any], str | None, dict[str, str] | None, dict]],
    source: str,
    actor: User | None,
    double_opt_in: bool,
) -> list[tuple[int, bool]]:
    now = timezone.now()
    emails = sorted({email for email, *_ in prepared})
    ids = list(Lead.objects.filter(email__in=emails).values_list("pk", flat=True))
    existing = {lead.email: lead for lead in Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    # lead_capture's rule: an erased person is not captured again without a double opt-in.
    if not double_opt_in and (blocked := erasure.blocked_emails(set(emails) - existing.keys())):
        raise LeadInvalid({"email": f"{erasure.BLOCKED_MESSAGE} ({len(blocked)} of the batch's addresses)"})
    new: dict[str, Lead] = {}
    dirty: dict[str, set[str]] = {}
    captures: list[tuple[str, bool, dict[str, Any], datetime]] = []
    for email, values, asked, touch, attributes in prepared:
        found = existing.get(email) or new.get(email)
        at = timezone.now()  # each row its own instant, as consecutive captures have
        lead, created, changed, properties = _capture_apply(found, email, values, touch, attributes, source, asked, at)
        if created:
            new[email] = lead
        elif email in existing and changed:
            dirty.setdefault(email, set()).update(changed)
        captures.append((email, created, properties, at))
    if new:
        sql.leads_insert(list(new.values()), now=now)
    if dirty:
        for email in dirty:
            existing[email].updated_at = now
        fields = sorted(set().union(*dirty.values()) | {"updated_at"})
        sql.leads_update([existing[email] for email in sorted(dirty)], fields)
    leads = {**existing, **new}
    # The `captured` activities in one statement (leads.sql.activities_insert; no external ids).
    sql.activities_insert(
        [
            (leads[email].pk, ActivityType.CAPTURED, at, properties, source, None)
            for email, _c, properties, at in captures
        ],
        actor_id=actor.pk if actor else None,
        now=now,
    )
    score_inputs_changed([lead.pk for lead in leads.values()])
    # lead_capture's in-transaction announcement (webhooks: lead.created / lead.updated), set-wise.
    if new:
        created_leads = sorted(new.values(), key=lambda lead: lead.pk)
        signals.lead_saved_in_transaction.send(
            sender="leads", lead_ids=[lead.pk for lead in created_leads], created=True, fields=[], leads=created_leads
        )
    by_fields: dict[tuple[str, ...], list[Lead]] = {}
    for email in sorted(dirty):
        by_fields.setdefault(tuple(sorted(dirty[email])), []).append(existing[email])
    for changed_fields, changed_leads in by_fields.items():
        signals.lead_saved_in_transaction.send(
            sender="leads",
            lead_ids=[lead.pk for lead in changed_leads],
            created=False,
            fields=list(changed_fields),
            leads=changed_leads,
        )
    if new:
        signals.announce(signals.lead_captured, lead_ids=sorted(lead.pk for lead in new.values()), created=True)
    if existing:
        signals.announce(signals.lead_captured, lead_ids=sorted(lead.pk for lead in existing.values()), created=False)
    if double_opt_in:
        for lead in leads.values():
            if lead.consent_status == ConsentStatus.NONE:
                consent.consent_request(lead=lead)
    opted_in = {
        lead.pk: (Stage.MAL, "Opt-in confirmed")
        for lead in leads.values()
        if lead.stage == Stage.NEW and lead.consent_status == ConsentStatus.CONFIRMED
    }
    lead_transition_many(moves=opted_in)
    return [(leads[email].pk, created) for email, created, *_rest in captures]
