"""The chase's e-mails, one test per message: recipient, subject, plain text word for word, the HTML's
key phrases (lead, deadline in Berlin time with the zone said, the link), and nothing internal for a
partner."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from leads.models import Lead
from leads.tests.factories import UserFactory
from partners.services import feedback_chase
from routing.models import Assignment

DAY = timedelta(days=1)
BASE = "https://leads.example.com"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def portal(settings):
    settings.PORTAL_BASE_URL = BASE


@pytest.fixture
def policy(partner_org_a, partner_org_b):
    """Due reminder after 3 days, deadline 5, overdue reminders every 2 days, taken back after 14."""
    manager = UserFactory(username="cora", first_name="Cora", email="cora@leadportal.example")
    for org in (partner_org_a, partner_org_b):
        org.remind_after_days, org.feedback_deadline_days, org.remind_every_days = 3, 5, 2
        org.escalate_after_days, org.channel_manager = 14, manager
        org.save()
    return partner_org_a


@pytest.fixture
def pia(partner_a):
    partner_a.first_name = "Pia"
    partner_a.save(update_fields=["first_name"])
    return partner_a


@pytest.fixture
def lead(routed):
    return routed(first_name="Lena", last_name="Lind", email="lena@initech.example")


def chase(capture, at):
    mail.outbox.clear()
    with capture(execute=True):
        return feedback_chase(now=at)


def at(moment) -> str:
    local = timezone.localtime(moment, BERLIN)
    return f"{local:%H:%M} (Berlin time), {local.day} {local:%b}"


def on(moment) -> str:
    local = timezone.localtime(moment, BERLIN)
    return f"{local.day} {local:%b %Y}"


def html(message) -> str:
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


def test_the_partner_is_reminded_when_feedback_is_due(lead, policy, pia, django_capture_on_commit_callbacks):
    h = lead.handed_over_at

    chase(django_capture_on_commit_callbacks, h + 3 * DAY)

    [message] = mail.outbox
    assert message.to == [pia.email]
    assert message.subject == f"Due: your feedback on Initech — by {at(h + 5 * DAY)}"
    assert message.body == (
        "Hello Pia,\n"
        "\n"
        f"Lena Lind <lena@initech.example> was handed to Alpine Resellers on {on(h)}. Please tell us how it is "
        f"going (contacted, meeting, proposal, won, lost) by {at(h + 5 * DAY)}.\n"
        "\n"
        f"Give your feedback in the partner portal: {BASE}/partner/leads/{lead.pk}/\n"
        "\n"
        f"Without feedback the lead is taken back on {on(h + 14 * DAY)}.\n"
    )
    body = html(message)
    assert "<strong>Lena Lind &lt;lena@initech.example&gt;</strong> was handed to Alpine Resellers" in body
    assert f"by <strong>{at(h + 5 * DAY)}</strong>" in body and f'<a href="{BASE}/partner/leads/{lead.pk}/"' in body
    everything = f"{message.subject} {message.body} {body}"
    assert "Austria → A" not in everything and "/app/" not in everything  # the routing rule, internal pages


def test_the_partner_is_reminded_again_when_feedback_is_overdue(lead, policy, pia, django_capture_on_commit_callbacks):
    h = lead.handed_over_at

    chase(django_capture_on_commit_callbacks, h + 5 * DAY)

    [message] = mail.outbox
    assert message.to == [pia.email]
    assert message.subject == f"Overdue: your feedback on Initech — it was due by {at(h + 5 * DAY)}"
    assert message.body == (
        "Hello Pia,\n"
        "\n"
        f"we are still waiting for your feedback on Lena Lind <lena@initech.example>, handed to Alpine Resellers "
        f"on {on(h)}; it was due by {at(h + 5 * DAY)}. Please tell us how it is going (contacted, meeting, "
        "proposal, won, lost).\n"
        "\n"
        f"Give your feedback in the partner portal: {BASE}/partner/leads/{lead.pk}/\n"
        "\n"
        f"Without feedback the lead is taken back on {on(h + 14 * DAY)}.\n"
    )
    assert f"it was due by <strong>{at(h + 5 * DAY)}</strong>" in html(message)
    assert f'<a href="{BASE}/partner/leads/{lead.pk}/"' in html(message)


def test_the_channel_manager_is_told_when_a_lead_is_taken_back(
    lead, policy, partner_org_b, django_capture_on_commit_callbacks
):
    h = lead.handed_over_at - 14 * DAY
    Lead.objects.filter(pk=lead.pk).update(handed_over_at=h)
    Assignment.objects.filter(lead=lead).update(assigned_at=h)

    chase(django_capture_on_commit_callbacks, timezone.now())

    [message] = [m for m in mail.outbox if m.to == ["cora@leadportal.example"]]
    assert message.subject == "Lead taken back from Alpine Resellers: Initech"
    assert message.body == (
        "Hello Cora,\n"
        "\n"
        f"Alpine Resellers has not reported on Lena Lind <lena@initech.example> since the handover on {on(h)} "
        "(14 days), so the lead was taken back. It was rerouted to Nordic Channel.\n"
        "\n"
        f"Open the lead: {BASE}/app/leads/{lead.pk}/\n"
    )
    assert "so the lead was taken back. It was rerouted to Nordic Channel." in html(message)
    assert f'<a href="{BASE}/app/leads/{lead.pk}/"' in html(message)
