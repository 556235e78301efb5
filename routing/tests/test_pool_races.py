"""Parallel claims on PostgreSQL, each in its own thread and connection, started together.

Invariant: a rep's open leads never exceed their capacity, and every pooled lead ends claimed once or
still pooled — never claimed twice. Before: 8 parallel blind pulls by a rep at 37/39 took it to 41/39
(the capacity was checked before, not under, a lock)."""

import threading

import pytest
from django.db import connection

from leads.models import Lead, Stage
from leads.tests.factories import LeadFactory
from routing import services
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PULLS = 8


def _together(count, work):
    start = threading.Barrier(count)
    results, lock = [], threading.Lock()

    def run():
        try:
            start.wait()
            outcome = work()
        except services.RoutingError as refused:
            outcome = refused.code
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _pool(team, size):
    make_rule("Blind", team=team, target="pool", strategy="pool", pool_mode="blind")
    leads = LeadFactory.create_batch(size, stage=Stage.MAL)
    for lead in leads:
        Lead.objects.filter(pk=lead.pk).update(stage=Stage.MQL)
        services.lead_route(lead_id=lead.pk)
    assert Assignment.objects.filter(status="pooled").count() == size
    return leads


def test_parallel_blind_pulls_of_one_rep_stop_at_capacity():
    team, (rep,) = make_team(size=1, capacity=39)
    LeadFactory.create_batch(37, owner=rep, stage=Stage.SAL)
    _pool(team, 10)

    results = _together(PULLS, lambda: services.pool_claim(user=rep).lead_id)

    claimed = [r for r in results if isinstance(r, int)]
    assert len(claimed) == 2 and len(set(claimed)) == 2
    assert sorted(r for r in results if not isinstance(r, int)) == ["at_capacity"] * (PULLS - 2)
    assert Lead.objects.filter(owner=rep, stage__in=[Stage.MQL, Stage.SAL, Stage.SQL]).count() == 39
    assert Assignment.objects.filter(status="pooled").count() == 8


def test_parallel_claims_of_one_lead_by_many_reps_make_one_owner():
    team, reps = make_team(size=PULLS, capacity=10)
    make_rule("Cherry", team=team, target="pool", strategy="pool", pool_mode="cherry_pick")
    lead = LeadFactory(stage=Stage.MAL)
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.MQL)
    services.lead_route(lead_id=lead.pk)
    queue = list(reps)
    lock = threading.Lock()

    def claim():
        with lock:
            rep = queue.pop()
        return services.pool_claim(user=rep, lead=lead).user_id

    results = _together(PULLS, claim)

    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert sorted(r for r in results if not isinstance(r, int)) == ["already_taken"] * (PULLS - 1)
    lead.refresh_from_db()
    assert lead.owner_id == winners[0]
    assert Assignment.objects.filter(lead=lead).count() == 1
