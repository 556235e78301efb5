"""Outbound webhooks end to end against a real HTTP receiver on 127.0.0.1 (webhooks/tests/receiver.py):
capture → outbox → signed delivery → retry, replay, pause and resume, timeouts, the SSRF guard, the
filter, the outbox's transaction, the cost of nobody subscribing, and who may manage webhooks."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from leads import services as lead_services
from leads import signals
from leads.models import Stage
from leads.tests.factories import LeadFactory
from webhooks import outbox, receivers, services
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from webhooks.tasks import send_due_task

from .receiver import receiver, verify

pytestmark = pytest.mark.django_db

CAPTURE = {"email": "Ines.Kraft@Kraftwerk.example", "first_name": "Ines", "company": "Kraftwerk", "country": "DE"}


def subscribe(api, user, url, events=("lead.created",), **extra):
    response = api(user).post("/api/v1/webhooks/", {"name": "CRM", "url": url, "events": list(events), **extra})
    assert response.status_code == 201, response.json()
    return response.json()


def make_due(**filters) -> None:
    """Time moves on: every pending delivery's next attempt is now due."""
    WebhookDelivery.objects.filter(status="pending", **filters).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def run_due(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return send_due_task()


def test_a_captured_lead_is_delivered_signed_retried_after_the_500_and_replayed(
    api, marketing, integration, django_capture_on_commit_callbacks
):
    with receiver([500, 200]) as hook:
        created = subscribe(api, marketing, hook.url)
        secret = created["secret"]
        assert len(secret) >= 32

        with django_capture_on_commit_callbacks(execute=True):
            response = api(integration).post("/api/v1/leads/", CAPTURE)
        assert response.status_code == 201
        lead_id = response.json()["id"]

        # The first attempt went out at the commit and got the 500: pending, retried in about 30 s.
        assert len(hook.requests) == 1
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
        assert delivery.last_error == f"HTTP 500 from {hook.url}"
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        assert 27 <= wait <= 33
        assert run_due(django_capture_on_commit_callbacks) == 0  # not due yet: nothing sent
        assert len(hook.requests) == 1

        make_due()
        assert run_due(django_capture_on_commit_callbacks) == 1
        assert len(hook.requests) == 2
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_code, delivery.last_error) == (
            "delivered",
            2,
            200,
            "",
        )
        assert delivery.delivered_at is not None and delivery.next_attempt_at is None

        event = WebhookEvent.objects.get()
        for got in hook.requests:
            assert verify(secret, got.headers, got.body), "the documented recipe verifies the signature"
            assert not verify("another-secret-of-someone-else", got.headers, got.body)
            body = json.loads(got.body)
            assert set(body) == {"id", "type", "created_at", "sent_at", "data"}
            assert body["id"] == str(event.pk) == got.headers["X-LeadPortal-Event-Id"]
            assert body["type"] == "lead.created" == got.headers["X-LeadPortal-Event"]
            assert got.headers["Content-Type"] == "application/json"
            assert got.headers["User-Agent"] == "LeadPortal-Webhooks/1"
            sent_at = datetime.fromisoformat(body["sent_at"])
            assert int(got.headers["X-LeadPortal-Timestamp"]) == int(sent_at.timestamp())
            assert datetime.fromisoformat(body["created_at"]) == event.created_at
            lead = body["data"]["lead"]
            assert (lead["id"], lead["email"], lead["first_name"], lead["company"], lead["country"], lead["stage"]) == (
                lead_id,
                "ines.kraft@kraftwerk.example",
                "Ines",
                "Kraftwerk",
                "DE",
                "new",
            )
            assert got.path == "/hooks/leadportal"
        # A tampered body no longer verifies.
        assert not verify(secret, hook.requests[1].headers, hook.requests[1].body.replace(b"Ines", b"Inez"))

        # Replay: the same event id again, due now, a fresh window.
        with django_capture_on_commit_callbacks(execute=True):
            replayed = api(marketing).post(f"/api/v1/webhooks/{created['id']}/deliveries/{delivery.pk}/replay/")
        assert replayed.status_code == 200
        assert replayed.json()["id"] == delivery.pk and replayed.json()["event_id"] == str(event.pk)
        assert len(hook.requests) == 3
        assert json.loads(hook.requests[2].body)["id"] == str(event.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 1)

        log = api(marketing).get(f"/api/v1/webhooks/{created['id']}/deliveries/").json()
        assert log["count"] == 1
        row = log["results"][0]
        assert (row["event_id"], row["event_type"], row["status"], row["attempts"], row["response_code"]) == (
            str(event.pk),
            "lead.created",
            "delivered",
            1,
            200,
        )


@override_settings(WEBHOOK_PAUSE_AFTER=3)
def test_a_receiver_that_keeps_failing_pauses_the_subscription_and_resume_sends_what_waited(
    api, marketing, django_capture_on_commit_callbacks
):
    with receiver([500]) as hook:
        created = subscribe(api, marketing, hook.url, events=["lead.updated"])
        lead = LeadFactory()
        with django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_update(lead=lead, data={"job_title": "CTO"})
        for _ in range(2):
            make_due()
            run_due(django_capture_on_commit_callbacks)
        assert len(hook.requests) == 3
        subscription = WebhookSubscription.objects.get(pk=created["id"])
        assert subscription.paused_at is not None
        assert subscription.consecutive_failures == 3
        assert subscription.paused_reason == f"Paused after 3 failed attempts in a row; last: HTTP 500 from {hook.url}"
        shown = api(marketing).get(f"/api/v1/webhooks/{created['id']}/").json()
        assert shown["paused_reason"] == subscription.paused_reason

        # Paused: new deliveries are recorded but wait; nothing is sent however due they are.
        with django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_update(lead=lead, data={"job_title": "CEO"})
        make_due()
        assert run_due(django_capture_on_commit_callbacks) == 0
        assert len(hook.requests) == 3
        assert WebhookDelivery.objects.filter(status="pending").count() == 2

        hook.answers = [200]
        with django_capture_on_commit_callbacks(execute=True):
            resumed = api(marketing).post(f"/api/v1/webhooks/{created['id']}/resume/")
        assert resumed.status_code == 200 and resumed.json()["paused_at"] is None
        assert len(hook.requests) == 5
        assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == ["delivered", "delivered"]
        subscription.refresh_from_db()
        assert (subscription.paused_at, subscription.paused_reason, subscription.consecutive_failures) == (None, "", 0)
        titles = [json.loads(r.body)["data"]["lead"]["job_title"] for r in hook.requests[3:]]
        assert sorted(titles) == ["CEO", "CTO"]


def test_a_delivery_failing_for_24_hours_gives_up_and_pauses(api, marketing, django_capture_on_commit_callbacks):
    with receiver([503]) as hook:
        created = subscribe(api, marketing, hook.url)
        with django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_capture(data={"email": "slow@example.org"})
        WebhookDelivery.objects.update(first_attempt_at=timezone.now() - timedelta(hours=24, minutes=1))
        make_due()
        run_due(django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
        subscription = WebhookSubscription.objects.get(pk=created["id"])
        assert subscription.paused_reason == (
            f"Paused: a delivery gave up after 24 h of failed attempts; last: HTTP 503 from {hook.url}"
        )


@override_settings(WEBHOOK_TIMEOUT=(1.0, 0.5))
def test_a_receiver_that_does_not_answer_is_a_failed_attempt_not_a_hung_worker(api, marketing):
    with receiver([200], sleep=3.0) as hook:
        subscribe(api, marketing, hook.url)
        with transaction.atomic():  # no commit callbacks run: the worker below sends it
            lead_services.lead_capture(data={"email": "sleepy@example.org"})
        delivery = WebhookDelivery.objects.get()
        started = time.monotonic()
        counts = services.deliveries_send(delivery_ids=[delivery.pk])
        took = time.monotonic() - started
        assert counts == {"delivered": 0, "failed": 1, "skipped": 0}
        assert took < 2.5
        assert len(hook.requests) == 1
        delivery.refresh_from_db()
        assert delivery.status == "pending" and delivery.response_code is None
        assert delivery.last_error == "Timed out waiting for the answer (connect 1 s, read 0.5 s)"


def test_two_workers_never_send_one_delivery_at_once_and_a_dead_workers_claim_runs_out(api, marketing):
    subscribe(api, marketing, "http://127.0.0.1:9/never")
    lead_services.lead_capture(data={"email": "claimed@example.org"})
    delivery = WebhookDelivery.objects.get()
    first = services.delivery_claim(delivery_id=delivery.pk)
    assert first is not None
    assert services.delivery_claim(delivery_id=delivery.pk) is None  # held by the first worker
    assert services.due_delivery_ids() == []
    # The first worker was killed before it recorded anything: its claim runs out, another sends it.
    later = timezone.now() + timedelta(seconds=services.CLAIM_SECONDS + 1)
    assert services.due_delivery_ids(now=later) == [delivery.pk]
    assert services.delivery_claim(delivery_id=delivery.pk, now=later) is not None


@override_settings(WEBHOOK_ALLOWED_NETWORKS=[])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://172.16.0.9/hook",
        "http://192.168.0.1/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "ftp://93.184.215.14/hook",
    ],
)
def test_urls_that_reach_the_portals_own_networks_are_refused_on_create(api, marketing, url):
    response = api(marketing).post("/api/v1/webhooks/", {"name": "x", "url": url, "events": ["lead.created"]})
    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    assert WebhookSubscription.objects.count() == 0


def test_the_refusal_says_why(api, marketing):
    with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]):
        response = api(marketing).post(
            "/api/v1/webhooks/", {"name": "x", "url": "http://169.254.169.254/", "events": ["lead.created"]}
        )
    assert response.json() == {
        "url": [
            "169.254.169.254 is a link-local address; webhooks only call public addresses (WEBHOOK_ALLOWED_NETWORKS)."
        ]
    }


def test_a_delivery_to_an_address_refused_since_is_a_failed_attempt_and_sends_nothing(
    api, marketing, django_capture_on_commit_callbacks
):
    with receiver([200]) as hook:
        subscribe(api, marketing, hook.url)  # allowed here (the test settings allow 127.0.0.0/8)
        with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]), django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_capture(data={"email": "guarded@example.org"})
        assert hook.requests == []
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.last_error.startswith("Refused: 127.0.0.1 is a loopback address")


def test_bad_input_is_a_400_with_field_errors_and_changes_nothing(api, marketing):
    client = api(marketing)
    cases = [
        ({"name": "x", "url": "not a url", "events": ["lead.created"]}, "url"),
        ({"name": "x", "url": "http://127.0.0.1/h", "events": ["lead.exploded"]}, "events"),
        ({"name": "x", "url": "http://127.0.0.1/h", "events": []}, "events"),
        (
            {
                "name": "x",
                "url": "http://127.0.0.1/h",
                "events": ["lead.created"],
                "filter": [{"field": "company_size", "operator": "contains", "value": "5"}],
            },
            "filter",
        ),
        (
            {
                "name": "x",
                "url": "http://127.0.0.1/h",
                "events": ["lead.created"],
                "filter": [{"field": "shoe_size", "operator": "eq", "value": "5"}],
            },
            "filter",
        ),
    ]
    for body, field in cases:
        response = client.post("/api/v1/webhooks/", body)
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    response = client.post(
        "/api/v1/webhooks/",
        {
            "name": "x",
            "url": "http://127.0.0.1/h",
            "events": ["lead.created"],
            "filter": [{"field": "company_size", "operator": "contains", "value": "5"}],
        },
    )
    assert response.json()["filter"] == ["Condition 1: 'contains' does not apply to Company size, which is a number."]
    assert WebhookSubscription.objects.count() == 0


def test_the_filter_is_honoured(api, marketing, django_capture_on_commit_callbacks):
    with receiver([200]) as hook:
        subscribe(api, marketing, hook.url, filter=[{"field": "country", "operator": "in", "value": "DE, AT"}])
        with django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_capture(data={"email": "de@example.org", "country": "DE"})
            lead_services.lead_capture(data={"email": "fr@example.org", "country": "FR"})
            lead_services.lead_capture(data={"email": "at@example.org", "country": "AT"})
        sent = sorted(json.loads(r.body)["data"]["lead"]["email"] for r in hook.requests)
        assert sent == ["at@example.org", "de@example.org"]
        assert WebhookEvent.objects.count() == 2


def test_the_outbox_is_in_the_change_transaction(api, marketing, django_capture_on_commit_callbacks):
    with receiver([200]) as hook:
        subscribe(api, marketing, hook.url)
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
            lead_services.lead_capture(data={"email": "rolled.back@example.org"})
            assert WebhookDelivery.objects.count() == 1  # written with the capture …
            raise RuntimeError("the capture's transaction fails")
        assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == (0, 0)  # … and gone with it
        assert hook.requests == []


def capture_queries(email: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        lead_services.lead_capture(data={"email": email, "company": "Quiet", "country": "DE"})
    return [q["sql"] for q in queries.captured_queries]


def test_with_nobody_subscribed_a_capture_costs_no_query_and_writes_no_row(marketing):
    # Another type wanted only: the cache says nobody wants lead.created / lead.updated.
    WebhookSubscription.objects.create(name="mql only", url="http://127.0.0.1/h", events=["lead.mql"])
    capture_queries("warm@example.org")  # the process cache is filled once
    with_app = capture_queries("first@example.org")
    updated_with_app = capture_queries("first@example.org".replace("first", "FIRST"))
    signals.lead_saved_in_transaction.disconnect(dispatch_uid="webhooks.saved")
    signals.stage_changed_in_transaction.disconnect(dispatch_uid="webhooks.stage")
    try:
        without_app = capture_queries("second@example.org")
        updated_without_app = capture_queries("SECOND@example.org")
    finally:
        signals.lead_saved_in_transaction.connect(receivers.on_lead_saved, dispatch_uid="webhooks.saved")
        signals.stage_changed_in_transaction.connect(receivers.on_stage_changing, dispatch_uid="webhooks.stage")
    assert len(with_app) == len(without_app)
    assert len(updated_with_app) == len(updated_without_app)
    assert not any("webhooks_" in sql for sql in with_app + updated_with_app)
    assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == (0, 0)


def test_a_new_subscription_is_seen_by_the_next_capture_in_this_process(marketing):
    assert not outbox.wants("lead.created")
    WebhookSubscription.objects.create(name="new", url="http://127.0.0.1/h", events=["lead.created"])
    assert outbox.wants("lead.created")
    lead_services.lead_capture(data={"email": "seen@example.org"})
    assert WebhookEvent.objects.filter(type="lead.created").count() == 1


def test_an_import_batch_sends_what_the_same_captures_one_by_one_send(marketing):
    """lead_capture_many (a CSV import's batch) announces like lead_capture: lead.created for each new
    lead, lead.updated with the changed fields for each known one that changed, nothing for the rest."""
    WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=["lead.created", "lead.updated"])
    known, _ = lead_services.lead_capture(data={"email": "known@example.org", "company": "Old"}, source="api")
    lead_services.lead_capture(data={"email": "same@example.org", "company": "Same"}, source="api")
    WebhookEvent.objects.all().delete()

    rows = [
        {"email": "new1@example.org", "company": "N1"},
        {"email": "known@example.org", "company": "New name"},
        {"email": "same@example.org", "company": "Same"},
        {"email": "new2@example.org"},
    ]
    results = lead_services.lead_capture_many(rows=rows, source="import")

    ids = {row["email"]: lead_id for row, (lead_id, _created) in zip(rows, results, strict=True)}
    sent = sorted((e.type, e.lead_id, e.payload.get("changed")) for e in WebhookEvent.objects.all())
    assert sent == sorted(
        [
            ("lead.created", ids["new1@example.org"], []),
            ("lead.created", ids["new2@example.org"], []),
            ("lead.updated", known.pk, ["company"]),
        ]
    )


def types_sent() -> list[str]:
    return list(WebhookEvent.objects.order_by("created_at").values_list("type", flat=True))


ALL_TYPES = [
    "lead.created",
    "lead.updated",
    "lead.stage_changed",
    "lead.mql",
    "lead.assigned",
    "lead.accepted",
    "lead.closed",
    "partner.feedback",
    "lead.erased",
]


def test_lifecycle_events_mql_close_and_what_a_capture_without_change_sends(marketing):
    WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=ALL_TYPES)
    lead, _ = lead_services.lead_capture(data={"email": "life@example.org", "company": "Life"})
    lead_services.lead_capture(data={"email": "life@example.org", "company": "Life"})  # nothing changed
    lead_services.lead_capture(data={"email": "life@example.org", "job_title": "CFO"})
    assert types_sent() == ["lead.created", "lead.updated"]
    assert WebhookEvent.objects.get(type="lead.updated").payload["changed"] == ["job_title"]
    lead_services.activity_record(lead=lead, type="page_view")  # an activity is not a profile change
    assert types_sent() == ["lead.created", "lead.updated"]

    for stage in (Stage.MAL, Stage.MQL):
        lead = lead_services.lead_transition(lead=lead, to_stage=stage)
    assert types_sent()[2:] == ["lead.stage_changed", "lead.stage_changed", "lead.mql"]
    mql = WebhookEvent.objects.get(type="lead.mql").payload
    assert (mql["from_stage"], mql["to_stage"], mql["lead"]["stage"]) == ("mal", "mql", "mql")

    lead = LeadFactory(stage=Stage.SQL)
    lead_services.lead_close(lead=lead, won=True, amount=25000, currency="EUR")
    closed = WebhookEvent.objects.get(type="lead.closed").payload
    assert (closed["to_stage"], closed["lead"]["deal_value"], closed["lead"]["deal_currency"]) == (
        "won",
        "25000.00",
        "EUR",
    )
    assert closed["reason"] == "won 25000.00 EUR"


def test_an_accepted_assignment_sends_lead_accepted_and_the_stage_change(api, rep_a, marketing):
    from routing.models import Assignment

    WebhookSubscription.objects.create(name="sales", url="http://127.0.0.1/h", events=ALL_TYPES)
    lead = LeadFactory(stage=Stage.MQL, owner=rep_a)
    assignment = Assignment.objects.create(lead=lead, user=rep_a, status=Assignment.Status.ACTIVE, strategy="direct")
    assert api(rep_a).post(f"/api/v1/leads/{lead.pk}/accept/").status_code == 200
    assert types_sent() == ["lead.accepted", "lead.stage_changed"]
    accepted = WebhookEvent.objects.get(type="lead.accepted").payload
    assert accepted["assignment"]["id"] == assignment.pk and accepted["accepted_by"] == rep_a.pk
    assert accepted["assignment"]["assignee"] == "rep"


def test_a_reassignment_sends_lead_assigned(rep_a, rep_b, sales_manager):
    from routing import handover

    WebhookSubscription.objects.create(name="sales", url="http://127.0.0.1/h", events=["lead.assigned"])
    lead = LeadFactory(stage=Stage.MQL)
    with transaction.atomic():
        assignment = handover.hand_to(lead, rep_b, move="reassign", actor=sales_manager, note="", due_at=None)
    data = WebhookEvent.objects.get().payload
    assert data["assignment"]["id"] == assignment.pk and data["assignment"]["user_id"] == rep_b.pk
    assert data["lead"]["owner_id"] == rep_b.pk


def test_erasure_sends_lead_erased_and_scrubs_every_earlier_payload(marketing):
    keep = WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=ALL_TYPES)
    filtered = WebhookSubscription.objects.create(name="AT only", url="http://127.0.0.1/a", events=ALL_TYPES)
    filtered.conditions.create(field="country", operator="eq", value="AT")
    lead, _ = lead_services.lead_capture(data={"email": "forget.me@example.org", "first_name": "Erika"})
    other, _ = lead_services.lead_capture(data={"email": "keep.me@example.org", "first_name": "Karl"})
    with transaction.atomic():
        signals.lead_erased_in_transaction.send(sender="leads", lead_id=lead.pk, actor_id=marketing.pk)
    scrubbed = {"lead": {"id": lead.pk, "erased": True}}
    assert [e.payload for e in WebhookEvent.objects.filter(lead_id=lead.pk).order_by("created_at")] == [
        scrubbed,
        scrubbed,
    ]
    erased = WebhookEvent.objects.get(type="lead.erased")
    # Sent to the unfiltered subscription; the AT-only one never had this lead.
    assert list(erased.deliveries.values_list("subscription_id", flat=True)) == [keep.pk]
    assert WebhookEvent.objects.get(lead_id=other.pk).payload["lead"]["first_name"] == "Karl"
    assert "forget.me" not in json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))


# --- who may manage webhooks ---------------------------------------------------------------------


def test_marketing_and_staff_manage_webhooks_others_are_refused(
    api, marketing, admin_user, staff_plain, sales_manager, rep_a, partner_a, integration
):
    mine = subscribe(api, marketing, "http://127.0.0.1/mine")
    assert "secret" in mine
    theirs = subscribe(api, admin_user, "http://127.0.0.1/theirs")
    for user in (marketing, admin_user, staff_plain):
        client = api(user)
        listed = client.get("/api/v1/webhooks/")
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()["results"]] == [mine["id"], theirs["id"]]
        text = listed.content.decode()
        assert mine["secret"] not in text and theirs["secret"] not in text and "secret" not in text
        shown = client.get(f"/api/v1/webhooks/{theirs['id']}/")
        assert shown.status_code == 200 and "secret" not in shown.json()
    changed = api(marketing).patch(f"/api/v1/webhooks/{theirs['id']}/", {"events": ["lead.mql", "lead.created"]})
    assert changed.status_code == 200 and changed.json()["events"] == ["lead.created", "lead.mql"]
    assert "secret" not in changed.json()

    before = list(WebhookSubscription.objects.values_list("pk", "name", "url", "events"))
    for user, status in ((sales_manager, 403), (rep_a, 403), (integration, 403), (partner_a, 404)):
        client = api(user)
        assert client.get("/api/v1/webhooks/").status_code == status, user
        assert client.get(f"/api/v1/webhooks/{mine['id']}/").status_code == status
        assert (
            client.post(
                "/api/v1/webhooks/", {"name": "x", "url": "http://127.0.0.1/", "events": ["lead.mql"]}
            ).status_code
            == status
        )
        assert client.post(f"/api/v1/webhooks/{mine['id']}/resume/").status_code == status
        assert client.delete(f"/api/v1/webhooks/{mine['id']}/").status_code == status
        assert mine["secret"] not in client.get(f"/api/v1/webhooks/{mine['id']}/").content.decode()
    assert list(WebhookSubscription.objects.values_list("pk", "name", "url", "events")) == before
    assert api(None).get("/api/v1/webhooks/").status_code == 401

    # A marketing token without the webhooks scope is refused, as any narrowed token is.
    narrowed = api(marketing, scopes=["read"]).get("/api/v1/webhooks/")
    assert narrowed.status_code == 403
    assert "scope webhooks" in narrowed.json()["detail"]
    assert api(marketing).delete(f"/api/v1/webhooks/{mine['id']}/").status_code == 204


def test_routing_to_a_partner_and_its_feedback_send_assigned_accepted_feedback_and_closed(
    partner_org_a, partner_org_b, partner_a, django_capture_on_commit_callbacks
):
    from partners.services import feedback_record
    from routing.tests.factories import mql, partner_rule

    partner_rule("Austria → A", [partner_org_a], "AT", priority=10, sla_minutes=60 * 24)
    WebhookSubscription.objects.create(
        name="partner events",
        url="http://127.0.0.1/h",
        events=["lead.assigned", "lead.accepted", "lead.closed", "partner.feedback"],
    )
    lead = mql(django_capture_on_commit_callbacks, country="AT", company="Initech")
    assigned = WebhookEvent.objects.get(type="lead.assigned").payload
    assert (assigned["assignment"]["assignee"], assigned["assignment"]["partner_id"]) == ("partner", partner_org_a.pk)
    assert assigned["lead"]["partner_id"] == partner_org_a.pk

    feedback, _ = feedback_record(lead=lead, user=partner_a, status="won", deal_value=Decimal("1200"), currency="EUR")
    assert types_sent() == ["lead.assigned", "lead.accepted", "lead.closed", "partner.feedback"]
    sent = WebhookEvent.objects.get(type="partner.feedback").payload
    assert (sent["feedback"]["id"], sent["feedback"]["status"], sent["feedback"]["deal_value"]) == (
        feedback.pk,
        "won",
        "1200.00",
    )
    assert sent["lead"]["stage"] == "won"


def test_a_changed_url_is_checked_again_and_a_refused_one_changes_nothing(api, marketing):
    created = subscribe(api, marketing, "http://127.0.0.1/ok")
    with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]):
        response = api(marketing).patch(f"/api/v1/webhooks/{created['id']}/", {"url": "http://10.0.0.1/x", "name": "y"})
    assert response.status_code == 400 and list(response.json()) == ["url"]
    assert WebhookSubscription.objects.values_list("name", "url").get() == ("CRM", "http://127.0.0.1/ok")


def test_the_admin_makes_a_subscription_without_json_shows_the_secret_once_and_resumes(marketing):
    from leads.tests.factories import client_for

    client = client_for(marketing, apps=["webhooks"])
    assert client.get("/admin/webhooks/webhooksubscription/add/").status_code == 200
    form = {
        "name": "CRM",
        "url": "http://127.0.0.1/crm",
        "events": ["lead.created", "lead.mql"],
        "active": "on",
        "new_secret": "",
        "conditions-TOTAL_FORMS": "1",
        "conditions-INITIAL_FORMS": "0",
        "conditions-0-field": "country",
        "conditions-0-operator": "eq",
        "conditions-0-value": "DE",
    }
    response = client.post("/admin/webhooks/webhooksubscription/add/", form, follow=True)
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["lead.created", "lead.mql"]
    assert list(subscription.conditions.values_list("field", "operator", "value")) == [("country", "eq", "DE")]
    assert subscription.created_by == marketing
    assert subscription.secret in response.content.decode()  # shown once, in the message …
    page = client.get(f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/").content.decode()
    assert subscription.secret not in page  # … and never again

    with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]):
        refused = client.post(
            "/admin/webhooks/webhooksubscription/add/", {**form, "name": "meta", "url": "http://169.254.169.254/"}
        )
    assert refused.status_code == 200 and "link-local" in refused.content.decode()
    bad_rule = client.post(
        "/admin/webhooks/webhooksubscription/add/",
        {**form, "name": "bad", "conditions-0-field": "company_size", "conditions-0-operator": "contains"},
    )
    assert "does not apply to Company size" in bad_rule.content.decode()
    assert WebhookSubscription.objects.count() == 1

    WebhookSubscription.objects.update(paused_at=timezone.now(), paused_reason="Paused after 20 failed attempts")
    listing = client.get("/admin/webhooks/webhooksubscription/").content.decode()
    assert "Paused after 20 failed attempts" in listing
    client.post(
        "/admin/webhooks/webhooksubscription/",
        {"action": "resume", "_selected_action": [subscription.pk]},
    )
    subscription.refresh_from_db()
    assert (subscription.paused_at, subscription.paused_reason) == (None, "")


def test_the_admin_lists_deliveries_read_only_and_replays_them(marketing):
    from leads.tests.factories import client_for

    WebhookSubscription.objects.create(name="CRM", url="http://127.0.0.1/h", events=["lead.created"])
    lead_services.lead_capture(data={"email": "admin.replay@example.org"})
    WebhookDelivery.objects.update(status="failed", next_attempt_at=None, attempts=7)
    delivery = WebhookDelivery.objects.get()
    client = client_for(marketing, apps=["webhooks"])
    listing = client.get("/admin/webhooks/webhookdelivery/?status__exact=failed")
    assert listing.status_code == 200 and str(delivery.event_id) in listing.content.decode()
    assert client.get("/admin/webhooks/webhookdelivery/add/").status_code == 403
    client.post("/admin/webhooks/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0) and delivery.next_attempt_at is not None


def test_the_real_erasure_sends_lead_erased_leaves_no_copy_in_webhook_payloads_and_exports_them(marketing):
    from leads.erasure import lead_erase, lead_export

    WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=ALL_TYPES)
    lead, _ = lead_services.lead_capture(
        data={"email": "greta.gone@example.org", "first_name": "Greta", "last_name": "Gone", "phone": "+49 30 1234"}
    )
    exported = lead_export(lead)["webhook_events"]
    assert [e["type"] for e in exported] == ["lead.created"]
    assert exported[0]["payload"]["lead"]["email"] == "greta.gone@example.org"
    assert exported[0]["sent_to"] == [{"subscription": "all", "url": "http://127.0.0.1/h", "status": "pending"}]

    lead_erase(lead=lead, actor=marketing)
    # The erasure disqualified the new lead (a stage change, recorded before the data went) and erased it.
    assert types_sent() == ["lead.created", "lead.stage_changed", "lead.erased"]
    everything = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    for personal in ("greta.gone", "Greta", "Gone", "1234"):
        assert personal not in everything
    assert {json.dumps(p) for p in WebhookEvent.objects.values_list("payload", flat=True)} == {
        json.dumps({"lead": {"id": lead.pk, "erased": True}})
    }


def test_old_events_with_nothing_left_to_send_are_pruned(marketing):
    from webhooks.tasks import prune_task

    WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=["lead.created"])
    for email in ("old.done@example.org", "old.pending@example.org", "new.done@example.org"):
        lead_services.lead_capture(data={"email": email})
    by_email = {e.payload["lead"]["email"]: e for e in WebhookEvent.objects.all()}
    old = timezone.now() - timedelta(days=31)
    WebhookEvent.objects.filter(
        pk__in=[by_email["old.done@example.org"].pk, by_email["old.pending@example.org"].pk]
    ).update(created_at=old)
    WebhookDelivery.objects.exclude(event=by_email["old.pending@example.org"]).update(status="delivered")
    assert prune_task() == 1
    left = sorted(e.payload["lead"]["email"] for e in WebhookEvent.objects.all())
    assert left == ["new.done@example.org", "old.pending@example.org"]
    assert WebhookDelivery.objects.count() == 2


@override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8", "::1/128"])
def test_a_host_name_is_sent_as_the_host_while_the_connection_goes_to_the_checked_address(
    api, marketing, django_capture_on_commit_callbacks
):
    with receiver([200]) as hook:
        url = hook.url.replace("127.0.0.1", "localhost")
        subscribe(api, marketing, url)
        with django_capture_on_commit_callbacks(execute=True):
            lead_services.lead_capture(data={"email": "named@example.org"})
        assert WebhookDelivery.objects.get().status == "delivered"
        assert hook.requests[0].headers["Host"] == url.split("/")[2]  # the name, not the address


@override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8", "::1/128"])
def test_after_connecting_tls_would_still_check_the_name_not_the_address():
    from webhooks.transport import _GuardedHTTPSConnection

    with receiver([200]) as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        connection_ = _GuardedHTTPSConnection("localhost", port, timeout=2)
        sock = connection_._new_conn()  # the TCP connection to a checked address (no TLS here)
        try:
            assert sock.getpeername()[0] in ("127.0.0.1", "::1")
            assert connection_.host == "localhost"  # what SNI and the certificate check use next
        finally:
            sock.close()


def test_ping_sends_a_signed_test_event_now_and_records_nothing(api, marketing, rep_a):
    with receiver([500, 204]) as hook:
        created = subscribe(api, marketing, hook.url)
        first = api(marketing).post(f"/api/v1/webhooks/{created['id']}/ping/")
        assert first.status_code == 200
        assert first.json() == {"delivered": False, "response_code": 500, "error": f"HTTP 500 from {hook.url}"}
        assert api(marketing).post(f"/api/v1/webhooks/{created['id']}/ping/").json() == {
            "delivered": True,
            "response_code": 204,
            "error": "",
        }
        assert api(rep_a).post(f"/api/v1/webhooks/{created['id']}/ping/").status_code == 403
        assert len(hook.requests) == 2
        got = hook.requests[1]
        assert verify(created["secret"], got.headers, got.body)
        body = json.loads(got.body)
        assert (body["type"], body["data"]) == ("webhook.ping", {"subscription": created["id"]})
        assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == (0, 0)
        assert WebhookSubscription.objects.get().consecutive_failures == 0


def test_an_event_for_an_unknown_email_sends_lead_created_and_known_leads_events_send_nothing(marketing):
    WebhookSubscription.objects.create(name="all", url="http://127.0.0.1/h", events=ALL_TYPES)
    known = LeadFactory(email="known@example.org")
    now = timezone.now()
    lead_services.events_ingest(
        events=[
            {"email": "new.by.event@example.org", "type": "page_view", "occurred_at": now, "source": "web"},
            {"lead_id": known.pk, "type": "page_view", "occurred_at": now, "source": "web"},
        ]
    )
    [event] = WebhookEvent.objects.all()
    assert (event.type, event.payload["lead"]["email"]) == ("lead.created", "new.by.event@example.org")
