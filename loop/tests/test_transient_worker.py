"""A routing task that hits a transient database error, with a real worker on PostgreSQL and Redis:
it retries with backoff and places the lead once the database answers again."""

import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from leads.models import Stage
from leads.tests.factories import LeadFactory
from routing import tasks
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team
from tests.worker import new_queue, producer, wait_for, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_routing_task_blocked_by_a_lock_times_out_retries_and_routes_once_the_lock_is_gone():
    team, reps = make_team(size=2)
    make_rule("Everyone", team=team)
    lead = LeadFactory(stage=Stage.MQL)
    db = connection.settings_dict
    # Another session holds the reps' rows: the worker's lock wait ends in "lock timeout" (an
    # OperationalError) after 300 ms, again and again, until this session lets go.
    blocker = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])
    blocker.execute("LOCK TABLE routing_repprofile IN ACCESS EXCLUSIVE MODE")
    queue = new_queue()
    released_at = []
    release = threading.Timer(4.0, lambda: (blocker.commit(), released_at.append(timezone.now())))
    try:
        with worker_process(queue, env={"DATABASE_LOCK_TIMEOUT": "300"}) as worker, producer(queue):
            tasks.route_lead_task.delay(lead.pk)
            release.start()
            routed = wait_for(lambda: Assignment.objects.filter(lead=lead).exists(), timeout=30, interval=0.2)
            log = worker.tail()
    finally:
        release.cancel()
        blocker.close()

    assert routed, log
    assignment = Assignment.objects.get(lead=lead)  # exactly one
    # One attempt waits 300 ms at most; placed after the 4 s lock: the task failed and retried.
    assert assignment.assigned_at >= released_at[0]
    assert assignment.user in reps
