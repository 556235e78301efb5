"""The machine around the measurements: versions, hardware, CPU accounting, the idle-machine gate,
and what source tree was measured. Shared by every suite; no Django, no PostgreSQL connection."""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import database

PROJECT_DIR = Path(__file__).resolve().parent.parent

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # without guest time, which is already in user
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
            busy0, total0 = cpu_jiffies()
            time.sleep(1.0)
            busy1, total1 = cpu_jiffies()
            share = (busy1 - busy0) / max(total1 - total0, 1)
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


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    cpu = {}
    for pid in pids:
        try:
            cpu[pid] = process_cpu(pid)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return cpu


POSTGRES_SHARED = ("checkpointer", "background writer", "walwriter", "autovacuum launcher")


def postgres_pids(dbname: str = database.BENCH_DB, parallel_workers: bool = False) -> list[int]:
    """PostgreSQL processes working for `dbname`: its backends and autovacuum workers (their process
    title names the database) and the shared writers (WAL writer, checkpointer, background writer),
    which during the bench write what the bench inserted; with `parallel_workers`, also the
    parallel query workers of the server (their title names no database)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if not title.startswith("postgres: "):
            continue
        words = title.split()
        role = title.rpartition(": ")[2]
        if dbname in words or role.startswith(POSTGRES_SHARED) or (parallel_workers and "parallel worker" in title):
            pids.append(int(proc.name))
    return pids


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two per-process samples. A process that ended meanwhile (a backend whose
    connection reached CONN_MAX_AGE) cannot be read any more; its share ends up in "other"."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants (a Celery worker and its pool processes), found in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


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
        self._busy0, self._total0 = cpu_jiffies()
        self._own0 = time.process_time()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        window = time.perf_counter() - self._t0
        own = time.process_time() - self._own0
        busy1, total1 = cpu_jiffies()
        self._stop.set()
        self._thread.join()
        self._poll()
        used = {
            group: sum(max(0.0, last - self._first[group].get(pid, 0.0)) for pid, last in self._last[group].items())
            for group in self.groups
        }
        busy = (busy1 - self._busy0) / CLOCK_TICKS
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
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "cmdline").read_bytes().startswith(prefix.encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
