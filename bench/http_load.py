"""HTTP load for the foundation suite: wrk (Debian's `wrk`, C), driven by bench/wrk_post.lua.

* wrk runs one thread per client, each with one connection, closed loop: a client sends its next
  request as soon as the previous answer arrived, so `clients` is the number of requests in flight.
  gunicorn's sync workers answer `Connection: close`; wrk then reconnects before the next request
  (the connect is not inside wrk's latency, which runs from writing the request to its answer).
* Every request body is made here and written to a file per client before the clock starts
  (fresh e-mails, 20 % repeats of the client's own earlier ones; batches of events); the Lua script
  only sends them. A warm-up is a wrk run of its own, before the measured one.
* Measured: wrk's request count and latency percentiles (its own microsecond histogram), the status
  codes and first non-2xx bodies, and the integer fields of 2xx JSON answers (the events API's
  stored/duplicates counts), per run; the CPU of wrk itself, gunicorn, PostgreSQL and anything else
  (bench.environment.Meter), so that theft from the server on a 2-core machine is visible.

On the 2-core reference machine wrk costs ≈ 0.2 ms CPU per capture request, the multiprocessing
http.client generator this replaced ≈ 0.6 ms and locust (FastHttpUser) ≈ 2 ms (bench/README.md).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import database, environment
from bench.processes import PROJECT_DIR, Service

LUA = PROJECT_DIR / "bench" / "wrk_post.lua"

FIRST_NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Lena", "Marco"]
LAST_NAMES = ["Schmidt", "Meyer", "Dubois", "Rossi", "Novak", "Jensen", "Garcia", "Smith", "Kowalski", "Berg"]
JOB_TITLES = ["CTO", "Head of Marketing", "IT Manager", "Developer", "CFO", "Operations Lead", "Analyst"]
COUNTRIES = ["DE", "DE", "DE", "AT", "CH", "FR", "NL", "GB", "US", "SE"]
SOURCES = ["web_form", "webinar", "landing_page", "trade_show", "partner"]
COMPANY_DOMAINS = 500


def ensure_wrk() -> str:
    """wrk's path; installed from Debian's packages when missing (the bench runs as root on the
    project's machines, as .ci/run installs Chromium)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("... wrk is missing: apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed; install wrk by hand:\n{result.stderr[-2000:]}")
    return shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class Phase:
    """One measured run: `bodies[i]` is client i's list of request bodies, the first `warmup` of
    which are sent (by a wrk run of their own) before the clock starts."""

    name: str
    url: str
    token: str
    bodies: list[list[bytes]]
    warmup: int
    duration: float  # s; wrk's deadline, even if bodies remain
    items_per_request: int = 1
    totals: bool = False  # sum the integer fields of 2xx JSON answers (events: stored, duplicates …)

    @property
    def clients(self) -> int:
        return len(self.bodies)


@dataclass
class Result:
    clients: int
    requests: int
    elapsed: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    warmup_statuses: dict[str, int]
    errors: list[str]
    totals: dict[str, int]
    socket_errors: dict[str, int]
    cpu: dict[str, Any] = field(default_factory=dict)
    items: int = 0

    @property
    def non_2xx(self) -> int:
        return sum(n for s, n in [*self.statuses.items(), *self.warmup_statuses.items()] if not s.startswith("2"))


def _wrk(phase: Phase, bodies: list[list[bytes]], work: Path, duration: float, extra: dict | None = None):
    """One wrk run over `bodies`; (wrk's result document, the CPU split when `extra` is given)."""
    work.mkdir()
    for i, client in enumerate(bodies):
        (work / f"bodies-{i}.txt").write_bytes(b"\n".join(client) + b"\n")
    n = str(len(bodies))
    argv = [ensure_wrk(), "-t", n, "-c", n, "-d", f"{max(1, round(duration))}s", "--timeout", "120s"]
    argv += ["-s", str(LUA), phase.url, str(work), phase.token, "totals" if phase.totals else "-"]
    wrk = Service("wrk", argv, dict(os.environ), work / "wrk.log")
    meter = environment.Meter(database.BENCH_DB, extra={**(extra or {}), "wrk": wrk.pids})
    elapsed = None
    with meter, wrk:
        started = time.perf_counter()
        while wrk.process.poll() is None:
            if len(list(work.glob("done-*"))) == len(bodies):  # every client sent its last body
                elapsed = time.perf_counter() - started
                wrk.interrupt()
                break
            time.sleep(0.01)
        wrk.wait(timeout=duration + 180)
    if not (work / "result.json").exists():
        raise RuntimeError(f"{phase.name}: wrk wrote no result:\n{wrk.log_tail()}")
    result = json.loads((work / "result.json").read_text())
    if elapsed is not None:  # wrk's own duration would include the wait for SIGINT
        result["duration_s"] = elapsed
    return result, meter.result


def run_phase(
    phase: Phase, work: Path, server_pids: Callable[[], list[int]], after_warmup: Callable[[], Any]
) -> tuple[Result, Any]:
    """The warm-up run, `after_warmup()` (e.g. the rows in the database), then the measured run;
    `server_pids()` names gunicorn's processes (for the CPU split)."""
    warm, _ = _wrk(phase, [b[: phase.warmup] for b in phase.bodies], work / f"{phase.name}-warmup", 600.0)
    seen = after_warmup()
    measured, cpu = _wrk(
        phase, [b[phase.warmup :] for b in phase.bodies], work / phase.name, phase.duration, {"gunicorn": server_pids}
    )
    ok = sum(n for s, n in measured["statuses"].items() if s.startswith("2"))
    result = Result(
        clients=phase.clients,
        requests=measured["requests"],
        elapsed=measured["duration_s"],
        latency_ms={k: round(v, 2) for k, v in measured["latency_ms"].items()},
        statuses=measured["statuses"],
        warmup_statuses=warm["statuses"],
        errors=[f"warm-up {e}" for e in warm["errors"]] + measured["errors"],
        totals=measured["totals"],
        socket_errors=measured["socket_errors"],
        cpu=cpu,
        items=ok * phase.items_per_request,
    )
    return result, seen


# --- request bodies -------------------------------------------------------------------------------


def capture_bodies(tag: str, clients: int, per_client: int, repeat_share: float, seed: int) -> list[list[bytes]]:
    """Lead capture payloads: mostly new e-mails; every n-th one (n = 1 / `repeat_share`) repeats a
    random e-mail this client sent earlier (an upsert that may change the job title). Repeats stay
    within one client, so the clients do not queue on each other's row locks."""
    all_bodies = []
    for client in range(clients):
        rng = random.Random(f"{seed}-{tag}-{client}")
        sent: list[dict[str, str]] = []
        bodies = []
        for seq in range(per_client):
            if sent and (seq + 1) % round(1 / repeat_share) == 0:  # every 5th request at 20 %
                payload = dict(rng.choice(sent))
                payload["job_title"] = rng.choice(JOB_TITLES)
            else:
                k = rng.randrange(COMPANY_DOMAINS)
                payload = {
                    "email": f"bench-{tag}-c{client}-{seq}@corp-{k}.example",
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "company": f"Corp {k} GmbH",
                    "job_title": rng.choice(JOB_TITLES),
                    "country": rng.choice(COUNTRIES),
                    "source": rng.choice(SOURCES),
                }
                sent.append(payload)
            bodies.append(json.dumps(payload).encode())
        all_bodies.append(bodies)
    return all_bodies


def event_bodies(
    tag: str, emails: list[str], clients: int, batches_per_client: int, batch_size: int, seed: int
) -> list[list[bytes]]:
    """Batches of page_view events for existing leads; every external_id is unique."""
    now = datetime.now(UTC)
    all_bodies = []
    for client in range(clients):
        rng = random.Random(f"{seed}-{tag}-{client}")
        bodies = []
        for batch in range(batches_per_client):
            events = [
                {
                    "email": rng.choice(emails),
                    "type": "page_view",
                    "occurred_at": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
                    "external_id": f"{tag}-c{client}-b{batch}-{i}",
                    "source": "bench",
                    "properties": {"url": "/pricing"},
                }
                for i in range(batch_size)
            ]
            bodies.append(json.dumps(events).encode())
        all_bodies.append(bodies)
    return all_bodies
