"""Properties of the pure routing engine."""

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from leads.conditions import Condition, ConditionError, evaluate, lead_condition
from routing import engine
from routing.tests.factories import hand_out, two_candidates

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
    got = hand_out(rr, people, n)
    present = [key for key in keys if key[1] not in away]
    given_out = [got[key] for key in present]
    if present:
        assert sum(given_out) == n
        assert max(given_out) - min(given_out) <= 1
    assert all(got[key] == 0 for key in keys if key[1] in away)


def test_weighted_round_robin_follows_the_weights():
    rule, people, (a, b) = two_candidates(engine.WEIGHTED, {"weight": 3}, {"weight": 1})
    got = hand_out(rule, people, 400)
    assert (got[a], got[b]) == (300, 100)


def test_least_loaded_picks_the_lowest_share_of_capacity():
    rule, people, (a, _) = two_candidates(
        engine.LEAST_LOADED, {"open_leads": 5, "capacity": 10}, {"open_leads": 3, "capacity": 4}
    )
    assert engine.decide({}, [rule], people).assignee == a


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


# --- the compiled engine against a rule-by-rule evaluation with leads.conditions.evaluate ---------

COUNTRIES = ["DE", "de", "AT", "US", "FR", "", None]
TEXTS = ["Software", "software", "Retail", "CTO", "Head of IT", "x@corp.example", "corp.example", "", None]
NUMBERS = [0, 1, 49, 50, 500, 4999, 5000, 10.5, Decimal("60.5"), None, ""]
field_values = {
    "country": st.sampled_from([*COUNTRIES, 7, True]),
    "industry": st.sampled_from(TEXTS),
    "job_title": st.sampled_from(TEXTS),
    "email": st.sampled_from(["x@corp.example", "y@sub.corp.example", "z@other.example", "", None]),
    "company_domain": st.sampled_from(["corp.example", "sub.corp.example", "other.example", "", None]),
    "company_size": st.sampled_from([*NUMBERS, "500"]),
    "score": st.sampled_from(NUMBERS),
    "grade": st.sampled_from(["A", "b", "C", "", None]),
}
facts_strategy = st.fixed_dictionaries({}, optional=field_values)

RAW = {
    "eq": ["de", "software", "a", "500", 500, 50.0],
    "in": ["DE, AT", "us", "software, retail", "50, 500", "a, b"],
    "contains": ["soft", "of it", "corp"],
    "startswith": ["he", "soft", "c"],
    "gte": ["50", "0", "4999.5"],
    "lte": ["500", "49"],
    "between": ["50, 500", "0, 49", "5000, 100000"],
    "domain_in": ["corp.example", "other.example, x.example"],
    "exists": ["yes", "no"],
}


@st.composite
def conditions(draw) -> Condition:
    """Valid conditions as the admin makes them (lead_condition), and now and then a hand-made one
    with a value of an odd shape (the compiled engine must still agree with evaluate)."""
    name = draw(st.sampled_from(sorted(field_values)))
    op = draw(st.sampled_from(sorted(RAW)))
    raw = draw(st.sampled_from(RAW[op]))
    if draw(st.integers(0, 9)) == 0:
        return Condition(name, op, draw(st.sampled_from([raw, [raw], None, 5, ["de", 5], True])))
    try:
        return lead_condition(name, op, raw)
    except ConditionError:
        return lead_condition("country", "in", "DE, AT")


@PROPS
@given(conditions(), facts_strategy)
def test_a_compiled_condition_answers_as_evaluate_does(condition, facts):
    check, fast = engine.compile_condition(condition)
    try:
        expected = evaluate(condition, facts)
    except TypeError:  # a hand-made value evaluate cannot compare: the compiled check must not pass it either
        return
    got = check(engine.normalise(facts, [condition.field]) if fast else facts)
    assert got == expected, (condition, facts)


strategies_all = [engine.DIRECT, engine.ROUND_ROBIN, engine.WEIGHTED, engine.LEAST_LOADED, engine.POOL]
any_rule = st.builds(
    engine.Rule,
    id=st.integers(1, 10**6),
    name=st.sampled_from(["a", "b", "c", "d"]),
    strategy=st.sampled_from([*strategies_all, engine.ACCOUNT_OWNER]),
    conditions=st.lists(conditions(), max_size=3).map(tuple),
    candidates=st.lists(st.integers(1, 12).map(lambda i: ("rep", i)), max_size=4, unique=True).map(tuple),
    match_profile=st.booleans(),
    min_seniority=st.none() | st.integers(1, 3),
)
people = st.lists(
    st.builds(
        engine.Candidate,
        key=st.integers(1, 12).map(lambda i: ("rep", i)),
        name=st.sampled_from(["Anna", "Ben", "Cleo"]),
        active=st.booleans(),
        away=st.booleans(),
        open_leads=st.integers(0, 3),
        capacity=st.integers(0, 3),
        weight=st.integers(1, 3),
        seniority=st.integers(1, 3),
        territories=st.sampled_from([frozenset(), frozenset({"DE"}), frozenset({"US", "FR"})]),
    ),
    max_size=12,
)


def reference_decide(facts, rules, candidates, counters, account_owner, excluded):
    """The plain definition: every rule in order, every condition through evaluate; the trace then
    has its runs of non-matching rules summarised as the engine summarises them."""
    trace = []
    for rule in rules:
        if not all(evaluate(c, facts) for c in rule.conditions):
            trace.append({"rule": rule.name, "matched": False})
            continue
        step = {"rule": rule.name, "matched": True, "strategy": rule.strategy}
        trace.append(step)
        if rule.strategy == engine.POOL:
            step["result"] = "pooled"
            return (rule.id, None, True), _summarised(trace)
        if rule.strategy == engine.ACCOUNT_OWNER and not account_owner:
            step["result"] = "no account owner for this domain"
            continue
        keys = [account_owner] if rule.strategy == engine.ACCOUNT_OWNER else list(rule.candidates)
        eligible, skipped = [], []
        for key in keys:
            person = candidates.get(key)
            why = "unknown" if person is None else engine.skip_reason(person, facts, rule, excluded)
            if why:
                skipped.append({"candidate": person.name if person else str(key), "why": why})
            else:
                eligible.append(person)
        if skipped:
            step["skipped"] = skipped
        if not eligible:
            step["result"] = "no eligible candidate"
            continue
        order = {key: i for i, key in enumerate(rule.candidates)}
        chosen = engine._pick(rule, order, eligible, counters)
        step["result"] = f"assigned to {chosen.name}"
        return (rule.id, chosen.key, False), _summarised(trace)
    trace.append({"result": "unassigned: no rule could place this lead"})
    return (None, None, False), _summarised(trace)


def _summarised(trace):
    out, run = [], []
    for step in [*trace, None]:
        if step is not None and step.get("matched") is False:
            run.append(step)
            continue
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append({"skipped_rules": len(run), "first": run[0]["rule"], "last": run[-1]["rule"]})
        run = []
        if step is not None:
            out.append(step)
    return out


def _safe(condition_list_facts):
    rules, facts = condition_list_facts
    try:
        for rule in rules:
            for c in rule.conditions:
                evaluate(c, facts)
    except TypeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    st.tuples(st.lists(any_rule, max_size=8), facts_strategy).filter(_safe),
    people,
    st.none() | st.integers(1, 12).map(lambda i: ("rep", i)),
    st.frozensets(st.integers(1, 12).map(lambda i: ("rep", i)), max_size=2),
    st.dictionaries(st.tuples(st.integers(1, 10**6), st.integers(1, 12).map(lambda i: ("rep", i))), st.integers(0, 5)),
)
def test_the_compiled_engine_decides_as_rule_by_rule_evaluation_does(rules_and_facts, persons, owner, excluded, counts):
    rules, facts = rules_and_facts
    # Profile matching reads the country as text (lead_facts always gives text); numbers here only
    # exercise the country index.
    assume(isinstance(facts.get("country"), str | None) or not any(r.match_profile for r in rules))
    candidates = {p.key: p for p in persons}
    compiled = engine.compile_rules(rules)

    decision = engine.decide(facts, compiled, candidates, counts, account_owner=owner, excluded=excluded)

    expected, trace = reference_decide(facts, rules, candidates, counts, owner, excluded)
    assert (decision.rule_id, decision.assignee, decision.pooled) == expected
    assert decision.trace == trace
    assert [r.id for r in compiled.matching(facts)] == [
        r.id for r in rules if all(evaluate(c, facts) for c in r.conditions)
    ]


def test_a_run_of_rules_that_did_not_match_is_one_entry_of_the_trace():
    rules = [
        engine.Rule(i, f"US {i}", engine.DIRECT, conditions=(lead_condition("country", "eq", "US"),), candidates=())
        for i in range(1, 301)
    ]
    rules.append(engine.Rule(301, "Everyone", engine.DIRECT, candidates=(("rep", 1),)))
    people = {("rep", 1): engine.Candidate(("rep", 1), "Anna")}

    decision = engine.decide({"country": "DE"}, engine.compile_rules(rules), people)

    assert decision.trace == [
        {"skipped_rules": 300, "first": "US 1", "last": "US 300"},
        {"rule": "Everyone", "matched": True, "strategy": "direct", "result": "assigned to Anna"},
    ]
    assert engine.decide({"country": "DE"}, rules[:2], people).trace == [
        {"skipped_rules": 2, "first": "US 1", "last": "US 2"},
        {"result": "unassigned: no rule could place this lead"},
    ]
