"""The MQL threshold and the grade bands are checked in words against what the rules can reach:
on the model's page (against the rules as typed) and on the preview (against the saved rules)."""

import pytest
from django.core.exceptions import ValidationError

from leads.models import Stage
from leads.tests.factories import LeadFactory
from scoring.models import (
    BehaviorRule,
    ExclusionRule,
    FitRule,
    RescoreRun,
    ScoringModel,
    ScoringModelChange,
    score_ceiling,
)
from scoring.tests.factories import inline_post, make_model


def bounded_model(threshold: float = 40) -> ScoringModel:
    """CTO +20 fit; pricing page +10 at most 3 times; e-mail clicks +5 capped at 8; unsubscribe −40.
    The best lead scores 20 + 30 + 8 = 58."""
    model = ScoringModel.objects.create(
        name="Bounded", mql_threshold=threshold, grade_a_min=20, grade_b_min=10, grade_c_min=5
    )
    FitRule.objects.create(model=model, field="job_title", operator="eq", value="cto", points=20, label="CTO")
    BehaviorRule.objects.create(model=model, activity_type="page_view", points=10, max_occurrences=3, label="Pricing")
    BehaviorRule.objects.create(model=model, activity_type="email_click", points=5, max_points=8, label="Clicks")
    BehaviorRule.objects.create(model=model, activity_type="unsubscribe", points=-40, label="Unsubscribed")
    return model


def post_without_rows(model, **changes):
    """The change form's POST with the saved rules untouched and no new row."""
    data = inline_post(model, **{"field": "industry", "operator": "eq", "value": "x"}) | changes
    data["fit_rules-TOTAL_FORMS"] = 0
    return {k: v for k, v in data.items() if not k.startswith("fit_rules-0-")}


def url(model) -> str:
    return f"/admin/scoring/scoringmodel/{model.pk}/change/"


def test_the_ceiling_is_fit_plus_every_behaviour_rule_at_its_cap():
    fit = [FitRule(points=20), FitRule(points=-15)]
    exclusions = [
        ExclusionRule(action=ExclusionRule.Action.DISQUALIFY, points=0),
        ExclusionRule(action=ExclusionRule.Action.PENALTY, points=-25),
    ]
    behaviour = [
        BehaviorRule(activity_type="page_view", points=10, max_occurrences=3),
        BehaviorRule(activity_type="email_click", points=5, max_points=8),
        BehaviorRule(activity_type="webinar", points=15, max_points=100, max_occurrences=2),
        BehaviorRule(activity_type="unsubscribe", points=-40),
    ]

    ceiling = score_ceiling(fit, behaviour, exclusions)

    assert (ceiling.fit, ceiling.total, ceiling.uncapped) == (20, 20 + 30 + 8 + 30, ())
    assert ceiling.describe() == "At most 88 points: 20 from fit rules and 68 from behaviour rules at their caps."


def test_a_behaviour_rule_without_a_cap_leaves_the_score_unbounded():
    behaviour = [BehaviorRule(activity_type="demo_request", points=30, label="Demo request")]

    ceiling = score_ceiling([FitRule(points=20)], behaviour, [])

    assert ceiling.total is None and ceiling.uncapped == ("Demo request",)
    assert ceiling.describe().startswith("No upper bound: “Demo request” can add points without limit")


def test_a_threshold_below_zero_is_refused_in_words_and_nothing_is_saved(marketing_client):
    draft = make_model()  # a demo request has no cap: only below 0 can be refused

    response = marketing_client.post(url(draft), post_without_rows(draft, mql_threshold=-10))

    page = response.content.decode()
    assert response.status_code == 200
    assert "The MQL threshold must be 0 or more, not -10." in page
    draft.refresh_from_db()
    assert draft.mql_threshold == 50
    assert not ScoringModelChange.objects.filter(model=draft).exists()


def test_a_threshold_above_the_reachable_score_is_refused_and_the_highest_is_accepted(marketing_client):
    draft = bounded_model()

    refused = marketing_client.post(url(draft), post_without_rows(draft, mql_threshold=59))
    accepted = marketing_client.post(url(draft), post_without_rows(draft, mql_threshold=58))

    assert refused.status_code == 200
    assert (
        "The MQL threshold is 59, but no lead can score more than 58 with these rules."
        " Lower it, or add rules or raise their caps." in refused.content.decode()
    )
    assert accepted.status_code == 302
    draft.refresh_from_db()
    assert draft.mql_threshold == 58


def test_the_threshold_is_checked_against_the_rules_as_typed_not_as_saved(marketing_client):
    draft = bounded_model()
    with_new_rule = inline_post(draft, field="industry", operator="eq", value="software", points=5)

    refused = marketing_client.post(url(draft), post_without_rows(draft, mql_threshold=60))
    accepted = marketing_client.post(url(draft), with_new_rule | {"mql_threshold": 60})

    assert "no lead can score more than 58" in refused.content.decode()
    assert accepted.status_code == 302
    draft.refresh_from_db()
    assert draft.mql_threshold == 60
    assert draft.fit_rules.count() == 2


def test_deleting_a_rule_on_the_page_lowers_the_ceiling_in_the_same_save(marketing_client):
    draft = bounded_model(threshold=50)
    cto = draft.fit_rules.get()
    data = post_without_rows(draft) | {
        "fit_rules-TOTAL_FORMS": 1,
        "fit_rules-INITIAL_FORMS": 1,
        "fit_rules-0-id": cto.pk,
        "fit_rules-0-model": draft.pk,
        "fit_rules-0-label": "CTO",
        "fit_rules-0-field": "job_title",
        "fit_rules-0-operator": "eq",
        "fit_rules-0-value": "cto",
        "fit_rules-0-points": 20,
        "fit_rules-0-DELETE": "on",
    }

    response = marketing_client.post(url(draft), data)

    assert "The MQL threshold is 50, but no lead can score more than 38" in response.content.decode()
    assert FitRule.objects.filter(pk=cto.pk).exists()


def test_grade_bands_that_do_not_descend_are_refused_in_words_without_the_constraint_name(marketing_client):
    draft = make_model()

    response = marketing_client.post(url(draft), post_without_rows(draft, grade_a_min=15, grade_b_min=20))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Grade bands must descend: grade A needs at least the fit of grade B (20), not 15." in page
    assert "grade_bands_descend" not in page and "Constraint" not in page
    draft.refresh_from_db()
    assert (draft.grade_a_min, draft.grade_b_min, draft.grade_c_min) == (30, 20, 10)


def test_grade_bands_below_zero_or_above_the_reachable_score_are_refused(marketing_client):
    draft = bounded_model()

    response = marketing_client.post(url(draft), post_without_rows(draft, grade_a_min=70, grade_c_min=-5))

    page = response.content.decode()
    assert "Grade C&#x27;s band must be 0 or more, not -5." in page
    assert "Grade A&#x27;s band is 70, but no lead can score more than 58 with these rules." in page
    draft.refresh_from_db()
    assert (draft.grade_a_min, draft.grade_c_min) == (20, 5)


def test_the_model_itself_reports_bands_by_field_so_the_constraint_never_speaks(db):
    model = ScoringModel(name="x", grade_a_min=10, grade_b_min=20, grade_c_min=30)

    with pytest.raises(ValidationError) as raised:
        model.full_clean()

    errors = raised.value.message_dict
    assert set(errors) == {"grade_a_min", "grade_b_min"}
    assert "Constraint" not in str(raised.value)


def test_the_page_shows_the_highest_reachable_score(marketing_client):
    bounded, unbounded = bounded_model(), make_model()

    bounded_page = marketing_client.get(url(bounded)).content.decode()
    unbounded_page = marketing_client.get(url(unbounded)).content.decode()

    assert "At most 58 points: 20 from fit rules and 38 from behaviour rules at their caps." in bounded_page
    assert "No upper bound: “Demo request” can add points without limit" in unbounded_page


def test_the_preview_refuses_a_negative_threshold_and_does_not_activate(marketing_client):
    active = make_model(activate=True)
    LeadFactory.create_batch(2, job_title="CTO", stage=Stage.MAL)
    draft = make_model(threshold=-10)  # saved before the check, or by hand
    preview_url = f"/admin/scoring/scoringmodel/{draft.pk}/preview/"

    page = marketing_client.get(preview_url).content.decode()
    response = marketing_client.post(preview_url, {"confirm": "yes"})

    assert "is not previewed and cannot be activated" in page
    assert "The MQL threshold must be 0 or more, not -10." in page
    assert "would become MQL" not in page and "Activate v" not in page
    assert response.status_code == 200
    assert "The MQL threshold must be 0 or more, not -10." in response.content.decode()
    draft.refresh_from_db()
    active.refresh_from_db()
    assert (draft.status, active.status) == ("draft", "active")
    assert not RescoreRun.objects.exists()


def test_the_preview_refuses_a_threshold_no_lead_can_reach(marketing_client):
    draft = bounded_model(threshold=80)

    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/").content.decode()

    assert "The MQL threshold is 80, but no lead can score more than 58 with these rules." in page
    assert "would become MQL" not in page


def test_the_preview_of_a_valid_draft_still_shows_its_effect(marketing_client):
    LeadFactory.create_batch(2, job_title="CTO", stage=Stage.MAL)
    draft = bounded_model(threshold=20)

    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/").content.decode()

    assert "(MQL at 20, grade C or better" in page
    assert "<b>2</b>would become MQL" in page
    assert "Activate v" in page


def test_a_new_model_is_checked_against_the_rules_typed_with_it(marketing_client):
    page = marketing_client.get("/admin/scoring/scoringmodel/add/").content.decode()
    data = inline_post(
        ScoringModel(name="New", mql_threshold=25, grade_a_min=20, grade_b_min=10, grade_c_min=0),
        field="job_title",
        operator="eq",
        value="cto",
        points=25,
    )

    too_high = marketing_client.post("/admin/scoring/scoringmodel/add/", data | {"mql_threshold": 26})
    accepted = marketing_client.post("/admin/scoring/scoringmodel/add/", data)

    assert "Save the draft with its rules to see how high a lead can score." in page
    assert "The MQL threshold is 26, but no lead can score more than 25 with these rules." in too_high.content.decode()
    assert accepted.status_code == 302
    created = ScoringModel.objects.get(name="New")
    assert (created.mql_threshold, created.fit_rules.get().points) == (25, 25)
