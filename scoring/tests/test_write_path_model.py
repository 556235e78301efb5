"""A model-based test of the scoring write path (hypothesis stateful).

Random interleavings of event batches, profile changes, single-lead rescoring and full-run batches,
each rescoring split into its two halves — computing (from what is committed at that moment) and
storing (`scores_apply`, later, after anything else may have happened) — and the clock moving on.

Invariants, after every step:
- a lead with no pending rescoring has the stored score, fit, engagement and grade the engine
  computes from its current profile and all its activities, for the instant it was scored (so no
  older computation ever replaced a newer one, and no change was left out);
- such a lead is not MAL with a stored score that qualifies (the move came with the score);
- no stored score is replaced by one computed for an earlier instant;
- no lead became an MQL twice.
And at the end, once every computation in flight is stored and the pending work is drained, every
lead satisfies the first two.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from leads.models import Lead, Stage, StageChange
from leads.selectors import lead_facts
from leads.services import events_ingest, lead_update
from leads.tests.factories import LeadFactory
from scoring import bulk, engine, selectors, services
from scoring.models import PendingRescore
from scoring.tests.factories import make_model

LEADS = 3
EVENTS = st.sampled_from(
    [
        ("demo_request", {}),
        ("page_view", {"url": "/pricing"}),
        ("page_view", {"url": "/blog"}),
        ("unsubscribe", {}),
    ]
)


class WritePath(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = timezone.now()
        self.model = selectors.active_engine_model()
        self.leads = [LeadFactory(job_title="CTO", stage=Stage.MAL).pk for _ in range(LEADS)]
        services.rescore_request(lead_ids=self.leads)  # as capture records them; then the worker's pass
        assert len(services.rescore_pending(lead_ids=self.leads, now=self.now)) == LEADS
        self.in_flight: list[tuple[list[bulk.LeadScore], object]] = []
        self.events = 0
        self.scored_at = dict(Lead.objects.filter(pk__in=self.leads).values_list("pk", "scored_at"))
        self.as_of = self.now  # the instant of the current full run: fixed when it starts

    # --- what the world does -------------------------------------------------------------------

    @rule(lead=st.integers(0, LEADS - 1), event=EVENTS, back=st.integers(0, 3 * 86_400))
    def event_batch(self, lead, event, back):
        kind, properties = event
        self.events += 1
        events_ingest(
            events=[
                {
                    "lead_id": self.leads[lead],
                    "type": kind,
                    "properties": properties,
                    "occurred_at": self.now - timedelta(seconds=back),
                    "source": "model",
                    "external_id": f"e{self.events}",
                }
            ]
        )

    @rule(lead=st.integers(0, LEADS - 1), title=st.sampled_from(["CTO", "Engineer"]))
    def profile_change(self, lead, title):
        lead_update(lead=Lead.objects.get(pk=self.leads[lead]), data={"job_title": title})

    @rule(seconds=st.integers(1, 7 * 86_400))
    def clock_moves_on(self, seconds):
        self.now += timedelta(seconds=seconds)

    # --- what the workers do, in two halves --------------------------------------------------

    @rule(which=st.lists(st.integers(0, LEADS - 1), min_size=1, max_size=LEADS, unique=True))
    def incremental_computes(self, which):
        ids = [self.leads[i] for i in which]
        claimed = services.claim_pending(lead_ids=ids, now=self.now)
        if claimed:
            self.in_flight.append((bulk.compute(self.model, self.now, lead_ids=claimed), self.now))

    @rule()
    def a_full_run_starts(self):
        self.as_of = self.now

    @rule()
    def full_run_batch_computes(self):
        # A batch of a run computes from what is committed now, for the instant the run started.
        span = (min(self.leads), max(self.leads))
        self.in_flight.append((bulk.compute(self.model, self.as_of, id_range=span), self.as_of))

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def a_computation_is_stored(self, data):
        scores, at = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        with transaction.atomic():
            services.scores_apply(model=self.model, scores=scores, at=at)

    # --- what must hold ----------------------------------------------------------------------

    @invariant()
    def a_lead_without_pending_work_is_exact(self):
        pending = set(PendingRescore.objects.values_list("lead_id", flat=True))
        for lead in Lead.objects.filter(pk__in=self.leads).exclude(pk__in=pending):
            assert_exact(self.model, lead)

    @invariant()
    def a_stored_score_is_never_replaced_by_one_for_an_earlier_instant(self):
        for lead_id, scored_at in Lead.objects.filter(pk__in=self.leads).values_list("pk", "scored_at"):
            assert scored_at >= self.scored_at[lead_id], lead_id
            self.scored_at[lead_id] = scored_at

    @invariant()
    def no_lead_became_an_mql_twice(self):
        for lead_id in self.leads:
            assert StageChange.objects.filter(lead_id=lead_id, to_stage=Stage.MQL).count() <= 1

    def teardown(self) -> None:
        while self.in_flight:
            scores, at = self.in_flight.pop()
            with transaction.atomic():
                services.scores_apply(model=self.model, scores=scores, at=at)
        later = self.now + timedelta(days=1)  # every claim has expired
        while claimed := services.claim_pending(lead_ids=self.leads, now=later):
            scores = bulk.compute(self.model, later, lead_ids=claimed)
            with transaction.atomic():
                services.scores_apply(model=self.model, scores=scores, at=later)
        assert not PendingRescore.objects.filter(lead_id__in=self.leads).exists()
        for lead in Lead.objects.filter(pk__in=self.leads):
            assert_exact(self.model, lead)
        Lead.objects.filter(pk__in=self.leads).delete()


def assert_exact(model: engine.Model, lead: Lead) -> None:
    facts = [
        engine.ActivityFact(kind, at, props or {})
        for kind, at, props in lead.activities.values_list("type", "occurred_at", "properties")
    ]
    expected = engine.score_lead(model, lead_facts(lead), facts, lead.scored_at)
    assert lead.scoring_version == model.version, lead.pk
    assert lead.scored_rev == lead.score_rev, (lead.pk, lead.scored_rev, lead.score_rev)
    assert math.isclose(lead.fit_score, expected.fit, abs_tol=1e-6), (lead.pk, lead.fit_score, expected.fit)
    assert math.isclose(lead.engagement_score, expected.engagement, abs_tol=1e-6), (
        lead.pk,
        lead.engagement_score,
        expected.engagement,
    )
    assert lead.grade == expected.grade
    if lead.stage == Stage.MAL:
        assert not engine.qualifies_for_mql(model, lead.score, lead.grade), (lead.pk, lead.score)


@pytest.mark.django_db
def test_no_interleaving_of_events_rescoring_and_full_runs_leaves_a_stale_score():
    make_model(activate=True, threshold=45)
    run_state_machine_as_test(
        WritePath,
        settings=settings(
            max_examples=120,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
