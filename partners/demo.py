"""Demo partner loop: channel managers, feedback in several states on leads routed to the two demo
partners, and a chase that has started on leads whose partner accepted but never reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from leads.demo import seeder
from leads.models import Lead, Stage, User
from routing.models import Assignment
from routing.services import lead_route

from . import services
from .models import PartnerFeedback, PartnerOrganization

# Per organisation, the feedback each of its waiting MQLs gets, in order (one list per lead).
# Declines and take-backs are left to the live demo: they leave an MQL with an ended assignment.
STORIES: list[list[dict]] = [
    [{"status": "accepted"}, {"status": "contacted"}, {"status": "meeting", "note": "Demo on site next week"}],
    [{"status": "contacted"}, {"status": "proposal"}, {"status": "won", "deal_value": Decimal("18500")}],
    [{"status": "accepted"}, {"status": "lost", "reason": "no_budget", "note": "Budget frozen until next year"}],
    [{"status": "unreachable", "note": "Three calls, no answer"}],
    [{"status": "accepted"}],  # accepted, never reported: the chase reminds (overdue)
    [{"status": "accepted"}],  # accepted, never reported: the chase reminds (due)
]
AGE_DAYS = {4: 6, 5: 3.5}  # story index → days since the handover, so that reminders are due


@seeder(order=20)  # after scoring has made (and routing has routed) the MQLs
def seed_partners(say: Callable[[str], None]) -> None:
    view = Permission.objects.filter(
        content_type__app_label="partners", codename__in=["view_partnerfeedback", "view_feedbackreminder"]
    )
    for name in ("Marketing", "Sales managers"):
        Group.objects.get_or_create(name=name)[0].permissions.add(*view)
    manager = User.objects.filter(username="salesmanager").first()
    PartnerOrganization.objects.filter(channel_manager=None).update(channel_manager=manager)
    if PartnerFeedback.objects.exists():
        return
    # MQLs that scoring has just made are routed after their commit; route them now (route_lead keeps
    # an open assignment, so the queued task changes nothing later) so that the partners have theirs.
    unrouted = Lead.objects.filter(stage=Stage.MQL).exclude(assignments__status__in=Assignment.OPEN)
    for lead_id in unrouted.values_list("pk", flat=True):
        lead_route(lead_id=lead_id)
    recorded = 0
    for org in PartnerOrganization.objects.order_by("name"):
        user = org.users.order_by("pk").first()
        waiting = list(
            Lead.objects.filter(
                partner=org,
                stage=Stage.MQL,
                assignments__partner=org,
                assignments__status=Assignment.Status.ACTIVE,
            ).order_by("pk")[: len(STORIES)]
        )
        if user is None:
            continue
        for index, (lead, story) in enumerate(zip(waiting, STORIES, strict=False)):
            with transaction.atomic():
                for n, fields in enumerate(story):
                    services.feedback_record(lead=lead, user=user, external_id=f"demo-{lead.pk}-{n}", **fields)
                    recorded += 1
                if index in AGE_DAYS:
                    back = timedelta(days=AGE_DAYS[index])
                    handed_over = Lead.objects.get(pk=lead.pk).handed_over_at - back
                    Lead.objects.filter(pk=lead.pk).update(handed_over_at=handed_over)
                    Assignment.objects.filter(lead=lead, partner=org).update(assigned_at=handed_over)
    chased = services.feedback_chase()
    say(
        f"Partners: {recorded} feedback reports on {PartnerOrganization.objects.count()} organisations' leads; "
        f"chase: {chased['due']} due and {chased['overdue']} overdue reminders."
    )
