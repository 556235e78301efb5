"""Fairness and exactly-once under parallel workers, on PostgreSQL with real Celery worker processes."""

from collections import Counter

import pytest
from django.db.models import Count

from leads.models import Lead, Stage
from routing import tasks
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LEADS = 1000


def test_four_worker_processes_route_1000_mqls_fairly_and_exactly_once():
    team, reps = make_team(size=5, capacity=10_000)
    make_rule("Round robin", team=team)
    leads = Lead.objects.bulk_create(
        Lead(email=f"p{i}@parallel.example", company_domain="parallel.example", stage=Stage.MQL) for i in range(LEADS)
    )
    ids = list(Lead.objects.filter(email__endswith="@parallel.example").values_list("pk", flat=True))
    assert len(ids) == len(leads) == LEADS

    with celery_worker(concurrency=4, pool="prefork"):
        for lead_id in ids:
            tasks.route_lead_task.delay(lead_id)
        for lead_id in ids[:200]:  # duplicates of the same work, as a redelivery would make
            tasks.route_lead_task.delay(lead_id)
        done = wait_for(lambda: Assignment.objects.count() >= LEADS and _quiet(), timeout=120, interval=0.5)
        assert done, f"only {Assignment.objects.count()} of {LEADS} routed"

    per_lead = Counter(dict(Assignment.objects.values("lead").annotate(n=Count("pk")).values_list("lead", "n")))
    assert set(per_lead) == set(ids)
    assert set(per_lead.values()) == {1}
    per_rep = dict(Lead.objects.filter(pk__in=ids).values("owner").annotate(n=Count("pk")).values_list("owner", "n"))
    assert set(per_rep) == {r.pk for r in reps}
    assert max(per_rep.values()) - min(per_rep.values()) <= 1
    assert sum(per_rep.values()) == LEADS


_last = {"count": -1}


def _quiet() -> bool:
    """True once the assignment count stopped moving (duplicates are still being drained)."""
    count = Assignment.objects.count()
    quiet = count == _last["count"]
    _last["count"] = count
    return quiet
