"""The team funnel is a cohort: the leads first handed over to the team in the period, and how many
of them got how far by now. Exact figures on built histories, and properties on generated ones."""

from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.models import Stage, StageChange
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, client_for
from routing import dashboard
from routing.models import Assignment
from routing.tests.factories import make_team

NOW = timezone.now().replace(microsecond=0)  # the page counts up to now: the stories are told from it
DAY = timedelta(days=1)


def _handed(lead, ago, **to):
    """A handover `ago` before NOW (an assignment, as routing writes it)."""
    return Assignment.objects.create(lead=lead, status="accepted", strategy="manual", assigned_at=NOW - ago, **to)


def _moves(lead, *steps):
    """Moves the lead through `steps` [(stage, ago)], each recorded at NOW - ago (as the demo backdates)."""
    for stage, ago in steps:
        reason = "back to marketing" if stage == Stage.MAL else ""
        lead_transition(lead=lead, to_stage=stage, reason=reason)
        last = StageChange.objects.filter(lead=lead).latest("pk")
        StageChange.objects.filter(pk=last.pk).update(at=NOW - ago)


@pytest.fixture
def histories(db, sales_manager):
    """Two reps of the manager's team, another team's rep, and leads with these stories."""
    team, (ann, bob) = make_team(size=2, manager=sales_manager)
    _, (other,) = make_team(name="Field sales", size=1)
    lead = lambda name: LeadFactory(company=name, stage=Stage.MQL)  # noqa: E731
    # in the last 7 days
    won = lead("Won fast")  # ann, 3 days ago: SAL, SQL, won
    _handed(won, 3 * DAY, user=ann)
    _moves(won, (Stage.SAL, 3 * DAY - timedelta(hours=1)), (Stage.SQL, 2 * DAY), (Stage.WON, DAY))
    waiting = lead("Still waiting")  # bob, 2 days ago, not accepted yet
    _handed(waiting, 2 * DAY, user=bob)
    pooled = lead("From the pool")  # the team's pool, 5 days ago, claimed (SAL) by bob
    _handed(pooled, 5 * DAY, pool_team=team)
    _moves(pooled, (Stage.SAL, 4 * DAY))
    # in the last 30 days, not 7
    skipped = lead("Skipped SAL")  # ann, 20 days ago: straight to SQL (skipped stage), then lost
    _handed(skipped, 20 * DAY, user=ann)
    skipped.stage = Stage.SAL  # the history skips SAL: no move to SAL is recorded
    skipped.save(update_fields=["stage"])
    _moves(skipped, (Stage.SQL, 15 * DAY), (Stage.LOST, 10 * DAY))
    # in the last 365 days, not 30: handed over, accepted, recycled, handed over again this week
    recycled = lead("Recycled")
    _handed(recycled, 200 * DAY, user=bob)
    _moves(recycled, (Stage.SAL, 199 * DAY), (Stage.MAL, 150 * DAY), (Stage.MQL, 6 * DAY))
    _handed(recycled, 6 * DAY, user=ann)
    # older than a year; moves within the period must not count it
    old = lead("Old one")
    _handed(old, 400 * DAY, user=ann)
    _moves(old, (Stage.SAL, 5 * DAY))
    # another team's lead, handed over and won this week
    theirs = lead("Theirs")
    _handed(theirs, 2 * DAY, user=other)
    _moves(theirs, (Stage.SAL, DAY), (Stage.SQL, DAY), (Stage.WON, DAY / 2))
    return team


def _figures(team, days):
    return [(s["code"], s["count"], s["of_cohort"], s["of_previous"]) for s in dashboard.funnel([team], days, now=NOW)]


@pytest.mark.django_db
def test_each_period_counts_its_own_cohort_and_how_far_it_got(histories):
    assert _figures(histories, 7) == [
        ("mql", 3, 100, None),  # won fast, still waiting, from the pool (recycled: first handed 200 days ago)
        ("sal", 2, 67, 67),
        ("sql", 1, 33, 50),
        ("won", 1, 33, 100),
        ("lost", 0, 0, None),
    ]
    assert _figures(histories, 30) == [
        ("mql", 4, 100, None),
        ("sal", 3, 75, 75),  # "skipped SAL" reached SQL: it counts as having passed SAL
        ("sql", 2, 50, 67),
        ("won", 1, 25, 50),
        ("lost", 1, 25, None),
    ]
    assert _figures(histories, 365) == [
        ("mql", 5, 100, None),  # + recycled, by its first handover; "old one" is older, "theirs" another team's
        ("sal", 4, 80, 80),
        ("sql", 2, 40, 50),
        ("won", 1, 20, 50),
        ("lost", 1, 20, None),
    ]


@pytest.mark.django_db
def test_the_page_shows_the_period_asked_for_with_both_shares(histories, sales_manager):
    client = client_for(sales_manager)
    week = client.get("/app/team/funnel/", {"days": 7})
    year = client.get("/app/team/funnel/", {"days": 365})
    assert [s["count"] for s in week.context["steps"]] == [3, 2, 1, 1, 0]
    assert [s["count"] for s in year.context["steps"]] == [5, 4, 2, 1, 1]
    text = week.content.decode()
    assert "of all" in text and "of previous" in text and "Handed over" in text
    assert "last 7 days" in text


# --- properties on generated histories (the pure part: funnel_steps) --------------------------------

STAGES = [Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST, Stage.MAL, Stage.MQL]
moments = st.integers(min_value=-400, max_value=0).map(lambda d: NOW + d * DAY)


@settings(max_examples=300, deadline=None)
@given(
    cohort=st.dictionaries(st.integers(1, 40), moments, max_size=30),
    changes=st.lists(st.tuples(st.integers(1, 50), st.sampled_from(STAGES), moments), max_size=120),
)
def test_no_step_is_larger_than_the_one_before_and_no_share_leaves_0_to_100(cohort, changes):
    steps = dashboard.funnel_steps(cohort, changes)

    funnel = [s for s in steps if s["code"] != Stage.LOST]
    assert [s["code"] for s in funnel] == [Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON]
    assert funnel[0]["count"] == len(cohort)
    for before, after in pairwise(funnel):
        assert after["count"] <= before["count"]
    for step in steps:
        for share in (step["of_cohort"], step["of_previous"]):
            assert share is None or 0 <= share <= 100
        assert 0 <= step["width"] <= 100
        assert step["count"] <= len(cohort)
