from __future__ import annotations

from leads.models import Lead, Role, Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, UserFactory
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
