"""The broker away when an assignment's e-mails are queued: nothing is lost and nothing waits longer
than the reconciler's next run. Real parts: a private redis-server as the broker, a Celery worker
process that sends the e-mails, PostgreSQL.

Before the fix, the claim (`notify_queued_at`) stayed set although the broker took nothing, so the
e-mails were queued again only after RETRYING_FOR (about 5 minutes): the loop bench's "time to zero
drift, Redis back" never reached zero within its 180 s."""

import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from leadportal.celery import reset_broker_pause
from leads.models import Stage
from leads.tests.factories import LeadFactory
from routing import drift
from routing.models import Assignment
from routing.services import assignments_notify
from routing.tests.factories import make_team
from tests.worker import new_queue, producer, redis_server, wait_for, worker_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to start a private Redis"),
]


def test_e_mails_the_broker_refused_are_queued_again_at_the_reconcilers_next_run_and_sent():
    _, reps = make_team(size=1)
    lead = LeadFactory(stage=Stage.MQL, company="Initech")
    assignment = Assignment.objects.create(
        lead=lead,
        user=reps[0],
        status=Assignment.Status.ACTIVE,
        strategy="direct",
        assigned_at=timezone.now() - timedelta(minutes=5),
    )
    queue = new_queue()
    with redis_server() as redis, producer(queue, broker_url=redis.url):
        redis.stop()
        assert assignments_notify(assignment_ids=[assignment.pk]) == 1  # queued on commit: refused there
        assignment.refresh_from_db()
        assert (assignment.notify_queued_at, assignment.notified_at) == (None, None)  # nothing on its way

        redis.start()
        reset_broker_pause()
        assert drift.unnotified_repair(timezone.now()) == 1  # the reconciler's next run queues them again
        assignment.refresh_from_db()
        assert assignment.notify_queued_at is not None
        with worker_process(queue, broker_url=redis.url):  # its mail server takes the e-mail: the hook records it
            sent = wait_for(lambda: Assignment.objects.get(pk=assignment.pk).notified_at is not None, timeout=60)
        assert sent
        assert drift.unnotified_count(timezone.now()) == 0
