"""Soak: the scoring → MQL → routing loop under load, with real PostgreSQL, Redis and worker processes.

Three `celery worker` processes (solo pool) share one private queue set, and a beat process runs the
reconciler every 2 s (LOOP_RECONCILE_EVERY=2, LOOP_STALE_AFTER=3). Four client threads capture
leads through the API (opt-in confirmed → MAL) and post events: right after the capture, in bursts of
several batches for one lead, to leads that existed before, for e-mails not captured yet (the event
makes the lead, the capture accepts it), replays of batches already sent, and re-captures that make a
lead a CTO. Meanwhile a new model version is activated (its full rescoring runs in batches of 8), and
two workers are SIGKILLed mid-run, one after the other, and restarted 3 s later.

The invariant, once the loop is quiet (bounded wait):
- `check_loop --full` finds no drift of any kind (no pending rescoring, no stalled run, no MAL lead
  whose score qualifies, no MQL without an assignment, nobody left untold, no stored score ≠ engine);
- every lead's stored score, fit, engagement and grade are the engine's for the instant it was scored
  (`scoring.drift.mismatched` over every lead, and independently `engine.score_lead`), with the active
  model, and nothing is left pending or running;
- no MAL lead qualifies for MQL (by the engine, not only by the stored score);
- every MQL has exactly one open assignment (and exactly one assignment: nobody was routed twice),
  no other lead has an open assignment;
- no lead moved to MQL twice (one StageChange to MQL per MQL, none for the others: nobody left MQL);
- one lead per e-mail, and every e-mail the clients used has its lead;
- the activities the clients' events made are exactly the events acknowledged (200/201): nothing
  lost, nothing doubled, and their number is the sum of the batches' `stored`.

SOAK_SEED=<n> replays a particular interleaving of the clients' choices (not of the processes).
"""

from __future__ import annotations

import io
import math
import os
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.test import APIClient

from leads import consent
from leads.models import Activity, ActivityType, ConsentStatus, Lead, Stage, StageChange
from leads.selectors import lead_facts
from leads.tokens import token_create
from loop import reconciler
from loop.models import LoopRun
from routing.models import Assignment, RepProfile
from routing.tests.factories import make_rule, make_team
from scoring import drift, engine, selectors, services
from scoring.models import PendingRescore, RescoreRun
from scoring.tests.factories import make_model
from tests.worker import beat_process, drop_queues, new_queue, producer, wait_for, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("SOAK_SEED", "20240611"))
CLIENTS = 4
SCENARIOS_PER_CLIENT = 36
EXISTING = 320
SHARED_EMAILS = [f"shared-{i}@both.example" for i in range(12)]  # captured by several clients at once
RUN_BATCH = 8
LOOP_ENV = {"LOOP_RECONCILE_EVERY": "2", "LOOP_STALE_AFTER": "3", "SCORING_RESCORE_BATCH": str(RUN_BATCH)}
QUIET_WITHIN_S = 45
PRICING = {"url": "/pricing"}


# --- the clients ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients were told, across threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[str] = field(default_factory=set)  # external ids of events in batches answered 200/201
    stored: int = 0  # sum of the batches' "stored"
    emails: set[str] = field(default_factory=set)  # every e-mail a capture or an event named
    statuses: Counter = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)  # anything that was not 200/201
    errors: list[str] = field(default_factory=list)  # exceptions in a client thread


class Client:
    """One API client thread's choices, from its own random generator."""

    def __init__(self, index: int, token: str, existing: list[str], tally: Tally):
        self.index, self.existing, self.tally = index, existing, tally
        self.rnd = random.Random(SEED * 31 + index)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        self.events = 0
        self.mine: list[str] = []
        self.sent: list[list[dict]] = []

    # requests
    def capture(self, email: str, cto: bool) -> None:
        data = {"email": email, "first_name": "Soak", "company": "Soak Ltd"}
        if cto:
            data["job_title"] = "CTO"
        response = self.api.post("/api/v1/leads/", data, format="json")
        self._record("capture", response)
        if response.status_code in (200, 201):  # the person clicks the confirmation link (new → mal)
            consent.consent_confirm(token=consent.token_for(Lead.objects.get(email=email), consent.CONFIRM))
        with self.tally.lock:
            self.tally.emails.add(email)

    def post(self, batch: list[dict]) -> None:
        response = self.api.post("/api/v1/events/", batch, format="json")
        self._record("events", response)
        self.sent.append(batch)
        if response.status_code in (200, 201):
            with self.tally.lock:
                self.tally.acked.update(event["external_id"] for event in batch)
                self.tally.stored += response.json()["stored"]
                self.tally.emails.update(event["email"] for event in batch)

    def event(self, email: str, kind: str, days_ago: float = 0) -> dict:
        self.events += 1
        event = {"email": email, "type": kind, "source": "soak", "external_id": f"c{self.index}-{self.events}"}
        if kind == ActivityType.PAGE_VIEW:
            event["properties"] = PRICING if self.rnd.random() < 0.85 else {"url": "/blog"}
        if days_ago:
            event["occurred_at"] = (timezone.now() - timedelta(days=days_ago)).isoformat()
        return event

    def _record(self, what: str, response) -> None:
        with self.tally.lock:
            self.tally.statuses[(what, response.status_code)] += 1
            if response.status_code not in (200, 201):
                self.tally.refused.append(f"{what} {response.status_code}: {response.content[:300]!r}")

    # scenarios
    def new_email(self) -> str:
        email = f"c{self.index}-{len(self.mine)}@soak-{self.index}.example"
        self.mine.append(email)
        return email

    def capture_then_event(self) -> None:
        """A capture and one batch right after it: MQL-making (demo) or not (a page view)."""
        email, cto = self.new_email(), self.rnd.random() < 0.7
        self.capture(email, cto)
        kind = ActivityType.DEMO_REQUEST if self.rnd.random() < 0.5 else ActivityType.PAGE_VIEW
        self.post([self.event(email, kind)])

    def burst(self) -> None:
        """A capture, then several batches for that lead in quick succession (the third pricing
        view of a CTO qualifies under both versions; unsubscribes pull it back)."""
        email = self.new_email()
        self.capture(email, cto=True)
        for _ in range(self.rnd.randint(2, 5)):
            kinds = self.rnd.choices(
                [ActivityType.PAGE_VIEW, ActivityType.EMAIL_OPEN, ActivityType.UNSUBSCRIBE], [8, 3, 1], k=2
            )
            self.post([self.event(email, kind, days_ago=self.rnd.choice([0, 0, 3])) for kind in kinds])

    def existing_lead(self) -> None:
        """Events for a lead that existed before the soak (the full run is scoring it too)."""
        email = self.rnd.choice(self.existing)
        kind = self.rnd.choice([ActivityType.PAGE_VIEW, ActivityType.PAGE_VIEW, ActivityType.DEMO_REQUEST])
        self.post([self.event(email, kind)])
        if self.rnd.random() < 0.4:
            self.post([self.event(email, ActivityType.PAGE_VIEW), self.event(email, ActivityType.WEBINAR)])

    def event_first(self) -> None:
        """Events for an e-mail nobody captured yet (the lead is made, new), then its capture (→ MAL)."""
        email = self.new_email()
        self.post([self.event(email, ActivityType.DEMO_REQUEST), self.event(email, ActivityType.PAGE_VIEW)])
        self.capture(email, cto=self.rnd.random() < 0.8)

    def recapture_as_cto(self) -> None:
        """A profile change that raises the fit: an earlier non-CTO capture comes back as a CTO."""
        if not self.mine:
            return self.capture_then_event()
        self.capture(self.rnd.choice(self.mine), cto=True)

    def shared(self) -> None:
        """A capture of an e-mail other clients capture too, and an event for it."""
        email = self.rnd.choice(SHARED_EMAILS)
        self.capture(email, cto=True)
        self.post([self.event(email, self.rnd.choice([ActivityType.PAGE_VIEW, ActivityType.DEMO_REQUEST]))])

    def replay(self) -> None:
        """A batch sent again (a client's retry): stored once."""
        if self.sent:
            self.post(self.rnd.choice(self.sent))

    def run(self) -> None:
        scenarios = [
            (self.capture_then_event, 5),
            (self.burst, 3),
            (self.existing_lead, 4),
            (self.event_first, 2),
            (self.recapture_as_cto, 1),
            (self.shared, 1),
            (self.replay, 1),
        ]
        try:
            for _ in range(SCENARIOS_PER_CLIENT):
                self.rnd.choices([s for s, _ in scenarios], [w for _, w in scenarios])[0]()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            with self.tally.lock:
                self.tally.errors.append(f"client {self.index}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()


# --- the setup ------------------------------------------------------------------------------------


def existing_leads() -> list[str]:
    """Leads captured before the soak, scored with the first version: none qualify for it (≥ 45);
    a quarter qualify for the second (≥ 35: a CTO with two pricing views), and the full run moves them."""
    leads = Lead.objects.bulk_create(
        Lead(
            email=f"old-{i}@existing-{i % 9}.example",
            company_domain=f"existing-{i % 9}.example",
            job_title="CTO" if i % 4 != 3 else "Engineer",
            stage=Stage.MAL,
            consent_status=ConsentStatus.CONFIRMED,
        )
        for i in range(EXISTING)
    )
    then = timezone.now() - timedelta(hours=1)
    activities = []
    for i, lead in enumerate(leads):
        kinds = {0: ["page_view", "page_view"], 1: ["page_view"], 2: [], 3: ["demo_request"]}[i % 4]
        activities += [
            Activity(lead=lead, type=kind, occurred_at=then, properties=PRICING if kind == "page_view" else {})
            for kind in kinds
        ]
    Activity.objects.bulk_create(activities)
    services.rescore_leads(lead_ids=[lead.pk for lead in leads])
    assert not Lead.objects.filter(stage=Stage.MQL).exists()
    return [lead.email for lead in leads]


def second_version(first):
    second = services.scoring_model_clone(source=first, name="Soak v2")
    second.mql_threshold = 35
    second.save(update_fields=["mql_threshold"])
    return second


def wait_for_progress(run: RescoreRun, share: float, timeout: float = 30) -> None:
    def progressed():
        run.refresh_from_db()
        return run.status != RescoreRun.Status.RUNNING or run.done >= share * run.total

    wait_for(progressed, timeout=timeout, interval=0.05)


def drift_now() -> reconciler.Report:
    report = reconciler.check(repair=False, full=True)
    connection.close()  # no long-lived snapshot or connection between polls
    return report


def quiet() -> bool:
    return (
        not PendingRescore.objects.exists()
        and not RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING).exists()
        and drift_now().drift == 0
    )


def loop_runs() -> dict[str, Counter]:
    found, repaired = Counter(), Counter()
    for run in LoopRun.objects.all():
        found.update(run.found)
        repaired.update(run.repaired)
    return {"runs": LoopRun.objects.count(), "found": found, "repaired": repaired}


# --- the test -------------------------------------------------------------------------------------


def test_soak_the_loop_converges_exactly_under_load_a_full_run_and_killed_workers(integration, settings):
    settings.SCORING_RESCORE_BATCH = RUN_BATCH  # the run's batch size is fixed when it starts (here)
    settings.LOOP_STALE_AFTER = 0  # this process only checks: everything not done is drift
    first = make_model(activate=True, threshold=45, name="Soak v1")
    team, reps = make_team(size=4)
    RepProfile.objects.filter(user__in=reps).update(capacity=1000)
    make_rule("Everyone", team=team, sla_minutes=600)
    existing = existing_leads()
    second = second_version(first)
    token = token_create(user=integration, name="soak")[1]
    tally = Tally()
    queue = new_queue()
    started = time.monotonic()
    timeline: list[str] = []

    def note(what: str) -> None:
        timeline.append(f"{time.monotonic() - started:6.1f}s {what}")

    try:
        with (
            worker_process(queue, env=LOOP_ENV) as w0,
            worker_process(queue, env=LOOP_ENV) as w1,
            worker_process(queue, env=LOOP_ENV) as w2,
            beat_process(queue, env=LOOP_ENV) as beat,
            producer(queue),
        ):
            workers = [w0, w1, w2]
            clients = [Client(i, token, existing, tally) for i in range(CLIENTS)]
            threads = [threading.Thread(target=c.run, name=f"soak-client-{i}") for i, c in enumerate(clients)]
            for thread in threads:
                thread.start()
            note("clients started")
            time.sleep(1.5)
            run = services.scoring_model_activate(model=second)
            note(f"v{second.pk} activated, run {run.pk}")
            for victim, share in ((w0, 0.2), (w1, 0.45)):
                wait_for_progress(run, share)
                note(f"run at {run.done}/{run.total} ({run.status}); SIGKILL {victim.name}")
                victim.kill()
                time.sleep(3)
                victim.start()
                note(f"{victim.name} restarted")
            for thread in threads:
                thread.join(timeout=120)
            assert not any(thread.is_alive() for thread in threads), "a client thread hangs"
            note(f"clients done: {sum(tally.statuses.values())} requests")
            is_quiet = wait_for(quiet, timeout=QUIET_WITHIN_S, interval=0.5)
            note(f"quiet: {bool(is_quiet)}")
            logs = "\n".join(f"--- {p.name}\n{p.tail(1500)}" for p in [*workers, beat])
            dead = [p.name for p in [*workers, beat] if not p.alive]
    finally:
        drop_queues(queue)

    print("\n".join(timeline))  # shown with -s or on failure
    print(f"seed {SEED}; loop runs {loop_runs()}; statuses {dict(tally.statuses)}")
    print(
        f"{Lead.objects.count()} leads, {Lead.objects.filter(stage=Stage.MQL).count()} MQLs, "
        f"{Assignment.objects.count()} assignments, {Activity.objects.filter(source='soak').count()} events stored"
    )
    assert not tally.errors, tally.errors
    assert not tally.refused, tally.refused[:10]
    assert not dead, f"died: {dead}\n{logs}"
    assert is_quiet, f"not quiet within {QUIET_WITHIN_S} s: {drift_now().found}\n{logs}"
    assert_the_invariant(tally, second)
    # Also while it ran: the kinds that only a bug can make (not a killed worker or a lost message)
    # were never seen by any reconciler run — a change no score reflects with nothing pending, a
    # qualifying lead scored by the active model but left in MAL, a stored score the engine disagrees with.
    during = loop_runs()
    assert during["runs"] > 0
    assert {kind: during["found"][kind] for kind in ("unscored_changes", "mal_qualifying", "score_mismatch")} == {
        "unscored_changes": 0,
        "mal_qualifying": 0,
        "score_mismatch": 0,
    }, during


def assert_the_invariant(tally: Tally, model) -> None:
    # check_loop, every kind and every lead's score: no drift at all.
    out = io.StringIO()
    try:
        call_command("check_loop", "--full", stdout=out)
    except SystemExit:
        pytest.fail(f"check_loop found drift:\n{out.getvalue()}")
    lines = out.getvalue().splitlines()
    figures = {line.split()[-2]: int(line.split()[-1]) for line in lines[:-1]}
    assert figures == {kind.name: 0 for kind in reconciler.ALL_KINDS}, out.getvalue()
    assert lines[-1] == f"Scanned: every lead. Scores checked: {Lead.objects.count()}. Drift found: 0.", out.getvalue()

    # Nothing on its way: the figures above are the final state.
    assert not PendingRescore.objects.exists()
    run = RescoreRun.objects.order_by("-pk").first()
    assert (run.model_id, run.status, run.done) == (model.pk, RescoreRun.Status.DONE, run.total)

    # Stored scores are the engine's, for the instant each lead was scored, with the active model.
    spec = selectors.active_engine_model()
    assert spec.version == model.pk
    ids = list(Lead.objects.order_by("pk").values_list("pk", flat=True))
    assert drift.mismatched(ids) == []
    facts: dict[int, list[engine.ActivityFact]] = defaultdict(list)
    for lead_id, kind, at, props in Activity.objects.values_list("lead_id", "type", "occurred_at", "properties"):
        facts[lead_id].append(engine.ActivityFact(kind, at, props or {}))
    wrong, mal_qualifying = [], []
    for lead in Lead.objects.all():
        if lead.scoring_version != model.pk or lead.scored_at is None:
            wrong.append((lead.pk, "version", lead.scoring_version))
            continue
        expected = engine.score_lead(spec, lead_facts(lead), facts[lead.pk], lead.scored_at)
        stored = (lead.fit_score, lead.engagement_score, lead.score, lead.grade)
        computed = (expected.fit, expected.engagement, expected.total, expected.grade)
        if not all(
            a == b if isinstance(a, str) else math.isclose(a, b, abs_tol=1e-6)
            for a, b in zip(stored, computed, strict=True)
        ):
            wrong.append((lead.pk, stored, computed))
        # Still MAL although the engine says it qualifies (decay only lowers a score later on).
        if lead.stage == Stage.MAL and engine.qualifies_for_mql(
            spec, expected.total, expected.grade, expected.disqualified
        ):
            mal_qualifying.append(lead.pk)
    assert wrong == []
    assert mal_qualifying == []
    assert not Lead.objects.filter(
        stage=Stage.MAL, score__gte=spec.mql_threshold, grade__in=[g for g in engine.GRADES if g <= spec.min_grade]
    ).exists()

    # Every MQL has exactly one open assignment — its only one; no other lead has one open.
    mqls = Lead.objects.filter(stage=Stage.MQL)
    assert mqls.exists()
    counted = mqls.annotate(
        open=Count("assignments", filter=Q(assignments__status__in=Assignment.OPEN)), total=Count("assignments")
    )
    assert [(pk, o, t) for pk, o, t in counted.values_list("pk", "open", "total") if (o, t) != (1, 1)] == []
    assert not Assignment.objects.filter(status__in=Assignment.OPEN).exclude(lead__stage=Stage.MQL).exists()
    assert not Assignment.objects.filter(lead__stage=Stage.MQL, status=Assignment.Status.ACTIVE, user=None).exists()

    # Nobody left MQL, so every MQL moved there once, and nobody else ever did.
    to_mql = Counter(StageChange.objects.filter(to_stage=Stage.MQL).values_list("lead_id", flat=True))
    assert not StageChange.objects.filter(from_stage=Stage.MQL).exists()
    assert {pk: n for pk, n in to_mql.items() if n != 1} == {}
    assert set(to_mql) == set(mqls.values_list("pk", flat=True))

    # One lead per e-mail, every e-mail used has its lead.
    assert not Lead.objects.values("email").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert tally.emails <= set(Lead.objects.values_list("email", flat=True))

    # The events acknowledged are the activities stored: nothing lost, nothing doubled.
    stored = list(Activity.objects.filter(source="soak").values_list("external_id", flat=True))
    assert len(stored) == len(set(stored)) == tally.stored
    assert set(stored) == tally.acked
