"""Consent: the double opt-in e-mail and its link, withdrawal, and what a capture may no longer say."""

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail as outbox
from django.core import signing
from django.test import Client, override_settings

from leads import consent
from leads.models import Activity, ActivityType, ConsentStatus, Lead, Stage
from leads.services import events_ingest, lead_capture

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/consent/[^/\s]+/(?:confirm|unsubscribe)/)")


def state(lead: Lead) -> tuple:
    lead.refresh_from_db()
    return (lead.consent_status, lead.consent_at, lead.stage, lead.stage_changes.count())


def links(text: str) -> list[str]:
    return LINK.findall(text)


@pytest.fixture(autouse=True)
def portal_url(settings):
    settings.PORTAL_BASE_URL = "http://testserver"


def capture_with_opt_in(api, integration, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(integration).post(
            "/api/v1/leads/", {"email": "optin@acme.example", "double_opt_in": True, **data}, format="json"
        )
    assert response.status_code in (200, 201), response.json()
    return Lead.objects.get(email="optin@acme.example")


def test_double_opt_in_sends_one_email_and_its_link_confirms_only_on_post(
    api, integration, django_capture_on_commit_callbacks
):
    lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks, first_name="Ada")
    assert (lead.consent_status, lead.stage) == (ConsentStatus.PENDING, Stage.NEW)
    [email] = outbox.outbox
    assert (email.to, email.subject) == (["optin@acme.example"], "Please confirm your subscription")
    confirm, unsubscribe = links(email.body)
    assert confirm.endswith("/confirm/") and unsubscribe.endswith("/unsubscribe/")
    before = state(lead)

    page = Client().get(confirm)  # what a mail scanner's prefetch does

    assert page.status_code == 200
    assert b"Confirm your subscription" in page.content and b"o***@acme.example" in page.content
    assert b"optin@acme.example" not in page.content
    assert state(lead) == before

    done = Client().post(confirm)

    assert b"Your subscription is confirmed" in done.content
    lead.refresh_from_db()
    assert (lead.consent_status, lead.stage) == (ConsentStatus.CONFIRMED, Stage.MAL)
    assert lead.consent_at > before[1]
    change = lead.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.reason) == ("new", "mal", "Opt-in confirmed")
    record = Activity.objects.get(lead=lead, source="consent")
    assert record.properties["consent"] == "confirmed"
    assert record.properties["consent_source"] == "double opt-in link"
    # A second click changes nothing.
    assert b"Already confirmed" in Client().post(confirm).content
    assert lead.stage_changes.count() == 1


def test_the_confirmation_email_is_in_the_leads_language(api, integration, django_capture_on_commit_callbacks):
    capture_with_opt_in(api, integration, django_capture_on_commit_callbacks, language="de")
    [email] = outbox.outbox
    assert email.subject == "Bitte bestätigen Sie Ihre Anmeldung"
    assert "bitte bestätigen Sie" in email.body
    html = email.alternatives[0][0]
    assert "Oder öffnen Sie http://testserver/consent/" in html and "Or open" not in html


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), lambda t: "x" + t])
def test_a_tampered_link_changes_nothing_and_says_so(mangle, api, integration, django_capture_on_commit_callbacks):
    lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)
    confirm, _ = links(outbox.outbox[0].body)
    token = confirm.split("/")[2]
    before = state(lead)

    response = Client().post(f"/consent/{mangle(token)}/confirm/")

    assert response.status_code == 200 and b"This link is not valid" in response.content
    assert state(lead) == before


def test_an_expired_link_changes_nothing_and_says_so(
    api, integration, django_capture_on_commit_callbacks, settings, monkeypatch
):
    lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)
    confirm, _ = links(outbox.outbox[0].body)
    before = state(lead)
    later = time.time() + timedelta(days=settings.CONSENT_LINK_MAX_AGE_DAYS, minutes=1).total_seconds()
    monkeypatch.setattr(signing.time, "time", lambda: later)

    response = Client().post(confirm)

    assert b"This link has expired" in response.content
    assert state(lead) == before


def test_a_token_for_one_purpose_is_no_token_for_the_other():
    lead, _ = lead_capture(data={"email": "x@acme.example"})
    token = consent.token_for(lead, consent.UNSUBSCRIBE)
    assert consent.consent_confirm(token=token) == ("invalid", None)
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt="leads.consent.confirm")


def test_an_unsubscribe_event_withdraws_consent_and_a_capture_does_not_give_it_back(api, integration):
    lead, _ = lead_capture(data={"email": "u@acme.example"})
    consent.consent_confirm(token=consent.token_for(lead, consent.CONFIRM))
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.CONFIRMED
    control, _ = lead_capture(data={"email": "control@acme.example"})

    result = events_ingest(events=[{"email": "u@acme.example", "type": "unsubscribe", "occurred_at": lead.created_at}])

    assert result["stored"] == 1
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.WITHDRAWN
    assert lead.marketing_suppressed is False  # the handover's field: withdrawal does not write it
    withdrawn_at = lead.consent_at
    client = api(integration)
    for status in ("none", "pending"):
        assert client.post("/api/v1/leads/", {"email": "u@acme.example", "consent_status": status}).status_code == 200
    refused = client.post("/api/v1/leads/", {"email": "u@acme.example", "consent_status": "confirmed"})
    assert refused.status_code == 400
    assert refused.json() == {"consent_status": [
        'A capture cannot confirm consent: send "double_opt_in": true and the lead confirms through the e-mail\'s link.'
    ]}
    lead.refresh_from_db()
    assert (lead.consent_status, lead.consent_at) == (ConsentStatus.WITHDRAWN, withdrawn_at)
    assert Lead.objects.get(pk=control.pk).consent_status == ConsentStatus.NONE


def test_a_link_issued_before_the_withdrawal_does_not_undo_it_but_a_new_opt_in_does(
    api, integration, django_capture_on_commit_callbacks
):
    lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)
    old_confirm, unsubscribe = links(outbox.outbox[0].body)
    assert b"Unsubscribed" in Client().post(unsubscribe).content
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.WITHDRAWN
    before = state(lead)

    assert b"no longer valid" in Client().post(old_confirm).content
    assert state(lead) == before

    capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)  # a new opt-in request
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.WITHDRAWN  # still, until the person confirms
    new_confirm, _ = links(outbox.outbox[1].body)
    Client().post(new_confirm)
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.CONFIRMED


def test_withdrawn_from_a_capture_or_update_is_honoured(api, integration, marketing):
    lead, _ = lead_capture(data={"email": "w@acme.example"})
    consent.consent_confirm(token=consent.token_for(lead, consent.CONFIRM))
    client = api(integration)

    client.post("/api/v1/leads/", {"email": "w@acme.example", "consent_status": "withdrawn"})

    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.WITHDRAWN
    patch = api(marketing).patch(f"/api/v1/leads/{lead.pk}/", {"consent_status": "confirmed"}, format="json")
    assert patch.status_code == 400 and list(patch.json()) == ["consent_status"]


def test_a_confirmed_lead_may_still_say_confirmed(api, integration):
    lead, _ = lead_capture(data={"email": "c@acme.example"})
    consent.consent_confirm(token=consent.token_for(lead, consent.CONFIRM))
    response = api(integration).post("/api/v1/leads/", {"email": "c@acme.example", "consent_status": "confirmed"})
    assert response.status_code == 200
    assert Activity.objects.filter(lead=lead, type=ActivityType.CAPTURED).count() == 2


def test_double_opt_in_end_to_end_through_the_email_file(
    api, integration, django_capture_on_commit_callbacks, tmp_path: Path
):
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(tmp_path)
    ):
        lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)
    [file] = list(tmp_path.iterdir())
    text = file.read_text()
    assert "To: optin@acme.example" in text
    [confirm] = [link for link in links(text) if link.endswith("/confirm/")][:1]
    before = state(lead)

    assert Client().get(confirm).status_code == 200
    assert state(lead) == before
    Client().post(confirm)

    lead.refresh_from_db()
    assert (lead.consent_status, lead.stage) == (ConsentStatus.CONFIRMED, Stage.MAL)
    assert lead.consent_at is not None


def test_the_mail_clients_one_click_unsubscribe_withdraws_consent(api, integration, django_capture_on_commit_callbacks):
    """RFC 8058: the e-mail names its unsubscribe link in List-Unsubscribe; the mail client POSTs
    `List-Unsubscribe=One-Click` to it, with no form and no CSRF token."""
    lead = capture_with_opt_in(api, integration, django_capture_on_commit_callbacks)
    [email] = outbox.outbox
    header = email.extra_headers["List-Unsubscribe"]
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [unsubscribe] = LINK.findall(header.strip("<>"))
    assert unsubscribe == links(email.body)[1]
    assert re.search(r"^List-Unsubscribe:\s+<http://testserver/consent/", email.message().as_string(), re.M)

    answer = Client(enforce_csrf_checks=True).post(
        unsubscribe, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert answer.status_code == 200
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.WITHDRAWN
