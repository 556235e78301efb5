"""The reconciler finds each kind of drift the loop can have, repairs it once, and says so."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from leads.models import Lead, Stage, StageChange
from leads.services import lead_transition, lead_update
from leads.tests.factories import ActivityFactory, LeadFactory
from loop import reconciler
from loop.models import LoopRun
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team
from scoring import services, tasks
from scoring.models import PendingRescore, RescoreRun
from scoring.tests.factories import make_model

pytestmark = pytest.mark.django_db


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def scored_lead(**fields) -> Lead:
    """A lead whose stored score is the engine's (so that it is not drift itself)."""
    lead = LeadFactory(**fields)
    services.rescore_leads(lead_ids=[lead.pk])
    lead.refresh_from_db()
    return lead


def found(**kwargs) -> dict[str, int]:
    return reconciler.check(repair=False, **kwargs).found


NO_DRIFT = {kind.name: 0 for kind in reconciler.ALL_KINDS}


def test_a_quiet_consistent_loop_has_no_drift():
    make_model(activate=True)
    control = [scored_lead(job_title="CTO", stage=Stage.MAL) for _ in range(3)]
    assert found() == NO_DRIFT
    assert found(full=True) == NO_DRIFT
    assert reconciler.check(repair=False, full=True).checked_scores == len(control)


def test_pending_rescoring_that_no_task_did_is_rescored():
    make_model(activate=True)
    lead = LeadFactory(job_title="CTO")
    young = LeadFactory(job_title="CTO")
    PendingRescore.objects.create(lead=lead)
    PendingRescore.objects.create(lead=young)
    PendingRescore.objects.filter(lead=lead).update(requested_at=ago(60))
    # A claim whose worker died has expired: the row is drift as well.
    dead = LeadFactory(job_title="CTO")
    PendingRescore.objects.create(lead=dead)
    PendingRescore.objects.filter(lead=dead).update(requested_at=ago(90), claimed_until=ago(10))
    # A live claim is somebody's work in progress: not drift.
    busy = LeadFactory(job_title="CTO")
    PendingRescore.objects.create(lead=busy)
    PendingRescore.objects.filter(lead=busy).update(
        requested_at=ago(90), claimed_until=timezone.now() + timedelta(seconds=20)
    )

    assert found(sample_size=0)["pending_stale"] == 2
    run = reconciler.reconcile()

    assert (run.found["pending_stale"], run.repaired["pending_stale"]) == (2, 2)
    assert sorted(PendingRescore.objects.values_list("lead_id", flat=True)) == sorted([young.pk, busy.pk])
    lead.refresh_from_db()
    dead.refresh_from_db()
    assert (lead.fit_score, lead.grade, dead.fit_score) == (20, "B", 20)
    assert found(sample_size=0)["pending_stale"] == 0


def test_a_full_run_whose_worker_died_goes_on_from_its_cursor_and_counts_each_mql_once(settings):
    settings.SCORING_RESCORE_BATCH = 2
    model = make_model(activate=True, threshold=20)
    leads = [LeadFactory(job_title="CTO", stage=Stage.MAL) for _ in range(5)]
    run = RescoreRun.objects.create(
        model=model, kind=RescoreRun.Kind.MANUAL, as_of=timezone.now(), total=5, batch_size=2
    )
    first = services.rescore_run_step(run_id=run.pk, cursor=0)
    assert first == leads[1].pk
    # The worker died before queuing the next step; a duplicate of the first step arrives late.
    assert services.rescore_run_step(run_id=run.pk, cursor=0) is None
    RescoreRun.objects.filter(pk=run.pk).update(updated_at=ago(120))
    assert found(sample_size=0)["runs_stalled"] == 1

    reconciler.reconcile()  # Celery is eager here: the re-queued chain runs to the end

    run.refresh_from_db()
    assert (run.status, run.cursor, run.done, run.became_mql) == (RescoreRun.Status.DONE, leads[-1].pk, 5, 5)
    assert set(Lead.objects.values_list("stage", flat=True)) == {Stage.MQL}
    assert StageChange.objects.filter(to_stage=Stage.MQL).count() == 5


def test_a_mal_lead_scored_above_the_threshold_becomes_an_mql_once_and_is_routed(django_capture_on_commit_callbacks):
    team, reps = make_team(size=2)
    make_rule("Everyone", team=team)
    make_model(activate=True, threshold=45)
    lead = scored_lead(job_title="CTO", stage=Stage.MAL)
    ActivityFactory(lead=lead, type="demo_request", occurred_at=timezone.now())  # +30: 50, the MQL move was lost
    services.rescore_leads(lead_ids=[lead.pk])
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.MAL)
    StageChange.objects.filter(lead=lead).delete()
    control = scored_lead(job_title="CTO", stage=Stage.MAL)  # 20: below the threshold

    assert found()["mal_qualifying"] == 1
    with django_capture_on_commit_callbacks(execute=True):  # the routing task runs (eager) after the commit
        run = reconciler.reconcile()
    again = reconciler.reconcile()

    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert (run.found["mal_qualifying"], run.repaired["mal_qualifying"], again.found["mal_qualifying"]) == (1, 1, 0)
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    assert Assignment.objects.get(lead=lead, status=Assignment.Status.ACTIVE).user in reps
    control.refresh_from_db()
    assert control.stage == Stage.MAL


def test_a_lead_sent_back_to_marketing_with_its_old_score_is_not_drift():
    make_model(activate=True, threshold=45)
    lead = scored_lead(job_title="CTO", stage=Stage.MAL)
    ActivityFactory(lead=lead, type="demo_request", occurred_at=timezone.now())
    services.rescore_leads(lead_ids=[lead.pk])  # 50 → MQL
    lead_transition(lead=Lead.objects.get(pk=lead.pk), to_stage=Stage.MAL, reason="Not now")
    assert found()["mal_qualifying"] == 0


def test_an_mql_whose_routing_task_was_lost_is_routed_and_a_young_one_is_left_to_its_task(
    django_capture_on_commit_callbacks,
):
    team, reps = make_team(size=2)
    make_rule("Everyone", team=team)
    make_model(activate=True)
    lost = scored_lead(job_title="CTO", stage=Stage.MAL)
    young = scored_lead(job_title="CTO", stage=Stage.MAL)
    # No on-commit callbacks run in this test: no routing task is queued, as when the broker was down.
    lead_transition(lead=lost, to_stage=Stage.MQL)
    lead_transition(lead=young, to_stage=Stage.MQL)
    StageChange.objects.filter(lead=lost).update(at=ago(120))

    assert found()["unrouted_mqls"] == 1
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail task runs (eager) after the commit
        run = reconciler.reconcile()

    assert (run.found["unrouted_mqls"], run.repaired["unrouted_mqls"]) == (1, 1)
    assigned = Assignment.objects.get(lead=lost)
    assert assigned.status == Assignment.Status.ACTIVE and assigned.user in reps
    assert not Assignment.objects.filter(lead=young).exists()
    assert [m.to for m in mail.outbox] == [[assigned.user.email]]  # told as well (notified_at set)
    assigned.refresh_from_db()
    assert assigned.notified_at is not None


def test_an_assignee_nobody_told_is_told_once(django_capture_on_commit_callbacks):
    team, reps = make_team(size=1)
    rule = make_rule("Everyone", team=team)
    lead = LeadFactory(stage=Stage.MQL, company="Initech")
    old = Assignment.objects.create(
        lead=lead, user=reps[0], rule=rule, status=Assignment.Status.ACTIVE, assigned_at=ago(300), due_at=ago(240)
    )
    stale_but_closed = Assignment.objects.create(
        lead=LeadFactory(stage=Stage.MQL),
        user=reps[0],
        rule=rule,
        status=Assignment.Status.CLOSED,
        assigned_at=ago(300),
        due_at=ago(240),
    )

    assert found()["unnotified"] == 1
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):  # the sending task is queued after the commit
            reconciler.reconcile()

    assert [m.to for m in mail.outbox] == [[reps[0].email]]
    assert "Initech" in mail.outbox[0].subject
    old.refresh_from_db()
    stale_but_closed.refresh_from_db()
    assert old.notified_at is not None and stale_but_closed.notified_at is None


def test_stored_scores_that_disagree_with_the_engine_are_found_and_rescored():
    model = make_model(activate=True)
    right = scored_lead(job_title="CTO")
    wrong = scored_lead(job_title="CTO")
    Lead.objects.filter(pk=wrong.pk).update(score=99, fit_score=99)
    other_model = scored_lead(job_title="CTO")
    Lead.objects.filter(pk=other_model.pk).update(scoring_version=model.pk + 1000)
    never = LeadFactory(job_title="CTO")  # created without an event, never scored

    assert found()["score_mismatch"] == 3
    run = reconciler.reconcile()

    assert (run.found["score_mismatch"], run.repaired["score_mismatch"], run.checked_scores) == (3, 3, 4)
    for lead in (right, wrong, other_model, never):
        lead.refresh_from_db()
        assert (lead.score, lead.fit_score, lead.grade, lead.scoring_version) == (20, 20, "B", model.pk)
    assert found(full=True) == NO_DRIFT


def test_the_sample_walks_round_every_lead(settings):
    settings.LOOP_SAMPLE = 2
    make_model(activate=True)
    leads = [scored_lead(job_title="CTO") for _ in range(3)]
    Lead.objects.filter(pk=leads[2].pk).update(score=5)

    first = reconciler.reconcile()  # leads 0 and 1
    second = reconciler.reconcile()  # lead 2, then round to lead 0

    assert (first.found["score_mismatch"], second.found["score_mismatch"]) == (0, 1)
    assert (first.sample_cursor, second.sample_cursor) == (leads[1].pk, 0)


def test_check_loop_prints_each_figure_and_exits_1_on_drift_then_0_after_repair():
    make_model(activate=True)
    lead = LeadFactory(job_title="CTO")
    PendingRescore.objects.create(lead=lead)
    PendingRescore.objects.filter(lead=lead).update(requested_at=ago(60))
    out = StringIO()

    with pytest.raises(SystemExit) as exit_:
        call_command("check_loop", stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "Rescoring waiting too long" in text and "pending_stale" in text
    assert [line.split()[-1] for line in text.splitlines() if "pending_stale" in line] == ["1"]
    # The lead's stored score is not checked while its rescoring is pending: one case of drift.
    assert text.strip().endswith("Scores checked: 1. Drift found: 1.")
    assert not LoopRun.objects.exists()  # a check without --repair records nothing

    with pytest.raises(SystemExit):
        call_command("check_loop", "--repair", stdout=StringIO())
    assert LoopRun.objects.count() == 1

    out = StringIO()
    call_command("check_loop", "--full", stdout=out)  # no SystemExit: exit status 0
    assert out.getvalue().strip().endswith("Drift found: 0.")


def test_rescore_all_starts_a_full_run_with_the_active_model(django_capture_on_commit_callbacks):
    model = make_model(activate=True)
    leads = [LeadFactory(job_title="CTO") for _ in range(3)]
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rescore_all", stdout=out)
    run = RescoreRun.objects.get()
    assert (run.kind, run.model, run.status, run.done) == ("manual", model, "done", 3)
    assert f"Rescoring run {run.pk} started: 3 leads with model v{model.pk}" in out.getvalue()
    assert {Lead.objects.get(pk=lead.pk).fit_score for lead in leads} == {20}


def test_the_loop_health_page_shows_the_figures_to_staff_only(client, marketing, rep_a):
    make_model(activate=True)
    lead = LeadFactory(job_title="CTO")
    PendingRescore.objects.create(lead=lead)
    PendingRescore.objects.filter(lead=lead).update(requested_at=ago(60))
    reconciler.reconcile(repair=False)
    marketing.is_superuser = True
    marketing.save()

    client.force_login(marketing)
    page = client.get("/admin/loop/looprun/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Loop health" in html and "1 case of drift right now." in html
    assert "Rescoring waiting too long" in html and "MQLs without an assignment" in html

    client.force_login(rep_a)
    assert client.get("/admin/loop/looprun/").status_code == 302  # the admin sends non-staff to its login


def test_tasks_retry_transient_database_and_broker_errors():
    from django.db import OperationalError
    from kombu.exceptions import OperationalError as BrokerDown

    assert OperationalError in tasks.rescore_leads_task.autoretry_for
    assert BrokerDown in tasks.rescore_leads_task.autoretry_for
    assert tasks.rescore_run_step_task.max_retries >= 5


def test_a_change_whose_rescoring_was_lost_is_found_over_all_leads_at_once():
    make_model(activate=True)
    lead = scored_lead(job_title="Engineer")
    # The profile change committed; its pending row was lost (no on-commit task runs here either).
    lead_update(lead=Lead.objects.get(pk=lead.pk), data={"job_title": "CTO"})
    PendingRescore.objects.all().delete()
    pending_elsewhere = scored_lead(job_title="CTO")
    Lead.objects.filter(pk=pending_elsewhere.pk).update(score_rev=pending_elsewhere.score_rev + 1)
    PendingRescore.objects.create(lead=pending_elsewhere)  # on its way: not drift

    assert found(sample_size=0)["unscored_changes"] == 1
    run = reconciler.reconcile()

    lead.refresh_from_db()
    assert (run.found["unscored_changes"], run.repaired["unscored_changes"]) == (1, 1)
    assert (lead.fit_score, lead.scored_rev) == (20, lead.score_rev)


def test_the_scanning_kinds_walk_round_the_leads_a_window_at_a_time(settings):
    settings.LOOP_WINDOW = 2
    make_model(activate=True, threshold=45)
    leads = [scored_lead(job_title="CTO", stage=Stage.MAL) for _ in range(3)]
    Lead.objects.filter(pk=leads[2].pk).update(score_rev=leads[2].score_rev + 1)  # its rescoring was lost

    first, second, third = (reconciler.reconcile() for _ in range(3))

    assert [r.found["unscored_changes"] for r in (first, second, third)] == [0, 1, 0]
    assert (first.window_cursor, second.window_cursor) == (leads[1].pk, 0)
    assert reconciler.check(repair=False, full=True).found["unscored_changes"] == 0  # repaired by the second
