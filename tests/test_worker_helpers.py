"""The process helpers of tests/worker.py do what fault and soak tests rely on: a private Redis that
stops and comes back on its port, workers that die by SIGKILL and restart, beat on a private queue."""

from __future__ import annotations

import json
import shutil

import pytest
import redis

from scoring.tests.factories import EVENTS_TO_MQL, a_cto_in_mal, is_mql
from tests.worker import beat_process, drop_queues, new_queue, producer, redis_server, wait_for, worker_process

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server on PATH")


def test_a_private_redis_stops_and_starts_again_on_its_port():
    with redis_server() as server:
        client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
        assert client.ping() is True
        server.stop()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert client.ping() is True
        assert server.url == f"redis://127.0.0.1:{server.port}/0"


def test_beat_sends_the_reconciler_to_its_queue_at_the_configured_pace():
    queue = new_queue()
    every_second = {"LOOP_RECONCILE_EVERY": "1"}
    with redis_server() as server, beat_process(queue, broker_url=server.url, env=every_second) as beat:
        client = redis.Redis.from_url(server.url)
        assert wait_for(lambda: client.llen(queue) >= 2, timeout=20), beat.tail()
        names = {json.loads(message)["headers"]["task"] for message in client.lrange(queue, 0, -1)}
    assert "loop.tasks.reconcile_task" in names


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_a_queue_one_is_killed_and_restarted_and_the_work_gets_done(api, integration):
    lead = a_cto_in_mal()
    queue = new_queue()
    with (
        redis_server() as server,
        worker_process(queue, broker_url=server.url) as first,
        worker_process(queue, broker_url=server.url) as second,
        producer(queue, broker_url=server.url),
    ):
        killed_pid = first.pid
        first.kill()
        assert not first.alive and second.alive

        response = api(integration).post("/api/v1/events/", EVENTS_TO_MQL, format="json")
        assert response.status_code == 201
        assert wait_for(lambda: is_mql(lead)), second.tail()

        first.start()
        assert first.alive and first.pid != killed_pid
        drop_queues(queue, server.url)
