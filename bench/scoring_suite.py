"""The scoring suite: full rescoring after a weight change at 100,000 and 1,000,000 leads (10
activities each) against a plain SQL aggregation floor, and incremental rescoring by one worker.

Flow (one database, `leadportal_bench_scoring`, grown step by step):
1. recreate and migrate it; create the demo scoring model (scoring.demo's FIT, BEHAVIOR and
   EXCLUSIONS) and make it active directly (no run is started);
2. for each size: generate leads and activities up to that size (bench.datagen, set-based SQL,
   timed separately); change a weight (clone the active model, +5 points on "Viewed pricing",
   activate the clone directly); rescore every lead exactly as the worker does —
   `scoring.services.rescore_run_step` in a loop on a RescoreRun row — and time it; then time the
   floor, a plain `SUM(…) GROUP BY lead_id` over the same activity table, and print the ratio;
3. incremental: events for K random leads through `leads.services.events_ingest` (1,000 per
   batch), then the `rescore_leads` tasks that ingestion queued, run one after the other in one
   process (`scoring.services.rescore_pending`, the task's body, ≤ 500 leads each), as a single worker would.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import psycopg

from bench import database, datagen, environment, suite

DBNAME = "leadportal_bench_scoring"
RESCORE_TARGET_S = 60.0  # for 1,000,000 leads / 10,000,000 activities on 2 cores
TARGET_LEADS = 1_000_000
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (20_000, 100_000)
INCREMENTAL_LEADS = 5_000
QUICK_INCREMENTAL_LEADS = 1_000
BUMP = 5.0
# A full rescore still running after this many seconds has missed the 60 s target for sure; the
# rate so far projects the rest. Keeps `make bench` near 10 minutes (a full 1M run takes minutes).
RESCORE_CAP_S = 90.0

# The per-row work of the floor: a weight per activity type, decayed with the demo model's 30-day
# half-life — the arithmetic the rescoring does, without its rules, caps and Python.
WEIGHTS = {
    "demo_request": 30,
    "page_view": 1,
    "webinar": 15,
    "download": 8,
    "form_submit": 10,
    "email_click": 3,
    "email_open": 1,
    "unsubscribe": -30,
    "email_bounce": -20,
}
_WEIGHT_CASE = "CASE type " + " ".join(f"WHEN '{t}' THEN {p}" for t, p in WEIGHTS.items()) + " ELSE 0 END"
FLOORS = {
    "decayed": (
        "SUM(decayed weight) GROUP BY lead",
        f"""SELECT count(*), sum(s) FROM (
                SELECT lead_id, SUM(({_WEIGHT_CASE})
                    * power(0.5::float8, greatest(extract(epoch FROM (now() - occurred_at))::float8, 0) / 2592000.0))
                    AS s
                FROM leads_activity GROUP BY lead_id) AS per_lead""",
    ),
    "plain": (
        "SUM(CASE type) GROUP BY lead",
        """SELECT count(*), sum(s) FROM (
                SELECT lead_id, SUM(CASE WHEN type = 'page_view' THEN 1 ELSE 0 END) AS s
                FROM leads_activity GROUP BY lead_id) AS per_lead""",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scoring suite")
    group.add_argument("--scoring-sizes", help=f"comma-separated lead counts [{','.join(map(str, SIZES))}]")
    group.add_argument("--scoring-batch-size", type=int, default=0, help="leads per batch [SCORING_RESCORE_BATCH]")
    group.add_argument(
        "--rescore-cap",
        type=float,
        default=RESCORE_CAP_S,
        help="stop a full rescore after this many s and project the rest [%(default)s]",
    )
    group.add_argument("--full-rescore", action="store_true", help="no cap: rescore every lead, however long")
    group.add_argument("--incremental-leads", type=int, default=0, help=f"K [{INCREMENTAL_LEADS:,}]")


def _floor(kind: str, quiet: environment.QuietGate, db_label: str, rows: dict[str, int]) -> dict[str, Any]:
    label, statement = FLOORS[kind]
    busy = quiet.wait()
    with psycopg.connect(database.conninfo(DBNAME)) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + statement))
        with environment.Meter(DBNAME) as meter:
            count, _total = conn.execute(statement).fetchone()
    elapsed, cpu = meter.elapsed, meter.result
    return suite.record(
        f"floor: {label}",
        db_label,
        rows,
        rows["activities"],
        elapsed_s=elapsed,
        rate=rows["activities"] / elapsed,
        unit="activities/s",
        target_text="- (floor)",
        cpu=cpu,
        busy_before=busy,
        details={
            "sql": " ".join(statement.split()),
            "leads_in_result": count,
            # The plan can flip between a parallel hash aggregate and a sort (statistics are sampled).
            "plan": [line.strip() for line in plan.splitlines() if "Aggregate" in line or "Sort" in line][:4],
            "parallel_workers_planned": max((int(n) for n in re.findall(r"Workers Planned: (\d+)", plan)), default=0),
        },
    )


def _rescore(
    env: dict[str, str], args: argparse.Namespace, quiet: environment.QuietGate, db_label: str, rows: dict[str, int]
) -> dict[str, Any]:
    change = suite.run_job("scoring-model", env, "--bump", str(BUMP))
    busy = quiet.wait()
    cap = 0.0 if args.full_rescore else args.rescore_cap
    result = suite.run_job("rescore", env, "--batch-size", str(args.scoring_batch_size), "--max-seconds", str(cap))
    judged = result["total_leads"] == TARGET_LEADS
    if result["capped"]:
        # Still running at the cap: past the target already when the cap is above it (a certain FAIL).
        print(
            f"    capped at {result['elapsed_s']:.0f} s after {result['leads']:,} of {result['total_leads']:,} leads; "
            f"projected {result['projected_s']:.0f} s for all (--full-rescore runs to the end)"
        )
    if not judged:
        passed, target_text = None, f"(<= {RESCORE_TARGET_S:.0f} s at 1M)"
    elif result["capped"]:
        # Still running at the cap: a certain FAIL when the cap is past the target, unknown before it.
        passed = False if result["elapsed_s"] > RESCORE_TARGET_S else None
        target_text = f"<= {RESCORE_TARGET_S:.0f} s (proj. {result['projected_s']:.0f} s)"
    else:
        passed, target_text = result["elapsed_s"] <= RESCORE_TARGET_S, f"<= {RESCORE_TARGET_S:.0f} s"
    return suite.record(
        f"full rescore ({result['batch_size']:,}/batch){' CAPPED' if result['capped'] else ''}",
        db_label,
        rows,
        result["leads"],
        elapsed_s=result["elapsed_s"],
        rate=result["leads_per_s"],
        unit="leads/s",
        latency_ms=result["batch_ms"],
        target={"elapsed_s_max": RESCORE_TARGET_S} if judged else None,
        target_text=target_text,
        passed=passed,
        cpu=result.pop("cpu"),
        busy_before=busy,
        details={"weight_change": change["change"], **result},
    )


def _incremental(
    env: dict[str, str], leads: int, quiet: environment.QuietGate, db_label: str, rows: dict[str, int]
) -> list[dict[str, Any]]:
    busy = quiet.wait()
    result = suite.run_job("incremental", env, "--leads", str(leads), "--events-per-lead", "5")
    cpu = result.pop("cpu")
    details = dict(result)
    return [
        suite.record(
            f"incremental: rescore_leads ({result['leads_per_task']:.0f}/task)",
            db_label,
            rows,
            result["events"],
            elapsed_s=result["rescore_s"],
            rate=result["rescore_events_per_s"],
            unit="events/s",
            latency_ms=result["task_ms"],
            target_text=f"({result['rescore_leads_per_s']:,.0f} leads/s)",
            cpu=cpu,
            busy_before=busy,
            details=details,
        ),
        suite.record(
            "incremental: ingest + rescore",
            db_label,
            rows,
            result["events"],
            elapsed_s=result["total_s"],
            rate=result["end_to_end_events_per_s"],
            unit="events/s",
            target_text=f"(ingest alone {result['ingest_events_per_s']:,.0f}/s)",
            details={"see": "the row above"},
        ),
    ]


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    sizes = (
        tuple(int(x) for x in args.scoring_sizes.split(","))
        if args.scoring_sizes
        else (QUICK_SIZES if args.quick else SIZES)
    )
    incremental_leads = args.incremental_leads or (QUICK_INCREMENTAL_LEADS if args.quick else INCREMENTAL_LEADS)
    db_label = f"PG {pg_version.split()[0]}"
    env = suite.django_env(DBNAME)
    records: list[dict[str, Any]] = []
    generated: list[dict[str, Any]] = []

    t = suite.step(f"recreating database {DBNAME} and migrating (settings: leadportal.settings.production)")
    suite.prepare_database(DBNAME)
    model = suite.run_job("scoring-model", env)
    print(f"    {time.perf_counter() - t:.1f} s; scoring model v{model['model']}: {model['change']}, active")

    have = 0
    for size in sizes:
        add = size - have
        suite.step(f"generating {add:,} leads and {add * 10:,} activities (set-based SQL) → {size:,} leads")
        gen, rows, generated_row = suite.generate(DBNAME, add, db_label)
        have = size
        generated.append({"size": size, **gen.as_dict()})
        records.append(generated_row)
        suite.step(f"weight change, then full rescore of {size:,} leads (rescore_run_step until done)")
        rescored = _rescore(env, args, quiet, db_label, rows)
        records.append(rescored)
        print(f"    {rescored['elapsed_s']:.1f} s, {rescored['rate']:,.0f} leads/s", flush=True)
        suite.step("floor: plain SQL aggregations over the same activity table")
        floors = [_floor(kind, quiet, db_label, rows) for kind in FLOORS]
        records += floors
        # All leads: the measured time, or the projection of a capped run.
        rescore_s = rescored["details"]["projected_s"] if rescored["details"]["capped"] else rescored["elapsed_s"]
        rescored["ratios"] = {
            f"vs_floor_{kind}": round(rescore_s / f["elapsed_s"], 1) for kind, f in zip(FLOORS, floors, strict=True)
        }
        if size != sizes[-1]:
            with psycopg.connect(database.conninfo(DBNAME), autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) leads_lead")  # the rescoring rewrote every row: tidy, unmeasured

    suite.step(f"incremental: 5 events for each of {incremental_leads:,} leads, then their rescore_leads tasks")
    records += _incremental(env, incremental_leads, quiet, db_label, database.row_counts(DBNAME))

    suite.step("engine only: scoring.engine.score_lead with the demo model, pytest-benchmark (bench/test_engines.py)")
    busy = quiet.wait()
    engine = suite.run_benchmark("test_scoring_engine_score_lead")
    records.append(
        suite.record(
            "scoring engine.score_lead (demo model)",
            db_label,
            None,
            engine["items"],
            elapsed_s=engine["elapsed_s"],
            rate=engine["per_s"],
            unit="leads/s",
            target_text=f"({engine['activities_per_lead']} activities/lead)",
            cpu=engine.pop("cpu"),
            busy_before=busy,
            details=engine,
        )
    )
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        if "ratios" in r:
            ratio, d = r["ratios"], r["details"]
            took = (
                f"was capped after {r['elapsed_s']:.0f} s ({r['n']:,} leads done), projected {d['projected_s']:.0f} s"
                if d["capped"]
                else f"took {r['elapsed_s']:.1f} s"
            )
            lines.append(
                f"Full rescore of {d['total_leads']:,} leads {took} = {ratio['vs_floor_decayed']:.1f}× the "
                f"decayed SQL floor and {ratio['vs_floor_plain']:.1f}× the plain one "
                f"(write {r['details']['phases'].get('bulk.write', {}).get('s', 0):.1f} s, "
                f"compute {r['details']['phases'].get('bulk.compute', {}).get('s', 0):.1f} s)."
            )
    lines.append(
        "Generated leads are in stage 'new' (or already 'disqualified' when an exclusion rule matches), so the "
        "rescoring makes no lifecycle moves; the weight change makes every lead need a write (new version)."
    )
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database": {"name": DBNAME, "recreated": True, "postgres_settings": suite.postgres_settings(DBNAME)},
        "configuration": {
            "settings": "leadportal.settings.production (REDIS_URL unset: no broker; the jobs call services)",
            "activities_per_lead": 10,
            "activity_days": datagen.ACTIVITY_DAYS,
            "layout": "activities in time order, each for a pseudo-random lead (not clustered by lead)",
            "weight_change": f"+{BUMP:g} points on the 'Viewed pricing' behaviour rule, per size",
            "lead_stages": "new, or disqualified when an exclusion rule matches (no lifecycle moves)",
        },
    }
