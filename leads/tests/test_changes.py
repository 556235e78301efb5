"""The changes feed (GET /api/v1/leads/changes/, leads.changes): exact answers on a small data set.

The tests run with committed data (transaction=True): on PostgreSQL the feed serves only changes of
transactions that have ended, so a test's own open transaction would hold back everything it wrote.
"""

from __future__ import annotations

import pytest

from leads import changes, services, sql
from leads.models import Lead, LeadTombstone, Role, Stage
from leads.tests.factories import ActivityFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/leads/changes/"


@pytest.fixture
def marketing(api):
    return api(UserFactory(username="mia", role=Role.MARKETING), scopes=["read"])


def read(client, after: str | None = None, limit: int | None = None) -> dict:
    params = {k: v for k, v in (("after", after), ("limit", limit)) if v is not None}
    answer = client.get(URL, params)
    assert answer.status_code == 200, answer.content
    return answer.json()


def test_each_changed_lead_comes_once_in_the_order_its_changes_committed(marketing, settled):
    # given three leads, then a score written in bulk, an activity and a stage move
    first, second, third = (
        LeadFactory(email="a@x.example"),
        LeadFactory(email="b@x.example"),
        LeadFactory(email="c@x.example"),
    )
    settled()
    start = read(marketing)
    assert [r["id"] for r in start["results"]] == [first.pk, second.pk, third.pk]
    cursor = start["next"]

    Lead.objects.filter(pk=second.pk).update(score=55)  # as scoring.sql.scores_write does
    ActivityFactory(lead=third)
    services.lead_move(lead=first, to_stage=Stage.MAL)
    Lead.objects.filter(pk=third.pk).update(score=12)  # third again: once, at its newest change
    settled()

    # when the feed is read after the first page's cursor
    page = read(marketing, after=cursor)

    # then each changed lead once, in commit order, with its current state
    assert [(r["id"], r["erased"]) for r in page["results"]] == [
        (second.pk, False),
        (first.pk, False),
        (third.pk, False),
    ]
    assert page["results"][0]["score"] == 55
    assert page["results"][1]["stage"] == Stage.MAL
    assert page["results"][2]["score"] == 12
    assert page["next"] == page["results"][-1]["change"]
    # and nothing more after it: the same cursor back
    assert read(marketing, after=page["next"]) == {"results": [], "next": page["next"]}


def test_an_activity_alone_is_a_change(marketing, settled):
    lead, control = LeadFactory(), LeadFactory()
    settled()
    cursor = read(marketing)["next"]

    ActivityFactory(lead=lead)
    settled()

    assert [r["id"] for r in read(marketing, after=cursor)["results"]] == [lead.pk]
    assert control.pk != lead.pk


def test_a_tombstone_reports_the_erased_lead(marketing, settled):
    lead = LeadFactory()
    settled()
    cursor = read(marketing)["next"]

    LeadTombstone.objects.create(lead_id=lead.pk + 1000)
    settled()

    page = read(marketing, after=cursor)
    assert page["results"] == [{"id": lead.pk + 1000, "erased": True, "change": page["next"]}]


def test_pages_of_limit_cover_every_lead_once(marketing, settled):
    leads = LeadFactory.create_batch(5)
    settled()

    seen, cursor = [], None
    for _ in range(4):
        page = read(marketing, after=cursor, limit=2)
        seen.append([r["id"] for r in page["results"]])
        cursor = page["next"]

    ids = [lead.pk for lead in leads]
    assert seen == [ids[:2], ids[2:4], ids[4:], []]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor!"}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_a_bad_cursor_or_limit_is_400_and_names_the_parameter(marketing, params, field):
    answer = marketing.get(URL, params)
    assert answer.status_code == 400
    assert list(answer.json()) == [field]


def test_a_rep_and_an_integration_client_are_refused(api):
    LeadFactory()
    for role in (Role.SALES_REP, Role.INTEGRATION):
        answer = api(UserFactory(username=f"u-{role}", role=role)).get(URL)
        assert answer.status_code == 403


def test_cursors_round_trip():
    for key in [changes.START, (0, 1), (123456789012, 98765)]:
        assert changes.cursor_decode(changes.cursor_encode(key)) == key
    assert changes.cursor_decode(None) == changes.START
    assert changes.cursor_decode("") == changes.START


@pytest.mark.postgres
def test_changes_after_gives_what_its_portable_twin_gives_once_nothing_is_in_flight(monkeypatch, settled):
    """The contract of leads.sql.changes_after: with no transaction running, the horizon hides
    nothing, so the PostgreSQL read and the portable one answer the same."""
    leads = LeadFactory.create_batch(3)
    Lead.objects.filter(pk=leads[0].pk).update(score=3)
    LeadTombstone.objects.create(lead_id=4242)
    settled()

    pg = sql.changes_after(-1, -1, limit=10)
    monkeypatch.setattr(sql, "postgresql", lambda: False)
    portable = sql.changes_after(-1, -1, limit=10)

    assert pg == portable
    assert [(pk, erased) for _, _, pk, erased in pg] == [
        (leads[1].pk, False),
        (leads[2].pk, False),
        (leads[0].pk, False),
        (4242, True),
    ]
