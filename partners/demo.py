"""Demo partner loop: channel managers, feedback in several states on leads routed to the two demo
partners, and a chase that has started on leads whose partner accepted but never reported.

Each story is told through `feedback_record`, as a partner would, and then moved back in time
(`leads.demo.stories_backdate`) to when it happened: a deal won months ago, a meeting last week,
two leads accepted days ago and never reported on, which the chase then reminds about."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from leads.demo import Mark, Moves, backdate_rows, backdater, seeder, stories_backdate
from leads.models import Lead, PartnerOrganization, Stage, User
from routing import services as routing_services
from routing.models import Assignment

from . import services
from .models import PartnerFeedback

# Per organisation, the story each of its first waiting MQLs gets: how many days ago it was handed
# over, then each report with how many days ago it came. Declines and take-backs are left to the
# live demo: they leave an MQL with an ended assignment.
STORIES: list[tuple[float, list[tuple[float, dict]]]] = [
    (
        21,
        [
            (20.9, {"status": "accepted"}),
            (16, {"status": "contacted"}),
            (8, {"status": "meeting", "note": "Demo on site next week"}),
        ],
    ),
    (
        150,
        [
            (148, {"status": "contacted"}),
            (121, {"status": "proposal"}),
            (96, {"status": "won", "deal_value": Decimal("18500")}),
        ],
    ),
    (
        64,
        [
            (63.8, {"status": "accepted"}),
            (41, {"status": "lost", "reason": "no_budget", "note": "Budget frozen until next year"}),
        ],
    ),
    (12, [(9, {"status": "unreachable", "note": "Three calls, no answer"})]),
    (6, [(5.9, {"status": "accepted"})]),  # accepted, never reported: the chase reminds (overdue)
    (3.5, [(3.45, {"status": "accepted"})]),  # accepted, never reported: the chase reminds (due)
]
DAY = timedelta(days=1)


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
    # MQLs that scoring has just made are routed after their commit; route them now (lead_route keeps
    # an open assignment, so the queued task changes nothing later) so that the partners have theirs.
    unrouted = Lead.objects.filter(stage=Stage.MQL).exclude(assignments__status__in=Assignment.OPEN)
    for lead_id in unrouted.values_list("pk", flat=True):
        routing_services.lead_route(lead_id=lead_id)
    # One transaction: the rescoring the reports ask for is done once, when it commits.
    with transaction.atomic():
        stories = _tell()
        stories_backdate(stories)
    recorded = PartnerFeedback.objects.count()
    chased = services.feedback_chase()
    say(
        f"Partners: {recorded} feedback reports on {PartnerOrganization.objects.count()} organisations' leads; "
        f"chase: {chased['due']} due and {chased['overdue']} overdue reminders."
    )


def _tell() -> dict[int, list[Mark]]:
    """Each organisation's first waiting MQLs get the STORIES, reported by its first user."""
    stories: dict[int, list[Mark]] = {}
    for org in PartnerOrganization.objects.order_by("name"):
        user = org.users.order_by("pk").first()
        if user is None:
            continue
        waiting = Lead.objects.filter(
            partner=org,
            stage=Stage.MQL,
            assignments__partner=org,
            assignments__status=Assignment.Status.ACTIVE,
        ).order_by("pk")[: len(STORIES)]
        for lead, (handed_ago, reports) in zip(waiting, STORIES, strict=False):
            marks: list[Mark] = [(None, handed_ago * DAY)]
            for n, (ago, fields) in enumerate(reports):
                marks.append((timezone.now(), ago * DAY))
                services.feedback_record(lead=lead, user=user, external_id=f"demo-{lead.pk}-{n}", **fields)
            stories[lead.pk] = marks
    return stories


@backdater
def backdate_feedback(moves: Moves) -> None:
    """A moved story's partner feedback moves with it."""
    backdate_rows(PartnerFeedback.objects.filter(lead_id__in=moves.lead_ids), moves, "lead_id", {"at": "at"})
