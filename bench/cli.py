"""`python -m bench [suite …] [--quick]`: run the foundation, scoring, routing, dashboard and loop suites (all
by default).

Options the suites do not know are handed to the foundation suite (see `python -m bench foundation
--help`), so `python -m bench foundation --worker-class gthread --workers 2` still works.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback

from bench import dashboard_suite, database, environment, loop_suite, routing_suite, runner, scoring_suite, suite

SUITES = ("foundation", "scoring", "routing", "dashboard", "loop")
# Without suites named (`make bench`): all but the loop suite, whose 1,000,000-lead setup (a full
# rescoring included) takes 6 minutes on a quiet machine; `python -m bench loop` or `all` runs it.
DEFAULT_SUITES = ("foundation", "scoring", "routing", "dashboard")
# --quick for the foundation suite: fewer requests and batches (options given later still win).
FOUNDATION_QUICK = ["--requests", "1000", "--warmup", "100", "--batches", "8", "--duration", "8"]


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, add_help=False)
    parser.add_argument(
        "suites", nargs="*", metavar="suite", help=f"any of {', '.join(SUITES)}, or all [{', '.join(DEFAULT_SUITES)}]"
    )
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere (a smoke run, ≈ 4 minutes)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no results file")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("-h", "--help", action="store_true")
    scoring_suite.add_arguments(parser)
    routing_suite.add_arguments(parser)
    dashboard_suite.add_arguments(parser)
    loop_suite.add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    if args.help:
        parser.print_help()
        print("\nfoundation suite options:")
        runner.parse_args(["--help"])
    unknown = [s for s in args.suites if s not in SUITES and s != "all"]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    if "all" in args.suites:
        args.suites = list(SUITES)
    elif not args.suites:
        args.suites = list(DEFAULT_SUITES)
    return args, rest


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: workers, gunicorn and jobs are stopped by their finally


def _run_suite(name: str, args: argparse.Namespace, pg_version: str) -> int:
    module = {"scoring": scoring_suite, "routing": routing_suite, "dashboard": dashboard_suite, "loop": loop_suite}[
        name
    ]
    started, wall = suite.now(), time.perf_counter()
    print(f"\n=== {name} suite{' (quick)' if args.quick else ''} ===")
    versions, machine = suite.header(pg_version)
    quiet = environment.QuietGate()
    records = module.run(args, pg_version, quiet)
    suite.print_summary(records, module.notes(records))
    print(f"{name} suite: {time.perf_counter() - wall:.0f} s.")
    extra = {"quick": args.quick, **module.document_extra(args)}
    suite.write_document(name, started, wall, versions, machine, records, extra, args.no_write)
    if args.strict and any(r["passed"] is False for r in records):
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    wall = time.perf_counter()
    pg_version = database.server_version_or_explain()
    if pg_version is None:
        return 2
    statuses = {}
    for name in args.suites:
        try:
            if name == "foundation":
                extra = (FOUNDATION_QUICK if args.quick else []) + ["--no-write"] * args.no_write
                extra += ["--strict"] * args.strict
                print(f"\n=== foundation suite{' (quick)' if args.quick else ''} ===")
                statuses[name] = runner.main(extra + rest)
            else:
                statuses[name] = _run_suite(name, args, pg_version)
        except Exception:  # noqa: BLE001 - report, then go on with the next suite
            traceback.print_exc()
            print(f"bench: the {name} suite failed (see above); going on.", file=sys.stderr)
            statuses[name] = 1
    summary = ", ".join(f"{k} exit {v}" for k, v in statuses.items())
    print(f"\nbench: {summary}; {time.perf_counter() - wall:.0f} s in all.")
    return max(statuses.values(), default=0)
