"""The Django side of the dashboard suite: `python -m bench.dashboard_jobs <job> --out result.json`.

Run by `bench/dashboard_suite.py` in a process of its own with the environment of the bench
database (as `bench/jobs.py` is for the scoring and routing suites; kept apart so that the two can
change independently). Two jobs:

* `setup` — what is easier with the ORM than in SQL: the demo scoring model (active, so the lead
  page's "why this score" panel runs the engine), the sales reps and their manager with a known
  password, teams, rep profiles and one round-robin rule per team. The leads, their ownership,
  stages and assignments are made by the suite in set-based SQL.
* `queries` — the SQL of one request per page, in process: `django.test.Client` signed in as the
  page's user, one request to warm up, then one inside `CaptureQueriesContext`: how many statements,
  their total time and the slowest ones (with the plan of the slowest, `EXPLAIN ANALYZE`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.jobs import run_job

TERRITORIES = (["DACH"], ["UKI", "NA"], ["NORDICS", "BENELUX"], ["SOUTH"])


def setup(args: argparse.Namespace) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from leads.models import Role, User
    from routing.models import RepProfile, RoutingRule, Team
    from scoring.demo import create_demo_model
    from scoring.models import ScoringModel

    start = time.perf_counter()
    password = make_password(args.password)  # hashed once (PBKDF2 is slow on purpose), shared by all
    with transaction.atomic():
        model = create_demo_model(name="B2B default (bench)")
        ScoringModel.objects.filter(pk=model.pk).update(status=ScoringModel.Status.ACTIVE, activated_at=timezone.now())
        manager = User.objects.create(
            username="bench-manager",
            role=Role.SALES_MANAGER,
            first_name="Bench",
            last_name="Manager",
            email="manager@bench.example",
            password=password,
        )
        reps = User.objects.bulk_create(
            User(
                username=f"bench-rep-{i:02d}",
                role=Role.SALES_REP,
                first_name=f"Rep{i:02d}",
                last_name="Bench",
                email=f"rep{i:02d}@bench.example",
                password=password,
            )
            for i in range(args.reps)
        )
        # The manager runs the first team only: the team page shows one team's reps, as it would.
        teams = [
            Team.objects.create(name=f"bench team {t}", manager=manager if t == 0 else None) for t in range(args.teams)
        ]
        team_of = {rep.pk: teams[i % len(teams)] for i, rep in enumerate(reps)}
        RepProfile.objects.bulk_create(
            RepProfile(
                user=rep,
                team=team_of[rep.pk],
                capacity=10_000,
                territories=TERRITORIES[i % len(TERRITORIES)],
                languages=["de", "en"] if i % 2 else ["en"],
            )
            for i, rep in enumerate(reps)
        )
        rules = RoutingRule.objects.bulk_create(
            RoutingRule(
                name=f"bench {team.name}",
                priority=t + 1,
                target=RoutingRule.Target.TEAM,
                strategy="round_robin",
                team=team,
            )
            for t, team in enumerate(teams)
        )
    rule_of_team = {team.pk: rule for team, rule in zip(teams, rules, strict=True)}
    return {
        "model": model.pk,
        "manager": manager.pk,
        "manager_username": manager.username,
        "reps": [rep.pk for rep in reps],
        "rep_usernames": [rep.username for rep in reps],
        # Per rep (in the order of "reps"): the rule that "routed" its leads and its rule's name.
        "rules": [rule_of_team[team_of[rep.pk].pk].pk for rep in reps],
        "rule_names": [rule_of_team[team_of[rep.pk].pk].name for rep in reps],
        "managed_team_reps": [rep.pk for rep in reps if team_of[rep.pk] == teams[0]],
        "setup_s": round(time.perf_counter() - start, 2),
    }


def _slowest_plan(sql: str) -> list[str]:
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return []
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return [row[0] for row in cursor.fetchall()]


def queries(args: argparse.Namespace) -> dict[str, Any]:
    """Per page (a JSON list of {label, path, username} in --pages): the statements of one request
    after a warm-up one. The statements are logged with their parameters inlined by psycopg (the
    SQL PostgreSQL ran), so the slowest can be explained as it is."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from leads.models import User

    pages = json.loads(args.pages)
    clients: dict[str, Client] = {}
    result = []
    for page in pages:
        client = clients.get(page["username"])
        if client is None:
            client = clients[page["username"]] = Client(HTTP_HOST="127.0.0.1")
            client.force_login(User.objects.get(username=page["username"]))
        warm = client.get(page["path"])
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(page["path"])
            elapsed = time.perf_counter() - start
        statements = sorted(captured.captured_queries, key=lambda q: float(q["time"]), reverse=True)
        result.append(
            {
                **page,
                "status": response.status_code,
                "warm_status": warm.status_code,
                "queries": len(captured.captured_queries),
                "sql_ms": round(sum(float(q["time"]) for q in statements) * 1000, 1),
                "in_process_ms": round(elapsed * 1000, 1),
                "slowest": [
                    {"ms": round(float(q["time"]) * 1000, 1), "sql": " ".join(q["sql"].split())[:400]}
                    for q in statements[:3]
                ],
                "slowest_plan": _slowest_plan(statements[0]["sql"]) if statements and args.explain else [],
            }
        )
    return {"pages": result}


JOBS = {"setup": setup, "queries": queries}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--password", default="")
    parser.add_argument("--pages", default="[]", help="queries: JSON list of {label, path, username}")
    parser.add_argument("--explain", action="store_true", help="queries: EXPLAIN ANALYZE the slowest statement")


def main(argv: list[str] | None = None) -> int:
    return run_job(JOBS, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
