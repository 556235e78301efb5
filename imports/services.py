"""CSV imports: preview, start, run in batches, resume, and the rejected rows. One transaction each.

A row is imported as a capture would be (leads.services.lead_capture_many, the rules of
lead_capture) after the checks of the capture API (its serializer), so a row is rejected for
exactly what `POST /api/v1/leads/` would refuse, with the field and the message.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import erasure
from leads.api.serializers import COUNTRY_CODES, LANGUAGE_CODES, LeadCaptureSerializer
from leads.errors import Invalid
from leads.export import safe_text
from leads.limits import json_object_problem
from leads.models import User
from leads.services import UNSTORABLE, lead_capture_many, normalise_email

from . import parsing
from .models import ImportJob, ImportRejection

log = logging.getLogger("leadportal.imports")

PREVIEW_ROWS = 10
ERASED = "This person's data was erased at their request."  # the row's error (its e-mail)


class ImportInvalid(Invalid):
    """An upload, mapping or defaults that cannot be imported (400, field by field); nothing stored."""


def _limits_message() -> str:
    return _("At most %(mb)s MB and %(rows)s rows per file.") % {
        "mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
        "rows": f"{settings.IMPORT_MAX_ROWS:,}",
    }


def upload_read(raw: bytes) -> tuple[parsing.Parsed, int]:
    """The file read and its number of data rows; ImportInvalid ({"file": …}) if it is too large,
    has too many rows or cannot be read as a CSV with a header."""
    if len(raw) > settings.IMPORT_MAX_BYTES:
        raise ImportInvalid({"file": _("The file is too large.") + " " + _limits_message()})
    try:
        parsed = parsing.parse(raw)
        total = parsing.count_rows(parsed)
    except (parsing.ParseError, csv.Error) as exc:
        raise ImportInvalid({"file": str(exc)}) from exc
    if total > settings.IMPORT_MAX_ROWS:
        raise ImportInvalid({"file": _("The file has %(n)s rows.") % {"n": f"{total:,}"} + " " + _limits_message()})
    if total == 0:
        raise ImportInvalid({"file": _("The file has a header but no rows.")})
    return parsed, total


def options_errors(mapping: Any, defaults: Any, header: list[str]) -> dict[str, list[str]]:
    errors = {}
    if problems := parsing.mapping_errors(mapping, header):
        errors["mapping"] = problems
    if problems := parsing.defaults_errors(defaults):
        errors["defaults"] = problems
    return errors


def row_check(
    header: list[str], values: list[str], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The row's capture data as the capture API would take it, and its errors by field (empty:
    fine) — the capture serializer's own rules and messages. A plain row (text fields, e-mail,
    country, language, text attributes) is checked by `fast_row`, which accepts only what the
    serializer accepts (imports/tests/test_fast_row.py); anything else, and every row that the
    fast check does not accept, goes through the serializer itself, whose messages are the answer."""
    if len(values) > len(header):
        message = _("This row has %(values)s values; the header has %(columns)s columns.")
        return {}, {"row": [message % {"values": len(values), "columns": len(header)}]}
    fast = fast_row(data)
    if fast is not None:
        return fast, {}
    serializer = LeadCaptureSerializer(data=data)
    if not serializer.is_valid():
        return {}, {field: [str(m) for m in messages] for field, messages in _flat(serializer.errors).items()}
    validated = dict(serializer.validated_data)
    validated.pop("double_opt_in", None)
    return validated, {}


def _text_limits() -> dict[str, int]:
    from leads.models import Lead

    limits = {}
    for name in ("email", *parsing.TARGET_FIELDS):
        field = Lead._meta.get_field(name)
        if isinstance(field, models.CharField) and name not in ("country", "language"):
            limits[name] = field.max_length or 0
    return limits


_TEXT_LIMITS: dict[str, int] = {}
_email_valid = EmailValidator()


def fast_row(data: dict[str, Any]) -> dict[str, Any] | None:
    """The serializer's answer for a plain, valid row, about twenty times faster (a DRF serializer
    costs ~1 ms a row: 100,000 rows would take its time alone past the minute); None when the row
    is not plain or not valid — the serializer then decides, and says why."""
    if not _TEXT_LIMITS:
        _TEXT_LIMITS.update(_text_limits())
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "attributes":
            if not all(
                isinstance(v, str) and not UNSTORABLE.search(v) and not UNSTORABLE.search(k) for k, v in value.items()
            ):
                return None
            if json_object_problem(value) is not None:
                return None
            out[key] = value
            continue
        if not isinstance(value, str) or value != value.strip() or not value or UNSTORABLE.search(value):
            return None
        if key == "country":
            value = value.upper()
            if value not in COUNTRY_CODES:
                return None
        elif key == "language":
            value = value.lower()
            if value not in LANGUAGE_CODES:
                return None
        elif key in _TEXT_LIMITS:
            if len(value) > _TEXT_LIMITS[key]:
                return None
            if key == "email":
                try:
                    _email_valid(value)
                except ValidationError:
                    return None
            elif key == "company_domain":
                value = value.lower()
        else:
            return None  # numbers (company_size, annual_revenue) and anything else: the serializer
        out[key] = value
    return out if "email" in out else None


def _flat(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for field, messages in errors.items():
        if isinstance(messages, dict):  # attributes' own shape, if any
            for key, inner in _flat(messages).items():
                flat[f"{field}.{key}"] = inner
        else:
            flat[field] = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
    return flat


def blocked_emails(emails: set[str]) -> set[str]:
    """E-mails of people erased at their request (leads.erasure): their rows are rejected, whatever
    the list says — a list is not the person's new consent."""
    return erasure.blocked_emails(emails)


def import_preview(
    *, raw: bytes, mapping: Any = None, defaults: Any = None, has_consent: bool = False
) -> dict[str, Any]:
    """What an import of this file would do with its first rows: the header, the suggested mapping,
    the first PREVIEW_ROWS rows as mapped with their errors by line. Writes nothing."""
    parsed, total = upload_read(raw)
    return preview_of(parsed, total, mapping=mapping, defaults=defaults, has_consent=has_consent)


def preview_of(
    parsed: parsing.Parsed, total: int, *, mapping: Any = None, defaults: Any = None, has_consent: bool = False
) -> dict[str, Any]:
    suggested = parsing.suggest_mapping(parsed.header)
    mapping = suggested if mapping is None else mapping
    defaults = defaults or {}
    if errors := options_errors(mapping, defaults, parsed.header):
        raise ImportInvalid(errors)
    sample = list(islice(parsing.rows(parsed), PREVIEW_ROWS))
    erased = blocked_emails({normalise_email(v) for _l, v in _emails(parsed.header, sample, mapping)})
    previewed = []
    for line, values in sample:
        data = parsing.row_data(parsed.header, values, mapping, defaults)
        _validated, errors = row_check(parsed.header, values, data)
        if not errors and normalise_email(data.get("email", "")) in erased:
            errors = {"email": [ERASED]}
        previewed.append({"line": line, "values": values, "data": data, "errors": errors})
    return {
        "encoding": parsed.encoding,
        "delimiter": parsed.delimiter,
        "header": parsed.header,
        "suggested_mapping": suggested,
        "mapping": mapping,
        "total_rows": total,
        "has_consent": has_consent,
        "rows": previewed,
    }


def parsed_of(job: ImportJob) -> parsing.Parsed:
    return parsing.Parsed(text=job.text, encoding=job.encoding, delimiter=job.delimiter, header=job.header)


def import_draft_create(
    *, raw: bytes, filename: str, actor: User | None, mapping: Mapping[str, str] | None = None, defaults: Any = None
) -> ImportJob:
    """The admin's first step: store the file as a draft (not imported until started), with the
    suggested mapping or a saved one (its columns that the file has)."""
    parsed, total = upload_read(raw)
    suggested = parsing.suggest_mapping(parsed.header)
    if mapping is not None:
        suggested = {column: mapping.get(column, "") for column in parsed.header}
    return ImportJob.objects.create(
        filename=filename[:255],
        text=parsed.text,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        header=parsed.header,
        mapping=suggested,
        defaults=dict(defaults or {}),
        total_rows=total,
        status=ImportJob.Status.DRAFT,
        created_by=actor,
    )


def import_job_start(*, job: ImportJob, mapping: Any, defaults: Any, has_consent: bool) -> ImportJob:
    """The admin's last step: the draft with this mapping is queued; ImportInvalid (and the draft
    unchanged) for a mapping or defaults that cannot be imported."""
    from leadportal.celery import enqueue

    from .tasks import import_job_run_task

    defaults = defaults or {}
    if errors := options_errors(mapping, defaults, job.header):
        raise ImportInvalid(errors)
    with transaction.atomic():
        started = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DRAFT).update(
            mapping={column: mapping.get(column, "") for column in job.header},
            defaults={key: value for key, value in defaults.items() if value},
            has_consent=has_consent,
            status=ImportJob.Status.QUEUED,
        )
        if started:
            enqueue(import_job_run_task, job.pk)
    job.refresh_from_db()
    return job


def _emails(
    header: list[str], rows: list[tuple[int, list[str]]], mapping: Mapping[str, str]
) -> Iterator[tuple[int, str]]:
    column = next((header.index(c) for c, target in mapping.items() if target == "email" and c in header), None)
    if column is None:
        return
    for line, values in rows:
        if column < len(values) and values[column].strip():
            yield line, values[column]


def import_job_create(
    *, raw: bytes, filename: str, mapping: Any, defaults: Any = None, has_consent: bool = False, actor: User | None
) -> ImportJob:
    """Store the import and queue it (after the commit); ImportInvalid, and nothing stored, for a
    file, mapping or defaults that cannot be imported."""
    from .tasks import import_job_run_task

    parsed, total = upload_read(raw)
    defaults = defaults or {}
    if errors := options_errors(mapping, defaults, parsed.header):
        raise ImportInvalid(errors)
    with transaction.atomic():
        job = ImportJob.objects.create(
            filename=filename[:255],
            text=parsed.text,
            encoding=parsed.encoding,
            delimiter=parsed.delimiter,
            header=parsed.header,
            mapping={column: mapping.get(column, "") for column in parsed.header},
            defaults={key: value for key, value in defaults.items() if value},
            has_consent=has_consent,
            total_rows=total,
            created_by=actor,
        )
        from leadportal.celery import enqueue

        enqueue(import_job_run_task, job.pk)
    return job


def _claim(job_id: int, token: str, now: datetime) -> ImportJob | None:
    """Take the job for this run: a queued one, one this run (`token`, the task's id, the same on
    its retries) holds, or a running one whose holder stopped moving. None: done, or held."""
    stale = now - timedelta(seconds=settings.IMPORT_STALE_AFTER)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.finished or job.status == ImportJob.Status.DRAFT:
            return None
        held = job.status == ImportJob.Status.RUNNING and job.claimed_by != token
        if held and job.heartbeat_at is not None and job.heartbeat_at >= stale:
            return None
        job.status, job.claimed_by, job.heartbeat_at = ImportJob.Status.RUNNING, token, now
        job.started_at = job.started_at or now
        job.save(update_fields=["status", "claimed_by", "heartbeat_at", "started_at"])
        return job


def import_job_run(*, job_id: int, token: str) -> ImportJob | None:
    """Import the job's rows from its cursor, a batch (IMPORT_BATCH rows) per transaction, until
    done; returns the job, or None when another run holds it. A run that finds the cursor moved
    by another (a pickup after it was thought dead) stops."""
    job = _claim(job_id, token, timezone.now())
    if job is None:
        return None
    parsed = parsed_of(job)
    cursor = job.done_rows
    remaining = parsing.rows(parsed, skip=cursor)
    size = max(settings.IMPORT_BATCH, 1)
    while batch := list(islice(remaining, size)):
        if not import_batch(job=job, cursor=cursor, batch=batch, token=token):
            return job
        cursor += len(batch)
    # Done: the file goes (the people in it are leads now, or rejected rows kept with their errors),
    # so a copy of their data does not outlive the import (and an erasure has one place less to clean).
    ImportJob.objects.filter(pk=job.pk, claimed_by=token).update(
        status=ImportJob.Status.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now(), text=""
    )
    job.refresh_from_db()
    return job


def on_lead_erased(sender: object, email: str = "", **kwargs: Any) -> None:
    """In the erasure's transaction (leads.erasure): the imports' copies of the person — rejected rows
    naming the address, and the file of an import not yet done — lose it. A file keeps its lines (the
    cursor counts them): the address is blanked, so that row is rejected, the others unchanged."""
    address = email.strip().lower()
    if not address:
        return
    for rejection in ImportRejection.objects.filter(values__icontains=address):
        if any(address in str(value).lower() for value in rejection.values):
            rejection.delete()
    for job in ImportJob.objects.filter(text__icontains=address).exclude(status=ImportJob.Status.DONE):
        ImportJob.objects.filter(pk=job.pk).update(text=_without(job, address))


ERASED_ROW = "(erased)"


def _without(job: ImportJob, address: str) -> str:
    """The job's file with every row that names `address` replaced by one value, ERASED_ROW: still a
    row (the cursor counts rows; the import rejects it for its missing e-mail), nothing of the person."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=job.delimiter, lineterminator="\n")
    for values in csv.reader(io.StringIO(job.text, newline=""), delimiter=job.delimiter):
        writer.writerow([ERASED_ROW] if any(address in value.lower() for value in values) else values)
    return out.getvalue()


@transaction.atomic
def import_batch(*, job: ImportJob, cursor: int, batch: list[tuple[int, list[str]]], token: str) -> bool:
    """Import one batch (the rows after `cursor`) and move the cursor past it, in one transaction:
    the leads, their activities, the rejected rows and the counts commit together or not at all.
    False (nothing done) when the job is no longer this run's or its cursor moved."""
    # The job's row, locked, without its file (megabytes a batch would otherwise read again).
    locked = ImportJob.objects.select_for_update().filter(pk=job.pk).values_list("claimed_by", "done_rows", "status")
    if list(locked) != [(token, cursor, ImportJob.Status.RUNNING)]:
        return False
    good: list[dict[str, Any]] = []
    rejected: list[ImportRejection] = []
    checked = []
    for line, values in batch:
        data = parsing.row_data(job.header, values, job.mapping, job.defaults)
        validated, errors = row_check(job.header, values, data)
        checked.append((line, values, validated, errors))
    erased = blocked_emails({v["email"].strip().lower() for _l, _v, v, e in checked if not e})
    for line, values, validated, errors in checked:
        if not errors and validated["email"].strip().lower() in erased:
            errors = {"email": [ERASED]}
        if errors:
            rejected.append(ImportRejection(job=job, line=line, values=values, errors=errors))
        else:
            good.append(validated)
    results = lead_capture_many(rows=good, source="import", actor=job.created_by, double_opt_in=job.has_consent)
    created = sum(1 for _lead_id, was_created in results if was_created)
    ImportRejection.objects.bulk_create(rejected)
    ImportJob.objects.filter(pk=job.pk).update(
        done_rows=cursor + len(batch),
        created_count=F("created_count") + created,
        updated_count=F("updated_count") + len(results) - created,
        rejected_count=F("rejected_count") + len(rejected),
        heartbeat_at=timezone.now(),
    )
    return True


def import_job_fail(*, job_id: int, error: str) -> None:
    ImportJob.objects.filter(pk=job_id).exclude(status=ImportJob.Status.DONE).update(
        status=ImportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def import_jobs_stalled(now: datetime | None = None) -> list[int]:
    """Jobs whose run stopped (no batch for IMPORT_STALE_AFTER: a killed worker) or never began
    (queued that long: a lost message, the broker was away)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STALE_AFTER)
    return list(
        ImportJob.objects.filter(
            Q(status=ImportJob.Status.RUNNING, heartbeat_at__lt=stale)
            | Q(status=ImportJob.Status.QUEUED, created_at__lt=stale)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def rejected_csv(job: ImportJob) -> Iterator[str]:
    """The rejected rows as CSV: the file's own columns, then `line` and `error` ("field: message";
    several joined by " | "). Text that a spreadsheet would run as a formula is quoted
    (leads.export.safe_text); an import strips that quote again, so the fixed file goes back in."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield "\ufeff" + line([safe_text(name) for name in [*job.header, "line", "error"]])
    for rejection in job.rejections.order_by("line").iterator(chunk_size=2000):
        # The file's columns (a row with more values than the header is cut to its columns).
        values = [*rejection.values, *[""] * len(job.header)][: len(job.header)]
        message = " | ".join(f"{field}: {text}" for field, texts in rejection.errors.items() for text in texts)
        yield line([*(safe_text(v) for v in values), rejection.line, safe_text(message)])
