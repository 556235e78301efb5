"""Demo data hooks. `seed_demo` creates the leads app's users and leads, then runs the seeders
that other apps register in their own `demo.py` (found with Django's autodiscover_modules), in
order — so `leads` never imports them.

Seeders tell their stories through the real services, which stamp everything "now". A story that
the demo places in the past (a deal won in March) is then moved back in time as a whole with
`stories_backdate`: every timestamp of the lead's rows, in this app and in the apps that registered
a `backdater`, moves back by the same amount as the step of the story it was written in, and the
lead's score is recomputed from its moved activities (its inputs changed, so scoring is told in the
same transaction, as for any change). Only time moves; no state does.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField

Seeder = Callable[[Callable[[str], None]], None]
_SEEDERS: list[tuple[int, str, Seeder]] = []


def seeder(order: int) -> Callable[[Seeder], Seeder]:
    """Register `func(say)` to run after the leads are seeded; lower `order` runs first."""

    def register(func: Seeder) -> Seeder:
        key = f"{func.__module__}.{func.__qualname__}"
        if all(existing != key for _, existing, _ in _SEEDERS):
            _SEEDERS.append((order, key, func))
        return func

    return register


def seeders() -> list[Seeder]:
    return [func for _, _, func in sorted(_SEEDERS, key=lambda entry: (entry[0], entry[1]))]


# --- moving stories back in time ----------------------------------------------------------------

# (since, back): what was written from `since` on (until the next mark) moves back by `back`. The
# first mark's `since` is None: it covers everything before the second mark too (the lead's
# creation, its events, its handover).
Mark = tuple[datetime | None, timedelta]


@dataclass(frozen=True)
class Moves:
    """Where each written instant of the stories' leads goes: `moved(lead_id, at)`."""

    marks: Mapping[int, Sequence[Mark]]

    @property
    def lead_ids(self) -> list[int]:
        return sorted(self.marks)

    def back(self, lead_id: int, at: datetime) -> timedelta:
        marks = self.marks[lead_id]
        since: list[datetime] = []
        for s, _ in marks[1:]:
            if s is None:  # bisect could not order it
                raise ValueError(f"lead {lead_id}: only the first mark may start at None")
            since.append(s)
        return marks[bisect.bisect_right(since, at)][1]

    def moved(self, lead_id: int, at: datetime | None) -> datetime | None:
        return None if at is None else at - self.back(lead_id, at)


Backdater = Callable[[Moves], None]
_BACKDATERS: list[tuple[str, Backdater]] = []


def backdater(func: Backdater) -> Backdater:
    """Register `func(moves)`: moves the timestamps of its app's rows of `moves.lead_ids`."""
    key = f"{func.__module__}.{func.__qualname__}"
    if all(existing != key for existing, _ in _BACKDATERS):
        _BACKDATERS.append((key, func))
    return func


# Lead fields that are not the time of something that happened in the story (`updated_at`,
# `scored_at`: the scoring that follows the move writes it), or that are the handover's, which
# routing's backdater moves with the assignment they come from.
_LEAD_TIMES_KEPT = {"updated_at", "scored_at", "handed_over_at", "respond_by"}


def stories_backdate(stories: Mapping[int, Sequence[Mark]]) -> None:
    """Move these leads' stories back in time (see the module's docstring), in one transaction."""
    from .models import Activity, Lead, Qualification, StageChange
    from .services import lock_leads, score_inputs_changed

    if not stories:
        return
    moves = Moves({lead_id: list(marks) for lead_id, marks in stories.items()})
    ids = moves.lead_ids
    times = [f.name for f in Lead._meta.concrete_fields if isinstance(f, DateTimeField)]
    with transaction.atomic():
        lock_leads(ids)
        backdate_rows(Lead.objects.filter(pk__in=ids), moves, "pk", {t: t for t in times if t not in _LEAD_TIMES_KEPT})
        written = {"occurred_at": "created_at", "created_at": "created_at"}  # an event moves with its recording
        backdate_rows(Activity.objects.filter(lead_id__in=ids), moves, "lead_id", written)
        backdate_rows(StageChange.objects.filter(lead_id__in=ids), moves, "lead_id", {"at": "at"})
        backdate_rows(Qualification.objects.filter(lead_id__in=ids), moves, "lead_id", {"updated_at": "updated_at"})
        for _, func in _BACKDATERS:
            func(moves)
        score_inputs_changed(ids)  # the activities moved: their scores are recomputed


def backdate_rows(queryset, moves: Moves, lead_field: str, fields: Mapping[str, str]) -> None:
    """Move `fields` of these rows: {field: the field whose instant says which step wrote it}. A
    deadline moves with the moment it was set (`due_at` with `assigned_at`), not by its own value."""
    rows = list(queryset.order_by("pk").only("pk", lead_field, *fields, *fields.values()))
    for row in rows:
        lead_id = getattr(row, lead_field)
        anchors = {anchor: getattr(row, anchor) for anchor in set(fields.values())}
        for name, anchor in fields.items():
            value, at = getattr(row, name), anchors[anchor]
            if value is not None and at is not None:
                setattr(row, name, value - moves.back(lead_id, at))
    if rows:
        queryset.model.objects.bulk_update(rows, list(fields), batch_size=500)
