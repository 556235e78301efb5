"""Every write of the scoring app: model versions, activation, rescoring, and what scores change."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from leadportal.celery import enqueue
from leads.errors import Refused
from leads.models import Lead, Stage, User
from leads.selectors import lead_facts
from leads.services import lead_transition_many

from . import audit, bulk, engine, selectors, sql
from .models import PendingRescore, RescoreRun, ScoringModel, ScoringModelChange

log = logging.getLogger(__name__)
TASK_CHUNK = 500  # leads per incremental rescoring task
DISQUALIFIABLE = {Stage.NEW, Stage.MAL, Stage.MQL}


# --- model versions ------------------------------------------------------------


@transaction.atomic
def scoring_model_clone(*, source: ScoringModel, actor: User | None = None, name: str = "") -> ScoringModel:
    """A new draft with the settings and rules of `source`."""
    draft = ScoringModel.objects.create(
        name=name or f"{source.name} (copy)",
        mql_threshold=source.mql_threshold,
        min_grade=source.min_grade,
        half_life_days=source.half_life_days,
        grade_a_min=source.grade_a_min,
        grade_b_min=source.grade_b_min,
        grade_c_min=source.grade_c_min,
        notes=source.notes,
        created_by=actor,
        updated_by=actor,
    )
    for related in ("fit_rules", "behavior_rules", "exclusion_rules"):
        for rule in getattr(source, related).all():
            rule.pk = None
            rule.model = draft
            rule.save()
    ScoringModelChange.objects.create(model=draft, action="cloned", actor=actor, note=f"from v{source.pk}")
    return draft


class ActivationRefused(Refused, ValueError):
    """A scoring model that cannot be activated (it is not a draft). A ValueError too, as it was."""


@transaction.atomic
def scoring_model_activate(*, model: ScoringModel, actor: User | None = None) -> RescoreRun:
    """Make `model` the active version (the previous one is archived) and start rescoring every lead."""
    model = ScoringModel.objects.select_for_update().get(pk=model.pk)
    if model.status != ScoringModel.Status.DRAFT:
        raise ActivationRefused(
            f"Only a draft can be activated; v{model.pk} is {model.get_status_display().lower()}.", code="not_a_draft"
        )
    selectors.engine_model(model)  # refuses a model whose rules do not parse
    previous = ScoringModel.objects.select_for_update().filter(status=ScoringModel.Status.ACTIVE).first()
    # What changes for the leads, in words, for the audit trail: this version against the one it replaces.
    changed = audit.diff(audit.snapshot(previous), audit.snapshot(model)) if previous else []
    note = "\n".join([f"Replaces v{previous.pk}", *(changed or ["Same settings and rules"])]) if previous else ""
    if previous:
        previous.status = ScoringModel.Status.ARCHIVED
        previous.save(update_fields=["status", "updated_at"])
        ScoringModelChange.objects.create(model=previous, action="archived", actor=actor, note=f"by v{model.pk}")
    model.status = ScoringModel.Status.ACTIVE
    model.activated_at = timezone.now()
    model.activated_by = actor
    model.save(update_fields=["status", "activated_at", "activated_by", "updated_at"])
    ScoringModelChange.objects.create(model=model, action="activated", actor=actor, note=note)
    return rescore_run_start(model=model, kind=RescoreRun.Kind.ACTIVATION, actor=actor)


# --- storing computed scores: the one write path ------------------------------------------------
#
# A score is computed from a snapshot (bulk.snapshot: one consistent view of the lead and its
# activities) and stored afterwards, in a transaction of its own that
#   1. locks the leads in id order (the same order every writer of score inputs uses),
#   2. stores a score only if the lead's score_rev is still the one the computation read — a change
#      committed meanwhile raised it and queued a rescoring of its own — and never over a score of
#      the same model computed for a later instant (`scored_rev` says from which inputs that was),
#   3. deletes the pending rows those scores satisfy, and
#   4. moves the leads that crossed the threshold to MQL (or an exclusion rule to disqualified), in
#      that same transaction: a crossing is never lost between the score and the move, and the move
#      is made once because it is checked under the lock.


@dataclass
class Applied:
    """What `scores_apply` did with one batch of computed scores."""

    current: list[int] = field(default_factory=list)  # stored score now reflects the computation
    stale: list[int] = field(default_factory=list)  # inputs changed meanwhile: left to their own rescoring
    written: int = 0
    became_mql: int = 0
    disqualified: int = 0


def scores_apply(*, model: engine.Model, scores: Sequence[bulk.LeadScore], at: datetime) -> Applied:
    """Store `scores` (computed with `model` for the instant `at`) where they are still current, and
    make the lifecycle moves they call for. Runs inside the caller's transaction."""
    applied = Applied()
    if not scores:
        return applied
    now_state = sql.lock_state([s.lead_id for s in scores])
    fresh: list[bulk.LeadScore] = []
    for score in scores:
        state = now_state.get(score.lead_id)
        if state is None:
            continue  # deleted meanwhile
        rev, scored_rev, version, scored_at, stage = state
        if rev != score.rev:
            applied.stale.append(score.lead_id)  # changed meanwhile: its own pending rescoring will see it
            continue
        if version == model.version and scored_at is not None and scored_at > at:
            # Scored for a later instant already (a full run's batch is for the run's start). If
            # from these same inputs, that score stands; if from older ones, our score is no better
            # for being older: the pending row stays, and the rescoring it stands for does it now.
            if scored_rev == rev:
                applied.current.append(score.lead_id)
            else:
                applied.stale.append(score.lead_id)
            continue
        applied.current.append(score.lead_id)
        fresh.append(score if score.stage == stage else replace(score, stage=stage))
    applied.written = sql.scores_write(fresh, model.version, at)
    sql.pending_delete(applied.current)

    moves: dict[int, tuple[str, str]] = {}
    for score in fresh:
        if score.disqualified and score.stage in DISQUALIFIABLE:
            moves[score.lead_id] = (Stage.DISQUALIFIED, "Matched an exclusion rule")
        elif score.stage == Stage.MAL and engine.qualifies_for_mql(model, score.total, score.grade, score.disqualified):
            moves[score.lead_id] = (Stage.MQL, mql_reason(model, score.total, score.grade))
    moved = set(lead_transition_many(moves=moves))
    applied.became_mql = sum(1 for pk in moved if moves[pk][0] == Stage.MQL)
    applied.disqualified = len(moved) - applied.became_mql
    return applied


def mql_reason(model: engine.Model, total: float, grade: str) -> str:
    return (
        f"Score {total:.1f} reached the MQL threshold {model.mql_threshold:g} "
        f"with grade {grade} (model v{model.version})"
    )


# --- rescoring every lead (set-based, resumable) --------------------------------------------


@transaction.atomic
def rescore_run_start(*, model: ScoringModel, kind: str, actor: User | None = None) -> RescoreRun:
    """Start rescoring every lead with `model`; older running runs are superseded."""
    from .tasks import rescore_run_step_task

    RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING).update(
        status=RescoreRun.Status.SUPERSEDED, finished_at=timezone.now()
    )
    run = RescoreRun.objects.create(
        model=model,
        kind=kind,
        as_of=timezone.now(),
        total=Lead.objects.count(),
        batch_size=settings.SCORING_RESCORE_BATCH,
        started_by=actor,
    )
    enqueue(rescore_run_step_task, run.pk, 0)
    return run


def rescore_run_step(*, run_id: int, cursor: int | None = None) -> int | None:
    """Rescore the next batch of a run; return the run's new cursor while more remain, else None.

    `cursor` is where the caller believes the run stands: a step queued twice (the reconciler
    re-queued a run whose worker died, and the worker was only slow) finds the run moved on and
    does nothing, so one run never has two chains of steps. The batch is computed in one snapshot
    and stored with `scores_apply` in the transaction that advances the cursor, so a crash redoes
    at most the batch it was in, and `became_mql` counts each move exactly once."""
    run = RescoreRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RescoreRun.Status.RUNNING or (cursor is not None and cursor != run.cursor):
        return None
    start = run.cursor
    remaining = Lead.objects.filter(pk__gt=start).order_by("pk").values_list("pk", flat=True)
    nth = list(remaining[run.batch_size - 1 : run.batch_size])
    high = nth[0] if nth else remaining.aggregate(high=Max("pk"))["high"]
    model = selectors.engine_model_of(run.model_id)
    scores: list[bulk.LeadScore] = []
    if high is not None:
        with bulk.snapshot():
            scores = bulk.compute(model, run.as_of, id_range=(start + 1, high))
    with transaction.atomic():
        run = RescoreRun.objects.select_for_update().get(pk=run_id)
        if run.status != RescoreRun.Status.RUNNING or run.cursor != start:
            return None  # superseded, or another chain did this batch
        if high is None:
            run.status = RescoreRun.Status.DONE
            run.finished_at = timezone.now()
            run.done = max(run.done, run.total)
            run.save(update_fields=["status", "finished_at", "done", "updated_at"])
            return None
        applied = scores_apply(model=model, scores=scores, at=run.as_of)
        run.cursor = high
        run.done += len(scores)
        run.total = max(run.total, run.done)
        run.became_mql += applied.became_mql
        run.save(update_fields=["cursor", "done", "total", "became_mql", "updated_at"])
    return high


# --- rescoring some leads (as events arrive) ---------------------------------------------------


def rescore_request(*, lead_ids: Iterable[int]) -> list[int]:
    """Record that these leads need rescoring, in the caller's transaction (the durable part), and
    queue a task after the commit for those no task is queued for yet (the doorbell). A burst of
    events for one lead makes one pending row and one task; an event for a lead whose rescoring is
    running (its row claimed) releases the claim and queues a new task, which will see the event.
    Returns the ids a task was queued for."""
    from .tasks import rescore_leads_task

    if not selectors.active_model_id():
        return []
    ring = sql.pending_add(sorted(set(lead_ids)))
    for start in range(0, len(ring), TASK_CHUNK):
        enqueue(rescore_leads_task, ring[start : start + TASK_CHUNK])
    return ring


def claim_pending(*, lead_ids: Sequence[int], limit: int = TASK_CHUNK, now: datetime | None = None) -> list[int]:
    """Claim (lease) the pending rows of these leads and, up to `limit`, of other leads waiting
    (oldest first), for `settings.LOOP_STALE_AFTER` seconds; committed at once. Rows claimed by a
    live task are skipped; a claim whose task died expires and any later task takes the row."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.LOOP_STALE_AFTER)
    claimable = PendingRescore.objects.select_for_update(skip_locked=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    with transaction.atomic():
        claimed = list(claimable.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True)[:limit])
        room = limit - len(claimed)
        if room > 0:
            others = claimable.exclude(lead_id__in=lead_ids).order_by("requested_at", "lead_id")
            claimed += list(others.values_list("lead_id", flat=True)[:room])
        if claimed:
            PendingRescore.objects.filter(lead_id__in=claimed).update(claimed_until=now + lease)
    return sorted(claimed)


def rescore_leads(*, lead_ids: Sequence[int], now: datetime | None = None) -> list[bulk.LeadScore]:
    """Rescore these leads now with the active model (pending or not) and store what is current."""
    model = selectors.active_engine_model()
    if model is None:
        return []
    return _rescore(model, list(lead_ids), now or timezone.now()).scores


def rescore_pending(
    *, lead_ids: Sequence[int], now: datetime | None = None, limit: int = TASK_CHUNK
) -> list[bulk.LeadScore]:
    """What the worker runs for queued rescoring: claim the pending rows of these leads and, up to
    `limit`, of other leads waiting (oldest first), rescore them in one set-based pass and store the
    scores (`scores_apply`, which deletes the rows they satisfy). A burst of events thus makes few
    tasks that do the work; later tasks find their leads done and return at once. A worker that
    dies leaves its rows claimed until the claim expires; then the reconciler re-queues them."""
    model = selectors.active_engine_model()
    if model is None:
        PendingRescore.objects.filter(lead_id__in=lead_ids).delete()
        return []
    claimed = claim_pending(lead_ids=lead_ids, limit=limit)
    if not claimed:
        return []
    return _rescore(model, claimed, now or timezone.now()).scores


@dataclass
class _Rescored:
    scores: list[bulk.LeadScore]
    applied: Applied | None


def _rescore(model: engine.Model, lead_ids: list[int], now: datetime) -> _Rescored:
    from .tasks import rescore_leads_task

    with bulk.snapshot():
        scores = bulk.compute(model, now, lead_ids=lead_ids)
    with transaction.atomic():
        if not sql.model_still_active(model.version):
            # Activated meanwhile: the new model's full run covers these leads; let the rows go.
            PendingRescore.objects.filter(lead_id__in=lead_ids).update(claimed_until=None)
            enqueue(rescore_leads_task, lead_ids)
            return _Rescored([], None)
        applied = scores_apply(model=model, scores=scores, at=now)
    return _Rescored(scores, applied)


def lead_score_explain(
    *, lead: Lead, model: ScoringModel | None = None, now: datetime | None = None
) -> tuple[engine.Model, engine.Score] | tuple[None, None]:
    """The engine's score of one lead with its breakdown ("why this score")."""
    if model is None:
        spec = selectors.active_engine_model()
        if spec is None:
            return None, None
    else:
        spec = selectors.engine_model(selectors.model_with_rules(model.pk))
    return spec, engine.score_lead(spec, lead_facts(lead), selectors.activity_facts(lead), now or timezone.now())
