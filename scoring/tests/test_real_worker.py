"""End to end with real parts: events through the API → a real Celery worker on Redis rescoring
in PostgreSQL → the lead becomes an MQL."""

from pathlib import Path

import pytest

from leads.models import Lead, Stage, StageChange
from leads.tests.factories import LeadFactory
from scoring.tests.factories import make_model
from tests.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_events_posted_to_the_api_make_an_mql_through_a_real_worker(api, integration):
    make_model(activate=True, threshold=50)
    lead = LeadFactory(email="cto@acme.example", job_title="CTO", stage=Stage.MAL)

    with celery_worker() as log:
        response = api(integration).post(
            "/api/v1/events/",
            [
                {"email": "cto@acme.example", "type": "demo_request", "external_id": "d1", "source": "web"},
                {"email": "cto@acme.example", "type": "page_view", "properties": {"url": "/pricing"}},
            ],
            format="json",
        )
        assert response.status_code == 201
        became_mql = wait_for(lambda: Lead.objects.filter(pk=lead.pk, stage=Stage.MQL).exists())
        assert became_mql, Path(log).read_text()[-3000:]

    lead.refresh_from_db()
    assert lead.score == pytest.approx(60, abs=1e-3)
    assert (lead.fit_score, lead.grade) == (20, "B")
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL, actor=None).count() == 1
