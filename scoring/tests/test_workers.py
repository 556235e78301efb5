"""Scores follow events: rescoring on commit, MQL exactly once, activation and decay runs."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from leads.models import Lead, Stage, StageChange
from leads.services import lead_capture, lead_update
from leads.tests.factories import ActivityFactory, LeadFactory
from scoring import services, tasks
from scoring.models import BehaviorRule, PendingRescore, RescoreRun, ScoringModel, ScoringModelChange
from scoring.tests.factories import make_model


def post_events(api, integration, email, *events, capture):
    with capture(execute=True):
        response = api(integration).post("/api/v1/events/", [{"email": email, **e} for e in events], format="json")
    assert response.status_code == 201
    return response


def test_events_raise_the_score_and_crossing_the_threshold_makes_an_mql_once(
    api, integration, django_capture_on_commit_callbacks
):
    make_model(activate=True, threshold=50)
    with django_capture_on_commit_callbacks(execute=True):
        lead, _ = lead_capture(data={"email": "cto@acme.example", "job_title": "CTO"})
    lead.stage = Stage.MAL
    lead.save(update_fields=["stage"])
    lead.refresh_from_db()
    assert (lead.fit_score, lead.engagement_score, lead.grade) == (20, 0, "B")

    post_events(
        api,
        integration,
        "cto@acme.example",
        {"type": "page_view", "properties": {"url": "/pricing"}},
        capture=django_capture_on_commit_callbacks,
    )
    lead.refresh_from_db()
    assert lead.stage == Stage.MAL
    assert lead.score == pytest.approx(30, abs=1e-3)

    post_events(
        api, integration, "cto@acme.example", {"type": "demo_request"}, capture=django_capture_on_commit_callbacks
    )
    lead.refresh_from_db()
    assert lead.score == pytest.approx(60, abs=1e-3)
    assert lead.stage == Stage.MQL
    change = StageChange.objects.get(lead=lead, to_stage=Stage.MQL)
    assert change.actor is None
    assert change.reason.startswith("Score 60.0 reached the MQL threshold 50 with grade B")

    # More events and a fall below the threshold: still exactly one move, no flip back.
    post_events(
        api,
        integration,
        "cto@acme.example",
        {"type": "demo_request"},
        {"type": "unsubscribe"},
        {"type": "unsubscribe"},
        capture=django_capture_on_commit_callbacks,
    )
    lead.refresh_from_db()
    assert lead.score < 50
    assert lead.stage == Stage.MQL
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1


def test_the_breakdown_of_the_api_adds_up_to_the_stored_score(api, marketing, django_capture_on_commit_callbacks):
    make_model(activate=True)
    lead = LeadFactory(job_title="CTO", stage=Stage.MAL)
    ActivityFactory(lead=lead, type="page_view", properties={"url": "/pricing"})
    ActivityFactory(lead=lead, type="page_view", properties={"url": "/blog"})
    services.rescore_request(lead_ids=[lead.pk])  # as the events' ingestion records them
    assert tasks.rescore_leads_task([lead.pk]) == 1  # what the worker runs

    body = api(marketing).get(f"/api/v1/leads/{lead.pk}/score/").json()

    lead.refresh_from_db()
    assert body["total"] == pytest.approx(lead.score, abs=1e-3)
    assert sum(item["points"] for item in body["breakdown"]) == pytest.approx(body["total"], abs=1e-9)
    assert [(i["rule"], i["kind"], i["occurrences"]) for i in body["breakdown"]] == [
        ("CTO", "fit", 1),
        ("Pricing page", "behavior", 1),
    ]
    assert body["grade"] == "B" and body["model_version"] == lead.scoring_version


def test_a_burst_of_events_for_one_lead_queues_one_rescoring(db, django_capture_on_commit_callbacks):
    make_model(activate=True)
    lead = LeadFactory()
    with mock.patch.object(tasks.rescore_leads_task, "delay") as delay:
        for _ in range(20):
            with django_capture_on_commit_callbacks(execute=True):
                services.rescore_request(lead_ids=[lead.pk])
    assert delay.call_count == 1
    assert PendingRescore.objects.filter(lead=lead).count() == 1

    assert tasks.rescore_leads_task([lead.pk]) == 1  # the task claims the pending row and scores the lead
    assert not PendingRescore.objects.exists()
    assert Lead.objects.get(pk=lead.pk).scoring_version is not None
    queued = mock.patch.object(tasks.rescore_leads_task, "delay")
    with queued as delay, django_capture_on_commit_callbacks(execute=True):
        services.rescore_request(lead_ids=[lead.pk])
    assert delay.call_count == 1  # the next event queues again


def test_a_profile_change_rescores(db, marketing, django_capture_on_commit_callbacks):
    make_model(activate=True)
    lead = LeadFactory(job_title="Engineer")
    with django_capture_on_commit_callbacks(execute=True):
        lead_update(lead=lead, data={"job_title": "CTO"}, actor=marketing)
    lead.refresh_from_db()
    assert (lead.fit_score, lead.grade) == (20, "B")


def test_without_an_active_model_nothing_is_queued(db):
    lead = LeadFactory()
    assert services.rescore_request(lead_ids=[lead.pk]) == []
    assert not PendingRescore.objects.exists()


def test_rescoring_a_lead_twice_changes_nothing(db):
    model = make_model(activate=True)
    lead = LeadFactory(job_title="CTO", stage=Stage.MAL)
    ActivityFactory(lead=lead, type="demo_request", occurred_at=timezone.now() - timedelta(days=3))
    now = timezone.now()
    services.rescore_request(lead_ids=[lead.pk])
    assert [s.lead_id for s in services.rescore_pending(lead_ids=[lead.pk], now=now)] == [lead.pk]
    first = Lead.objects.values("score", "fit_score", "engagement_score", "grade", "scoring_version").get(pk=lead.pk)
    services.rescore_request(lead_ids=[lead.pk])
    assert [s.lead_id for s in services.rescore_pending(lead_ids=[lead.pk], now=now)] == [lead.pk]
    assert (
        Lead.objects.values("score", "fit_score", "engagement_score", "grade", "scoring_version").get(pk=lead.pk)
        == first
    )
    assert first["scoring_version"] == model.pk
    assert first["score"] == pytest.approx(20 + 30 * 0.5 ** (3 / 30), abs=1e-3)  # CTO + a demo request 3 days ago
    # The same task delivered again (acks_late): nothing is pending any more, nothing is done.
    assert services.rescore_pending(lead_ids=[lead.pk], now=now) == []


def test_exactly_one_model_is_active_in_the_database(db):
    make_model(activate=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_model(activate=True)


def test_activation_archives_the_old_model_and_rescores_every_lead(db, marketing, settings):
    settings.SCORING_RESCORE_BATCH = 3
    old = make_model(activate=True, threshold=1000)
    leads = LeadFactory.create_batch(7, job_title="CTO", stage=Stage.MAL)
    draft = services.scoring_model_clone(source=old, actor=marketing)
    draft.mql_threshold = 15
    draft.save()
    BehaviorRule.objects.filter(model=draft).delete()

    run = services.scoring_model_activate(model=draft, actor=marketing)
    while services.rescore_run_step(run_id=run.pk):
        pass

    old.refresh_from_db()
    draft.refresh_from_db()
    run.refresh_from_db()
    assert (old.status, draft.status, draft.activated_by) == ("archived", "active", marketing)
    assert (run.status, run.done, run.total, run.became_mql, run.cursor) == ("done", 7, 7, 7, leads[-1].pk)
    assert set(Lead.objects.values_list("scoring_version", "fit_score", "stage")) == {(draft.pk, 20.0, "mql")}
    assert list(ScoringModelChange.objects.values_list("model", "action", "actor")) == [
        (draft.pk, "activated", marketing.pk),
        (old.pk, "archived", marketing.pk),
        (draft.pk, "cloned", marketing.pk),
    ]


def test_only_a_draft_can_be_activated(db):
    active = make_model(activate=True)
    with pytest.raises(ValueError, match="Only a draft"):
        services.scoring_model_activate(model=active)


def test_a_run_that_crashes_mid_way_resumes_at_its_cursor(db):
    model = make_model(activate=True)
    leads = LeadFactory.create_batch(5, job_title="CTO")
    run = RescoreRun.objects.create(model=model, kind="activation", as_of=timezone.now(), total=5, batch_size=2)
    assert services.rescore_run_step(run_id=run.pk)  # leads 1–2
    with mock.patch("scoring.sql.scores_write", side_effect=RuntimeError("worker killed")), pytest.raises(RuntimeError):
        services.rescore_run_step(run_id=run.pk)  # leads 3–4: rolled back
    run.refresh_from_db()
    assert (run.done, run.cursor) == (2, leads[1].pk)
    assert Lead.objects.filter(scoring_version=model.pk).count() == 2

    while services.rescore_run_step(run_id=run.pk):
        pass

    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 5)
    assert Lead.objects.filter(scoring_version=model.pk, fit_score=20).count() == 5


def test_a_newer_run_supersedes_a_running_one(db):
    model = make_model(activate=True)
    LeadFactory.create_batch(3)
    first = services.rescore_run_start(model=model, kind="decay")
    second = services.rescore_run_start(model=model, kind="activation")
    first.refresh_from_db()
    assert first.status == "superseded"
    assert not services.rescore_run_step(run_id=first.pk)
    assert services.rescore_run_step(run_id=second.pk)


def test_the_daily_decay_lowers_the_score_of_silent_leads(db, django_capture_on_commit_callbacks):
    make_model(activate=True, half_life_days=7)
    lead = LeadFactory(stage=Stage.MAL)
    ActivityFactory(lead=lead, type="demo_request", occurred_at=timezone.now() - timedelta(days=14))
    Lead.objects.filter(pk=lead.pk).update(score=30, engagement_score=30)  # as scored two weeks ago

    with django_capture_on_commit_callbacks(execute=True):
        run_id = tasks.decay_all_task()

    lead.refresh_from_db()
    assert lead.engagement_score == pytest.approx(7.5, rel=1e-3)  # 30 × 0.5^(14/7)
    assert RescoreRun.objects.get(pk=run_id).status == "done"


def test_an_exclusion_rule_disqualifies(db):
    from scoring.models import ExclusionRule

    model = make_model(activate=True)
    ExclusionRule.objects.create(
        model=model, category="press", field="job_title", operator="contains", value="journalist", action="disqualify"
    )
    lead = LeadFactory(job_title="Tech Journalist", stage=Stage.MAL)
    services.rescore_request(lead_ids=[lead.pk])
    assert tasks.rescore_leads_task([lead.pk]) == 1
    lead.refresh_from_db()
    assert lead.stage == Stage.DISQUALIFIED
    assert StageChange.objects.get(lead=lead).reason == "Matched an exclusion rule"


def test_scoring_model_list_is_visible_to_any_api_user(api, rep_a):
    model = make_model(activate=True)
    body = api(rep_a).get("/api/v1/scoring/model/").json()
    assert (body["version"], body["mql_threshold"], body["min_grade"], body["half_life_days"]) == (
        model.pk,
        50.0,
        "C",
        30.0,
    )
    assert [r["label"] for r in body["behavior_rules"]] == ["Pricing page", "Demo request", "Unsubscribed"]
    assert body["fit_rules"][0] == {
        "field": "job_title",
        "operator": "eq",
        "value": "cto",
        "points": 20.0,
        "label": "CTO",
    }


def test_partners_and_integration_clients_do_not_see_the_weights(api, partner_a, integration):
    make_model(activate=True)
    assert api(partner_a).get("/api/v1/scoring/model/").status_code == 404  # no internal API for partners
    assert api(integration).get("/api/v1/scoring/model/").status_code == 403


def test_the_score_of_another_reps_lead_is_404(api, rep_a, rep_b):
    make_model(activate=True)
    lead = LeadFactory(owner=rep_a)
    assert api(rep_b).get(f"/api/v1/leads/{lead.pk}/score/").status_code == 404
    assert api(rep_a).get(f"/api/v1/leads/{lead.pk}/score/").status_code == 200


def test_no_active_model_is_a_404_with_a_message(api, marketing):
    response = api(marketing).get("/api/v1/scoring/model/")
    assert response.status_code == 404
    assert response.json()["detail"] == "No scoring model is active."
    assert ScoringModel.objects.count() == 0


def test_one_task_rescores_every_waiting_lead_and_the_others_find_theirs_done(db):
    make_model(activate=True)
    leads = [LeadFactory(job_title="CTO", stage=Stage.MAL) for _ in range(3)]
    with mock.patch.object(tasks.rescore_leads_task, "delay"):
        for lead in leads:
            services.rescore_request(lead_ids=[lead.pk])  # three events, three queued tasks
    assert PendingRescore.objects.count() == 3

    first = tasks.rescore_leads_task([leads[0].pk])
    assert first == 3 and not PendingRescore.objects.exists()
    assert sorted(Lead.objects.values_list("fit_score", flat=True)) == [20, 20, 20]
    assert tasks.rescore_leads_task([leads[1].pk]) == 0  # already done by the first
    assert tasks.rescore_leads_task([leads[2].pk]) == 0


def test_a_task_claims_at_most_its_limit_oldest_first(db):
    make_model(activate=True)
    leads = [LeadFactory() for _ in range(4)]
    with mock.patch.object(tasks.rescore_leads_task, "delay"):
        services.rescore_request(lead_ids=[lead.pk for lead in leads])
    scores = services.rescore_pending(lead_ids=[leads[3].pk], limit=2)
    assert sorted(s.lead_id for s in scores) == sorted([leads[3].pk, leads[0].pk])
    assert sorted(PendingRescore.objects.values_list("lead_id", flat=True)) == [leads[1].pk, leads[2].pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rows_another_worker_holds_are_left_to_it():
    import threading

    from django.db import connection

    make_model(activate=True)
    held, free = LeadFactory(), LeadFactory()
    with mock.patch.object(tasks.rescore_leads_task, "delay"):
        services.rescore_request(lead_ids=[held.pk, free.pk])
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            list(PendingRescore.objects.select_for_update().filter(lead_id=held.pk))
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    locked.wait(10)
    try:
        scores = services.rescore_pending(lead_ids=[held.pk, free.pk])
    finally:
        release.set()
        thread.join()
    assert [s.lead_id for s in scores] == [free.pk]
    assert list(PendingRescore.objects.values_list("lead_id", flat=True)) == [held.pk]
