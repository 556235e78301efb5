"""Preview a draft model against the active one, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from django.db.models import Max
from django.utils import timezone

from leads import signals
from leads.models import Lead, Stage
from leads.selectors import lead_facts

from . import bulk, engine, selectors
from .models import ScoringModel

PREVIEW_MAX_LEADS = 50_000
BATCH = 10_000
BINS = 12
HANDOVER_MAX = 2_000  # leads the hand-over forecast routes one by one

# Who would be handed the leads that become MQL: routing knows, and scoring must not import it (nor
# routing scoring), so the preview asks through leads.signals.handover_forecast_requested, which
# routing answers (routing.apps, routing.receivers).

@dataclass
class Preview:
    leads: int
    truncated: bool
    new_mql: int  # in MAL now, would become MQL on activation
    drop_below: int  # at or above today's threshold, below the draft's
    grade_changes: int
    newly_disqualified: int
    histogram: list[dict] = field(default_factory=list)  # bins with active and draft counts
    samples: list[dict] = field(default_factory=list)  # biggest movers
    # Who would get the new MQLs now (None: no forecast registered); how many leads it covers.
    handover: list[dict] | None = None
    handover_leads: int = 0


def preview(draft: ScoringModel, active: ScoringModel | None, now=None) -> Preview:
    now = now or timezone.now()
    new_spec = selectors.engine_model(selectors.model_with_rules(draft.pk))
    old_spec = selectors.engine_model(selectors.model_with_rules(active.pk)) if active else None
    top = Lead.objects.aggregate(top=Max("pk"))["top"] or 0
    low = max(top - PREVIEW_MAX_LEADS + 1, 1)
    total = Lead.objects.filter(pk__gte=low).count()
    rows: list[tuple[bulk.LeadScore | None, bulk.LeadScore]] = []
    for start in range(low, top + 1, BATCH):
        span = (start, min(start + BATCH - 1, top))
        new_scores = bulk.compute(new_spec, now, id_range=span)
        old_scores = {s.lead_id: s for s in bulk.compute(old_spec, now, id_range=span)} if old_spec else {}
        rows.extend((old_scores.get(s.lead_id), s) for s in new_scores)
    result = Preview(
        leads=total,
        truncated=Lead.objects.count() > total,
        new_mql=0,
        drop_below=0,
        grade_changes=0,
        newly_disqualified=0,
    )
    new_mqls = []
    for old, new in rows:
        if new.stage == Stage.MAL and engine.qualifies_for_mql(new_spec, new.total, new.grade, new.disqualified):
            result.new_mql += 1
            new_mqls.append(new)
        if old and old_spec and old.total >= old_spec.mql_threshold and new.total < new_spec.mql_threshold:
            result.drop_below += 1
        if old and old.grade != new.grade:
            result.grade_changes += 1
        if new.disqualified and not (old and old.disqualified):
            result.newly_disqualified += 1
    result.handover, result.handover_leads = _handover(new_mqls)
    result.histogram = _histogram([o.total for o, _ in rows if o], [n.total for _, n in rows])
    movers = sorted(rows, key=lambda r: abs(r[1].total - (r[0].total if r[0] else 0.0)), reverse=True)[:20]
    emails = dict(Lead.objects.filter(pk__in=[n.lead_id for _, n in movers]).values_list("pk", "email"))
    result.samples = [
        {
            "lead_id": new.lead_id,
            "email": emails.get(new.lead_id, ""),
            "stage": Stage(new.stage).label,
            "old_score": old.total if old else None,
            "old_grade": old.grade if old else "",
            "new_score": new.total,
            "new_grade": new.grade,
            "change": new.total - (old.total if old else 0.0),
        }
        for old, new in movers
    ]
    return result


def _handover(new_mqls: list) -> tuple[list[dict] | None, int]:
    """Route the leads that would become MQL (the first HANDOVER_MAX, oldest first) with the
    forecast routing answers, with the draft's score and grade: to whom, how many each."""
    if not signals.handover_forecast_requested.has_listeners():
        return None, 0
    scores = {s.lead_id: s for s in sorted(new_mqls, key=lambda s: s.lead_id)[:HANDOVER_MAX]}
    leads = Lead.objects.in_bulk(list(scores))
    pairs = []
    for pk in sorted(leads):
        facts = lead_facts(leads[pk])
        score = scores[pk]
        facts.update(score=score.total, fit_score=score.fit, engagement_score=score.engagement, grade=score.grade)
        pairs.append((leads[pk], facts))
    answers = signals.handover_forecast_requested.send(sender="scoring", leads=pairs)
    rows: list[dict] = [row for _, answer in answers for row in cast(list[dict], answer)]
    return rows, len(pairs)


def _histogram(old: list[float], new: list[float]) -> list[dict]:
    values = old + new
    if not values:
        return []
    low, high = min(values), max(values)
    width = max((high - low) / BINS, 1.0)
    bins = [{"from": low + i * width, "to": low + (i + 1) * width, "active": 0, "draft": 0} for i in range(BINS)]
    for key, series in (("active", old), ("draft", new)):
        for value in series:
            bins[min(int((value - low) / width), BINS - 1)][key] += 1
    peak = max(max(b["active"], b["draft"]) for b in bins) or 1
    for b in bins:
        b["active_pct"] = round(100 * b["active"] / peak)
        b["draft_pct"] = round(100 * b["draft"] / peak)
    return bins
