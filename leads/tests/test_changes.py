"""The changes feed (GET /api/v1/leads/changes/, leads.changes): exact answers on a small data set.

The tests run with committed data (transaction=True): on PostgreSQL the feed serves only changes of
transactions that have ended, so a test's own open transaction would hold back everything it wrote.
"""

from __future__ import annotations

import base64

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from leads import changes, erasure, services, sql
from leads.models import Lead, LeadChange, Role, Stage
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


def test_a_deleted_lead_comes_as_a_tombstone(marketing, settled):
    # given two leads read to the end of the feed
    lead, control = LeadFactory(), LeadFactory()
    ActivityFactory(lead=lead)
    settled()
    cursor = read(marketing)["next"]

    # when one is deleted (a superuser's hard delete: its activities go with it)
    gone = lead.pk
    Lead.objects.filter(pk=gone).delete()
    settled()

    # then it comes once as a tombstone, and the other lead not at all
    page = read(marketing, after=cursor)
    assert page["results"] == [{"id": gone, "deleted": True, "change": page["next"]}]
    assert LeadChange.objects.get(lead_id=gone).deleted is True
    assert LeadChange.objects.get(lead_id=control.pk).deleted is False


def test_an_erased_lead_comes_as_a_tombstone_without_its_data(marketing, settled):
    # given a lead and a control, read to the end of the feed
    lead, control = LeadFactory(email="ann@x.example", first_name="Ann"), LeadFactory()
    settled()
    cursor = read(marketing)["next"]

    # when the person is erased (leads.erasure: an UPDATE of the lead row, which the trigger stamps)
    erasure.lead_erase(lead=lead, actor=None)
    settled()

    # then the lead comes once, as a tombstone with nothing of the person
    page = read(marketing, after=cursor)
    assert page["results"] == [{"id": lead.pk, "erased": True, "change": page["next"]}]
    assert control.pk != lead.pk


def test_bookkeeping_alone_is_no_change(marketing, settled):
    # given a lead read to the end of the feed
    lead = LeadFactory()
    settled()
    cursor = read(marketing)["next"]
    key = LeadChange.objects.values_list("change_xid", "change_seq").get(lead_id=lead.pk)

    # when only the scoring machinery's revisions and updated_at move, or an UPDATE changes nothing
    Lead.objects.filter(pk=lead.pk).update(score_rev=F("score_rev") + 1, scored_rev=7, updated_at=timezone.now())
    Lead.objects.filter(pk=lead.pk).update(score=F("score"))
    settled()

    # then the feed has nothing new and the lead kept its key
    assert read(marketing, after=cursor) == {"results": [], "next": cursor}
    assert LeadChange.objects.values_list("change_xid", "change_seq").get(lead_id=lead.pk) == key


def test_the_services_writes_are_changes_each_served_once_per_transaction(marketing, settled):
    """A note (activity + score_rev in one transaction), a profile update and an event batch: each
    lead once, at one key, although each transaction stamped it more than once."""
    noted, updated, evented, control = LeadFactory.create_batch(4)
    settled()
    cursor = read(marketing)["next"]

    services.lead_note_add(lead=noted, text="called back")
    services.lead_update(lead=updated, data={"company": "Initech"})
    services.events_ingest(
        events=[
            {"lead_id": evented.pk, "type": "page_view", "occurred_at": timezone.now(), "source": "web"},
            {"lead_id": evented.pk, "type": "download", "occurred_at": timezone.now(), "source": "web"},
        ]
    )
    settled()

    page = read(marketing, after=cursor)
    assert [r["id"] for r in page["results"]] == [noted.pk, updated.pk, evented.pk]
    assert page["results"][1]["company"] == "Initech"
    assert control.pk not in {r["id"] for r in page["results"]}


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
        ({"after": changes.cursor_encode((2**63, 1))}, "after"),
        ({"after": base64.urlsafe_b64encode(b"1.2.3").decode()}, "after"),
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
    leads = LeadFactory.create_batch(4)
    Lead.objects.filter(pk=leads[0].pk).update(score=3)
    Lead.objects.filter(pk=leads[3].pk).delete()
    settled()

    pg = sql.changes_after(-1, -1, limit=10)
    monkeypatch.setattr(sql, "postgresql", lambda: False)
    portable = sql.changes_after(-1, -1, limit=10)

    assert pg == portable
    assert [(pk, deleted) for _, _, pk, deleted in pg] == [
        (leads[1].pk, False),
        (leads[2].pk, False),
        (leads[0].pk, False),
        (leads[3].pk, True),
    ]


def _xact_stats(relation: str) -> tuple[int, int]:
    """(rows updated, of them in place — HOT) of a table in this transaction so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [relation, relation],
        )
        return cursor.fetchone()


@pytest.mark.postgres
def test_lead_updates_stay_hot_and_an_activity_leaves_the_lead_row_alone(settled):
    """Why the key lives in leads_leadchange (commit 0701b98): an index on the lead row's key made
    every lead update non-HOT, and the activity trigger rewrote each lead."""
    leads = LeadFactory.create_batch(20)
    ids = [lead.pk for lead in leads]
    with transaction.atomic():
        Lead.objects.filter(pk__in=ids).update(score=F("score") + 5)  # as scoring's bulk UPDATE does
        assert _xact_stats("leads_lead") == (20, 20)
        ActivityFactory(lead=leads[0])
        assert _xact_stats("leads_lead") == (20, 20)  # the activity's stamp did not touch the lead
        # the keys: one per lead, all of this transaction
        assert LeadChange.objects.filter(lead_id__in=ids, change_xid=_xid()).count() == 20


def _xid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]
