"""The e-mail helper and the one sending task: templates rendered as written (text unescaped, HTML
escaped), times in Berlin with the zone said, links from PORTAL_BASE_URL, SMTP errors retried until
the e-mail goes out once, and a `sent` hook run only after the mail server took the e-mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from smtplib import SMTPException, SMTPServerDisconnected

import pytest
from django.core import mail as outbox
from django.core.mail.backends import locmem

from leads import mail
from leads.tasks import send_email_task

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails"


class FlakyBackend(locmem.EmailBackend):
    """The mail server refuses the first `failures` attempts (as a server that is restarting does)."""

    failures = 0
    attempts = 0

    def send_messages(self, messages):
        FlakyBackend.attempts += 1
        if FlakyBackend.attempts <= FlakyBackend.failures:
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings, monkeypatch):
    """Tests run tasks eagerly and propagate their errors, so a retry would surface as an exception:
    here the eager run retries as a worker does (at once, without the backoff's wait)."""
    monkeypatch.setitem(send_email_task.app.conf, "task_eager_propagates", False)
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.attempts = 0

    def fail(times: int) -> type[FlakyBackend]:
        FlakyBackend.failures = times
        return FlakyBackend

    return fail


@pytest.fixture
def hook_calls():
    calls: list[int] = []
    mail.on_sent("test.recorded", calls.append)
    yield calls
    mail._sent_hooks.pop("test.recorded")


def an_email(to: str = "rita@example.com") -> mail.Email:
    return mail.Email(to=to, subject="Hello", text="Plain words\n", html="<p>Plain words</p>")


def test_a_moment_is_shown_in_berlin_with_the_zone_said_winter_and_summer():
    assert mail.when(datetime(2026, 12, 2, 13, 30, tzinfo=UTC)) == "14:30 (Berlin time), 2 Dec"
    assert mail.when(datetime(2026, 7, 2, 12, 30, tzinfo=UTC)) == "14:30 (Berlin time), 2 Jul"
    # Past midnight in Berlin is the next day there.
    assert mail.when(datetime(2026, 12, 2, 23, 30, tzinfo=UTC)) == "00:30 (Berlin time), 3 Dec"
    assert mail.day(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "1 Jan 2027"


def test_links_start_with_the_portal_base_url(settings):
    settings.PORTAL_BASE_URL = "https://leads.example.com/"
    assert mail.link("leads:lead", 42) == "https://leads.example.com/app/leads/42/"
    assert mail.link("partners:lead", 7) == "https://leads.example.com/partner/leads/7/"


@pytest.mark.django_db
def test_render_keeps_text_as_written_escapes_html_and_makes_the_subject_one_line(settings):
    settings.PORTAL_BASE_URL = "https://leads.example.com"
    email = mail.render(
        "feedback_due",
        {
            "lead": "Lena Lead <lena@smith.example>",
            "company": "Smith &\nCo",
            "organization": "Alpine <Resellers>",
            "handed_over": "25 Nov 2026",
            "due": "14:30 (Berlin time), 2 Dec",
            "take_back": "9 Dec 2026",
            "url": "https://leads.example.com/partner/leads/1/",
            "name": "Pia",
        },
        to="pia@example.com",
    )
    assert email.to == "pia@example.com"
    assert email.subject == "Due: your feedback on Smith & Co — by 14:30 (Berlin time), 2 Dec"
    assert "Lena Lead <lena@smith.example> was handed to Alpine <Resellers> on 25 Nov 2026." in email.text
    assert "Lena Lead &lt;lena@smith.example&gt;" in email.html and "Alpine &lt;Resellers&gt;" in email.html
    assert "<Resellers>" not in email.html
    assert 'href="https://leads.example.com/partner/leads/1/"' in email.html
    assert "LeadPortal &middot; https://leads.example.com" in email.html  # the footer names the portal


def test_every_message_has_a_subject_a_text_and_an_html_template_and_loads_nothing_from_elsewhere():
    names = {path.name.split(".")[0] for path in TEMPLATES.glob("*.txt")}
    assert names == {
        "lead_assigned",
        "lead_escalated",
        "lead_handed_to_partner",
        "pool_new",
        "pool_waiting",
        "lead_unassigned",
        "feedback_due",
        "feedback_overdue",
        "lead_taken_back",
        "consent_confirm_de",
        "consent_confirm_en",
    }
    for name in names:
        assert (TEMPLATES / f"{name}.subject.txt").exists() and (TEMPLATES / f"{name}.html").exists(), name
    # Mail clients load nothing for us: no images, fonts, stylesheets or scripts, no absolute URL but
    # the links the context brings; no <style> block (clients drop it: CSS is inline).
    remote = re.compile(r"<script|<link|<img|<style|\ssrc\s*=|url\(|@import|https?://|\son[a-z]+\s*=", re.I)
    found = [(path.name, m.group(0)) for path in TEMPLATES.glob("*.html") for m in remote.finditer(path.read_text())]
    assert found == []


@pytest.mark.django_db
def test_an_smtp_error_is_retried_and_the_email_goes_out_once(flaky, hook_calls):
    backend = flaky(2)

    send_email_task.delay(an_email().as_dict(), ["test.recorded", 5])

    assert backend.attempts == 3  # refused twice, then taken
    assert [(m.to, m.subject, m.body) for m in outbox.outbox] == [(["rita@example.com"], "Hello", "Plain words\n")]
    assert outbox.outbox[0].alternatives == [("<p>Plain words</p>", "text/html")]
    assert outbox.outbox[0].from_email == "LeadPortal <noreply@leadportal.local>"
    assert hook_calls == [5]  # once, after the e-mail went out


@pytest.mark.django_db
def test_a_mail_server_that_never_takes_it_fails_the_task_after_its_retries_and_the_hook_never_runs(flaky, hook_calls):
    backend = flaky(1000)

    result = send_email_task.delay(an_email().as_dict(), ["test.recorded", 5])

    assert result.state == "FAILURE" and isinstance(result.result, SMTPException)

    assert backend.attempts == send_email_task.max_retries + 1 == 9  # bounded
    assert outbox.outbox == []
    assert hook_calls == []  # not recorded as sent: whoever keeps the record sends it later


def test_the_sending_task_retries_what_can_recover_with_backoff_and_acks_late():
    assert send_email_task.name == "leads.tasks.send_email"
    assert set(send_email_task.autoretry_for) == {SMTPException, ConnectionError, OSError}
    assert (send_email_task.retry_backoff, send_email_task.acks_late) == (True, True)
    assert send_email_task.max_retries == 8 and send_email_task.retry_backoff_max == 300
    # 1 + 2 + … + 128 s of backoff at most, and a minute to spare: after that no copy is still trying.
    assert mail.RETRYING_FOR.total_seconds() == 255 + 60


@pytest.mark.django_db
def test_emails_are_queued_after_the_commit_one_task_each(django_capture_on_commit_callbacks, hook_calls):
    with django_capture_on_commit_callbacks() as queued:
        assert mail.emails_queue([an_email("a@example.com"), an_email("b@example.com")], sent=("test.recorded", 9)) == 2
        assert outbox.outbox == []  # nothing goes out inside the transaction

    assert len(queued) == 1 and outbox.outbox == []  # one after-commit step queues a task per e-mail
    for callback in queued:
        callback()
    assert [m.to for m in outbox.outbox] == [["a@example.com"], ["b@example.com"]]
    assert hook_calls == [9, 9]


@pytest.mark.django_db
def test_an_unknown_hook_is_refused_before_anything_is_queued(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued, pytest.raises(LookupError):
        mail.emails_queue([an_email()], sent=("nobody.registered", 1))
    assert queued == []


@pytest.mark.django_db
def test_an_e_mail_with_a_key_goes_out_once_however_often_it_is_queued(hook_calls):
    """A worker killed between the send and its hook, a database outage after the send: the copy
    queued again finds the key and sends nothing, but still records the e-mail as sent."""
    from dataclasses import replace

    from leads.models import SentEmail

    keyed = replace(an_email("rita@example.com"), key="assignment:7:1764590000:lead_assigned:rita@example.com")
    for _ in range(3):
        send_email_task.delay(keyed.as_dict(), ["test.recorded", 7])

    assert [m.to for m in outbox.outbox] == [["rita@example.com"]]
    assert hook_calls == [7, 7, 7]
    assert list(SentEmail.objects.values_list("key", flat=True)) == [keyed.key]
    other = replace(keyed, key=keyed.key.replace(":7:", ":8:"))  # another round or record: its own e-mail
    send_email_task.delay(other.as_dict(), None)
    assert len(outbox.outbox) == 2


@pytest.mark.django_db
def test_sent_keys_older_than_a_week_are_pruned_and_younger_ones_kept():
    from datetime import timedelta

    from django.utils import timezone

    from leads.models import SentEmail
    from leads.tasks import prune_sent_emails_task

    now = timezone.now()
    SentEmail.objects.create(key="old", sent_at=now - mail.SENT_KEYS_KEPT - timedelta(minutes=1))
    SentEmail.objects.create(key="young", sent_at=now - mail.SENT_KEYS_KEPT + timedelta(minutes=1))

    assert prune_sent_emails_task.delay().get() == 1
    assert list(SentEmail.objects.values_list("key", flat=True)) == ["young"]
