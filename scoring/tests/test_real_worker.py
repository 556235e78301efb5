"""End to end with real parts: events through the API → a real Celery worker on Redis rescoring
in PostgreSQL → the lead becomes an MQL."""

import pytest

from scoring.tests.factories import EVENTS_TO_MQL, a_cto_in_mal, assert_made_mql_by_the_events, is_mql
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_events_posted_to_the_api_make_an_mql_through_a_real_worker(api, integration):
    lead = a_cto_in_mal()

    with celery_worker() as worker:
        response = api(integration).post("/api/v1/events/", EVENTS_TO_MQL, format="json")
        assert response.status_code == 201
        assert wait_for(lambda: is_mql(lead)), worker.tail()

    assert_made_mql_by_the_events(lead)
