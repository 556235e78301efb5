"""Every write of the scoring app: model versions, activation, rescoring, and what scores change."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from leads.lifecycle import TransitionRefused
from leads.models import Lead, Stage, User
from leads.selectors import lead_facts
from leads.services import lead_transition

from . import bulk, engine, selectors
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


@transaction.atomic
def scoring_model_activate(*, model: ScoringModel, actor: User | None = None) -> RescoreRun:
    """Make `model` the active version (the previous one is archived) and start rescoring every lead."""
    model = ScoringModel.objects.select_for_update().get(pk=model.pk)
    if model.status != ScoringModel.Status.DRAFT:
        raise ValueError(f"Only a draft can be activated; v{model.pk} is {model.status}.")
    selectors.engine_model(model)  # refuses a model whose rules do not parse
    previous = ScoringModel.objects.select_for_update().filter(status=ScoringModel.Status.ACTIVE).first()
    if previous:
        previous.status = ScoringModel.Status.ARCHIVED
        previous.save(update_fields=["status", "updated_at"])
        ScoringModelChange.objects.create(model=previous, action="archived", actor=actor, note=f"by v{model.pk}")
    model.status = ScoringModel.Status.ACTIVE
    model.activated_at = timezone.now()
    model.activated_by = actor
    model.save(update_fields=["status", "activated_at", "activated_by", "updated_at"])
    ScoringModelChange.objects.create(model=model, action="activated", actor=actor)
    return rescore_run_start(model=model, kind=RescoreRun.Kind.ACTIVATION, actor=actor)


# --- rescoring every lead (set-based, resumable) --------------------------------------------


@transaction.atomic
def rescore_run_start(*, model: ScoringModel, kind: str, actor: User | None = None) -> RescoreRun:
    """Start rescoring every lead with `model`; older running runs are superseded."""
    from .tasks import rescore_run_step

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
    transaction.on_commit(lambda: rescore_run_step.delay(run.pk))
    return run


def rescore_run_step(*, run_id: int) -> bool:
    """Rescore the next batch of a run; True while more remain. The batch, its scores and the
    run's cursor commit together, so a crash redoes at most the batch it was in."""
    with transaction.atomic():
        run = RescoreRun.objects.select_for_update().select_related("model").get(pk=run_id)
        if run.status != RescoreRun.Status.RUNNING:
            return False
        remaining = Lead.objects.filter(pk__gt=run.cursor).order_by("pk").values_list("pk", flat=True)
        nth = list(remaining[run.batch_size - 1 : run.batch_size])
        high = nth[0] if nth else remaining.aggregate(high=Max("pk"))["high"]
        if high is None:
            run.status = RescoreRun.Status.DONE
            run.finished_at = timezone.now()
            run.done = max(run.done, run.total)
            run.save(update_fields=["status", "finished_at", "done", "updated_at"])
            return False
        model = selectors.engine_model(selectors.model_with_rules(run.model_id))
        scores = bulk.compute(model, run.as_of, id_range=(run.cursor + 1, high))
        bulk.write(scores, model.version, run.as_of)
        run.cursor = high
        run.done += len(scores)
        run.total = max(run.total, run.done)
        run.save(update_fields=["cursor", "done", "total", "updated_at"])
    # Lifecycle moves happen after the batch committed, each in its own transaction.
    became_mql = apply_lifecycle(model, scores)
    if became_mql:
        RescoreRun.objects.filter(pk=run_id).update(became_mql=F("became_mql") + became_mql)
    return True


# --- rescoring some leads (as events arrive) ---------------------------------------------------


def rescore_request(*, lead_ids: Iterable[int]) -> list[int]:
    """Queue rescoring of these leads, unless already queued. A burst of events for one lead makes
    one pending row and one task. Returns the ids that were newly queued."""
    from .tasks import rescore_leads

    if not selectors.active_model_id():
        return []
    fresh = _add_pending(sorted(set(lead_ids)))
    for start in range(0, len(fresh), TASK_CHUNK):
        chunk = fresh[start : start + TASK_CHUNK]
        transaction.on_commit(lambda chunk=chunk: rescore_leads.delay(chunk))
    return fresh


def _add_pending(ids: list[int]) -> list[int]:
    """Insert pending rows for these leads; return the ids that were not pending yet.
    PostgreSQL answers in one statement (ON CONFLICT DO NOTHING RETURNING), even under races."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PendingRescore._meta.db_table} (lead_id, requested_at) "
                "SELECT unnest(%s::bigint[]), now() ON CONFLICT DO NOTHING RETURNING lead_id",
                [ids],
            )
            return sorted(lead_id for (lead_id,) in cursor.fetchall())
    pending = set(PendingRescore.objects.filter(lead_id__in=ids).values_list("lead_id", flat=True))
    fresh = [i for i in ids if i not in pending]
    PendingRescore.objects.bulk_create([PendingRescore(lead_id=i) for i in fresh], ignore_conflicts=True)
    return fresh


def rescore_leads(*, lead_ids: Sequence[int], now: datetime | None = None) -> list[bulk.LeadScore]:
    """Rescore these leads now with the active model; move those that crossed the threshold to MQL.

    Their pending rows are claimed first, in a commit of their own: an event that arrives while we
    compute queues a new run instead of being folded into a computation that cannot see it.
    """
    PendingRescore.objects.filter(lead_id__in=lead_ids).delete()
    model = selectors.active_engine_model()
    if model is None:
        return []
    now = now or timezone.now()
    with transaction.atomic():
        scores = bulk.compute(model, now, lead_ids=list(lead_ids))
        bulk.write(scores, model.version, now)
    apply_lifecycle(model, scores)
    return scores


def rescore_pending(*, lead_ids: Sequence[int], now: datetime | None = None, limit: int = TASK_CHUNK):
    """What the worker runs for queued rescoring: claim the pending rows of these leads and, up to
    `limit`, of other leads waiting (oldest first), rescore them all in one set-based pass, and
    delete the claimed rows in the same transaction as the scores.

    A burst of events thus makes few tasks that do the work, and later tasks find their leads done
    (no pending row) and return at once. The claimed rows stay locked until the commit: an event for
    one of those leads that arrives meanwhile waits for it, then queues a fresh row and task, so
    nothing is folded into a computation that could not see it, and a worker that dies mid-way
    leaves its rows pending for `recover_stalled`. Rows locked by another worker are skipped.
    """
    model = selectors.active_engine_model()
    if model is None:
        PendingRescore.objects.filter(lead_id__in=lead_ids).delete()
        return []
    now = now or timezone.now()
    pending = PendingRescore.objects.select_for_update(skip_locked=True)
    with transaction.atomic():
        claimed = list(pending.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True))
        room = limit - len(claimed)
        if room > 0:
            others = pending.exclude(lead_id__in=lead_ids).order_by("requested_at", "lead_id")
            claimed += list(others.values_list("lead_id", flat=True)[:room])
        if not claimed:
            return []
        scores = bulk.compute(model, now, lead_ids=claimed)
        bulk.write(scores, model.version, now)
        PendingRescore.objects.filter(lead_id__in=claimed).delete()
    apply_lifecycle(model, scores)
    return scores


def apply_lifecycle(model: engine.Model, scores: Iterable[bulk.LeadScore]) -> int:
    """mal → mql for leads that crossed the threshold (once: the move re-checks the stage under a
    lock), → disqualified for leads an exclusion rule rules out. Returns how many became MQL."""
    became_mql = 0
    for score in scores:
        try:
            if score.disqualified and score.stage in DISQUALIFIABLE:
                lead_transition(
                    lead=Lead(pk=score.lead_id), to_stage=Stage.DISQUALIFIED, reason="Matched an exclusion rule"
                )
            elif score.stage == Stage.MAL and engine.qualifies_for_mql(
                model, score.total, score.grade, score.disqualified
            ):
                lead_transition(
                    lead=Lead(pk=score.lead_id),
                    to_stage=Stage.MQL,
                    reason=f"Score {score.total:.1f} reached the MQL threshold {model.mql_threshold:g} "
                    f"with grade {score.grade} (model v{model.version})",
                )
                became_mql += 1
        except TransitionRefused:
            log.info("Lead %s moved meanwhile; no lifecycle change from scoring", score.lead_id)
    return became_mql


def lead_score_explain(*, lead: Lead, model: ScoringModel | None = None, now: datetime | None = None):
    """The engine's score of one lead with its breakdown ("why this score")."""
    if model is None:
        spec = selectors.active_engine_model()
        if spec is None:
            return None, None
    else:
        spec = selectors.engine_model(selectors.model_with_rules(model.pk))
    return spec, engine.score_lead(spec, lead_facts(lead), selectors.activity_facts(lead), now or timezone.now())
