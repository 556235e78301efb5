"""scoring/sql.py: each PostgreSQL statement gives what its portable twin gives, on the same data."""

from datetime import UTC, datetime, timedelta

import pytest

from leads.models import Lead
from leads.tests.factories import ActivityFactory, LeadFactory
from scoring import bulk, selectors, sql
from scoring.models import PendingRescore, ScoringModel
from scoring.tests.factories import make_model

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SCORE_FIELDS = ("pk", "fit_score", "engagement_score", "score", "grade", "scored_at", "scoring_version", "scored_rev")


@pytest.fixture
def scored_world(db):
    """An active model, three leads (a CTO with pricing views and a demo, a CTO without activities,
    a lead who unsubscribed) and a fourth lead nobody asks about."""
    make_model(activate=True, threshold=40)
    cto = LeadFactory(job_title="cto")
    for days in (1, 2, 3, 4):  # four pricing views, the latest three count
        ActivityFactory(lead=cto, type="page_view", properties={"url": "/pricing"}, occurred_at=NOW - timedelta(days))
    ActivityFactory(lead=cto, type="demo_request", properties={}, occurred_at=NOW - timedelta(hours=5))
    quiet = LeadFactory(job_title="cto")
    gone = LeadFactory(job_title="intern")
    ActivityFactory(lead=gone, type="unsubscribe", properties={}, occurred_at=NOW - timedelta(days=30))
    other = LeadFactory(job_title="cto")
    return selectors.active_engine_model(), [cto.pk, quiet.pk, gone.pk], other.pk


@pytest.mark.postgres
def test_every_statement_gives_what_its_portable_twin_gives(scored_world, sql_twins):
    model, ids, other = scored_world

    # computing: the compiled statements and the ORM queries
    pg, portable = sql_twins(sql, lambda: sql.scores_compute_for(model, NOW, ids))
    assert pg[0] == portable[0]
    assert [(s.lead_id, round(s.fit, 6), round(s.engagement, 6), s.grade) for s in pg[0]] == [
        (ids[0], 20.0, round(30 * 0.5 ** (5 / 24 / 30) + sum(10 * 0.5 ** (d / 30) for d in (1, 2, 3)), 6), "B"),
        (ids[1], 20.0, 0.0, "B"),
        (ids[2], 0.0, -20.0, "D"),
    ]
    assert all("unnest" in q for q in pg[2]) and not any("unnest" in q for q in portable[2])

    # storing: write, then what the leads hold; a second write of the same scores changes nothing
    def scores_stored():
        return list(Lead.objects.filter(pk__in=[*ids, other]).order_by("pk").values_list(*SCORE_FIELDS))

    def write_twice():
        return sql.scores_write(pg[0], model.version, NOW), sql.scores_write(pg[0], model.version, NOW)

    pg, portable = sql_twins(sql, write_twice, scores_stored)
    assert pg[:2] == portable[:2]
    assert pg[0] == (3, 0)
    assert [row[-3:] for row in pg[1]] == [(NOW, model.version, 0)] * 3 + [(None, None, 0)]

    # lock_state
    pg, portable = sql_twins(sql, lambda: sql.lock_state([ids[2], ids[0], other]))
    assert pg[0] == portable[0]
    assert sorted(pg[0]) == sorted([ids[2], ids[0], other]) and pg[0][other] == (0, 0, None, None, "new")
    assert ["FOR NO KEY UPDATE" in q for q in pg[2]] == [True]

    # the pending rows: add (new, claimed, waiting), then delete
    claimed_until = NOW + timedelta(minutes=5)
    PendingRescore.objects.create(lead_id=ids[0], claimed_until=claimed_until)  # a task works on it
    PendingRescore.objects.create(lead_id=ids[1])  # waiting for its task

    def pending():
        return list(PendingRescore.objects.order_by("lead_id").values_list("lead_id", "claimed_until"))

    pg, portable = sql_twins(sql, lambda: sql.pending_add([ids[2], ids[1], ids[0]]), pending)
    assert pg[:2] == portable[:2]
    assert pg[0] == [ids[0], ids[2]]  # the released claim and the new row need a task
    assert pg[1] == [(ids[0], None), (ids[1], None), (ids[2], None)]

    pg, portable = sql_twins(sql, lambda: sql.pending_delete([ids[0], other]), pending)
    assert pg[1] == portable[1] == [(ids[1], None)]

    # model_still_active, for the active model, an archived one and one that does not exist
    archived = make_model(name="Old", status=ScoringModel.Status.ARCHIVED)
    versions = [model.version, archived.pk, archived.pk + 1000]
    pg, portable = sql_twins(sql, lambda: [sql.model_still_active(v) for v in versions])
    assert pg[0] == portable[0] == [True, False, False]
    assert all(q.endswith("FOR SHARE") for q in pg[2]) and not any("FOR SHARE" in q for q in portable[2])


def test_a_list_of_leads_and_their_range_give_the_same_scores(scored_world):
    """On SQLite the portable twin, on PostgreSQL the compiled statements, against the ORM range path."""
    model, ids, _ = scored_world
    by_range = [s for s in bulk.compute(model, NOW, id_range=(min(ids), max(ids))) if s.lead_id in ids]
    assert bulk.compute(model, NOW, lead_ids=ids) == by_range
