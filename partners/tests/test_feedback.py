"""Partner feedback: status/reason rules, lifecycle moves, rerouting on decline, idempotency, rescoring."""

from decimal import Decimal

import pytest

from leads import signals
from leads.models import Activity, ActivityType, Stage, StageChange
from leads.tests.factories import LeadFactory
from partners.models import PartnerFeedback
from partners.services import FeedbackInvalid, FeedbackRefused, feedback_record
from routing.models import Assignment
from scoring.models import BehaviorRule
from scoring.tests.factories import make_model


def feedback_activities(lead):
    return list(Activity.objects.filter(lead=lead, type=ActivityType.PARTNER_FEEDBACK).order_by("pk"))


def moves(lead):
    return list(StageChange.objects.filter(lead=lead).order_by("pk").values_list("from_stage", "to_stage"))


def test_accepting_moves_the_lead_to_sal_and_records_feedback_and_activity(routed, partner_a, partner_org_a):
    lead = routed()

    feedback, created = feedback_record(lead=lead, user=partner_a, status="accepted", note="On it")

    lead.refresh_from_db()
    assert created is True
    assert (feedback.lead, feedback.organization, feedback.user, feedback.status) == (
        lead,
        partner_org_a,
        partner_a,
        "accepted",
    )
    assert lead.stage == Stage.SAL and lead.respond_by is None
    assert Assignment.objects.get(lead=lead).status == Assignment.Status.ACCEPTED
    [activity] = feedback_activities(lead)
    assert activity.properties == {
        "feedback": feedback.pk,
        "partner": partner_org_a.pk,
        "organization": "Alpine Resellers",
        "status": "accepted",
        "reason": "",
        "note": "On it",
        "deal_value": None,
        "currency": "",
    }
    assert activity.created_by == partner_a


def test_a_report_on_a_lead_waiting_for_acceptance_accepts_it_first(routed, partner_a):
    lead = routed()

    feedback_record(lead=lead, user=partner_a, status="contacted")

    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert moves(lead) == [("mal", "mql"), ("mql", "sal")]


def test_contacted_meeting_and_unreachable_on_an_accepted_lead_only_record(routed, partner_a):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="accepted")

    for status in ("contacted", "meeting", "unreachable"):
        feedback_record(lead=lead, user=partner_a, status=status)

    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert [a.properties["status"] for a in feedback_activities(lead)] == [
        "accepted",
        "contacted",
        "meeting",
        "unreachable",
    ]


def test_a_proposal_moves_an_accepted_lead_to_sql(routed, partner_a):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="accepted")

    feedback_record(lead=lead, user=partner_a, status="proposal")

    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    assert moves(lead)[-1] == ("sal", "sql")


def test_won_straight_from_mql_goes_through_sal_and_sql_and_records_the_value(routed, partner_a):
    lead = routed()

    feedback, _ = feedback_record(
        lead=lead, user=partner_a, status="won", deal_value=Decimal("12500.00"), currency="chf"
    )

    lead.refresh_from_db()
    assert moves(lead) == [("mal", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "won")]
    assert (lead.stage, lead.deal_value, lead.deal_currency) == (Stage.WON, Decimal("12500.00"), "CHF")
    assert lead.closed_at is not None
    assert (feedback.deal_value, feedback.currency) == (Decimal("12500.00"), "CHF")


def test_won_without_a_currency_is_in_euros(routed, partner_a):
    lead = routed()
    feedback, _ = feedback_record(lead=lead, user=partner_a, status="won", deal_value=Decimal("10"))
    lead.refresh_from_db()
    assert (feedback.currency, lead.deal_currency) == ("EUR", "EUR")


def test_lost_with_a_reason_closes_the_lead(routed, partner_a):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="accepted")

    feedback_record(lead=lead, user=partner_a, status="lost", reason="no_budget", note="Frozen until Q3")

    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "no_budget")
    assert StageChange.objects.get(lead=lead, to_stage=Stage.LOST).reason == "No budget: Frozen until Q3"


def test_a_decline_reroutes_to_another_partner_and_never_back(routed, partner_a, partner_b, partner_org_b):
    lead = routed()

    feedback_record(lead=lead, user=partner_a, status="declined", reason="no_capacity")

    lead.refresh_from_db()
    assert (lead.stage, lead.partner) == (Stage.MQL, partner_org_b)
    assert list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("partner__name", "status")) == [
        ("Alpine Resellers", "rejected"),
        ("Nordic Channel", "active"),
    ]
    assert (
        Assignment.objects.get(lead=lead, status="rejected").note
        == "Declined by Alpine Resellers: No capacity to take it on"
    )

    # B declines too: the only other rule is A's, which has had the lead: nobody left, never back to A.
    feedback_record(lead=lead, user=partner_b, status="declined", reason="outside_territory")

    lead.refresh_from_db()
    assert (lead.stage, lead.partner, lead.owner) == (Stage.MQL, None, None)
    assert list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("partner__name", "status")) == [
        ("Alpine Resellers", "rejected"),
        ("Nordic Channel", "rejected"),
        (None, "unassigned"),
    ]
    assert PartnerFeedback.objects.filter(lead=lead, status="declined").count() == 2


def test_a_decline_reroutes_even_when_the_rule_says_back_to_marketing(routed, partner_a, partner_rules):
    assert partner_rules[0].on_reject == "to_marketing"
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="declined", reason="other", note="Conflict of interest")
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.partner_id == partner_rules[1].partners.get().pk


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"status": "won"}, {"deal_value": "A won deal needs its value (greater than 0)."}),
        ({"status": "won", "deal_value": Decimal("0")}, {"deal_value": "A won deal needs its value (greater than 0)."}),
        (
            {"status": "won", "deal_value": Decimal("5"), "currency": "EURO"},
            {"currency": "A currency is a three-letter ISO 4217 code, e.g. EUR."},
        ),
        (
            {"status": "lost"},
            {
                "reason": "A lost lead needs a reason, one of: no_budget, no_need, bad_timing, competitor, "
                "no_authority, unreachable, price, other."
            },
        ),
        (
            {"status": "lost", "reason": "no_capacity"},
            {
                "reason": "'no_capacity' is not a reason for lost; one of: no_budget, no_need, bad_timing, "
                "competitor, no_authority, unreachable, price, other."
            },
        ),
        (
            {"status": "declined", "reason": "price"},
            {
                "reason": "'price' is not a reason for declined; one of: no_capacity, outside_territory, "
                "not_our_product, existing_relationship, no_need, other."
            },
        ),
        (
            {"status": "contacted", "reason": "no_budget"},
            {"reason": "Only lost and declined take a reason (use the note for anything else)."},
        ),
        ({"status": "meeting", "deal_value": Decimal("100")}, {"deal_value": "Only a won deal has a value."}),
        (
            {"status": "closed"},
            {
                "status": "Unknown status; one of: accepted, declined, contacted, meeting, proposal, won, lost, "
                "unreachable."
            },
        ),
    ],
)
def test_bad_combinations_are_refused_field_by_field_and_change_nothing(routed, partner_a, fields, errors):
    lead = routed()
    activities = Activity.objects.filter(lead=lead).count()

    with pytest.raises(FeedbackInvalid) as refused:
        feedback_record(lead=lead, user=partner_a, **fields)

    assert refused.value.errors == errors
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert PartnerFeedback.objects.count() == 0
    assert Activity.objects.filter(lead=lead).count() == activities
    assert Assignment.objects.get(lead=lead).status == Assignment.Status.ACTIVE


def test_another_organisations_user_and_non_partners_are_refused(routed, partner_b, rep_a):
    lead = routed()

    with pytest.raises(FeedbackRefused) as other:
        feedback_record(lead=lead, user=partner_b, status="accepted")
    with pytest.raises(FeedbackRefused) as rep:
        feedback_record(lead=lead, user=rep_a, status="accepted")

    assert (other.value.code, other.value.message) == ("not_yours", "This lead is not routed to your organisation.")
    assert (rep.value.code, rep.value.message) == ("not_partner", "Only partner users report feedback.")
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert PartnerFeedback.objects.count() == 0
    assert feedback_activities(lead) == []


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        ("accepted", "", "You have already accepted this lead."),
        (
            "declined",
            "no_capacity",
            "You have already accepted this lead, so it cannot be declined; report it lost, with a reason.",
        ),
    ],
)
def test_accepting_or_declining_an_accepted_lead_is_refused(routed, partner_a, status, reason, message):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="accepted")

    with pytest.raises(FeedbackRefused) as refused:
        feedback_record(lead=lead, user=partner_a, status=status, reason=reason)

    assert (refused.value.code, refused.value.message) == ("already_accepted", message)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert PartnerFeedback.objects.filter(lead=lead).count() == 1
    assert len(feedback_activities(lead)) == 1


def test_a_closed_lead_takes_no_more_feedback(routed, partner_a):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="won", deal_value=Decimal("900"))

    with pytest.raises(FeedbackRefused) as refused:
        feedback_record(lead=lead, user=partner_a, status="lost", reason="price")

    assert (refused.value.code, refused.value.message) == (
        "lead_closed",
        "This lead is won; it takes no more feedback.",
    )
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value) == (Stage.WON, Decimal("900.00"))
    assert PartnerFeedback.objects.filter(lead=lead).count() == 1


def test_the_same_external_id_twice_records_once(routed, partner_a):
    lead = routed()

    first, created_first = feedback_record(
        lead=lead, user=partner_a, status="won", deal_value=Decimal("5000"), external_id="crm-77"
    )
    again, created_again = feedback_record(
        lead=lead, user=partner_a, status="won", deal_value=Decimal("5000"), external_id="crm-77"
    )

    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert PartnerFeedback.objects.count() == 1
    assert len(feedback_activities(lead)) == 1
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.WON).count() == 1


def test_an_external_id_is_per_organisation_and_refused_for_another_lead(routed, partner_a, partner_b, partner_org_b):
    lead = routed()
    other = routed(email="other@initech.example")
    feedback_record(lead=lead, user=partner_a, status="accepted", external_id="x-1")

    with pytest.raises(FeedbackRefused) as refused:
        feedback_record(lead=other, user=partner_a, status="accepted", external_id="x-1")

    assert refused.value.code == "external_id_conflict"
    other.refresh_from_db()
    assert other.stage == Stage.MQL
    # The same id from another organisation is its own.
    nordic = LeadFactory(stage=Stage.MQL, partner=partner_org_b)
    Assignment.objects.create(lead=nordic, partner=partner_org_b, status="active")
    _, created = feedback_record(lead=nordic, user=partner_b, status="accepted", external_id="x-1")
    assert created is True


def test_feedback_is_announced_so_the_lead_is_rescored(routed, partner_a, django_capture_on_commit_callbacks):
    model = make_model(activate=True, threshold=1000)
    BehaviorRule.objects.create(
        model=model, activity_type="partner_feedback", property="status", operator="eq", value="meeting", points=25
    )
    lead = routed()
    announced = []
    signals.activities_recorded.connect(
        lambda sender, lead_ids, **kw: announced.append(lead_ids), weak=False, dispatch_uid="test-feedback"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            feedback_record(lead=lead, user=partner_a, status="meeting")
    finally:
        signals.activities_recorded.disconnect(dispatch_uid="test-feedback")

    assert announced == [[lead.pk]]
    lead.refresh_from_db()
    assert lead.engagement_score == pytest.approx(25, abs=0.01)
