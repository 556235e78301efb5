from django.core.management import call_command

from partners.models import FeedbackReminder, PartnerFeedback, PartnerOrganization
from partners.selectors import partner_performance
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
