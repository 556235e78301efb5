"""`python -m bench [suite …] [--quick]`: run the foundation, scoring, routing and dashboard suites (by
default), the loop suite when named (or `all`). Every suite's options are listed by `--help`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback

from bench import (
    dashboard_suite,
    database,
    environment,
    foundation_suite,
    imports_suite,
    loop_suite,
    report,
    routing_suite,
    scoring_suite,
    suite,
)

SUITES = {
    "foundation": foundation_suite,
    "scoring": scoring_suite,
    "routing": routing_suite,
    "dashboard": dashboard_suite,
    "loop": loop_suite,
    "imports": imports_suite,
}
# Without suites named (`make bench`): all but the loop suite, whose 1,000,000-lead setup (a full
# rescoring included) takes 6 minutes on a quiet machine; `python -m bench loop` or `all` runs it.
DEFAULT_SUITES = ("foundation", "scoring", "routing", "dashboard", "imports")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, add_help=False)
    parser.add_argument(
        "suites", nargs="*", metavar="suite", help=f"any of {', '.join(SUITES)}, or all [{', '.join(DEFAULT_SUITES)}]"
    )
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere (a smoke run, ≈ 4 minutes)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no results file")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("-h", "--help", action="store_true")
    for module in SUITES.values():
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.help:
        parser.print_help()
        raise SystemExit(0)
    unknown = [s for s in args.suites if s not in SUITES and s != "all"]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    if "all" in args.suites:
        args.suites = list(SUITES)
    elif not args.suites:
        args.suites = list(DEFAULT_SUITES)
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind: workers, gunicorn and jobs are stopped by their finally


def _run_suite(name: str, args: argparse.Namespace, pg_version: str) -> int:
    module = SUITES[name]
    started, wall = suite.now(), time.perf_counter()
    print(f"\n=== {name} suite{' (quick)' if args.quick else ''} ===")
    versions, machine = suite.header(pg_version)
    quiet = environment.QuietGate()
    records = module.run(args, pg_version, quiet)
    suite.print_summary(records, module.notes(records), getattr(module, "COLUMNS", report.SUITE_COLUMNS))
    print(f"{name} suite: {time.perf_counter() - wall:.0f} s.")
    extra = {"quick": args.quick, **module.document_extra(args)}
    results_name = args.name if name == "foundation" else name
    suite.write_document(results_name, started, wall, versions, machine, records, extra, args.no_write)
    if any(r.get("non_2xx") for r in records):
        return 1  # every HTTP run must see 0 non-2xx answers
    if args.strict and any(r["passed"] is False for r in records):
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    wall = time.perf_counter()
    pg_version = database.server_version_or_explain()
    if pg_version is None:
        return 2
    statuses = {}
    for name in args.suites:
        try:
            statuses[name] = _run_suite(name, args, pg_version)
        except Exception:  # noqa: BLE001 - report, then go on with the next suite
            traceback.print_exc()
            print(f"bench: the {name} suite failed (see above); going on.", file=sys.stderr)
            statuses[name] = 1
    summary = ", ".join(f"{k} exit {v}" for k, v in statuses.items())
    print(f"\nbench: {summary}; {time.perf_counter() - wall:.0f} s in all.")
    return max(statuses.values(), default=0)
