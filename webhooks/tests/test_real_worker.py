"""End to end with real parts: a capture through the API → the outbox in PostgreSQL → a real Celery
worker process on a private Redis POSTs to a real receiver (500 first) → the due job retries it
through the worker → delivered, signed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.worker import new_queue, producer, redis_server, wait_for, worker_process
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.tasks import send_due_task

from .receiver import receiver, verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_delivers_retries_and_the_receiver_verifies(api, marketing, integration):
    queue = new_queue()
    with (
        redis_server() as redis,
        receiver([500, 200]) as hook,
        worker_process(queue, broker_url=redis.url, env={"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}) as worker,
        producer(queue, redis.url),
    ):
        created = (
            api(marketing)
            .post("/api/v1/webhooks/", {"name": "CRM", "url": hook.url, "events": ["lead.created"]})
            .json()
        )
        response = api(integration).post("/api/v1/leads/", {"email": "real.worker@example.org", "company": "Real"})
        assert response.status_code == 201

        assert wait_for(lambda: len(hook.requests) == 1), worker.tail()
        assert wait_for(lambda: WebhookDelivery.objects.get().attempts == 1), worker.tail()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.response_code) == ("pending", 500)

        WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert send_due_task() == 1  # the beat job's run: it queues the due delivery for the worker
        assert wait_for(lambda: WebhookDelivery.objects.get().status == "delivered"), worker.tail()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.response_code) == (2, 200)
    event = WebhookEvent.objects.get()
    assert len(hook.requests) == 2
    for got in hook.requests:
        assert verify(created["secret"], got.headers, got.body)
        body = json.loads(got.body)
        assert (body["id"], body["type"]) == (str(event.pk), "lead.created")
        assert body["data"]["lead"]["email"] == "real.worker@example.org"
