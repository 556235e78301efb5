"""RabbitMQ as the broker (CELERY_BROKER_URL=amqp://…): events through the API → a real worker
consuming from RabbitMQ rescoring in PostgreSQL → the lead becomes an MQL. The queues on the broker
are durable and messages persistent, and tasks are acknowledged late, so a broker restart or a
killed worker loses nothing."""

from __future__ import annotations

import os

import pytest
from amqp.exceptions import PreconditionFailed
from django.test import Client

from leadportal import celery_app
from scoring.tests.factories import EVENTS_TO_MQL, a_cto_in_mal, assert_made_mql_by_the_events, is_mql
from tests.worker import celery_worker, new_queue, queue_names, wait_for

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "")
pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


def declared_durable(names: list[str]) -> bool:
    """True once every queue exists on the broker as a durable queue: redeclaring it durable is
    accepted, redeclaring it transient is refused (406 PRECONDITION_FAILED)."""
    with celery_app.connection_for_write(RABBITMQ_URL) as conn:
        for name in names:
            try:
                with conn.channel() as channel:
                    channel.queue_declare(queue=name, passive=True)
            except Exception:  # noqa: BLE001 - NOT_FOUND: the worker has not declared it yet
                return False
            with conn.channel() as channel:
                channel.queue_declare(queue=name, durable=True, auto_delete=False)
            with pytest.raises(PreconditionFailed), conn.channel() as channel:
                channel.queue_declare(queue=name, durable=False, auto_delete=False)
    return True


def test_events_make_an_mql_through_a_real_worker_on_rabbitmq(api, integration):
    lead = a_cto_in_mal()
    queue = new_queue()
    settings_broker = celery_app.conf.broker_url
    assert (celery_app.conf.task_acks_late, celery_app.conf.task_reject_on_worker_lost) == (True, True)
    assert celery_app.conf.task_default_delivery_mode in (2, "persistent")  # kombu: 2 is persistent

    with celery_worker(broker_url=RABBITMQ_URL, queue=queue) as worker:
        assert celery_app.connection_for_write().transport.driver_type == "amqp"
        assert wait_for(lambda: declared_durable(queue_names(queue)), timeout=20), worker.tail()

        response = api(integration).post("/api/v1/events/", EVENTS_TO_MQL, format="json")
        assert response.status_code == 201
        assert wait_for(lambda: is_mql(lead)), worker.tail()

    assert celery_app.conf.broker_url == settings_broker  # this process's producer is back where it was
    assert_made_mql_by_the_events(lead)


@pytest.mark.django_db(transaction=False)
def test_healthz_asks_rabbitmq_when_it_is_the_broker(settings):
    settings.CELERY_BROKER_URL = RABBITMQ_URL
    assert Client().get("/healthz").json() == {"status": "ok", "database": "ok", "broker": "ok"}

    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "error: OperationalError"}
