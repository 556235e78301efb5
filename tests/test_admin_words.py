"""The admin across apps: the rows of scoring and routing print as sentences (leads.conditions), and
scoring's preview says whom routing would hand the new MQLs to (through leads' signal: scoring and
routing never import each other, their tests here may use both)."""

from __future__ import annotations

import pytest

from leads.models import Stage
from leads.tests.factories import LeadFactory, client_for
from routing.tests.factories import make_rule, make_team
from scoring.tests.factories import make_model


@pytest.fixture
def marketing_client(marketing):
    return client_for(marketing, apps=["scoring", "leads"])


def test_the_admin_rows_of_scoring_and_routing_print_as_sentences(db):
    from routing.models import RoutingRule, RuleCondition
    from scoring.models import BehaviorRule, FitRule, ScoringModel

    model = ScoringModel.objects.create(name="m")
    fit = FitRule.objects.create(model=model, field="company_size", operator="lte", value="3000", points=5)
    behaviour = BehaviorRule.objects.create(
        model=model, activity_type="page_view", property="url", operator="contains", value="/pricing", points=2
    )
    rule = RoutingRule.objects.create(name="r")
    condition = RuleCondition.objects.create(rule=rule, field="country", operator="in", value="SE, NO, DK")

    assert str(fit) == "Company size is at most 3,000"
    assert str(behaviour) == "Page viewed where url contains '/pricing'"
    assert str(condition) == "Country is one of Sweden, Norway, Denmark"


def test_the_preview_says_how_many_leads_go_to_whom(marketing_client):
    team, _ = make_team(size=2)
    make_rule("Everyone", team=team)
    make_model(activate=True, threshold=1000)
    LeadFactory.create_batch(3, job_title="CTO", stage=Stage.MAL)
    LeadFactory(job_title="Engineer", stage=Stage.MAL)
    draft = make_model(threshold=15)

    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/").content.decode()

    assert f"Activating v{draft.pk} hands 3 leads to routing at once." in page
    # Round robin over the two reps, each lead counting for the next: two to one, one to the other.
    assert "<tr><td>Rep0</td><td>2</td></tr>" in page
    assert "<tr><td>Rep1</td><td>1</td></tr>" in page
    assert "Marketing accepted" in page  # the movers' stage by its label
    assert "<td>mal</td>" not in page
