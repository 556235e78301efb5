"""A 20-second PostgreSQL outage under the workers, with real worker processes, beat and Redis.

The test's own database refuses connections (ALLOW_CONNECTIONS false, every session of it ended)
right after a batch of MQL-making events committed, and the rescoring tasks reach the workers while
it is away (they fail on the database, retry with backoff, or leave the work to the reconciler);
then it comes back. Invariant once quiet: every lead that qualifies is an MQL, exactly once, with
exactly one open assignment, and check_loop finds no drift of any kind. (Before: 61 leads stayed in
MAL above the threshold and 14 MQLs had no assignment, and nothing re-checked them.)
"""

import threading
import time
from io import StringIO
from unittest import mock

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from leadportal.celery import send
from leads.models import Lead, Stage, StageChange
from leads.services import events_ingest
from leads.tests.factories import LeadFactory
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team
from scoring import services
from scoring import services as scoring_services
from scoring.tests.factories import make_model
from tests.worker import beat_process, drop_queues, new_queue, producer, wait_for, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LEADS = 60
OUTAGE_S = 20


class Outage:
    """The test database refuses every connection until `end()` (through the `postgres` database)."""

    def __init__(self):
        db = connection.settings_dict
        self.name = db["NAME"]
        self.admin = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres")
        self.admin.autocommit = True

    def begin(self) -> None:
        self.admin.execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        )

    def end(self) -> None:
        self.admin.execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true')

    def close(self) -> None:
        self.end()
        self.admin.close()


def test_a_database_outage_under_the_workers_loses_no_mql_and_no_assignment():
    team, _ = make_team(size=4, capacity=1000)
    make_rule("Everyone", team=team)
    make_model(activate=True, threshold=45)
    leads = [LeadFactory(job_title="CTO", stage=Stage.MAL) for _ in range(LEADS)]
    services.rescore_leads(lead_ids=[lead.pk for lead in leads])  # 20 each: below the threshold
    control = LeadFactory(job_title="Engineer", stage=Stage.MAL)
    queue = new_queue()
    env = {"LOOP_STALE_AFTER": "3", "LOOP_RECONCILE_EVERY": "2", "DATABASE_CONNECT_TIMEOUT": "2"}
    outage = Outage()
    try:
        with (
            worker_process(queue, env=env) as first,
            worker_process(queue, env=env) as second,
            beat_process(queue, env=env) as beat,
            producer(queue),
        ):
            time.sleep(3)  # the workers are up
            rung = []
            with mock.patch.object(scoring_services, "enqueue", lambda task, *args: rung.append((task, args))):
                events_ingest(
                    events=[
                        {"lead_id": lead.pk, "type": "demo_request", "occurred_at": timezone.now(), "source": "pg"}
                        for lead in leads
                    ]
                )
            outage.begin()
            for task, args in rung:  # the doorbells ring while the database is away: every task meets it
                send(task, *args)
            threading.Timer(OUTAGE_S, outage.end).start()
            time.sleep(OUTAGE_S + 0.5)
            connection.close()  # this process's own session was ended too

            def converged():
                counted = Lead.objects.filter(pk__in=[lead.pk for lead in leads]).aggregate(
                    mql=Count("pk", filter=Q(stage=Stage.MQL)),
                    assigned=Count("assignments", filter=Q(assignments__status__in=Assignment.OPEN)),
                )
                return counted["mql"] == LEADS and counted["assigned"] == LEADS

            done = wait_for(converged, timeout=90, interval=1)
            logs = "\n".join(f"--- {p.name}\n{p.tail(2000)}" for p in (first, second, beat))
            alive = [p.alive for p in (first, second, beat)]
    finally:
        outage.close()
        drop_queues(queue)

    assert done, logs
    assert alive == [True, True, True], logs
    ids = [lead.pk for lead in leads]
    per_lead = dict(
        Assignment.objects.filter(lead_id__in=ids, status__in=Assignment.OPEN)
        .values_list("lead_id")
        .annotate(n=Count("pk"))
    )
    assert per_lead == dict.fromkeys(ids, 1)
    moves = dict(StageChange.objects.filter(to_stage=Stage.MQL).values_list("lead_id").annotate(n=Count("pk")))
    assert moves == dict.fromkeys(ids, 1)
    control.refresh_from_db()
    assert control.stage == Stage.MAL
    out = StringIO()
    call_command("check_loop", "--full", stdout=out)  # SystemExit(1) on any drift
    assert out.getvalue().strip().endswith("Drift found: 0."), out.getvalue()
