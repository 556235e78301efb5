"""The scoring admin as marketing uses it: edit a draft's rules, preview, activate, read the lead's why."""


from leads.models import Stage
from leads.tests.factories import LeadFactory, client_for
from scoring.models import FitRule, RescoreRun, ScoringModel, ScoringModelChange
from scoring.tests.factories import inline_post, make_model


def test_a_bad_rule_is_refused_in_words_and_nothing_is_saved(marketing_client):
    draft = make_model()
    url = f"/admin/scoring/scoringmodel/{draft.pk}/change/"

    response = marketing_client.post(url, inline_post(draft, field="company_size", operator="contains", value="x"))

    assert response.status_code == 200
    assert "does not apply to Company size, which is a number" in response.content.decode()
    assert FitRule.objects.filter(model=draft).count() == 1
    response = marketing_client.post(url, inline_post(draft, field="company_size", operator="between", value="500"))
    assert "takes two numbers: low, high" in response.content.decode()


def test_a_good_rule_is_saved_and_the_edit_is_audited(marketing_client, marketing):
    draft = make_model()
    response = marketing_client.post(
        f"/admin/scoring/scoringmodel/{draft.pk}/change/",
        inline_post(draft, field="industry", operator="in", value="Software, Retail", label="Target industries"),
    )
    assert response.status_code == 302
    rule = FitRule.objects.get(model=draft, label="Target industries")
    assert (rule.field, rule.operator, rule.value, rule.points) == ("industry", "in", "Software, Retail", 5)
    assert ScoringModelChange.objects.filter(model=draft, action="edited", actor=marketing).exists()


def test_an_active_model_cannot_be_edited_only_cloned(marketing_client):
    active = make_model(activate=True)
    response = marketing_client.post(
        f"/admin/scoring/scoringmodel/{active.pk}/change/",
        inline_post(active, field="industry", operator="eq", value="x"),
    )
    assert response.status_code == 403
    assert FitRule.objects.filter(model=active).count() == 1

    response = marketing_client.post(f"/admin/scoring/scoringmodel/{active.pk}/clone/")

    draft = ScoringModel.objects.get(status="draft")
    assert response.status_code == 302 and response["Location"].endswith(f"/{draft.pk}/change/")
    assert list(draft.fit_rules.values_list("field", "operator", "value", "points")) == [("job_title", "eq", "cto", 20)]
    assert draft.behavior_rules.count() == 3


def test_preview_shows_the_effect_then_activation_needs_confirmation(marketing_client, marketing, settings):
    active = make_model(activate=True, threshold=1000)
    LeadFactory.create_batch(3, job_title="CTO", stage=Stage.MAL)
    LeadFactory.create_batch(2, job_title="Engineer", stage=Stage.MAL)
    draft = make_model(threshold=15)
    url = f"/admin/scoring/scoringmodel/{draft.pk}/preview/"

    page = marketing_client.get(url).content.decode()

    assert "<b>3</b>would become MQL" in page
    assert "Based on 5 leads" in page
    assert page.count('class="lp-bin"') == 12
    assert draft.status == "draft"

    refused = marketing_client.post(url, {})
    assert refused.status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"

    response = marketing_client.post(url, {"confirm": "yes"})

    draft.refresh_from_db()
    active.refresh_from_db()
    run = RescoreRun.objects.get(model=draft)
    assert response.status_code == 302 and response["Location"] == f"/admin/scoring/rescorerun/{run.pk}/change/"
    assert (draft.status, draft.activated_by, active.status) == ("active", marketing, "archived")
    progress = marketing_client.get(response["Location"]).content.decode()
    assert f"Rescoring with v{draft.pk}: 0 of 5 leads (0 %)." in progress  # queued, not done: no worker ran


def test_the_lead_page_explains_the_score(marketing_client):
    make_model(activate=True)
    lead = LeadFactory(job_title="CTO")
    page = marketing_client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    assert "Why this score" in page
    assert "<strong>20.0</strong> = fit 20.0 + engagement 0.0; grade <strong>B</strong>" in page
    assert "<td>CTO</td><td>fit</td><td>1</td><td>+20.0</td><td>+20.00</td>" in page


def test_a_rep_cannot_reach_the_scoring_admin(rep_a):
    response = client_for(rep_a).get("/admin/scoring/scoringmodel/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
