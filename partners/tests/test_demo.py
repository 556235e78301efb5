from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from leads.models import Lead, PartnerOrganization, Stage
from partners.models import FeedbackReminder, PartnerFeedback
from partners.selectors import partner_performance
from routing.models import Assignment
from scoring.models import BehaviorRule


def test_the_demo_routes_leads_to_both_partners_with_feedback_in_several_states(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    counts = (PartnerFeedback.objects.count(), FeedbackReminder.objects.count())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")

    assert (PartnerFeedback.objects.count(), FeedbackReminder.objects.count()) == counts
    for org in PartnerOrganization.objects.all():
        statuses = set(PartnerFeedback.objects.filter(organization=org).values_list("status", flat=True))
        assert len(statuses) >= 3, (org.name, statuses)
        assert org.channel_manager.username == "salesmanager"
        assert partner_performance(org)[org.pk].accepted >= 2
    assert set(PartnerFeedback.objects.values_list("status", flat=True)) >= {
        "accepted",
        "contacted",
        "meeting",
        "proposal",
        "won",
        "lost",
        "unreachable",
    }
    assert "overdue" in set(FeedbackReminder.objects.values_list("step", flat=True))
    assert set(
        BehaviorRule.objects.filter(model__status="active", activity_type="partner_feedback").values_list(
            "property", "value"
        )
    ) == {("status", "meeting"), ("status", "proposal"), ("status", "unreachable"), ("reason", "no_budget")}

    # The stories happened when they say: every report after its handover, the partners' deals closed
    # 96 (won) and 41 (lost) days ago, the two chased leads handed over 6 and 3.5 days ago.
    now = timezone.now()
    for feedback in PartnerFeedback.objects.all():
        handover = Assignment.objects.filter(lead_id=feedback.lead_id, partner_id=feedback.organization_id).get()
        assert handover.assigned_at < feedback.at < now
    days = lambda at: round((now - at) / timedelta(days=1), 1)  # noqa: E731
    closed = Lead.objects.filter(partner__isnull=False, stage__in=[Stage.WON, Stage.LOST])
    assert sorted((lead.stage, days(lead.closed_at)) for lead in closed) == [
        (Stage.LOST, 41.0),
        (Stage.LOST, 41.0),
        (Stage.WON, 96.0),
        (Stage.WON, 96.0),
    ]
    assert sorted(days(reminder.handed_over_at) for reminder in FeedbackReminder.objects.all()) == [3.5, 3.5, 6.0, 6.0]
