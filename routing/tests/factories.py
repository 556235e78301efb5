from __future__ import annotations

from collections import Counter

from leads.models import Lead, Role, Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, UserFactory
from routing import engine
from routing.models import RepProfile, RoutingRule, RuleCondition, Team


def make_team(name: str = "Inside sales", size: int = 3, manager=None, **profile) -> tuple[Team, list]:
    team = Team.objects.create(name=name, manager=manager)
    reps = []
    for i in range(size):
        user = UserFactory(
            username=f"{name.lower().replace(' ', '-')}-{i}",
            role=Role.SALES_REP,
            first_name=f"Rep{i}",
            email=f"rep{i}@{name.lower().replace(' ', '')}.example",
        )
        RepProfile.objects.create(user=user, team=team, **profile)
        reps.append(user)
    return team, reps


def make_rule(name: str, priority: int = 100, conditions=(), **kwargs) -> RoutingRule:
    partners = kwargs.pop("partners", [])
    rule = RoutingRule.objects.create(name=name, priority=priority, **kwargs)
    for field, operator, value in conditions:
        RuleCondition.objects.create(rule=rule, field=field, operator=operator, value=value)
    if partners:
        rule.partners.set(partners)
    return rule


def partner_rule(name: str, partners, country: str, **kwargs) -> RoutingRule:
    """A rule handing the leads of `country` ("AT", or "AT, SE" for any of several) to these partner
    organisations, directly unless `strategy` says otherwise."""
    operator = "in" if "," in country else "eq"
    kwargs.setdefault("strategy", "direct")
    return make_rule(
        name, target="partners", partners=list(partners), conditions=[("country", operator, country)], **kwargs
    )


def mql(capture=None, /, **fields) -> Lead:
    """A lead that becomes an MQL the way scoring moves it, routed on commit: `capture` is pytest-django's
    `django_capture_on_commit_callbacks` inside a test transaction; without it (a transactional test,
    the browser's) the commit has already happened and routing has run."""
    lead = LeadFactory(stage=Stage.MAL, **fields)
    if capture is None:
        lead_transition(lead=lead, to_stage=Stage.MQL)
    else:
        with capture(execute=True):
            lead_transition(lead=lead, to_stage=Stage.MQL)
    lead.refresh_from_db()
    return lead


def two_candidates(strategy: str, first: dict, second: dict, kind: str = "rep"):
    """An engine rule of `strategy` over two candidates with these fields (room for 1000 leads unless
    `capacity` says otherwise): (rule, candidates by key, (first key, second key))."""
    keys = ((kind, 1), (kind, 2))
    rule = engine.Rule(1, "two", strategy, candidates=keys)
    people = {
        key: engine.Candidate(key, **{"name": str(key), "capacity": 1000, **fields})
        for key, fields in zip(keys, (first, second), strict=True)
    }
    return rule, people, keys


def hand_out(rule: engine.Rule, people: dict, leads: int) -> Counter:
    """Decides `leads` leads one after another under `rule`, counting as the routing counters do:
    how many each candidate got."""
    counters: Counter = Counter()
    for _ in range(leads):
        assignee = engine.decide({}, [rule], people, counters).assignee
        if assignee:
            counters[(rule.id, assignee)] += 1
    return Counter({key: count for (_, key), count in counters.items()})
