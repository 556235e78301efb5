"""Drift in scoring that the reconciler (loop.reconciler) finds and repairs.

Each check counts what is wrong now and repairs a bounded number of cases. "Stale" means older
than `settings.LOOP_STALE_AFTER` seconds: work that young may still be on its way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from leads.models import Activity, Lead, Stage, StageChange
from leads.selectors import lead_facts

from . import bulk, engine, selectors, services
from .models import PendingRescore, RescoreRun

REPAIR_LIMIT = 500  # leads (or runs) one check repairs per reconciler run
Window = tuple[int, int] | None  # the lead ids [low, high] a scan looks at; None: every lead
TOLERANCE = 1e-6  # stored and recomputed scores differ by float rounding at most


def window_after(after: int, size: int) -> tuple[tuple[int, int] | None, int]:
    """The next `size` lead ids after `after` as an id range, and where the next window starts
    (0 once the end is reached): scans that would read every lead walk round them instead."""
    nth = list(Lead.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[size - 1 : size])
    if nth:
        return (after + 1, nth[0]), nth[0]
    last = Lead.objects.filter(pk__gt=after).order_by("-pk").values_list("pk", flat=True).first()
    return ((after + 1, last) if last is not None else None), 0


def _within(leads, window: Window):
    return leads if window is None else leads.filter(pk__gte=window[0], pk__lte=window[1])


def _stale(now: datetime, factor: float = 1.0) -> datetime:
    return now - timedelta(seconds=settings.LOOP_STALE_AFTER * factor)


# --- pending rescoring that nobody is doing --------------------------------------------------


def _pending_stale(now: datetime):
    return PendingRescore.objects.filter(requested_at__lt=_stale(now)).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def pending_stale_count(now: datetime, window: Window = None) -> int:
    return _pending_stale(now).count()


def pending_stale_repair(now: datetime, window: Window = None, limit: int = REPAIR_LIMIT) -> int:
    """Rescore them here and now (the reconciler is a task: no other doorbell is needed)."""
    ids = list(_pending_stale(now).order_by("requested_at").values_list("lead_id", flat=True)[:limit])
    if not ids:
        return 0
    return len(services.rescore_pending(lead_ids=ids, limit=len(ids)))


# --- full runs that stopped moving ------------------------------------------------------------


def _runs_stalled(now: datetime):
    # Twice the stale time: a batch of a full run legitimately takes several seconds.
    return RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING, updated_at__lt=_stale(now, 2))


def runs_stalled_count(now: datetime, window: Window = None) -> int:
    return _runs_stalled(now).count()


def runs_stalled_repair(now: datetime, window: Window = None, limit: int = REPAIR_LIMIT) -> int:
    """Queue the next step from where the run stands; a step of a chain that was only slow finds
    the cursor moved and stops, so a run never has two chains."""
    from leadportal.celery import send

    from .tasks import rescore_run_step_task

    repaired = 0
    for run_id, cursor in _runs_stalled(now).values_list("pk", "cursor")[:limit]:
        RescoreRun.objects.filter(pk=run_id).update(updated_at=now)  # not again before it had a chance
        repaired += send(rescore_run_step_task, run_id, cursor)
    return repaired


# --- MAL leads whose stored score qualifies ----------------------------------------------------


def _mal_qualifying(model: engine.Model | None, window: Window = None):
    """MAL leads whose stored score and grade qualify and that were scored after they became MAL:
    storing that score should have made them MQL in the same transaction. A lead sent back to
    marketing (mql → mal, sal → mal) with its old score is not drift: it becomes an MQL again when
    it is next rescored (an event, the nightly run), as any MAL lead that qualifies does."""
    if model is None:
        return Lead.objects.none()
    grades = [g for g in engine.GRADES if g <= model.min_grade]
    entered_mal = (
        StageChange.objects.filter(lead=OuterRef("pk"), to_stage=Stage.MAL).order_by("-at").values("at")[:1]
    )
    # Scored by this model: a lead still scored by the previous one waits for the full run.
    return (
        _within(Lead.objects.all(), window)
        .filter(
            stage=Stage.MAL, scoring_version=model.version, score__gte=model.mql_threshold, grade__in=grades
        )
        .annotate(_mal_since=Coalesce(Subquery(entered_mal), F("created_at")))
        .filter(scored_at__gte=F("_mal_since"))
    )


def mal_qualifying_count(now: datetime, window: Window = None) -> int:
    return _mal_qualifying(selectors.active_engine_model(), window).count()


def mal_qualifying_repair(now: datetime, window: Window = None, limit: int = REPAIR_LIMIT) -> int:
    """Rescore them: the score is stored with the move it calls for (scores_apply), once."""
    ids = list(_mal_qualifying(selectors.active_engine_model(), window).values_list("pk", flat=True)[:limit])
    if ids:
        services.rescore_leads(lead_ids=ids)
    return len(ids)


# --- changes that no score reflects and no rescoring is pending for --------------------------


def _unscored_changes(window: Window = None):
    """Leads whose stored score was computed from older inputs than they have (`scored_rev` behind
    `score_rev`) with no rescoring pending. The change and its pending row commit together, and the
    score and the row's deletion too, so in any one snapshot this is exact: no stale time needed.
    While the active model's full run is going, the leads it has not reached yet are left to it."""
    model_id = selectors.active_model_id()
    if model_id is None:
        return Lead.objects.none()
    leads = _within(Lead.objects.all(), window).exclude(score_rev=F("scored_rev")).exclude(
        Exists(PendingRescore.objects.filter(lead_id=OuterRef("pk")))
    )
    run = RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING, model_id=model_id).first()
    return leads.filter(pk__lte=run.cursor) if run else leads


def unscored_changes_count(now: datetime, window: Window = None) -> int:
    return _unscored_changes(window).count()


def unscored_changes_repair(now: datetime, window: Window = None, limit: int = REPAIR_LIMIT) -> int:
    ids = list(_unscored_changes(window).values_list("pk", flat=True)[:limit])
    if ids:
        services.rescore_leads(lead_ids=ids)
    return len(ids)


# --- stored scores that disagree with the engine ---------------------------------------------


def mismatched(lead_ids: Sequence[int]) -> list[int]:
    """Of these leads, those whose stored score, fit, engagement or grade is not what the engine
    computes from their activities for the instant they were scored, or that were scored with
    another model than the active one (while no full run of the active model is still going),
    or never scored while a model is active. Leads with rescoring pending are left out: their
    score is known to be on its way."""
    model = selectors.active_engine_model()
    if model is None or not lead_ids:
        return []
    # One snapshot for all the reads: an event committed between two of them is not a mismatch.
    with bulk.snapshot():
        return _mismatched(model, lead_ids)


def _mismatched(model: engine.Model, lead_ids: Sequence[int]) -> list[int]:
    running = RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING, model_id=model.version).exists()
    pending = set(PendingRescore.objects.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True))
    leads = [lead for lead in Lead.objects.filter(pk__in=lead_ids).order_by("pk") if lead.pk not in pending]
    wrong: list[int] = []
    to_check: dict[datetime, list[Lead]] = defaultdict(list)
    for lead in leads:
        if lead.scoring_version != model.version or lead.scored_at is None:
            if not running:
                wrong.append(lead.pk)
        else:
            to_check[lead.scored_at].append(lead)
    # Leads a full run scored share its instant: those are recomputed in SQL, a group at a time;
    # the rest by the engine in Python, from one query for all their activities.
    single = [(lead, scored_at) for scored_at, group in to_check.items() if len(group) < 50 for lead in group]
    activities: dict[int, list[engine.ActivityFact]] = defaultdict(list)
    for lead_id, kind, at, props in Activity.objects.filter(lead_id__in=[lead.pk for lead, _ in single]).values_list(
        "lead_id", "type", "occurred_at", "properties"
    ):
        activities[lead_id].append(engine.ActivityFact(kind, at, props or {}))
    for lead, scored_at in single:
        expected = engine.score_lead(model, lead_facts(lead), activities[lead.pk], scored_at)
        if not _agrees(lead, expected.fit, expected.engagement, expected.grade):
            wrong.append(lead.pk)
    for at, group in to_check.items():
        if len(group) < 50:
            continue
        by_id = {lead.pk: lead for lead in group}
        for score in bulk.compute(model, at, lead_ids=list(by_id)):
            if not _agrees(by_id[score.lead_id], score.fit, score.engagement, score.grade):
                wrong.append(score.lead_id)
    return sorted(wrong)


def _agrees(lead: Lead, fit: float, engagement: float, grade: str) -> bool:
    return (
        math.isclose(lead.fit_score, fit, abs_tol=TOLERANCE)
        and math.isclose(lead.engagement_score, engagement, abs_tol=TOLERANCE)
        and math.isclose(lead.score, fit + engagement, abs_tol=TOLERANCE)
        and lead.grade == grade
    )


def sample(after: int, size: int) -> tuple[list[int], int]:
    """The next `size` lead ids after `after`, wrapping round, and where the next sample starts:
    the reconciler walks every lead in turn."""
    if size <= 0:
        return [], after
    ids = ids_after(after, size)
    if len(ids) < size:
        return sorted({*ids, *ids_after(0, size - len(ids))}), 0
    return ids, ids[-1]


def ids_after(after: int, size: int) -> list[int]:
    return list(Lead.objects.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:size])


def scores_repair(lead_ids: Sequence[int]) -> int:
    if lead_ids:
        services.rescore_leads(lead_ids=list(lead_ids))
    return len(lead_ids)
