"""The dashboard suite: latency of the rep dashboard's pages over HTTP with 200,000 leads (the rep
dashboard's target: p95 of the queue and lead pages ≤ 150 ms on PostgreSQL).

Flow (database `leadportal_bench_dashboard`, recreated each run):
1. migrate; `bench.dashboard_jobs setup`: the demo scoring model active, 40 sales reps and a sales
   manager (known password), 4 teams (the manager runs the first), rep profiles, a round-robin rule
   per team;
2. 200,000 leads with 10 activities each (`bench.datagen`; `--quick`: 20,000 leads and 4 reps),
   the leads made owned and staged by the INSERT itself (`lead_values`): all but ~1 % owned by a
   rep — lead number modulo the reps, so one rep's ~5,000 leads are spread over the whole table as
   round robin over months leaves them — in a stage: MQL 20 % (handed over in the last 2 days,
   `respond_by` a day after: about half overdue), SAL 30 %, SQL 30 %, won 8 %, lost 12 %; with
   scores and grades, deal values and lost reasons; the other ~1 % MQL without owner;
3. set-based SQL: one assignment per lead (active, accepted, closed or unassigned, with a trace),
   an earlier reassigned one for one owned lead in ten; 2,000 accounts (owned, some customers) for
   domains the leads use; VACUUM (ANALYZE) of everything written (visibility map set, statistics
   fresh, as on tables that have been live for a while);
4. `manage.py collectstatic` into a temporary STATIC_ROOT (production settings use the manifest
   storage, whose `{% static %}` needs it; static files are not measured). The web processes run
   `leadportal.settings.production` through a two-line module in that temporary directory that
   only moves STATIC_ROOT there, so nothing is written into the working tree;
5. `bench.dashboard_jobs queries`: statements per page, in process (one request after a warm-up);
6. gunicorn (sync ×4, DEBUG off, REDIS_URL unset) on a free port; sign in over HTTP through the
   login form (GET for the CSRF token, POST) as one rep and as the manager; then, per page kind, a
   warm-up and N sequential requests from one client (a new connection each: sync workers close it):
   the queue, the queue filtered and sorted (`?sort=score&grade=A`), a deep page (`?page=150`),
   the lead pages of a random sample of the rep's leads (each once), and the manager's team page
   (N/3 requests: it is several times slower and would otherwise dominate the suite's wall time).
   Latency = connect → last byte of the body. Every answer must be 200 with the page's marker.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import re
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg

from bench import database, datagen, environment, report, server, suite

DBNAME = "leadportal_bench_dashboard"
LEADS, QUICK_LEADS = 200_000, 20_000
REQUESTS, QUICK_REQUESTS = 300, 60
WARMUP, QUICK_WARMUP = 20, 10
QUICK_QUIET_BUDGET = 10.0  # s of waiting for an idle machine in a --quick run (60 s otherwise)
LEADS_PER_REP = 5_000  # the stress case for one rep's queue
MAX_REPS, MIN_REPS, TEAMS = 40, 4, 4
TARGET_P95_MS = 150.0
PAGE_SIZE = 25  # leads.views.QUEUE_PAGE_SIZE
DEEP_PAGE = 150
PASSWORD = "bench-dashboard-only"  # noqa: S105 - the users of a throw-away database
SEED = 2026
GUNICORN = server.GunicornConfig(worker_class="sync", workers=4)

SETTINGS_SHIM = '''"""Written by the dashboard bench: production settings, STATIC_ROOT in a temporary directory."""
import os

from leadportal.settings.production import *  # noqa: F403

STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
'''
SHIM_MODULE = "bench_dashboard_settings"

# --- the data --------------------------------------------------------------------------------------

STAGES = (("mql", 0.20), ("sal", 0.50), ("sql", 0.80), ("won", 0.88), ("lost", 1.0))
LOST_REASONS = ("no_budget", "no_need", "bad_timing", "competitor", "no_authority", "unreachable", "price", "other")
ACCOUNTS = 2_000  # domains company0.example … company1999.example (bench.datagen uses 20,000 such)


def _u(salt: int) -> str:
    """SQL: a pseudo-random number in [0, 1) fixed by the lead's number g and `salt`, so that the
    expressions of several columns can agree (the stage, and the handover time that goes with it)."""
    return f"((hashint8extended(g, {salt}) & 1048575)::float8 / 1048576)"


def lead_values(reps: list[int], model: int) -> dict[str, str]:
    """Ownership, stage, handover and scores of the generated leads, as `bench.datagen` column
    expressions: made by the INSERT itself (an UPDATE of every row afterwards costs half a minute
    and doubles the table)."""
    unowned, stage_u, when_u, fit, engagement = (_u(k) for k in range(5))
    stage = (
        f"CASE WHEN {unowned} < 0.01 THEN 'mql' "
        + " ".join(f"WHEN {stage_u} < {share} THEN '{name}'" for name, share in STAGES[:-1])
        + f" ELSE '{STAGES[-1][0]}' END"
    )
    owned_mql = f"({unowned} >= 0.01 AND {stage_u} < {STAGES[0][1]})"
    handed_over = (
        f"CASE WHEN {unowned} < 0.01 THEN NULL WHEN {stage_u} < {STAGES[0][1]} THEN now() - {when_u} * interval "
        f"'2 days' ELSE now() - interval '2 days' - {when_u} * interval '120 days' END"
    )
    owner = f"(ARRAY{list(reps)}::bigint[])[1 + mod(g, {len(reps)})::int]"
    won = f"({unowned} >= 0.01 AND {stage_u} >= {STAGES[2][1]} AND {stage_u} < {STAGES[3][1]})"
    lost = f"({unowned} >= 0.01 AND {stage_u} >= {STAGES[3][1]})"
    fit_points, engagement_points = f"round(({fit} * 60)::numeric)", f"round(({engagement} * 60)::numeric)"
    return {
        "owner_id": f"CASE WHEN {unowned} < 0.01 THEN NULL ELSE {owner} END",
        "stage": stage,
        "handed_over_at": handed_over,
        "respond_by": f"CASE WHEN {owned_mql} THEN ({handed_over}) + interval '1 day' END",
        "fit_score": f"{fit_points}::float8",
        "engagement_score": f"{engagement_points}::float8",
        "score": f"({fit_points} + {engagement_points})::float8",
        "grade": f"CASE WHEN {fit_points} >= 35 THEN 'A' WHEN {fit_points} >= 20 THEN 'B' "
        f"WHEN {fit_points} >= 10 THEN 'C' ELSE 'D' END",
        "scored_at": "now() - interval '1 day'",
        "scoring_version": str(int(model)),
        "deal_value": f"CASE WHEN {won} THEN round((1000 + {when_u} * 49000)::numeric, 2) END",
        "deal_currency": f"CASE WHEN {won} THEN 'EUR' ELSE '' END",
        "lost_reason": f"CASE WHEN {lost} THEN ({datagen._array(LOST_REASONS)})[1 + floor({when_u} * "
        f"{len(LOST_REASONS)})::int] ELSE '' END",
        "closed_at": f"CASE WHEN {won} OR {lost} THEN now() - {when_u} * interval '2 days' END",
    }


ASSIGNMENTS_SQL = """
INSERT INTO routing_assignment
    (lead_id, user_id, partner_id, rule_id, strategy, status, trace, assigned_at, due_at, accepted_at, ended_at,
     note, created_by_id, pool_mode)
SELECT l.id, l.owner_id, NULL::bigint, r.rule_id, 'round_robin',
       CASE l.stage WHEN 'mql' THEN 'active' WHEN 'won' THEN 'closed' WHEN 'lost' THEN 'closed' ELSE 'accepted' END,
       jsonb_build_array(jsonb_build_object(
           'rule', r.rule_name, 'matched', true, 'strategy', 'round_robin',
           'result', 'assigned to ' || u.username,
           'skipped', jsonb_build_array(jsonb_build_object('candidate', 'bench-rep-away', 'why', 'away')))),
       l.handed_over_at,
       CASE WHEN l.stage = 'mql' THEN l.respond_by END,
       CASE WHEN l.stage <> 'mql' THEN l.handed_over_at + interval '20 minutes' END,
       l.closed_at, '', NULL::bigint, ''
FROM leads_lead l
JOIN leads_user u ON u.id = l.owner_id
JOIN unnest(%(reps)s::bigint[], %(rules)s::bigint[], %(rule_names)s::text[]) AS r(rep_id, rule_id, rule_name)
  ON r.rep_id = l.owner_id
UNION ALL
-- an earlier assignment to another rep, reassigned by the manager, for one owned lead in ten
SELECT l.id, u2.id, NULL, NULL, '', 'reassigned', '[]'::jsonb,
       l.handed_over_at - interval '3 days', NULL, NULL, l.handed_over_at, 'workload', %(manager)s, ''
FROM leads_lead l
JOIN leads_user u2 ON u2.id = (%(reps)s::bigint[])[1 + (l.id + 1) %% %(n_reps)s]
WHERE l.owner_id IS NOT NULL AND l.id %% 10 = 3
UNION ALL
SELECT l.id, NULL, NULL, NULL, '', 'unassigned',
       jsonb_build_array(jsonb_build_object('result', 'no rule matched')), l.created_at, NULL, NULL, NULL, '', NULL, ''
FROM leads_lead l WHERE l.owner_id IS NULL
"""

ACCOUNTS_SQL = f"""
INSERT INTO routing_account (domain, name, owner_id, existing_customer)
SELECT 'company' || g || '.example', 'Company' || g, (%(reps)s::bigint[])[1 + g %% %(n_reps)s], g %% 3 = 0
FROM generate_series(0, {ACCOUNTS - 1}) AS g
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dashboard suite")
    group.add_argument("--dashboard-leads", type=int, default=0, help=f"leads in the database [{LEADS:,}]")
    group.add_argument("--dashboard-requests", type=int, default=0, help=f"requests per page kind [{REQUESTS}]")


def _assign_leads(setup: dict[str, Any]) -> dict[str, float]:
    """Assignments and accounts in set-based SQL, then VACUUM (ANALYZE) of the tables written
    (visibility map set, statistics fresh). Returns the seconds per step."""
    params = {
        "reps": setup["reps"],
        "n_reps": len(setup["reps"]),
        "rules": setup["rules"],
        "rule_names": setup["rule_names"],
        "manager": setup["manager"],
    }
    times = {}
    with psycopg.connect(database.conninfo(DBNAME), autocommit=True) as conn:
        for label, statement in (("assignments", ASSIGNMENTS_SQL), ("accounts", ACCOUNTS_SQL)):
            start = time.perf_counter()
            conn.execute(statement, params)
            times[label] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        for table in ("routing_assignment", "routing_account", "leads_user"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        times["vacuum_analyze"] = round(time.perf_counter() - start, 1)
    return times


def _rows() -> dict[str, int]:
    with psycopg.connect(database.conninfo(DBNAME)) as conn:
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM leads_lead), (SELECT count(*) FROM leads_activity),
                      (SELECT count(*) FROM routing_assignment), (SELECT count(*) FROM routing_account),
                      (SELECT count(*) FROM leads_user)"""
        ).fetchone()
    return dict(zip(("leads", "activities", "assignments", "accounts", "users"), counts, strict=True))


def _rep_figures(rep_id: int, manager_team: list[int]) -> dict[str, Any]:
    with psycopg.connect(database.conninfo(DBNAME)) as conn:
        stages = dict(
            conn.execute("SELECT stage, count(*) FROM leads_lead WHERE owner_id = %s GROUP BY stage", (rep_id,))
        )
        grade_a_open = conn.execute(
            "SELECT count(*) FROM leads_lead WHERE owner_id = %s AND stage IN ('mql', 'sal', 'sql') AND grade = 'A'",
            (rep_id,),
        ).fetchone()[0]
        team_open = conn.execute(
            "SELECT count(*) FROM leads_lead WHERE owner_id = ANY(%s) AND stage IN ('mql', 'sal', 'sql')",
            (manager_team,),
        ).fetchone()[0]
    open_leads = sum(stages.get(s, 0) for s in ("mql", "sal", "sql"))
    return {
        "leads": sum(stages.values()),
        "by_stage": stages,
        "open": open_leads,
        "open_grade_a": grade_a_open,
        "queue_pages": math.ceil(open_leads / PAGE_SIZE),
        "manager_team_reps": len(manager_team),
        "manager_team_open": team_open,
    }


def _lead_sample(rep_id: int, count: int) -> list[int]:
    with psycopg.connect(database.conninfo(DBNAME)) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM leads_lead WHERE owner_id = %s ORDER BY id", (rep_id,))]
    rng = random.Random(SEED)
    return rng.sample(ids, min(count, len(ids)))


def _collectstatic(env: dict[str, str]) -> float:
    start = time.perf_counter()
    server.manage(["collectstatic", "--no-input"], env)
    return time.perf_counter() - start


# --- the HTTP client -------------------------------------------------------------------------------


class Browser:
    """One signed-in client: cookies kept by hand, a new connection per request (sync workers
    answer `Connection: close`), the time from connect to the last byte of the body."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes, float]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        start = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        elapsed = time.perf_counter() - start
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return response.status, response, data, elapsed

    def sign_in(self, username: str, password: str) -> None:
        """The login form, as a browser submits it: GET (CSRF cookie and token), then POST."""
        status, _, page, _ = self.request("GET", "/accounts/login/")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or match is None:
            raise RuntimeError(f"login page: status {status}, no CSRF token")
        token = match.group(1).decode()
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/app/"}
        ).encode()
        status, _, data, _ = self.request(
            "POST", "/accounts/login/", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"sign-in as {username} failed: status {status}: {data[:300]!r}")


def _measure(
    browser: Browser, paths: list[str], warmup: list[str], marker: bytes, gunicorn: server.Gunicorn
) -> tuple[list[float], dict[str, int], list[int], dict[str, Any]]:
    """Warm-up requests, then one timed request per path, one after the other."""
    statuses: dict[str, int] = {}
    sizes, latencies, failures = [], [], []
    for path in warmup:
        browser.request("GET", path)
    extra = {"gunicorn": gunicorn.pids}
    with environment.Meter(DBNAME, extra) as meter:
        for path in paths:
            status, _, data, elapsed = browser.request("GET", path)
            latencies.append(elapsed)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            sizes.append(len(data))
            if status != 200 or marker not in data:
                failures.append(f"{path}: {status} {data[:200]!r}")
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(paths)} answers were wrong, e.g. " + "; ".join(failures[:3]))
    return latencies, statuses, sizes, meter.result


# --- the suite -------------------------------------------------------------------------------------


def _pages(rep: str, manager: str, figures: dict[str, Any], sample: list[int], n: int) -> list[dict[str, Any]]:
    deep = min(DEEP_PAGE, figures["queue_pages"])
    return [
        {"label": "queue (default)", "path": "/app/", "username": rep, "marker": b"My queue", "n": n},
        {
            "label": "queue ?sort=score&grade=A",
            "path": "/app/?sort=score&grade=A",
            "username": rep,
            "marker": b"My queue",
            "n": n,
        },
        {
            "label": f"queue ?page={deep}",
            "path": f"/app/?page={deep}",
            "username": rep,
            "marker": f"Page {deep} of".encode(),
            "n": n,
        },
        {
            "label": "lead page",
            "path": f"/app/leads/{sample[0]}/",
            "paths": [f"/app/leads/{pk}/" for pk in sample],
            "username": rep,
            "marker": b"History",
            "n": n,
        },
        {
            "label": "team (manager)",
            "path": "/app/team/",
            "username": manager,
            "marker": b"</html>",
            "n": max(n // 3, 20),
        },
    ]


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    leads = args.dashboard_leads or (QUICK_LEADS if args.quick else LEADS)
    n = args.dashboard_requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    warmup = QUICK_WARMUP if args.quick else WARMUP
    reps = max(MIN_REPS, min(MAX_REPS, round(leads / LEADS_PER_REP)))
    db_label = f"PG {pg_version.split()[0]}"
    records: list[dict[str, Any]] = []
    if args.quick:
        quiet.budget = min(quiet.budget, QUICK_QUIET_BUDGET)  # a smoke run does not wait long for quiet

    t = suite.step(f"recreating database {DBNAME} and migrating (settings: leadportal.settings.production)")
    suite.prepare_database(DBNAME)
    setup = suite.run_job(
        "setup",
        suite.django_env(DBNAME),
        "--reps",
        str(reps),
        "--teams",
        str(TEAMS),
        "--password",
        PASSWORD,
        module="bench.dashboard_jobs",
    )
    print(
        f"    {time.perf_counter() - t:.1f} s; {reps} reps in {TEAMS} teams, a manager, the demo scoring model active"
    )
    suite.step(f"generating {leads:,} leads (owned, staged, scored) and {leads * 10:,} activities (set-based SQL)")
    gen = datagen.generate(
        DBNAME,
        leads,
        progress=lambda m: print(f"    {m}", flush=True),
        lead_values=lead_values(setup["reps"], setup["model"]),
    )
    t = suite.step("assignments and accounts (set-based SQL)")
    sql_times = _assign_leads(setup)
    rows = _rows()
    print(f"    {time.perf_counter() - t:.1f} s ({sql_times}); rows {rows}")
    records.append(
        suite.record(
            "generate (INSERT … SELECT)",
            db_label,
            rows,
            leads,
            elapsed_s=gen.total_s + setup["setup_s"] + sum(sql_times.values()),
            target_text="- (setup)",
            details={"generate": gen.as_dict(), "setup_s": setup["setup_s"], "sql_s": sql_times},
        )
    )

    rep_id, rep = setup["reps"][0], setup["rep_usernames"][0]
    figures = _rep_figures(rep_id, setup["managed_team_reps"])
    sample = _lead_sample(rep_id, warmup + n)
    pages = _pages(rep, setup["manager_username"], figures, sample[warmup:], n)
    print(
        f"    {rep}: {figures['leads']:,} leads, {figures['open']:,} open ({figures['queue_pages']} pages), "
        f"{figures['open_grade_a']:,} open grade A; the manager's team: {figures['manager_team_reps']} reps, "
        f"{figures['manager_team_open']:,} open leads"
    )

    with tempfile.TemporaryDirectory(prefix="leadportal-bench-dashboard-") as tmp:
        env = suite.django_env(DBNAME)
        (Path(tmp) / f"{SHIM_MODULE}.py").write_text(SETTINGS_SHIM)
        env.update(
            DJANGO_SETTINGS_MODULE=SHIM_MODULE,
            PYTHONPATH=f"{tmp}:{server.PROJECT_DIR}",
            BENCH_STATIC_ROOT=str(Path(tmp) / "static"),
        )
        t = suite.step("collectstatic into a temporary STATIC_ROOT (the manifest {% static %} needs)")
        print(f"    {_collectstatic(env):.1f} s")

        suite.step("SQL per page, in process (django.test.Client + CaptureQueriesContext, after a warm-up)")
        described = [{k: p[k] for k in ("label", "path", "username")} for p in pages]
        counted = suite.run_job(
            "queries", env, "--pages", json.dumps(described), "--explain", module="bench.dashboard_jobs"
        )["pages"]
        counted = {p["label"]: p for p in counted}
        for label, c in counted.items():
            print(f"    {label}: {c['queries']} queries, {c['sql_ms']} ms SQL, {c['in_process_ms']} ms in process")

        suite.step(f"gunicorn ({GUNICORN.describe()}), sign in over HTTP as {rep} and {setup['manager_username']}")
        with server.Gunicorn(GUNICORN, env, Path(tmp) / "gunicorn.log") as gunicorn:
            browsers = {}
            for username in (rep, setup["manager_username"]):
                browsers[username] = Browser(gunicorn.host, gunicorn.port)
                browsers[username].sign_in(username, PASSWORD)
            for page in pages:
                paths = page.get("paths") or [page["path"]] * page["n"]
                warm = [f"/app/leads/{pk}/" for pk in sample[:warmup]] if "paths" in page else [page["path"]] * warmup
                suite.step(f"GET {page['label']}: {warmup} warm-up, then {len(paths)} requests, one after the other")
                busy = quiet.wait()
                latencies, statuses, sizes, cpu = _measure(
                    browsers[page["username"]], paths, warm, page["marker"], gunicorn
                )
                latency = report.percentiles(latencies)
                elapsed = sum(latencies)
                print(
                    f"    p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms, "
                    f"max {latency['max']:.1f} ms"
                )
                sql = counted.get(page["label"], {})
                records.append(
                    suite.record(
                        f"GET {page['label']}",
                        db_label,
                        rows,
                        len(paths),
                        elapsed_s=elapsed,
                        rate=len(paths) / elapsed,
                        unit="req/s",
                        latency_ms=latency,
                        target={"p95_ms_max": TARGET_P95_MS},
                        target_text=f"p95 <= {TARGET_P95_MS:.0f} ms",
                        passed=latency["p95"] <= TARGET_P95_MS,
                        cpu=cpu,
                        busy_before=busy,
                        details={
                            "path": page["path"] if "paths" not in page else "/app/leads/<id>/ (each once)",
                            "user": page["username"],
                            "statuses": statuses,
                            "bytes_p50": sorted(sizes)[len(sizes) // 2],
                            "queries": sql.get("queries"),
                            "sql_ms_in_process": sql.get("sql_ms"),
                            "in_process_ms": sql.get("in_process_ms"),
                            "slowest_sql": sql.get("slowest"),
                            "slowest_plan": sql.get("slowest_plan"),
                            "gunicorn_log_tail": gunicorn.log_tail(5) if latency["p95"] > TARGET_P95_MS else "",
                        },
                    )
                )
    records[0]["details"]["rep"] = {"username": rep, **figures}
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        d, lat = r["details"], r.get("latency_ms")
        if lat:
            lines.append(
                f"{r['benchmark']}: p50/p95/p99/max "
                f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f}/{lat['max']:.1f} ms; "
                f"{d['queries']} queries ({d['sql_ms_in_process']} ms SQL in process); "
                f"{d['bytes_p50'] / 1024:.0f} KiB; "
                f"machine busy before {r['cpu'].get('machine_busy_share_before', 0):.0%}, "
                f"other {r['cpu'].get('other_share_of_machine') or 0:.0%} during"
            )
        if "rep" in d:
            rep = d["rep"]
            lines.append(
                f"Signed in as {rep['username']}: {rep['leads']:,} leads, {rep['open']:,} open = {rep['queue_pages']} "
                f"queue pages; the manager's team: {rep['manager_team_reps']} reps, {rep['manager_team_open']:,} open."
            )
    lines.append(
        "Sequential requests from one client over a new loopback connection each (latency, not throughput); "
        "gunicorn sync ×4, production settings, DEBUG off."
    )
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database": {"name": DBNAME, "recreated": True, "postgres_settings": suite.postgres_settings(DBNAME)},
        "configuration": {
            "settings": "leadportal.settings.production with STATIC_ROOT in a temporary directory "
            "(REDIS_URL unset: locmem cache, Celery eager)",
            "gunicorn": GUNICORN.as_dict(),
            "activities_per_lead": 10,
            "stages": {s: round(c - p, 2) for (s, c), p in zip(STAGES, (0.0, *(c for _, c in STAGES)), strict=False)},
            "ownership": "lead id modulo the reps (scattered over the table); ~1 % unowned MQL",
            "client": "one, sequential, new connection per request, session cookie from the login form",
            "target_p95_ms": TARGET_P95_MS,
        },
    }
