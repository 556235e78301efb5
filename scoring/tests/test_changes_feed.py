"""Rescoring's bulk UPDATE (scoring.sql.scores_write) and the changes feed (leads.changes): a lead whose
score changed comes, one whose scoring only moved its bookkeeping (scored_rev, scored_at) does not."""

from datetime import UTC, datetime

import pytest
from django.db import transaction

from leads import changes
from leads.models import Lead, LeadChange
from leads.tests.factories import LeadFactory
from scoring import sql
from scoring.bulk import LeadScore

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _score(lead: Lead, fit: float, rev: int) -> LeadScore:
    return LeadScore(lead_id=lead.pk, stage=lead.stage, fit=fit, engagement=0.0, grade="B", disqualified=False, rev=rev)


def _read_to_end(after=changes.START):
    served = []
    while page := changes.changes_page(after=after, limit=1000)[0]:
        served += page
        after = page[-1].key
    return served, after


def test_a_bulk_rescoring_is_a_change_for_the_leads_whose_score_moved(settled):
    # given three leads scored once, and the feed read to its end
    rescored, same, control = LeadFactory.create_batch(3)
    with transaction.atomic():
        sql.scores_write([_score(rescored, 10.0, 1), _score(same, 20.0, 1)], version=1, now=NOW)
    settled()
    _, cursor = _read_to_end()
    before = LeadChange.objects.values_list("change_xid", "change_seq").get(lead_id=same.pk)

    # when a rescoring batch writes a new score for one and only a new revision for the other
    with transaction.atomic():
        written = sql.scores_write([_score(rescored, 15.0, 2), _score(same, 20.0, 2)], version=1, now=NOW)
    settled()

    # then both rows were written, but only the lead whose score moved is in the feed, with it
    assert written == 2
    served, _ = _read_to_end(cursor)
    assert [(c.lead_id, c.lead.score) for c in served] == [(rescored.pk, 15.0)]
    assert LeadChange.objects.values_list("change_xid", "change_seq").get(lead_id=same.pk) == before
    assert control.pk not in {c.lead_id for c in served}
