"""The machine around the measurements: versions, hardware, CPU accounting, the idle-machine gate,
and what source tree was measured. Shared by every suite; no Django, no PostgreSQL connection."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench import database

PROJECT_DIR = Path(__file__).resolve().parent.parent

CORES = os.cpu_count() or 1
OTHER_CPU_WARNING = 0.10  # share of the machine used by processes outside the bench
QUIET_BUSY_SHARE = 0.10  # the machine counts as idle below this busy share
QUIET_MAX_WAIT = 30.0
QUIET_TOTAL_WAIT = 60.0


def versions(pg_version: str) -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "python": platform.python_version(),
        "django": version("django"),
        "djangorestframework": version("djangorestframework"),
        "gunicorn": version("gunicorn"),
        "psycopg": version("psycopg"),
        "postgresql": pg_version,
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_head() -> str | None:
    """The checked-out commit, read from .git without running git (best effort)."""
    git = PROJECT_DIR / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


SOURCE_SKIP = {".venv", ".git", "__pycache__", "node_modules", "staticfiles", "results", "test-artifacts"}


def source_digest() -> dict[str, Any]:
    """A digest of the project's Python and template files as they are on disk, so that two results
    can be told apart even when the working tree had uncommitted changes."""
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(PROJECT_DIR):
        dirs[:] = sorted(d for d in dirs if d not in SOURCE_SKIP and not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".py", ".html")):
                path = Path(root) / name
                digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
                count += 1
    return {"sha256": digest.hexdigest()[:16], "files": count}


def cpu_busy_total() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (psutil)."""
    times = psutil.cpu_times()
    idle = times.idle + times.iowait
    total = sum(times) - times.guest - times.guest_nice  # guest time is already in user
    return total - idle, total


class QuietGate:
    """Before each measurement, wait until the machine is nearly idle, so that another job on a
    shared 2-core box does not halve the figures; at most QUIET_MAX_WAIT s per measurement and
    `budget` s per run, to keep the run short. What it saw is recorded with the results."""

    def __init__(self, budget: float = QUIET_TOTAL_WAIT) -> None:
        self.budget = budget

    def wait(self) -> float:
        """Returns the machine's busy share over the last second before going on."""
        max_wait = min(QUIET_MAX_WAIT, self.budget)
        started = time.perf_counter()
        announced = False
        while True:
            share = psutil.cpu_percent(interval=1.0) / 100
            waited = time.perf_counter() - started - 1.0
            if share <= QUIET_BUSY_SHARE or waited >= max_wait:
                self.budget -= max(waited, 0.0)
                if announced or share > QUIET_BUSY_SHARE:
                    verdict = "going on" if share <= QUIET_BUSY_SHARE else "measuring anyway"
                    print(f"    machine busy {share:.0%} after {waited:.0f} s; {verdict}")
                return share
            if not announced:
                print(f"    machine busy {share:.0%} before the run (another job?); waiting up to {max_wait:.0f} s")
                announced = True


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds so far (all threads) of each of `pids` still there."""
    cpu = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            cpu[pid] = times.user + times.system
    return cpu


POSTGRES_SHARED = ("checkpointer", "background writer", "walwriter", "autovacuum launcher")


def postgres_pids(dbname: str = database.BENCH_DB, parallel_workers: bool = False) -> list[int]:
    """PostgreSQL processes working for `dbname`: its backends and autovacuum workers (their process
    title names the database) and the shared writers (WAL writer, checkpointer, background writer),
    which during the bench write what the bench inserted; with `parallel_workers`, also the
    parallel query workers of the server (their title names no database)."""
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        title = " ".join(proc.info["cmdline"] or ())
        if not title.startswith("postgres: "):
            continue
        role = title.rpartition(": ")[2]
        if (
            dbname in title.split()
            or role.startswith(POSTGRES_SHARED)
            or (parallel_workers and "parallel worker" in title)
        ):
            pids.append(proc.pid)
    return pids


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants (gunicorn's or a Celery worker's children)."""
    try:
        return [root, *(child.pid for child in psutil.Process(root).children(recursive=True))]
    except psutil.Error:
        return []


class Meter:
    """`with Meter(dbname) as meter:` … then `meter.result`: wall time and where the CPU went — this
    process, PostgreSQL (the backends of `dbname`, its autovacuum workers, the shared writers, and
    parallel query workers), optional groups of other processes (`extra` maps a label to a function
    returning their pids, e.g. a Celery worker tree, redis-server), and everything else on the
    machine ("other": e.g. another user's job).

    A thread samples the processes every 0.2 s and keeps the last value it saw of each, so that
    short-lived ones (parallel workers, a backend whose connection closed) are counted too, less
    at most their last 0.2 s."""

    INTERVAL = 0.2

    def __init__(self, dbname: str, extra: dict | None = None) -> None:
        self.dbname = dbname
        self.groups = {"postgres": lambda: postgres_pids(dbname, parallel_workers=True), **(extra or {})}
        self.result: dict[str, Any] = {}
        self._stop = threading.Event()
        self._first: dict[str, dict[int, float]] = {group: {} for group in self.groups}
        self._last: dict[str, dict[int, float]] = {group: {} for group in self.groups}

    def _poll(self, initial: bool = False) -> None:
        for group, pids in self.groups.items():
            for pid, cpu in cpu_by_pid(pids()).items():
                # A process first seen after the start began during the window: all its CPU counts.
                self._first[group].setdefault(pid, cpu if initial else 0.0)
                self._last[group][pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._poll()

    def __enter__(self) -> Meter:
        self._poll(initial=True)
        self._busy0, self._total0 = cpu_busy_total()
        self._own0 = time.process_time()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        window = time.perf_counter() - self._t0
        own = time.process_time() - self._own0
        busy1, total1 = cpu_busy_total()
        self._stop.set()
        self._thread.join()
        self._poll()
        used = {
            group: sum(max(0.0, last - self._first[group].get(pid, 0.0)) for pid, last in self._last[group].items())
            for group in self.groups
        }
        busy = busy1 - self._busy0
        total = total1 - self._total0
        other = max(busy - own - sum(used.values()), 0.0)
        self.elapsed = window
        self.result = {
            "window_s": round(window, 3),
            "machine_busy_share": round((busy1 - self._busy0) / total, 3) if total else None,
            "bench_process_s": round(own, 2),
            **{f"{group}_s": round(cpu, 2) for group, cpu in used.items()},
            "other_s": round(other, 2),
            "other_share_of_machine": round(other / (window * CORES), 3) if window else None,
        }


def named_pids(prefix: str) -> list[int]:
    """Processes whose command line starts with `prefix` (e.g. "redis-server")."""
    return [p.pid for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or ()).startswith(prefix)]
