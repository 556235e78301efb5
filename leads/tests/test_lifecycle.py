import itertools

import pytest

from leads.lifecycle import TRANSITIONS, TransitionRefused
from leads.models import Activity, ActivityType, Lead, Stage, StageChange
from leads.services import lead_transition
from leads.tests.factories import LeadFactory

ALL_PAIRS = [(a, b) for a, b in itertools.product(Stage.values, Stage.values) if a != b]
REFUSED = [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]


def test_the_table_is_the_one_of_the_design():
    assert sorted(TRANSITIONS) == sorted(
        [
            ("new", "mal"),
            ("new", "disqualified"),
            ("mal", "mql"),
            ("mal", "disqualified"),
            ("mql", "sal"),
            ("mql", "mal"),
            ("mql", "disqualified"),
            ("sal", "sql"),
            ("sal", "mal"),
            ("sal", "lost"),
            ("sql", "won"),
            ("sql", "lost"),
            ("lost", "mal"),
        ]
    )
    assert {pair for pair, needs_reason in TRANSITIONS.items() if needs_reason} == {("mql", "mal"), ("sal", "mal")}


@pytest.mark.parametrize(("from_stage", "to_stage"), sorted(TRANSITIONS))
def test_every_allowed_move_works_and_is_recorded(db, marketing, from_stage, to_stage):
    lead = LeadFactory(stage=from_stage)

    lead_transition(lead=lead, to_stage=to_stage, reason="Because", actor=marketing)

    lead.refresh_from_db()
    assert lead.stage == to_stage
    change = StageChange.objects.get(lead=lead)
    assert (change.from_stage, change.to_stage, change.actor, change.reason) == (
        from_stage,
        to_stage,
        marketing,
        "Because",
    )
    activity = Activity.objects.get(lead=lead, type=ActivityType.STAGE_CHANGE)
    assert activity.properties == {"from": from_stage, "to": to_stage, "reason": "Because"}
    assert activity.created_by == marketing


@pytest.mark.parametrize(("from_stage", "to_stage"), REFUSED)
def test_every_other_move_is_refused_and_changes_nothing(db, from_stage, to_stage):
    lead = LeadFactory(stage=from_stage)

    with pytest.raises(TransitionRefused) as refused:
        lead_transition(lead=lead, to_stage=to_stage, reason="Because")

    assert f"cannot move from {from_stage} to {to_stage}" in refused.value.message
    assert Lead.objects.get(pk=lead.pk).stage == from_stage
    assert not StageChange.objects.filter(lead=lead).exists()
    assert not Activity.objects.filter(lead=lead).exists()


def test_won_is_final():
    assert [to for (frm, to) in TRANSITIONS if frm == Stage.WON] == []


@pytest.mark.parametrize(("from_stage", "to_stage"), [("mql", "mal"), ("sal", "mal")])
@pytest.mark.parametrize("reason", ["", "   "])
def test_rejecting_or_recycling_needs_a_reason(db, from_stage, to_stage, reason):
    lead = LeadFactory(stage=from_stage)

    with pytest.raises(TransitionRefused, match="needs a reason"):
        lead_transition(lead=lead, to_stage=to_stage, reason=reason)

    assert Lead.objects.get(pk=lead.pk).stage == from_stage
    assert StageChange.objects.count() == 0


def test_a_move_by_a_worker_is_recorded_as_the_system(db):
    lead = LeadFactory(stage=Stage.MAL)

    lead_transition(lead=lead, to_stage=Stage.MQL)

    assert StageChange.objects.get(lead=lead).actor_label == "system"


def test_a_move_is_checked_against_the_stored_stage_not_a_stale_copy(db):
    lead = LeadFactory(stage=Stage.MQL)
    stale = Lead.objects.get(pk=lead.pk)
    lead_transition(lead=lead, to_stage=Stage.SAL)

    # The stale copy still says mql; mql → disqualified would be allowed, sal → disqualified is not.
    with pytest.raises(TransitionRefused, match="from sal to disqualified"):
        lead_transition(lead=stale, to_stage=Stage.DISQUALIFIED)
