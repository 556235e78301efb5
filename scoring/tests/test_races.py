"""Interleavings of the scoring write path on real PostgreSQL, each made to happen at the worst moment.

A second thread (its own database connection, as a second worker or an API process would have)
commits an event batch while a rescoring is between its computation and its write, or between two
of its queries. Celery is eager here: the event's own rescoring runs in that thread, as another
worker would run it. The invariant every test checks: once nothing is running, the stored score is
the engine's from all committed activities, and the MQL move happened exactly once.
"""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from leads import consent
from leads.models import Activity, Lead, Stage, StageChange
from leads.services import events_ingest, lead_capture
from loop import reconciler
from scoring import bulk, drift, engine, selectors, services, sql
from scoring.models import PendingRescore, RescoreRun
from scoring.tests.factories import make_model

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_another_connection(work) -> None:
    """Run `work()` in a thread of its own (its own connection and transactions) and wait for it."""
    errors: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the other connection is stuck"
    if errors:
        raise errors[0]


def demo_request(email: str, external_id: str):
    return lambda: events_ingest(
        events=[{"email": email, "type": "demo_request", "occurred_at": timezone.now(), "external_id": external_id}]
    )


def engine_score(lead: Lead, at) -> engine.Score:
    model = selectors.active_engine_model()
    return engine.score_lead(model, lead_facts_of(lead), selectors.activity_facts(lead), at)


def lead_facts_of(lead: Lead):
    from leads.selectors import lead_facts

    return lead_facts(lead)


def capture_mal(email: str) -> Lead:
    lead, _ = lead_capture(data={"email": email, "job_title": "CTO"})
    consent.consent_confirm(token=consent.token_for(lead, consent.CONFIRM))
    lead.refresh_from_db()
    return lead


def test_an_event_committed_while_its_lead_is_being_rescored_is_scored(monkeypatch):
    """Before: the running task held the pending row, the event's "add pending" found it and queued
    nothing, the task deleted the row with a score that left the event out: 20 and MAL for ever."""
    make_model(activate=True, threshold=45)
    lead = capture_mal("cto@race.example")  # scored 20 (fit) by its capture's own rescoring
    assert (lead.stage, lead.score) == (Stage.MAL, 20)
    Activity.objects.create(lead=lead, type="page_view", occurred_at=timezone.now(), properties={"url": "/"})
    PendingRescore.objects.create(lead=lead)

    real_compute, injected = bulk.compute, []

    def compute_then_event_arrives(*args, **kwargs):
        scores = real_compute(*args, **kwargs)
        if not injected:
            injected.append(True)
            in_another_connection(demo_request("cto@race.example", "late-1"))
        return scores

    monkeypatch.setattr(bulk, "compute", compute_then_event_arrives)
    scores = services.rescore_pending(lead_ids=[lead.pk])

    assert [s.total for s in scores] == [20]  # what this task computed, without the event
    lead.refresh_from_db()
    expected = engine_score(lead, lead.scored_at)
    assert lead.score == pytest.approx(expected.total, abs=1e-6) == pytest.approx(50, abs=0.01)
    assert lead.stage == Stage.MQL
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    assert not PendingRescore.objects.exists()


def test_the_queries_of_one_computation_see_one_state():
    """An event batch committed between the fit query and the behaviour queries of a computation is
    either wholly in it or wholly out of it (before: half, since each statement saw its own state)."""
    make_model(activate=True, threshold=200)
    lead = capture_mal("snap@race.example")
    model = selectors.active_engine_model()
    real_run, calls = sql._run, []

    def run_then_event(statement, lead_ids, now):
        rows = real_run(statement, lead_ids, now)
        calls.append(1)
        if len(calls) == 1:  # after the fit query, before the behaviour queries
            in_another_connection(demo_request("snap@race.example", "between-queries"))
        return rows

    with mock.patch.object(sql, "_run", run_then_event), bulk.snapshot():
        (computed,) = bulk.compute(model, timezone.now(), lead_ids=[lead.pk])

    assert (computed.fit, computed.engagement, computed.rev) == (20, 0, lead.score_rev)
    lead.refresh_from_db()
    assert lead.score_rev == computed.rev + 1  # the event's revision, which this computation did not see


def test_a_full_rescoring_never_writes_an_older_snapshot_over_a_newer_score(monkeypatch, settings):
    """Before: the run's batch, computed before the event, was written after the event's own
    rescoring and replaced its score (`scored_at` = the run's as_of)."""
    settings.SCORING_RESCORE_BATCH = 1000
    model = make_model(activate=True, threshold=45)
    leads = [capture_mal(f"run{i}@race.example") for i in range(5)]
    hot = leads[2]
    run = RescoreRun.objects.create(model=model, kind="manual", as_of=timezone.now(), total=5, batch_size=1000)

    real_compute, injected = bulk.compute, []

    def compute_then_event_arrives(*args, **kwargs):
        scores = real_compute(*args, **kwargs)
        if kwargs.get("id_range") and not injected:
            injected.append(True)
            in_another_connection(demo_request(hot.email, "during-the-run"))
        return scores

    monkeypatch.setattr(bulk, "compute", compute_then_event_arrives)
    assert services.rescore_run_step(run_id=run.pk, cursor=0) == leads[-1].pk

    hot.refresh_from_db()
    assert hot.score == pytest.approx(50, abs=0.01) and hot.scored_at > run.as_of
    assert hot.stage == Stage.MQL
    assert drift.mismatched([lead.pk for lead in leads]) == []
    run.refresh_from_db()
    assert (run.done, run.became_mql) == (5, 0)  # the hot lead's move was its own rescoring's


def test_a_crash_inside_the_score_transaction_leaves_the_work_pending_and_the_reconciler_does_it(settings):
    """The score and the MQL move commit together or not at all; the pending row survives."""
    settings.LOOP_STALE_AFTER = 0.0
    make_model(activate=True, threshold=45)
    lead = capture_mal("crash@race.example")
    with (
        mock.patch("scoring.services.lead_transition_many", side_effect=RuntimeError("worker killed")),
        pytest.raises(RuntimeError),
    ):
        demo_request("crash@race.example", "before-the-crash")()
    lead.refresh_from_db()
    assert (lead.stage, lead.score) == (Stage.MAL, 20)  # neither the score nor the move
    assert PendingRescore.objects.filter(lead=lead).exists()
    PendingRescore.objects.filter(lead=lead).update(claimed_until=timezone.now() - timedelta(seconds=1))

    run = reconciler.reconcile()

    lead.refresh_from_db()
    assert run.repaired["pending_stale"] == 1
    assert (lead.stage, round(lead.score)) == (Stage.MQL, 50)
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1


def test_a_broker_error_after_the_commit_fails_nothing_and_the_mql_is_routed_later(settings):
    """Before: kombu's OperationalError from `route_lead.delay` escaped the task after the commit
    (autoretry_for=(ConnectionError,) does not cover it) and the MQL was never routed."""
    from routing.models import Assignment
    from routing.tasks import route_lead_task
    from routing.tests.factories import make_rule, make_team

    settings.LOOP_STALE_AFTER = 0.0
    team, reps = make_team(size=2)
    make_rule("Everyone", team=team)
    make_model(activate=True, threshold=45)
    capture_mal("broker@race.example")
    with (
        mock.patch.object(route_lead_task, "delay", side_effect=BrokerDown("Error 111 connecting to 127.0.0.1:6379")),
        transaction.atomic(),
    ):
        result = events_ingest(
            events=[{"email": "broker@race.example", "type": "demo_request", "occurred_at": timezone.now()}]
        )
    assert result["stored"] == 1
    lead = Lead.objects.get(email="broker@race.example")
    assert lead.stage == Stage.MQL and not Assignment.objects.filter(lead=lead).exists()

    run = reconciler.reconcile()

    assert run.repaired["unrouted_mqls"] == 1
    assert Assignment.objects.get(lead=lead).user in reps
