"""The chase for missing feedback: due and overdue reminders once per step, then the lead is taken back."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from leads.models import Activity, ActivityType, Lead, PartnerOrganization, Stage
from leads.tests.factories import UserFactory, client_for
from partners import tasks
from partners.models import FeedbackReminder
from partners.services import chase_step, feedback_chase, feedback_record
from routing.models import Assignment

DAY = timedelta(days=1)


@pytest.fixture
def policy(partner_org_a, partner_org_b):
    """Due reminder after 3 days, deadline 5, overdue reminders every 2 days, taken back after 14."""
    manager = UserFactory(username="cora", email="cora@leadportal.example")
    PartnerOrganization.objects.filter(pk__in=[partner_org_a.pk, partner_org_b.pk]).update(
        remind_after_days=3,
        feedback_deadline_days=5,
        remind_every_days=2,
        escalate_after_days=14,
        channel_manager=manager,
    )
    partner_org_a.refresh_from_db()
    return partner_org_a


def chase(capture, at):
    mail.outbox.clear()
    with capture(execute=True):
        return feedback_chase(now=at)


def handed_over_days_ago(lead, days):
    """Move the handover into the past (a chase at a future `now` would see later handovers as old too)."""
    Lead.objects.filter(pk=lead.pk).update(handed_over_at=lead.handed_over_at - days * DAY)
    Assignment.objects.filter(lead=lead).update(assigned_at=lead.handed_over_at - days * DAY)
    lead.refresh_from_db()
    return lead


def chase_events(lead):
    return list(
        Activity.objects.filter(lead=lead, type=ActivityType.ASSIGNMENT, properties__has_key="step")
        .order_by("pk")
        .values_list("properties__step", "properties__number")
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (2.9, None),
        (3, ("due", 1)),
        (4.9, ("due", 1)),
        (5, ("overdue", 1)),
        (6.9, ("overdue", 1)),
        (7, ("overdue", 2)),
        (13.9, ("overdue", 5)),
        (14, ("escalated", 1)),
        (40, ("escalated", 1)),
    ],
)
def test_the_current_step_of_the_chase(policy, days, expected):
    at = policy.created_at
    step = chase_step(handed_over_at=at, now=at + days * DAY, organization=policy)
    assert (step.step, step.number) == expected if expected else step is None


def test_reminders_go_out_once_per_step_and_are_on_the_timeline(
    routed, policy, partner_a, django_capture_on_commit_callbacks
):
    lead = routed()
    control = routed(email="control@initech.example")  # reported in time: never chased
    feedback_record(lead=control, user=partner_a, status="contacted")
    h = lead.handed_over_at
    capture = django_capture_on_commit_callbacks

    assert chase(capture, h + 2 * DAY) == {"due": 0, "overdue": 0, "escalated": 0}
    assert mail.outbox == []

    assert chase(capture, h + 3 * DAY) == {"due": 1, "overdue": 0, "escalated": 0}
    assert [m.to for m in mail.outbox] == [[partner_a.email]]
    due = timezone.localtime(h + 5 * DAY, ZoneInfo("Europe/Berlin"))
    assert mail.outbox[0].subject == f"Due: your feedback on Initech — by {due:%H:%M} (Berlin time), {due.day} {due:%b}"

    assert chase(capture, h + 4 * DAY) == {"due": 0, "overdue": 0, "escalated": 0}  # same step: nothing again
    assert mail.outbox == []

    assert chase(capture, h + 5 * DAY)["overdue"] == 1
    assert mail.outbox[0].subject.startswith("Overdue: your feedback on Initech")
    assert chase(capture, h + 6 * DAY)["overdue"] == 0
    assert chase(capture, h + 7 * DAY)["overdue"] == 1
    assert chase(capture, h + 7 * DAY)["overdue"] == 0

    assert chase_events(lead) == [("due", 1), ("overdue", 1), ("overdue", 2)]
    assert list(
        FeedbackReminder.objects.filter(lead=lead).order_by("pk").values_list("step", "number", "recipients")
    ) == [
        ("due", 1, [partner_a.email]),
        ("overdue", 1, [partner_a.email]),
        ("overdue", 2, [partner_a.email]),
    ]
    assert chase_events(control) == []
    lead.refresh_from_db()
    assert (lead.stage, lead.partner) == (Stage.MQL, policy)


def test_a_report_stops_the_chase_but_a_bare_acceptance_does_not(
    routed, policy, partner_a, django_capture_on_commit_callbacks
):
    accepted_only = routed()
    reported = routed(email="reported@initech.example")
    feedback_record(lead=accepted_only, user=partner_a, status="accepted")
    feedback_record(lead=reported, user=partner_a, status="accepted")
    feedback_record(lead=reported, user=partner_a, status="meeting")

    result = chase(django_capture_on_commit_callbacks, accepted_only.handed_over_at + 5 * DAY)

    assert result == {"due": 0, "overdue": 1, "escalated": 0}
    assert chase_events(accepted_only) == [("overdue", 1)]
    assert chase_events(reported) == []


def test_past_the_escalation_limit_the_lead_is_taken_back_rerouted_and_the_channel_manager_told(
    routed, policy, partner_org_b, django_capture_on_commit_callbacks
):
    lead = handed_over_days_ago(routed(), 14)

    result = chase(django_capture_on_commit_callbacks, timezone.now())

    assert result == {"due": 0, "overdue": 0, "escalated": 1}
    lead.refresh_from_db()
    assert (lead.stage, lead.partner) == (Stage.MQL, partner_org_b)
    assert list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("partner__name", "status")) == [
        ("Alpine Resellers", "reassigned"),
        ("Nordic Channel", "active"),
    ]
    manager_mail = [m for m in mail.outbox if m.to == ["cora@leadportal.example"]]
    assert [m.subject for m in manager_mail] == ["Lead taken back from Alpine Resellers: Initech"]
    assert "It was rerouted to Nordic Channel." in manager_mail[0].body
    [event] = Activity.objects.filter(lead=lead, properties__step="escalated")
    assert event.properties["event"] == (
        "taken back: no feedback from Alpine Resellers in 14 days; rerouted to Nordic Channel"
    )

    # Running again changes nothing: the new handover (to B) is not due yet, A's escalation is recorded.
    assert chase(django_capture_on_commit_callbacks, timezone.now()) == {"due": 0, "overdue": 0, "escalated": 0}
    assert mail.outbox == []


def test_an_accepted_lead_without_reports_is_taken_back_through_marketing(
    routed, policy, partner_a, partner_org_b, django_capture_on_commit_callbacks
):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="accepted")
    handed_over_days_ago(lead, 15)

    assert chase(django_capture_on_commit_callbacks, timezone.now()) == {"due": 0, "overdue": 0, "escalated": 1}

    lead.refresh_from_db()
    assert (lead.stage, lead.partner) == (Stage.MQL, partner_org_b)
    assert list(lead.stage_changes.order_by("pk").values_list("from_stage", "to_stage"))[-3:] == [
        ("mql", "sal"),
        ("sal", "mal"),
        ("mal", "mql"),
    ]


def test_the_beat_task_runs_the_chase(routed, policy, partner_a, django_capture_on_commit_callbacks):
    handed_over_days_ago(routed(), 3)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.chase_feedback_task() == {"due": 1, "overdue": 0, "escalated": 0}
        assert tasks.chase_feedback_task() == {"due": 0, "overdue": 0, "escalated": 0}
    assert [m.subject.split(":")[0] for m in mail.outbox] == ["Due"]


def test_the_partners_users_are_told_in_the_app_of_a_new_lead_and_of_each_overdue_reminder(
    routed, policy, partner_a, partner_b, django_capture_on_commit_callbacks
):
    from leads.models import Notification

    lead = routed()
    [new] = Notification.objects.filter(user=partner_a)
    assert (new.kind, new.url) == ("assigned", f"/partner/leads/{lead.pk}/")
    h = lead.handed_over_at
    capture = django_capture_on_commit_callbacks
    chase(capture, h + 3 * DAY)  # "due" is an e-mail only
    assert Notification.objects.filter(kind="feedback_overdue").count() == 0
    chase(capture, h + 5 * DAY)
    chase(capture, h + 6 * DAY)  # the same step: nothing again
    [overdue] = Notification.objects.filter(kind="feedback_overdue")
    assert overdue.user_id == partner_a.pk and overdue.text.startswith("Feedback overdue: Initech — due ")
    assert overdue.url == f"/partner/leads/{lead.pk}/"
    chase(capture, h + 7 * DAY)  # the next reminder: told again
    assert Notification.objects.filter(kind="feedback_overdue", user=partner_a).count() == 2
    assert not Notification.objects.filter(user=partner_b).exists()
    page = client_for(partner_a).get("/app/notifications/").content.decode()
    assert page.count("Feedback overdue: Initech") == 2
    assert "Feedback overdue" not in client_for(partner_b).get("/app/notifications/").content.decode()
