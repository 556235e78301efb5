"""Properties of the pure routing engine."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.conditions import lead_condition
from routing import engine

PROPS = settings(max_examples=300, deadline=None)

candidate = st.builds(
    engine.Candidate,
    key=st.integers(1, 40).map(lambda i: ("rep", i)),
    name=st.just("rep"),
    active=st.booleans(),
    away=st.booleans(),
    open_leads=st.integers(0, 10),
    capacity=st.integers(0, 10),
    weight=st.integers(1, 5),
)
rule = st.builds(
    engine.Rule,
    id=st.integers(1, 10**6),
    name=st.sampled_from(["a", "b", "c"]),
    strategy=st.sampled_from([engine.DIRECT, engine.ROUND_ROBIN, engine.WEIGHTED, engine.LEAST_LOADED]),
    conditions=st.lists(
        st.builds(lead_condition, st.just("country"), st.just("in"), st.sampled_from(["DE", "DE, AT", "US"])),
        max_size=1,
    ).map(tuple),
    candidates=st.lists(st.integers(1, 40).map(lambda i: ("rep", i)), max_size=6, unique=True).map(tuple),
)
lead = st.fixed_dictionaries({"country": st.sampled_from(["DE", "AT", "US", "FR"])})


@PROPS
@given(lead, st.lists(rule, max_size=5), st.lists(candidate, max_size=30))
def test_never_picks_an_away_inactive_or_full_candidate(facts, rules, people):
    candidates = {c.key: c for c in people}
    decision = engine.decide(facts, rules, candidates)
    if decision.assignee:
        chosen = candidates[decision.assignee]
        assert chosen.active and not chosen.away and chosen.open_leads < chosen.capacity


@PROPS
@given(lead, st.lists(rule, min_size=1, max_size=5))
def test_the_first_matching_rule_with_a_free_candidate_wins(facts, rules):
    everyone = {k: engine.Candidate(k, "rep") for r in rules for k in r.candidates}
    decision = engine.decide(facts, rules, everyone)
    from leads.conditions import evaluate

    winners = [r for r in rules if r.candidates and all(evaluate(c, facts) for c in r.conditions)]
    if winners:
        assert decision.rule_id == winners[0].id
        assert decision.assignee in winners[0].candidates
    else:
        assert decision.assignee is None and decision.rule_id is None


@PROPS
@given(st.integers(1, 12), st.integers(0, 200), st.sets(st.integers(0, 11)))
def test_round_robin_hands_out_leads_evenly(k, n, away):
    keys = tuple(("rep", i) for i in range(k))
    rr = engine.Rule(1, "team", engine.ROUND_ROBIN, candidates=keys)
    people = {key: engine.Candidate(key, str(key), away=key[1] in away, capacity=10**6) for key in keys}
    counters: Counter = Counter()
    for _ in range(n):
        decision = engine.decide({}, [rr], people, counters)
        if decision.assignee:
            counters[(1, decision.assignee)] += 1
    present = [key for key in keys if key[1] not in away]
    given_out = [counters[(1, key)] for key in present]
    if present:
        assert sum(given_out) == n
        assert max(given_out) - min(given_out) <= 1
    assert all(counters[(1, key)] == 0 for key in keys if key[1] in away)


def test_weighted_round_robin_follows_the_weights():
    keys = (("rep", 1), ("rep", 2))
    rule = engine.Rule(1, "team", engine.WEIGHTED, candidates=keys)
    people = {
        keys[0]: engine.Candidate(keys[0], "a", weight=3, capacity=1000),
        keys[1]: engine.Candidate(keys[1], "b", weight=1, capacity=1000),
    }
    counters: Counter = Counter()
    for _ in range(400):
        counters[(1, engine.decide({}, [rule], people, counters).assignee)] += 1
    assert (counters[(1, keys[0])], counters[(1, keys[1])]) == (300, 100)


def test_least_loaded_picks_the_lowest_share_of_capacity():
    keys = (("rep", 1), ("rep", 2))
    rule = engine.Rule(1, "team", engine.LEAST_LOADED, candidates=keys)
    people = {
        keys[0]: engine.Candidate(keys[0], "a", open_leads=5, capacity=10),
        keys[1]: engine.Candidate(keys[1], "b", open_leads=3, capacity=4),
    }
    assert engine.decide({}, [rule], people).assignee == keys[0]


def test_the_trace_says_who_was_skipped_and_why_and_falls_through():
    dach = engine.Rule(
        1,
        "DACH",
        engine.ROUND_ROBIN,
        conditions=(lead_condition("country", "in", "DE, AT, CH"),),
        candidates=(("rep", 1), ("rep", 2), ("rep", 3)),
        match_profile=True,
    )
    fallback = engine.Rule(2, "Everyone else", engine.ROUND_ROBIN, candidates=(("rep", 4),))
    people = {
        ("rep", 1): engine.Candidate(("rep", 1), "Anna", away=True),
        ("rep", 2): engine.Candidate(("rep", 2), "Ben", open_leads=5, capacity=5),
        ("rep", 3): engine.Candidate(("rep", 3), "Cleo", territories=frozenset({"FR"})),
        ("rep", 4): engine.Candidate(("rep", 4), "Dana"),
    }
    decision = engine.decide({"country": "DE"}, [dach, fallback], people)
    assert decision.assignee == ("rep", 4)
    assert decision.trace == [
        {
            "rule": "DACH",
            "matched": True,
            "strategy": "round_robin",
            "result": "no eligible candidate",
            "skipped": [
                {"candidate": "Anna", "why": "away"},
                {"candidate": "Ben", "why": "at capacity (5/5)"},
                {"candidate": "Cleo", "why": "no territory match"},
            ],
        },
        {"rule": "Everyone else", "matched": True, "strategy": "round_robin", "result": "assigned to Dana"},
    ]


def test_account_owner_and_pool_and_unassigned():
    owner_rule = engine.Rule(1, "Customers", engine.ACCOUNT_OWNER)
    pool_rule = engine.Rule(2, "Pool", engine.POOL)
    people = {("rep", 9): engine.Candidate(("rep", 9), "Owner")}
    assert engine.decide({}, [owner_rule, pool_rule], people, account_owner=("rep", 9)).assignee == ("rep", 9)
    assert engine.decide({}, [owner_rule, pool_rule], people).pooled
    nowhere = engine.decide({}, [owner_rule], people)
    assert not nowhere.placed and nowhere.trace[-1] == {"result": "unassigned: no rule could place this lead"}


def test_a_candidate_who_had_the_lead_is_not_picked_again():
    keys = (("rep", 1), ("rep", 2))
    rule = engine.Rule(1, "team", engine.ROUND_ROBIN, candidates=keys)
    people = {k: engine.Candidate(k, str(k)) for k in keys}
    assert engine.decide({}, [rule], people, excluded=frozenset({("rep", 1)})).assignee == ("rep", 2)
