"""Redis (the broker) stopped during ingestion, then started again empty: the API keeps answering
201, every change is in the database, and once Redis is back the workers and the reconciler (beat)
finish all of it — scored, MQL exactly once, exactly one open assignment each — within a bound.
Real parts: a private redis-server, two worker processes, beat, PostgreSQL."""

import shutil
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Q

from leads import consent
from leads.models import Lead, Stage, StageChange
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team
from scoring.models import PendingRescore
from scoring.tests.factories import make_model
from tests.worker import beat_process, new_queue, producer, redis_server, wait_for, worker_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to start a private Redis"),
]

LEADS = 30
CONVERGE_WITHIN_S = 60


def test_after_a_redis_outage_everything_captured_meanwhile_is_scored_promoted_and_routed_once(api, integration):
    team, _ = make_team(size=3, capacity=1000)
    make_rule("Everyone", team=team)
    make_model(activate=True, threshold=45)
    client = api(integration)
    env = {"LOOP_STALE_AFTER": "3", "LOOP_RECONCILE_EVERY": "2"}
    queue = new_queue()
    emails = [f"lead{i}@outage.example" for i in range(LEADS)]
    with (
        redis_server() as redis, worker_process(queue, env=env, broker_url=redis.url),
        worker_process(queue, env=env, broker_url=redis.url),
        beat_process(queue, env=env, broker_url=redis.url),
        producer(queue, broker_url=redis.url),
    ):
        redis.stop()
        statuses = []
        for email in emails:
            statuses.append(client.post("/api/v1/leads/", {"email": email, "job_title": "CTO"}).status_code)
            # The person clicks the confirmation link (new → mal).
            consent.consent_confirm(token=consent.token_for(Lead.objects.get(email=email), consent.CONFIRM))
            statuses.append(
                client.post("/api/v1/events/", [{"email": email, "type": "demo_request"}], format="json").status_code
            )
        # Accepted and durable: each change waits as a pending row, nothing was scored.
        assert statuses == [201] * (2 * LEADS)
        assert PendingRescore.objects.count() == LEADS
        assert not Lead.objects.filter(stage=Stage.MQL).exists()

        redis.start()  # empty: every message sent before the outage is gone too
        back = time.monotonic()

        def converged():
            counted = Lead.objects.filter(email__in=emails).aggregate(
                mql=Count("pk", filter=Q(stage=Stage.MQL)),
                open=Count("assignments", filter=Q(assignments__status__in=Assignment.OPEN)),
            )
            return counted == {"mql": LEADS, "open": LEADS} and not PendingRescore.objects.exists()

        done = wait_for(converged, timeout=CONVERGE_WITHIN_S, interval=0.5)
        took = time.monotonic() - back

    assert done, f"not converged {took:.0f} s after Redis came back"
    ids = list(Lead.objects.filter(email__in=emails).values_list("pk", flat=True))
    assert len(ids) == LEADS
    moves = dict(StageChange.objects.filter(to_stage=Stage.MQL).values_list("lead_id").annotate(n=Count("pk")))
    assert moves == dict.fromkeys(ids, 1)
    assert Assignment.objects.filter(lead_id__in=ids).count() == LEADS
    out = StringIO()
    call_command("check_loop", "--full", stdout=out)
    assert out.getvalue().strip().endswith("Drift found: 0."), out.getvalue()
