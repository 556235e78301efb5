"""The changes feed: every lead changed after a cursor, in an order no concurrent write can break.

The key. Each write that changes what a lead looks like — capture and update, a stage move, a score
written (also scoring's bulk UPDATE), a handover, an erasure, a delete, an activity stored — gives the
lead a *change key* from the database itself: triggers on `leads_lead` and `leads_activity` (leads.sql,
migration 0017) upsert the lead's row of `leads_leadchange` with `(change_xid, change_seq)`, the
writing transaction's id and the next number of one sequence. No caller can forget it, and bulk SQL
that never calls a service is covered too. One row per lead gives "each lead once, with its current
state"; a deleted lead keeps its row, marked `deleted` (a tombstone). The key lives beside the lead,
not on it, so lead updates stay in place (HOT) and an activity does not rewrite its lead.

Why not the sequence alone. A number taken at write time can commit out of order: T1 takes 10, T2
takes 11 and commits first; a reader that has seen 11 would step over 10 for ever.

The horizon (PostgreSQL). The feed orders by `(change_xid, change_seq)` and serves only keys whose
transaction is older than the oldest transaction still running (`pg_snapshot_xmin`). Every such
transaction has ended, so nothing can still appear with a smaller xid; and any write that has not
been served yet — in flight now, or still to come — will carry an xid at or above today's horizon,
which only rises. So a reader that moves its cursor through served keys never steps over a change.
(Ordering by seq with an xid filter would not do: a transaction with an older xid can take its
number later.) The price: a transaction left open holds the feed back until it ends — changes wait,
none are lost. SQLite has one writer at a time, committing in the order it took its numbers, so
there the key is `(0, seq)` and needs no horizon.

A lead changed again moves to its new key: it is served once per version a reader pages past, never
twice for one version. A page's `next` cursor is its last key (or the request's, when it is empty).
A deleted lead comes as `{"id": …, "deleted": true}`, an erased one (`Lead.erased_at` set, by the
erasure service's UPDATE — which the trigger stamps like any other) as `{"id": …, "erased": true}`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from . import sql
from .errors import Invalid
from .models import Lead

LIMIT_DEFAULT = 100
LIMIT_MAX = 1000
START = (-1, -1)


def cursor_encode(key: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}.{key[1]}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str | None) -> tuple[int, int]:
    """The key a cursor stands for; no cursor (or an empty one) is the feed's start."""
    if not cursor:
        return START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        xid, seq = (int(part) for part in raw.split("."))
        if not all(START[0] <= part < 2**63 for part in (xid, seq)):  # the columns are bigint
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid({"after": "Not a cursor of this feed: pass a `next` you were given."}) from None
    return xid, seq


@dataclass(frozen=True)
class Change:
    key: tuple[int, int]
    lead_id: int
    lead: Lead | None  # None: deleted (a tombstone)


def changes_page(*, after: tuple[int, int], limit: int) -> tuple[list[Change], tuple[int, int]]:
    """The next `limit` changes after the key `after`, and the key to ask after next time."""
    rows = sql.changes_after(after[0], after[1], limit=limit)
    leads = Lead.objects.in_bulk([pk for _, _, pk, deleted in rows if not deleted])
    changes = []
    for xid, seq, pk, deleted in rows:
        lead = None if deleted else leads.get(pk)
        if lead is None and not deleted:
            # Deleted since the page's read: its delete has a newer key and comes as a tombstone then.
            continue
        changes.append(Change(key=(xid, seq), lead_id=pk, lead=lead))
    return changes, ((rows[-1][0], rows[-1][1]) if rows else after)


def is_erased(lead: Lead) -> bool:
    """An erased lead (leads.erasure) keeps its row, anonymised; the feed gives only its tombstone."""
    return lead.erased_at is not None


def change_body(change: Change, lead_data: dict[str, Any] | None) -> dict[str, Any]:
    cursor = cursor_encode(change.key)
    if change.lead is None:
        return {"id": change.lead_id, "deleted": True, "change": cursor}
    if is_erased(change.lead) or lead_data is None:
        return {"id": change.lead_id, "erased": True, "change": cursor}
    return {**lead_data, "erased": False, "change": cursor}
