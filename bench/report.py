"""The printed table and the JSON results file."""

from __future__ import annotations

import json
import math
import os
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


COLUMNS = [
    ("benchmark", "<", 22),
    ("DB", "<", 8),
    ("rows (leads/activities)", ">", 24),
    ("clients", ">", 7),
    ("requests", ">", 8),
    ("rate", ">", 16),
    ("p50 ms", ">", 7),
    ("p95 ms", ">", 7),
    ("p99 ms", ">", 7),
    ("target", "<", 26),
    ("result", "<", 6),
]


def table(results: list[dict[str, Any]]) -> str:
    header = "  ".join(f"{name:{align}{width}}" for name, align, width in COLUMNS)
    lines = [header, "-" * len(header)]
    for r in results:
        latency = r.get("latency_ms") or {}
        cells = [
            r["benchmark"],
            r["db"],
            _rows(r.get("rows_at_start")),
            str(r["clients"]),
            _num(r["requests"]),
            f"{_num(r['rate'])} {r['unit']}",
            _num(latency.get("p50"), 1),
            _num(latency.get("p95"), 1),
            _num(latency.get("p99"), 1),
            r.get("target_text") or "-",
            {True: "PASS", False: "FAIL", None: "-"}[r.get("passed")],
        ]
        padded = (f"{cell:{align}{width}}" for cell, (_, align, width) in zip(cells, COLUMNS, strict=True))
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


SUITE_COLUMNS = [
    ("benchmark", "<", 36),
    ("DB", "<", 7),
    ("rows (leads/activities)", ">", 24),
    ("N", ">", 9),
    ("time s", ">", 8),
    ("rate", ">", 20),
    ("p50", ">", 9),
    ("p95", ">", 9),
    ("target", "<", 24),
    ("result", "<", 6),
]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.1f} ms"


def suite_table(results: list[dict[str, Any]]) -> str:
    """The table of the scoring and routing suites: one row per measurement, N is what it worked on
    (leads, events or decisions), time the measured wall time."""
    header = "  ".join(f"{name:{align}{width}}" for name, align, width in SUITE_COLUMNS)
    lines = [header, "-" * len(header)]
    for r in results:
        latency = r.get("latency_ms") or {}
        cells = [
            r["benchmark"],
            r["db"],
            _rows(r.get("rows_at_start")),
            _num(r.get("n")),
            _num(r.get("elapsed_s"), 1),
            f"{_num(r.get('rate'))} {r['unit']}" if r.get("rate") is not None else "-",
            _ms(latency.get("p50")),
            _ms(latency.get("p95")),
            r.get("target_text") or "-",
            {True: "PASS", False: "FAIL", None: "-"}[r.get("passed")],
        ]
        padded = (f"{cell:{align}{width}}" for cell, (_, align, width) in zip(cells, SUITE_COLUMNS, strict=True))
        lines.append("  ".join(padded).rstrip())
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
