"""Hypothesis strategies for scoring: leads, activities and models as plain engine data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from leads.conditions import lead_condition, property_condition
from scoring import engine

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TITLES = ["CEO", "CTO", "VP Sales", "Head of IT", "Engineer", "Student", "Journalist", ""]
INDUSTRIES = ["Software", "Retail", "Healthcare", "Energy", ""]
COUNTRIES = ["DE", "AT", "US", "GB", "FR", ""]
DOMAINS = ["acme.example", "gmail.com", "mail.gmail.com", "rival.example", "corp.example"]
TYPES = ["page_view", "download", "webinar", "email_open", "email_click", "unsubscribe", "demo_request"]
URLS = ["/pricing", "/blog/x", "/pricing/enterprise", "/docs"]
ASSETS = ["whitepaper-x", "case-study", "Whitepaper-Y"]

lead_facts = st.fixed_dictionaries(
    {
        "job_title": st.sampled_from(TITLES),
        "industry": st.sampled_from(INDUSTRIES),
        "country": st.sampled_from(COUNTRIES),
        "company_size": st.one_of(st.none(), st.integers(min_value=1, max_value=20_000)),
        "annual_revenue": st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
        "company_domain": st.sampled_from(DOMAINS),
        "email": st.builds(
            lambda user, domain: f"{user}@{domain}", st.sampled_from(["a", "b.c"]), st.sampled_from(DOMAINS)
        ),
    }
)

activity = st.builds(
    engine.ActivityFact,
    type=st.sampled_from(TYPES),
    occurred_at=st.integers(min_value=-3600, max_value=200 * 86_400).map(lambda s: NOW - timedelta(seconds=s)),
    properties=st.one_of(
        st.fixed_dictionaries({"url": st.sampled_from(URLS)}),
        st.fixed_dictionaries({"asset": st.sampled_from(ASSETS)}),
        st.just({}),
    ),
)

fit_condition = st.one_of(
    st.builds(
        lead_condition,
        st.just("job_title"),
        st.sampled_from(["eq", "contains", "startswith"]),
        st.sampled_from(["ceo", "vp", "head", "student"]),
    ),
    st.builds(lead_condition, st.just("job_title"), st.just("in"), st.just("ceo, cto")),
    st.builds(lead_condition, st.just("industry"), st.just("in"), st.just("software, healthcare")),
    st.builds(lead_condition, st.just("country"), st.just("eq"), st.sampled_from(["de", "us"])),
    st.builds(lead_condition, st.just("country"), st.just("exists"), st.sampled_from(["yes", "no"])),
    st.builds(lead_condition, st.just("company_size"), st.sampled_from(["gte", "lte"]), st.integers(1, 20_000)),
    st.builds(lead_condition, st.just("company_size"), st.just("between"), st.just("100, 5000")),
    st.builds(lead_condition, st.just("annual_revenue"), st.just("exists"), st.sampled_from(["yes", "no"])),
    st.builds(
        lead_condition,
        st.sampled_from(["email", "company_domain"]),
        st.just("domain_in"),
        st.just("gmail.com, rival.example"),
    ),
)

points = st.integers(min_value=-50, max_value=50).map(float)

behavior_rule = st.builds(
    engine.BehaviorRule,
    id=st.integers(1, 10**6),
    activity_type=st.sampled_from(TYPES),
    points=points,
    condition=st.one_of(
        st.none(),
        st.builds(property_condition, st.just("url"), st.sampled_from(["contains", "startswith"]), st.just("/pricing")),
        st.builds(property_condition, st.just("asset"), st.just("contains"), st.just("whitepaper")),
    ),
    max_points=st.one_of(st.none(), st.integers(0, 40).map(float)),
    max_occurrences=st.one_of(st.none(), st.integers(1, 4)),
)


@st.composite
def models(draw, positive_behavior: bool = False) -> engine.Model:
    c, b = sorted(draw(st.lists(st.integers(-20, 60), min_size=2, max_size=2)))
    a = draw(st.integers(b, 80))
    behaviors = draw(st.lists(behavior_rule, max_size=6))
    if positive_behavior:
        behaviors = [engine.BehaviorRule(**{**r.__dict__, "points": abs(r.points)}) for r in behaviors]
    return engine.Model(
        version=1,
        half_life_days=draw(st.sampled_from([0.5, 7.0, 30.0, 90.0])),
        mql_threshold=draw(st.integers(0, 100).map(float)),
        min_grade=draw(st.sampled_from("ABCD")),
        grade_bands=(float(a), float(b), float(c)),
        fit_rules=tuple(
            engine.FitRule(i, cond, p)
            for i, (cond, p) in enumerate(draw(st.lists(st.tuples(fit_condition, points), max_size=6)))
        ),
        behavior_rules=tuple(engine.BehaviorRule(**{**r.__dict__, "id": 100 + i}) for i, r in enumerate(behaviors)),
        exclusion_rules=tuple(
            engine.ExclusionRule(200 + i, cond, disqualify, p)
            for i, (cond, disqualify, p) in enumerate(
                draw(st.lists(st.tuples(fit_condition, st.booleans(), points), max_size=2))
            )
        ),
    )
