"""BANT qualification and closing a deal: the services the rep dashboard and partner feedback use."""

from decimal import Decimal

import pytest

from leads.lifecycle import TransitionRefused
from leads.models import ActivityType, Qualification, Stage
from leads.services import LeadInvalid, TransitionElsewhere, lead_close, lead_move, lead_qualify

from .factories import LeadFactory

pytestmark = pytest.mark.django_db

ALL_CONFIRMED = {name: (True, f"{name} ok") for name in Qualification.CRITERIA}


def test_three_of_four_criteria_keep_the_lead_accepted(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    criteria = {**ALL_CONFIRMED, "timing": (False, "next year?")}
    qualification = lead_qualify(lead=lead, criteria=criteria, actor=rep_a)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert qualification.confirmed_count == 3
    assert qualification.timing_note == "next year?"
    assert lead.activities.filter(type=ActivityType.QUALIFICATION).count() == 1


def test_all_four_criteria_make_it_sql_once(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    lead_qualify(lead=lead, criteria={"budget": (True, "50k")}, actor=rep_a)
    lead_qualify(lead=lead, criteria={n: ALL_CONFIRMED[n] for n in ("authority", "need", "timing")}, actor=rep_a)
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    assert lead.qualification.budget_note == "50k"
    # Editing notes afterwards keeps it SQL and does not move it again.
    lead_qualify(lead=lead, criteria={"need": (True, "confirmed twice")}, actor=rep_a)
    assert list(lead.stage_changes.values_list("to_stage", flat=True)) == [Stage.SQL]


def test_qualifying_before_accepting_is_refused_and_stores_nothing(rep_a):
    lead = LeadFactory(stage=Stage.MQL, owner=rep_a)
    with pytest.raises(TransitionRefused, match="Accept the lead"):
        lead_qualify(lead=lead, criteria=ALL_CONFIRMED, actor=rep_a)
    assert not Qualification.objects.exists()
    assert not lead.activities.exists()


def test_close_won_records_value_and_currency(rep_a):
    lead = LeadFactory(stage=Stage.SQL, owner=rep_a)
    lead = lead_close(lead=lead, won=True, amount=Decimal("12500.00"), currency="eur", actor=rep_a)
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.deal_currency, lead.lost_reason) == (
        Stage.WON,
        Decimal("12500.00"),
        "EUR",
        "",
    )
    assert lead.closed_at is not None
    assert lead.stage_changes.get().reason == "won 12500.00 EUR"  # the currency as stored


def test_close_lost_needs_a_listed_reason(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    with pytest.raises(ValueError, match="needs a reason"):
        lead_close(lead=lead, won=False, reason="bored", actor=rep_a)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    lead_close(lead=lead, won=False, reason="competitor", note="went with Acme", actor=rep_a)
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "competitor")
    assert lead.stage_changes.get().reason == "Chose a competitor: went with Acme"


def test_winning_an_unqualified_lead_is_refused(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    with pytest.raises(TransitionRefused):
        lead_close(lead=lead, won=True, amount=Decimal(100), actor=rep_a)
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.closed_at) == (Stage.SAL, None, None)


def test_won_without_value_is_refused(rep_a):
    lead = LeadFactory(stage=Stage.SQL, owner=rep_a)
    with pytest.raises(ValueError, match="value"):
        lead_close(lead=lead, won=True, amount=None, actor=rep_a)
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL


def test_a_confirmed_criterion_without_a_note_is_refused_by_the_service_itself(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    with pytest.raises(LeadInvalid) as refused:
        lead_qualify(lead=lead, criteria={**ALL_CONFIRMED, "need": (True, "  ")}, actor=rep_a)
    assert refused.value.errors == {"need": ["Say what confirms the need."]}
    assert not Qualification.objects.exists()
    assert not lead.activities.exists()


@pytest.mark.parametrize(
    ("kwargs", "errors"),
    [
        ({"won": True, "amount": Decimal("-1")}, {"amount": ["A won deal needs its value (greater than 0)."]}),
        (
            {"won": True, "amount": Decimal("0.001")},
            {"amount": ["A deal value has at most 12 digits before the decimal point and 2 after it."]},
        ),
        (
            {"won": True, "amount": Decimal(5), "currency": "euro"},
            {"currency": ["A currency is a three-letter ISO 4217 code, e.g. EUR."]},
        ),
        ({"won": False, "reason": "price", "amount": Decimal(5)}, {"amount": ["A lost deal has no value."]}),
        ({"won": False, "reason": "price", "currency": "EUR"}, {"currency": ["A lost deal has no currency."]}),
    ],
)
def test_close_refuses_data_that_does_not_fit_the_outcome_and_changes_nothing(rep_a, kwargs, errors):
    lead = LeadFactory(stage=Stage.SQL, owner=rep_a)
    with pytest.raises(LeadInvalid) as refused:
        lead_close(lead=lead, actor=rep_a, **kwargs)
    assert refused.value.errors == errors
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.lost_reason, lead.closed_at) == (Stage.SQL, None, "", None)
    assert not lead.stage_changes.exists()


def test_a_partner_length_note_still_closes_a_deal(rep_a):
    # Partner feedback (notes up to 4,000 characters) closes deals through the same service.
    lead = LeadFactory(stage=Stage.SQL, owner=rep_a)
    lead_close(lead=lead, won=False, reason="no_budget", note="n" * 4000, actor=rep_a)
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "no_budget")


def test_a_plain_move_to_sql_names_qualify_and_changes_nothing(rep_a):
    lead = LeadFactory(stage=Stage.SAL, owner=rep_a)
    with pytest.raises(TransitionElsewhere) as refused:
        lead_move(lead=lead, to_stage=Stage.SQL, actor=rep_a)
    assert (refused.value.use, refused.value.lead_id, refused.value.from_stage) == ("qualify", lead.pk, Stage.SAL)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert not lead.stage_changes.exists()
