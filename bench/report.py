"""Percentiles, the printed table and the JSON results file: one of each for every suite."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _rows(rows: dict[str, int] | None) -> str:
    if not rows:
        return "-"
    return f"{rows['leads']:,} / {rows['activities']:,}"


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float] | None:
    """p50/p95/p99/max/mean of `values` (seconds), in ms by default; nearest rank."""
    if not values:
        return None
    ordered = sorted(values)

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "p50": round(pick(50) * scale, 2),
        "p95": round(pick(95) * scale, 2),
        "p99": round(pick(99) * scale, 2),
        "max": round(ordered[-1] * scale, 2),
        "mean": round(statistics.fmean(ordered) * scale, 2),
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.1f} ms"


def _latency(key: str, fmt=_ms):
    return lambda r: fmt((r.get("latency_ms") or {}).get(key))


def _rate(r: dict[str, Any]) -> str:
    return f"{_num(r.get('rate'))} {r['unit']}" if r.get("rate") is not None else "-"


def _result(r: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[r.get("passed")]


# (header, alignment, width, cell) per column. The foundation suite's HTTP runs: clients and requests;
# the other suites: N (what a measurement worked on: leads, events or decisions) and the wall time.
HTTP_COLUMNS = [
    ("benchmark", "<", 24, lambda r: r["benchmark"]),
    ("DB", "<", 8, lambda r: r["db"]),
    ("rows (leads/activities)", ">", 24, lambda r: _rows(r.get("rows_at_start"))),
    ("clients", ">", 7, lambda r: str(r["clients"])),
    ("requests", ">", 8, lambda r: _num(r["n"])),
    ("rate", ">", 18, _rate),
    ("p50 ms", ">", 7, _latency("p50", lambda v: _num(v, 1))),
    ("p95 ms", ">", 7, _latency("p95", lambda v: _num(v, 1))),
    ("p99 ms", ">", 7, _latency("p99", lambda v: _num(v, 1))),
    ("target", "<", 26, lambda r: r.get("target_text") or "-"),
    ("result", "<", 6, _result),
]
SUITE_COLUMNS = [
    ("benchmark", "<", 36, lambda r: r["benchmark"]),
    ("DB", "<", 7, lambda r: r["db"]),
    ("rows (leads/activities)", ">", 24, lambda r: _rows(r.get("rows_at_start"))),
    ("N", ">", 9, lambda r: _num(r.get("n"))),
    ("time s", ">", 8, lambda r: _num(r.get("elapsed_s"), 1)),
    ("rate", ">", 20, _rate),
    ("p50", ">", 9, _latency("p50")),
    ("p95", ">", 9, _latency("p95")),
    ("target", "<", 24, lambda r: r.get("target_text") or "-"),
    ("result", "<", 6, _result),
]


def table(records: list[dict[str, Any]], columns=SUITE_COLUMNS) -> str:
    """The printed table of a suite: one row per measurement."""
    header = "  ".join(f"{name:{align}{width}}" for name, align, width, _ in columns)
    lines = [header, "-" * len(header)]
    for r in records:
        lines.append("  ".join(f"{cell(r):{align}{width}}" for _, align, width, cell in columns).rstrip())
    return "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")  # *.tmp is git-ignored
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(document: dict[str, Any], name: str, stamp: str, results_dir: Path = RESULTS_DIR) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    paths = [results_dir / f"{name}-{stamp}.json", results_dir / f"latest-{name}.json"]
    for path in paths:
        _write_atomic(path, text)
    return paths
