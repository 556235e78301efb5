"""A deliberately small load generator: one OS process per simulated client, stdlib http.client.

Why this design, on a 2-core machine that also runs gunicorn and PostgreSQL:

* Separate processes (multiprocessing, fork) rather than threads: eight clients in one process
  would serialise on the GIL and measure the generator, not the server. Each process spends
  almost all of its time blocked in recv(), so eight of them cost little CPU; the CPU they did use
  is measured (time.process_time) and reported, so any theft from the server is visible.
* http.client rather than requests/httpx: an order of magnitude less client-side CPU per request.
* Every request body is encoded *before* the clock starts; the timed loop only sends and reads.
* One persistent HTTP/1.1 connection per client. gunicorn's gthread workers keep it alive;
  sync workers answer `Connection: close`, and http.client then reconnects transparently before
  the next request (so with sync workers each latency includes a TCP connect on loopback, which is
  what a real client of a sync server pays too).
* Closed loop: each client sends its next request as soon as the previous answer arrived, so
  `clients` is the number of requests in flight. All clients start together (a barrier) after a
  warm-up; each stops after its share of the requests or at the deadline, whichever comes first.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import queue as queue_module
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FIRST_NAMES = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Lena", "Marco"]
LAST_NAMES = ["Schmidt", "Meyer", "Dubois", "Rossi", "Novak", "Jensen", "Garcia", "Smith", "Kowalski", "Berg"]
JOB_TITLES = ["CTO", "Head of Marketing", "IT Manager", "Developer", "CFO", "Operations Lead", "Analyst"]
COUNTRIES = ["DE", "DE", "DE", "AT", "CH", "FR", "NL", "GB", "US", "SE"]
SOURCES = ["web_form", "webinar", "landing_page", "trade_show", "partner"]
COMPANY_DOMAINS = 500


@dataclass
class Phase:
    """One measured run: `bodies[i]` is client i's list of pre-encoded request bodies."""

    name: str
    host: str
    port: int
    path: str
    token: str
    bodies: list[list[bytes]]
    warmup: int  # leading bodies of each client that are sent before the clock starts
    duration: float  # seconds; each client stops at this deadline even if bodies remain
    items_per_request: int = 1
    parse_json: bool = False  # sum the JSON counters of 2xx answers (events: stored, duplicates …)

    @property
    def clients(self) -> int:
        return len(self.bodies)


@dataclass
class PhaseResult:
    name: str
    clients: int
    requests: int = 0
    items: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    statuses: Counter = field(default_factory=Counter)
    warmup_statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # first non-2xx answers, abbreviated
    totals: Counter = field(default_factory=Counter)
    client_cpu: float = 0.0
    reconnects: int = 0
    stopped_by_deadline: int = 0  # clients that hit the deadline before their last body

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300) + sum(
            n for status, n in self.warmup_statuses.items() if not 200 <= status < 300
        )

    @property
    def rate(self) -> float:
        return self.items / self.elapsed if self.elapsed else 0.0

    @property
    def request_rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the request latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return ordered[rank - 1] * 1000


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, int]:
    """POST once; if the server had closed an idle keep-alive connection, reconnect and resend once.
    Returns (status, body, reconnects)."""
    for attempt in range(2):
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), attempt
        except _RETRYABLE:
            conn.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _client(index: int, phase: Phase, barrier: Any, results: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler is not for us
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    bodies = phase.bodies[index]
    headers = _headers(phase.token)
    conn = http.client.HTTPConnection(phase.host, phase.port, timeout=120)
    out: dict[str, Any] = {
        "index": index,
        "latencies": [],
        "statuses": Counter(),
        "warmup_statuses": Counter(),
        "errors": [],
        "totals": Counter(),
        "reconnects": 0,
        "items": 0,
        "deadline_hit": False,
    }
    try:
        for body in bodies[: phase.warmup]:
            status, data, reconnects = _post(conn, phase.path, body, headers)
            out["warmup_statuses"][status] += 1
            if not 200 <= status < 300 and len(out["errors"]) < 5:
                out["errors"].append(f"warm-up {status}: {data[:300].decode(errors='replace')}")
        barrier.wait(timeout=600)
        cpu_start = time.process_time()
        started = time.perf_counter()
        deadline = started + phase.duration
        latencies = out["latencies"]
        for body in bodies[phase.warmup :]:
            if time.perf_counter() >= deadline:
                out["deadline_hit"] = True
                break
            t0 = time.perf_counter()
            status, data, reconnects = _post(conn, phase.path, body, headers)
            latencies.append(time.perf_counter() - t0)
            out["statuses"][status] += 1
            out["reconnects"] += reconnects
            if 200 <= status < 300:
                out["items"] += phase.items_per_request
                if phase.parse_json:
                    out["totals"].update({k: v for k, v in json.loads(data).items() if isinstance(v, int)})
            elif len(out["errors"]) < 5:
                out["errors"].append(f"{status}: {data[:300].decode(errors='replace')}")
        out["started"] = started
        out["finished"] = time.perf_counter()
        out["cpu"] = time.process_time() - cpu_start
    except Exception as exc:  # noqa: BLE001 - report to the parent instead of dying silently
        out["exception"] = f"{exc.__class__.__name__}: {exc}"
        barrier.abort()
    finally:
        conn.close()
        results.put(out)


def run_phase(phase: Phase, sample: Callable[[], Any] | None = None) -> tuple[PhaseResult, Any, Any]:
    """Run the clients in parallel processes and merge what they measured.

    `sample()` is called when the clients start measuring (after the warm-up) and again when the
    last one has finished; both samples are returned with the result (CPU counters, row counts …).
    """
    ctx = multiprocessing.get_context("fork")  # bodies are inherited, not pickled
    barrier = ctx.Barrier(phase.clients + 1)  # the parent joins, to sample at the start
    results = ctx.Queue()
    processes = [ctx.Process(target=_client, args=(i, phase, barrier, results)) for i in range(phase.clients)]
    for process in processes:
        process.start()
    outs = []
    before = after = None
    try:
        with contextlib.suppress(threading.BrokenBarrierError):  # a client failed in its warm-up; it says why
            barrier.wait(timeout=600)
        before = sample() if sample else None
        for _ in processes:
            outs.append(results.get(timeout=phase.duration + 600))
        after = sample() if sample else None
    except queue_module.Empty:
        raise RuntimeError(f"{phase.name}: a client process did not report back") from None
    except BaseException:
        for process in processes:  # interrupted: stop the clients now rather than let them finish
            if process.is_alive():
                process.terminate()
        raise
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    failures = [out["exception"] for out in outs if "exception" in out]
    if failures:
        raise RuntimeError(f"{phase.name}: client failed: {failures[0]}")

    result = PhaseResult(name=phase.name, clients=phase.clients)
    for out in outs:
        result.latencies.extend(out["latencies"])
        result.statuses.update(out["statuses"])
        result.warmup_statuses.update(out["warmup_statuses"])
        result.errors.extend(out["errors"])
        result.totals.update(out["totals"])
        result.items += out["items"]
        result.client_cpu += out["cpu"]
        result.reconnects += out["reconnects"]
        result.stopped_by_deadline += out["deadline_hit"]
    result.requests = len(result.latencies)
    result.elapsed = max(out["finished"] for out in outs) - min(out["started"] for out in outs)
    return result, before, after


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
