"""The scoring admin in words: labels, constraint messages, the rules as sentences, the audit trail's
"what changed", the preview's hand-over forecast, and a rescoring run's page before and after done."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leads.models import Stage
from leads.tests.factories import LeadFactory
from scoring.models import RescoreRun, ScoringModel, ScoringModelChange
from scoring.tests.factories import inline_post, make_model


def test_the_model_page_has_human_labels_and_the_rules_in_words(marketing_client):
    draft = make_model()
    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/change/").content.decode()

    assert "MQL threshold:" in page and "Mql threshold" not in page
    assert "Fit rules (profile → points)" in page and "points)s" not in page
    assert "Behaviour rules (activity → points, decaying)" in page
    assert "<td>Job title is &#x27;cto&#x27;</td>" in page  # the fit rule, as a sentence
    assert "Page viewed where url contains &#x27;/pricing&#x27; (the latest 3 count)" in page
    assert "job_title eq" not in page
    assert '<option value="company_size">Company size</option>' in page  # the field dropdown, by label


def test_the_grade_bands_constraint_speaks_words(db):
    model = ScoringModel(name="m", grade_a_min=10, grade_b_min=20, grade_c_min=5)
    with pytest.raises(ValidationError) as raised:
        model.validate_constraints()
    assert raised.value.messages == ["Grade bands must go down: A above B above C above D."]


def test_grade_bands_the_wrong_way_round_are_refused_in_words_on_the_page(marketing_client):
    draft = make_model()
    data = inline_post(draft, field="industry", operator="eq", value="software") | {"grade_a_min": 5}
    page = marketing_client.post(f"/admin/scoring/scoringmodel/{draft.pk}/change/", data).content.decode()

    assert "Grade bands must descend: grade A needs at least the fit of grade B (20), not 5." in page
    assert "grade_bands_descend" not in page and "is violated" not in page
    draft.refresh_from_db()
    assert draft.grade_a_min == 30


def test_an_edit_is_audited_with_what_changed(marketing_client):
    draft = make_model()
    cto = draft.fit_rules.get()
    data = inline_post(draft, field="industry", operator="in", value="Software, Retail", label="Target industries")
    data |= {"mql_threshold": 60, "fit_rules-TOTAL_FORMS": 2, "fit_rules-INITIAL_FORMS": 1}
    data |= {"fit_rules-0-id": cto.pk, "fit_rules-0-model": draft.pk, "fit_rules-0-label": "CTO"}
    data |= {"fit_rules-0-field": "job_title", "fit_rules-0-operator": "eq", "fit_rules-0-value": "cto"}
    data |= {"fit_rules-0-points": 25}
    data |= {"fit_rules-1-label": "Target industries", "fit_rules-1-field": "industry", "fit_rules-1-operator": "in"}
    data |= {"fit_rules-1-value": "Software, Retail", "fit_rules-1-points": 5}

    response = marketing_client.post(f"/admin/scoring/scoringmodel/{draft.pk}/change/", data)

    assert response.status_code == 302
    change = ScoringModelChange.objects.get(model=draft, action="edited")
    assert change.note.splitlines() == [
        "MQL threshold 50 → 60",
        "Fit rule added: Target industries, +5 points",
        "Fit rule “CTO” points 20 → 25",
    ]
    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/change/").content.decode()
    assert "<li>MQL threshold 50 → 60</li>" in page
    assert "<li>Fit rule “CTO” points 20 → 25</li>" in page


def test_activation_records_what_changed_against_the_version_it_replaces(marketing_client):
    active = make_model(activate=True, threshold=50)
    draft = make_model(threshold=40, name="Lower bar")
    draft.behavior_rules.filter(label="Unsubscribed").delete()

    marketing_client.post(f"/admin/scoring/scoringmodel/{draft.pk}/preview/", {"confirm": "yes"})

    note = ScoringModelChange.objects.get(model=draft, action="activated").note
    assert note.splitlines() == [
        f"Replaces v{active.pk}",
        "Name Test model → Lower bar",
        "MQL threshold 50 → 40",
        "Behaviour rule removed: Unsubscribed",
    ]


def test_the_preview_says_when_nobody_would_be_handed_a_lead(marketing_client):
    make_model(activate=True, threshold=10)
    LeadFactory(job_title="Engineer", stage=Stage.MAL)
    draft = make_model(threshold=15)
    page = marketing_client.get(f"/admin/scoring/scoringmodel/{draft.pk}/preview/").content.decode()
    assert f"Activating v{draft.pk} hands no lead to reps or partners" in page


def test_a_running_run_page_polls_and_its_fragment_stops_when_done(marketing_client):
    model = make_model(activate=True)
    LeadFactory.create_batch(2, stage=Stage.MAL)
    draft = make_model(threshold=15)

    # No on-commit callbacks here: the run is queued but not done when its page opens.
    response = marketing_client.post(f"/admin/scoring/scoringmodel/{draft.pk}/preview/", {"confirm": "yes"})
    run = RescoreRun.objects.get(model=draft)
    page = marketing_client.get(response["Location"]).content.decode()

    assert f"Rescoring with v{draft.pk}: 0 of 2 leads (0 %)." in page
    assert f'hx-get="/admin/scoring/rescorerun/{run.pk}/status/" hx-trigger="every 2s"' in page
    assert "/static/django_htmx/htmx-2" in page or "htmx" in page.split("<body")[0]
    assert "cdn" not in page.split("<body")[0].lower()

    RescoreRun.objects.filter(pk=run.pk).update(status="done", done=2, became_mql=1, finished_at=run.started_at)
    fragment = marketing_client.get(f"/admin/scoring/rescorerun/{run.pk}/status/").content.decode()

    assert f"Done: 2 leads rescored with v{draft.pk} in 0 s." in fragment
    assert "1 lead became MQL and went to routing" in fragment
    assert "hx-trigger" not in fragment
    assert model.pk != draft.pk


def test_a_run_done_before_its_page_opens_says_so_with_the_result(marketing_client, django_capture_on_commit_callbacks):
    make_model(activate=True, threshold=1000)
    LeadFactory.create_batch(3, job_title="CTO", stage=Stage.MAL)
    draft = make_model(threshold=15)

    with django_capture_on_commit_callbacks(execute=True):  # the eager worker finishes the run at once
        response = marketing_client.post(f"/admin/scoring/scoringmodel/{draft.pk}/preview/", {"confirm": "yes"})
    page = marketing_client.get(response["Location"]).content.decode()

    run = RescoreRun.objects.get(model=draft)
    assert run.status == "done"
    assert f"Done: 3 leads rescored with v{draft.pk} in" in page
    assert "3 leads became MQL and went to routing, which hands them to reps, pools or partners." in page
    assert "hx-trigger" not in page
    assert "100%" not in page.split('id="run-status"')[1].split("</div>")[0]
