"""The reconciler: finds the drift the loop can have and repairs it, with bounded work per run.

Kinds that would read every lead (a qualifying MAL lead, a change no score reflects) look at a
window of LOOP_WINDOW lead ids per run, walking round all of them, so that a run stays cheap at a
million leads; the nightly run and `check_loop --full` look at every lead.

The durable records are the state itself — pending rescoring rows, a full run's cursor, an MQL
without an open assignment, an assignment nobody was told about, a stored score that is not the
engine's. Whatever a lost message, a killed worker or an outage left undone shows up as one of the
kinds below, and the repair does it (once: every repair goes through the same guarded services as
the workers). Beat runs `reconcile()` every minute (a sample of the stored scores), and nightly
with `full=True` (every lead's score). `manage.py check_loop` prints the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from routing import drift as routing_drift
from scoring import drift as scoring_drift

from .models import LoopRun


@dataclass(frozen=True)
class Kind:
    """One kind of drift: how to count it and how to repair (a bounded number of) it, at an instant
    and, for the kinds that would scan every lead, within a window of lead ids (None: all)."""

    name: str
    label: str
    meaning: str
    count: Callable[[datetime, tuple[int, int] | None], int]
    repair: Callable[[datetime, tuple[int, int] | None], int]


KINDS: tuple[Kind, ...] = (
    Kind(
        "pending_stale",
        "Rescoring waiting too long",
        "Leads whose rescoring was asked for (an event, a profile change) more than the stale time ago, "
        "and that no live task is working on: a lost task or a dead worker. Repair: rescored now.",
        scoring_drift.pending_stale_count,
        scoring_drift.pending_stale_repair,
    ),
    Kind(
        "runs_stalled",
        "Full rescorings that stopped",
        "Full rescoring runs (activation, nightly decay, rescore_all) whose last batch is older than twice the "
        "stale time: their worker died. Repair: the next batch is queued from where the run stands.",
        scoring_drift.runs_stalled_count,
        scoring_drift.runs_stalled_repair,
    ),
    Kind(
        "mal_qualifying",
        "Qualifying leads not yet MQL",
        "Marketing-accepted leads whose stored score and grade reach the active model's MQL threshold. "
        "Each run looks at the next LOOP_WINDOW leads in turn, the nightly run at all. "
        "Repair: rescored, which makes them MQL in the same transaction as their score.",
        scoring_drift.mal_qualifying_count,
        scoring_drift.mal_qualifying_repair,
    ),
    Kind(
        "unscored_changes",
        "Changes no score reflects",
        "Leads whose stored score was computed before their latest change (an event, a profile edit) "
        "while no rescoring is pending for them: the change's rescoring was lost. Each run looks at the next "
        "LOOP_WINDOW leads in turn, the nightly run at all. Repair: rescored.",
        scoring_drift.unscored_changes_count,
        scoring_drift.unscored_changes_repair,
    ),
    Kind(
        "unrouted_mqls",
        "MQLs without an assignment",
        "MQLs that have had no open assignment (waiting for acceptance, in a pool, or visibly unassigned) "
        "for longer than the stale time: their routing task was lost. Repair: routed now.",
        routing_drift.unrouted_count,
        routing_drift.unrouted_repair,
    ),
    Kind(
        "unnotified",
        "Assignees not told",
        "Assignments of the last day, still open, whose rep, partner or pool was never e-mailed. "
        "Repair: the e-mail is sent.",
        routing_drift.unnotified_count,
        routing_drift.unnotified_repair,
    ),
)
SCORES = Kind(
    "score_mismatch",
    "Stored scores that disagree",
    "Leads whose stored score, fit, engagement or grade differs from what the engine computes from all "
    "their activities for the instant they were scored, or that were scored with another model than the "
    "active one. Each run checks the next 200 leads in turn (LOOP_SAMPLE); the nightly run checks every lead. "
    "Repair: rescored.",
    lambda now, window: 0,
    lambda now, window: 0,
)
ALL_KINDS = (*KINDS, SCORES)
FULL_CHUNK = 2_000  # leads per step when every score is checked


@dataclass
class Report:
    found: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    checked_scores: int = 0
    sample_cursor: int = 0
    window: tuple[int, int] | None = None  # the lead ids the scanning kinds looked at (None: all)
    window_cursor: int = 0

    @property
    def drift(self) -> int:
        return sum(self.found.values())


def check(*, repair: bool, full: bool = False, sample_size: int | None = None, now: datetime | None = None) -> Report:
    """Count every kind of drift and, with `repair`, repair (a bounded number of) each."""
    now = now or timezone.now()
    report = Report()
    last, last_window = LoopRun.objects.values_list("sample_cursor", "window_cursor").first() or (0, 0)
    if not full:
        report.window, report.window_cursor = scoring_drift.window_after(last_window, settings.LOOP_WINDOW)
    for kind in KINDS:
        report.found[kind.name] = kind.count(now, report.window)
        report.repaired[kind.name] = kind.repair(now, report.window) if repair and report.found[kind.name] else 0
    if full:
        wrong, checked, cursor = [], 0, 0
        while batch := scoring_drift.ids_after(cursor, FULL_CHUNK):
            wrong += scoring_drift.mismatched(batch)
            checked, cursor = checked + len(batch), batch[-1]
        report.sample_cursor, report.window_cursor = last, last_window  # the regular walk goes on
    else:
        batch, report.sample_cursor = scoring_drift.sample(
            last, settings.LOOP_SAMPLE if sample_size is None else sample_size
        )
        wrong, checked = scoring_drift.mismatched(batch), len(batch)
    report.found[SCORES.name] = len(wrong)
    report.repaired[SCORES.name] = scoring_drift.scores_repair(wrong[: scoring_drift.REPAIR_LIMIT]) if repair else 0
    report.checked_scores = checked
    return report


def reconcile(*, full: bool = False, repair: bool = True) -> LoopRun | None:
    """One reconciler run, recorded. Returns None when another run holds the lock (PostgreSQL)."""
    with _single_run() as mine:
        if not mine:
            return None
        started, clock = timezone.now(), time.monotonic()
        report = check(repair=repair, full=full, now=started)
        return LoopRun.objects.create(
            started_at=started,
            finished_at=timezone.now(),
            full=full,
            repair=repair,
            found=report.found,
            repaired=report.repaired,
            checked_scores=report.checked_scores,
            sample_cursor=report.sample_cursor,
            window_cursor=report.window_cursor,
            duration_ms=round((time.monotonic() - clock) * 1000),
        )


class _single_run:
    """A session advisory lock on PostgreSQL, so two reconcilers never repair the same drift at once."""

    KEY = 0x10_0B_10_0B

    def __enter__(self) -> bool:
        if connection.vendor != "postgresql":
            self.held = True
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.KEY])
            self.held = cursor.fetchone()[0]
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.KEY])
