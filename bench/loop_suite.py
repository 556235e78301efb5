"""The loop suite: what the reconciler (loop/reconciler.py) costs per run at 1,000,000 leads, how
long the loop takes to reach zero drift after a Redis outage and after a worker was killed, and the
speed to lead at 10 events/s with the new write path.

Flow (database `leadportal_bench_loop`, dropped and recreated):
1. migrate; the demo scoring model active (directly, no run), one team of 10 reps with a
   round-robin rule, an integration user with a token (bench/loop_jobs.py `setup`);
2. 1,000,000 leads (`--quick`: 100,000) with 10 activities each from bench/datagen.py, exactly as
   the scoring suite makes them; a full rescoring with `scoring.services.rescore_run_step` (the
   scoring suite's `rescore` job, not capped) so every lead carries the active model's score;
3. a stage mix in set-based SQL, consistent with the scores (no drift): of the leads whose stored
   score qualifies, ~35 % MQL and the rest SAL/SQL/won/lost (none stays MAL); of the others 30 % new,
   58 % MAL, 2 % MQL (handed over earlier, score decayed since), the rest later stages. Every MQL has
   an open ("active") assignment to a rep of the team, already notified, due tomorrow, and the
   mal → mql StageChange that made it; VACUUM (ANALYZE);
4. `reconcile` job: the per-kind count queries and their plans, the floor, and `reconcile()` runs
   without and with planted drift (production settings, LOOP_STALE_AFTER 30 s, LOOP_SAMPLE 200);
5. `outage` job: the same database with a private redis-server, real workers and beat
   (LOOP_STALE_AFTER=5, LOOP_RECONCILE_EVERY=5): Redis stopped during captures, then started;
   a worker killed during a burst, then started; seconds to zero drift;
6. speed to lead at 10 events/s: the routing suite's measurement (its own database
   `leadportal_bench_stl`, a real worker), on Redis DB 9, against p95 ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import psycopg

from bench import database, environment, routing_suite, server, suite

DBNAME = "leadportal_bench_loop"
LEADS, QUICK_LEADS = 1_000_000, 100_000
RUN_TARGET_S = 2.0  # seconds per reconciler run (a minute's run) at 1,000,000 leads
TOUCHED_TARGET = 0.01  # leads read or repaired individually per run, as a share of all leads
STALE_AFTER, RECONCILE_EVERY = 5, 5  # s, for the outage runs
OUTAGE_LEADS, OUTAGE_BURST = 200, 600
STL_RATE, STL_LEADS, QUICK_STL_LEADS, STL_TARGET_P95_MS = 10.0, 200, 100, 250.0
STL_REDIS_URL = "redis://127.0.0.1:6379/9"
SLOW_COUNT_S = 0.2  # a count query that takes a tenth of the run target is worth a look
PLANT = {"pending_stale": 50, "mal_qualifying": 50, "unrouted_mqls": 20}

# Stages consistent with the stored scores (see the module docstring).
_H = "((l.id * 2654435761) % 1000003) / 1000003.0"  # a hash of the lead id in [0, 1)
STAGES_SQL = """
WITH m AS (SELECT mql_threshold, min_grade FROM scoring_scoringmodel WHERE status = 'active')
UPDATE leads_lead l SET stage = CASE
    WHEN l.score >= m.mql_threshold AND l.grade <> '' AND l.grade <= m.min_grade THEN
        CASE WHEN {h} < 0.35 THEN 'mql' WHEN {h} < 0.60 THEN 'sal' WHEN {h} < 0.80 THEN 'sql'
             WHEN {h} < 0.90 THEN 'won' ELSE 'lost' END
    ELSE
        CASE WHEN {h} < 0.30 THEN 'new' WHEN {h} < 0.88 THEN 'mal' WHEN {h} < 0.90 THEN 'mql'
             WHEN {h} < 0.95 THEN 'sal' WHEN {h} < 0.97 THEN 'sql' ELSE 'lost' END
    END
FROM m
WHERE l.stage <> 'disqualified'
""".replace("{h}", _H)
MQL_SQL = """
WITH reps AS (SELECT array_agg(id ORDER BY id) AS ids FROM leads_user WHERE username LIKE 'loop-rep-%%'),
mql AS (
    SELECT l.id, reps.ids[1 + (l.id %% array_length(reps.ids, 1))] AS rep,
           now() - interval '12 hours' * ((l.id * 7919) %% 1000) / 1000.0 - interval '1 minute' AS at
    FROM leads_lead l, reps WHERE l.stage = 'mql'
), owners AS (
    UPDATE leads_lead l SET owner_id = mql.rep, handed_over_at = mql.at, respond_by = mql.at + interval '1 day'
    FROM mql WHERE l.id = mql.id
), changes AS (
    INSERT INTO leads_stagechange (lead_id, from_stage, to_stage, actor_id, reason, at)
    SELECT id, 'mal', 'mql', NULL, 'bench: score reached the threshold', at FROM mql
)
INSERT INTO routing_assignment (lead_id, user_id, partner_id, rule_id, strategy, status, trace, assigned_at,
                                due_at, accepted_at, ended_at, note, created_by_id, notified_at, pool_mode)
SELECT id, rep, NULL, %(rule)s, 'round_robin', 'active', '[]'::jsonb, at, at + interval '1 day', NULL, NULL,
       '', NULL, at + interval '1 second', ''
FROM mql
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("loop suite")
    group.add_argument("--loop-leads", type=int, default=0, help=f"leads in the loop database [{LEADS:,}]")
    group.add_argument("--loop-runs", type=int, default=5, help="reconciler runs per figure [%(default)s]")
    group.add_argument(
        "--loop-reuse",
        action="store_true",
        help="loop suite: keep the database of the previous run when it has the leads asked for (migrated to "
        "the current code; its setup took minutes at 1M); the outage runs leave ~800 leads more in it",
    )
    group.add_argument("--skip-outage", action="store_true", help="loop suite: no Redis/worker outage runs")
    group.add_argument("--skip-stl", action="store_true", help="loop suite: no speed-to-lead run")


def _stages(rule: int) -> dict[str, Any]:
    start = time.perf_counter()
    with psycopg.connect(database.conninfo(DBNAME), autocommit=True) as conn:
        conn.execute(STAGES_SQL)
        conn.execute(MQL_SQL, {"rule": rule})
        for table in ("leads_lead", "routing_assignment", "leads_stagechange", "leads_activity"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        stages = dict(conn.execute("SELECT stage, count(*) FROM leads_lead GROUP BY stage ORDER BY 1").fetchall())
        assignments = conn.execute("SELECT count(*) FROM routing_assignment").fetchone()[0]
    return {"stages": stages, "assignments": assignments, "s": round(time.perf_counter() - start, 1)}


def _setup(args: argparse.Namespace, leads: int, db_label: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = suite.django_env(DBNAME)
    records = []
    t = suite.step(f"recreating database {DBNAME} and migrating; demo scoring model, 10 reps, a round-robin rule")
    suite.prepare_database(DBNAME)
    setup = suite.run_job("setup", env, module="bench.loop_jobs")
    print(f"    {time.perf_counter() - t:.1f} s")
    suite.step(f"generating {leads:,} leads and {leads * 10:,} activities (bench/datagen.py, as the scoring suite)")
    _gen, rows, generated_row = suite.generate(DBNAME, leads, db_label, "setup: generate (INSERT … SELECT)")
    records.append(generated_row)
    suite.step(f"full rescore of {leads:,} leads (rescore_run_step until done, no cap): every lead scored")
    rescored = suite.run_job("rescore", env, "--max-seconds", "0")
    print(f"    {rescored['elapsed_s']:.1f} s, {rescored['leads_per_s']:,.0f} leads/s", flush=True)
    rescored.pop("cpu", None)
    records.append(
        suite.record(
            "setup: full rescore (rescore_run_step)",
            db_label,
            rows,
            rescored["leads"],
            elapsed_s=rescored["elapsed_s"],
            rate=rescored["leads_per_s"],
            unit="leads/s",
            latency_ms=rescored["batch_ms"],
            target_text="- (setup)",
            details={k: rescored[k] for k in ("status", "batches", "rows_written", "became_mql", "phases")},
        )
    )
    suite.step("stage mix consistent with the scores; MQLs with an open, notified assignment; VACUUM (ANALYZE)")
    staged = _stages(setup["rule"])
    print(f"    {staged['s']:.1f} s; stages {staged['stages']}; {staged['assignments']:,} assignments")
    setup.update(staged)
    return setup, records


def _reuse(leads: int) -> dict[str, Any] | None:
    """The setup of the previous run's database, migrated to the current code, when it has at least
    `leads` leads (the outage runs add a few hundred); None when there is none to reuse."""
    try:
        with psycopg.connect(database.conninfo(DBNAME)) as conn:
            have = conn.execute("SELECT count(*) FROM leads_lead WHERE source = 'bench'").fetchone()[0]
            user = conn.execute("SELECT id FROM leads_user WHERE username = 'bench-loop-integration'").fetchone()
            rule = conn.execute("SELECT id FROM routing_routingrule ORDER BY id LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    if have != leads or user is None or rule is None:
        return None
    t = suite.step(f"reusing database {DBNAME} ({have:,} generated leads); migrating it to the current code")
    server.migrate(suite.django_env(DBNAME))
    token = server.new_token(suite.django_env(DBNAME), "bench-loop-integration")  # only hashes are kept
    with psycopg.connect(database.conninfo(DBNAME)) as conn:
        stages = dict(conn.execute("SELECT stage, count(*) FROM leads_lead GROUP BY stage ORDER BY 1").fetchall())
    print(f"    {time.perf_counter() - t:.1f} s; stages {stages}")
    return {"token": token, "rule": rule[0], "stages": stages, "reused": True}


def _reconcile(args: argparse.Namespace, quiet: environment.QuietGate, db_label: str) -> list[dict[str, Any]]:
    env = suite.django_env(DBNAME)
    env["LOOP_SAMPLE"] = "200"
    suite.step(
        f"reconciler: count queries and their plans, the floor, {args.loop_runs} runs without and "
        f"{args.loop_runs} with planted drift ({', '.join(f'{v} {k}' for k, v in PLANT.items())})"
    )
    busy = quiet.wait()
    result = suite.run_job(
        "reconcile",
        env,
        *("--reps", str(args.loop_runs)),
        *("--plant-pending", str(PLANT["pending_stale"]), "--plant-mal", str(PLANT["mal_qualifying"])),
        *("--plant-unrouted", str(PLANT["unrouted_mqls"])),
        module="bench.loop_jobs",
    )
    rows = database.row_counts(DBNAME)
    leads = result["leads"]
    floor = result["floor"]
    floor_s = floor["s_p50"]
    records = [
        suite.record(
            "floor: count(*) MAL leads",
            db_label,
            rows,
            floor["mal_leads"],
            elapsed_s=floor_s,
            latency_ms=_ms(floor_s, max(floor["s_all"])),
            target_text="- (floor)",
            busy_before=busy,
            details=floor,
        )
    ]
    for name, kind in result["kinds"].items():
        plan = kind["explain"] or {}
        records.append(
            suite.record(
                f"count: {name}",
                db_label,
                rows,
                kind["found"],
                elapsed_s=kind["count_s_p50"],
                latency_ms=_ms(kind["count_s_p50"], max(kind["count_s_all"])),
                target_text=f"(EXPLAIN {plan.get('execution_ms', 0):,.0f} ms; "
                f"{kind['count_s_p50'] / floor_s:.1f}× floor)",
                details=kind,
            )
        )
    records.append(
        suite.record(
            "score sample check (200 leads)",
            db_label,
            rows,
            200,
            elapsed_s=result["sample_check_s_p50"],
            latency_ms=_ms(result["sample_check_s_p50"]),
            target_text=f"({result['sample_check_s_p50'] / result['sample_read_floor']['s_p50']:.1f}× its read floor)",
            details={"read_floor": result["sample_read_floor"]},
        )
    )
    read = result["sample_read_floor"]
    records.append(
        suite.record(
            "floor: read 200 leads' activities",
            db_label,
            rows,
            read["activities"],
            elapsed_s=read["s_p50"],
            latency_ms=_ms(read["s_p50"]),
            target_text="- (floor of the sample check)",
            details=read,
        )
    )
    for label, key in (("no drift", "no_drift"), ("drift planted", "drift")):
        runs = result["runs"][key]
        walls = sorted(r["wall_s"] for r in runs)
        p50 = walls[len(walls) // 2]
        touched = max(r["touched"] for r in runs)
        share = touched / leads
        cpu = result["cpu"][key]
        records.append(
            suite.record(
                f"reconcile(), {label}",
                db_label,
                rows,
                len(runs),
                elapsed_s=p50,
                latency_ms={**_ms(p50, walls[-1]), "max": round(walls[-1] * 1000, 1)},
                target={"elapsed_s_max": RUN_TARGET_S, "touched_share_max": TOUCHED_TARGET},
                target_text=f"<= {RUN_TARGET_S:g} s, touched {share:.3%} <= {TOUCHED_TARGET:.0%}",
                passed=leads >= LEADS and p50 <= RUN_TARGET_S and share <= TOUCHED_TARGET if leads >= LEADS else None,
                cpu=cpu,
                details={
                    "runs": runs,
                    "p50_s": p50,
                    "touched_max": touched,
                    "touched_share": round(share, 6),
                    "vs_floor": round(p50 / floor_s, 1),
                    "floor_s": floor_s,
                    # Where a run's time goes, per part (median over the runs), measured inside them.
                    "split_s": _median_split(runs),
                    "settings": result["settings"],
                    **({"catch_up_after_runs": result["catch_up_after_drift_runs"]} if key == "drift" else {}),
                    **({"left_after": result["left_after"]} if key == "drift" else {}),
                },
            )
        )
    records[-1]["details"]["check_no_repair_s_p50"] = result["check_no_repair_s_p50"]
    return records


def _ms(p50_s: float, p95_s: float | None = None) -> dict[str, float]:
    """The latency column's milliseconds from seconds (p95 where measured)."""
    latency = {"p50": round(p50_s * 1000, 1)}
    if p95_s is not None:
        latency["p95"] = round(p95_s * 1000, 1)
    return latency


def _median_split(runs: list[dict[str, Any]]) -> dict[str, float]:
    labels = {label for r in runs for label in r["split_s"]}
    split = {label: sorted(r["split_s"].get(label, 0.0) for r in runs)[len(runs) // 2] for label in labels}
    return dict(sorted(split.items(), key=lambda item: -item[1]))


def _outage(
    args: argparse.Namespace, setup: dict[str, Any], quiet: environment.QuietGate, db_label: str
) -> list[dict[str, Any]]:
    port = server.free_port()
    queue = suite.private_name("bench-loop")
    env = suite.django_env(DBNAME, redis_url=f"redis://127.0.0.1:{port}/0", queue=queue)
    env.pop("CELERY_BROKER_URL", None)  # the private Redis is the broker
    env.update(LOOP_STALE_AFTER=str(STALE_AFTER), LOOP_RECONCILE_EVERY=str(RECONCILE_EVERY), LOG_LEVEL="WARNING")
    suite.step(
        f"outage runs: private redis-server :{port}, workers (scoring+default prefork ×2, routing solo) and beat "
        f"on queue {queue}; LOOP_STALE_AFTER={STALE_AFTER}, LOOP_RECONCILE_EVERY={RECONCILE_EVERY}"
    )
    rows = database.row_counts(DBNAME)
    busy = quiet.wait()
    result = suite.run_job(
        "outage",
        env,
        *("--redis-port", str(port), "--token", setup["token"]),
        *("--leads", str(OUTAGE_LEADS), "--burst", str(OUTAGE_BURST)),
        timeout=900.0,
        module="bench.loop_jobs",
    )
    records = []
    for label, key, what in (
        ("time to zero drift: Redis back", "redis_back", "s after redis-server started again"),
        ("time to zero drift: worker restarted", "worker_restarted", "s after the killed worker started again"),
    ):
        r = result[key]
        seconds = r["seconds"]
        extra = f"; {r['seconds_from_kill']:.1f} s from the kill" if r.get("seconds_from_kill") is not None else ""
        records.append(
            suite.record(
                label,
                db_label,
                rows,
                r["leads"],
                elapsed_s=seconds,
                target_text=f"converges ({what}{extra})" if seconds is not None else "did NOT converge",
                passed=bool(r["converged"]),
                busy_before=busy,
                details={**r, "settings": result["settings"], "process_errors": result["process_errors"]},
            )
        )
    return records


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    db_label = f"PG {pg_version.split()[0]}"
    leads = args.loop_leads or (QUICK_LEADS if args.quick else LEADS)
    setup = _reuse(leads) if args.loop_reuse else None
    records: list[dict[str, Any]] = []
    if setup is None:
        setup, records = _setup(args, leads, db_label)
    records += _reconcile(args, quiet, db_label)
    if not args.skip_outage:
        records += _outage(args, setup, quiet, db_label)
    if not args.skip_stl:
        stl_args = copy.copy(args)
        stl_args.stl_rate = STL_RATE
        stl_args.stl_leads = QUICK_STL_LEADS if args.quick else STL_LEADS
        records.append(
            routing_suite._speed_to_lead(
                stl_args, quiet, db_label, redis_url=STL_REDIS_URL, target_p95_ms=STL_TARGET_P95_MS
            )
        )
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        d = r["details"]
        if r["benchmark"].startswith("count:") and d.get("explain"):
            e = d["explain"]
            lines.append(
                f"{r['benchmark']}: {d['count_s_p50'] * 1000:,.1f} ms (EXPLAIN ANALYZE {e['execution_ms']:,.1f} ms, "
                f"{e['top_node']}, {(e['shared_hit_blocks'] or 0) + (e['shared_read_blocks'] or 0):,} blocks); "
                f"found {d['found']:,}"
            )
        if r["benchmark"].startswith("reconcile()"):
            split = ", ".join(f"{label} {s * 1000:,.0f} ms" for label, s in d["split_s"].items() if s >= 0.001)
            found = {k: v for k, v in d["runs"][-1]["found"].items() if v}
            repaired = {k: v for k, v in d["runs"][-1]["repaired"].items() if v}
            lines.append(
                f"{r['benchmark']}: p50 {d['p50_s']:.3f} s = {d['vs_floor']:.0f}× the floor "
                f"({d['floor_s'] * 1000:,.1f} ms); median split inside the runs: {split}; "
                f"touched at most {d['touched_max']} leads = {d['touched_share']:.3%} of "
                f"{r['rows_at_start']['leads']:,}; last run found {found}, repaired {repaired}"
            )
        if r["benchmark"].startswith("time to zero drift"):
            lines.append(
                f"{r['benchmark']}: {d['seconds']} s (all {d['leads']} leads done after {d['all_leads_done_s']} s); "
                f"reconciler runs meanwhile {d['reconciler_runs']['runs']}, repaired {d['reconciler_runs']['repaired']}"
            )
    slow = [
        r for r in records if r["benchmark"].startswith("count:") and r["elapsed_s"] and r["elapsed_s"] > SLOW_COUNT_S
    ]
    for r in slow:
        plan = " | ".join(line.strip() for line in r["details"]["explain"]["plan"][:5])
        lines.append(
            f"SLOW count query ({r['benchmark']}): {r['elapsed_s']:.3f} s at {r['rows_at_start']['leads']:,} leads "
            f"(more than {SLOW_COUNT_S:g} s, a tenth of the run target). Plan: {plan}"
        )
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database": {"names": [DBNAME, routing_suite.STL_DBNAME], "recreated": True},
        "configuration": {
            "leads": args.loop_leads or (QUICK_LEADS if args.quick else LEADS),
            "database_reused": bool(args.loop_reuse),
            "activities_per_lead": 10,
            "planted_drift_per_run": PLANT,
            "reconcile_settings": "leadportal.settings.production, LOOP_STALE_AFTER 30 (default), LOOP_SAMPLE 200; "
            "tasks a repair queues go to the in-memory broker (a worker's work, not timed)",
            "outage_settings": {
                "LOOP_STALE_AFTER": STALE_AFTER,
                "LOOP_RECONCILE_EVERY": RECONCILE_EVERY,
                "leads_captured_while_redis_down": OUTAGE_LEADS,
                "burst_leads": OUTAGE_BURST,
            },
            "speed_to_lead": {"rate": STL_RATE, "redis": STL_REDIS_URL, "target_p95_ms": STL_TARGET_P95_MS},
        },
    }
