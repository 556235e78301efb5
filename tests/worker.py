"""Real processes for integration, fault and soak tests: Celery workers and beat on private queues
against the test's PostgreSQL database, a private Redis, and the test process's producer pointed at them.

    celery_worker()                  a worker + this process's producer on private queues, dropped after
    worker_process(queue, ...)       a worker subprocess: .pid, .kill() (SIGKILL), .stop(), .start(), .log
    beat_process(queue, ...)         beat, sending the schedule's tasks to `queue`; schedule file in a temp dir
    producer(queue, broker_url=...)  this process sends tasks to `queue` (on that broker) instead of running them
    redis_server()                   a private redis-server on a free port: .url, .stop(), .start() (same port)

Several workers may serve the same queue at once (fault tests kill one and let another finish).
A broker_url (e.g. amqp://guest:guest@127.0.0.1:5672//) points both the subprocess and, through
`producer`, this process at that broker; without one they use the settings' broker (REDIS_URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.db import connection

from leadportal import celery_app
from leadportal.celery import queues as celery_queues

ROOT = Path(__file__).resolve().parent.parent


def new_queue() -> str:
    """A private default queue name (its routing and scoring queues are named after it)."""
    return f"test-{uuid.uuid4().hex[:8]}"


def queue_names(queue: str) -> list[str]:
    return list(celery_queues(queue).values())


def django_env(queue: str, broker_url: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker or beat subprocess: this test's database, `queue` as default queue."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadportal.settings.local",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_QUEUE": queue,
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    }
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.update(extra or {})
    return env


class Process:
    """A child process in a session of its own, output to a log file (a pipe nobody reads fills up
    and blocks the child). `kill()` is SIGKILL to the whole group (a prefork worker's children too)."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str):
        self.argv, self.env, self.name = argv, env, name
        self.log = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Process:
        """Start (again, after kill/stop: same arguments, the log goes on)."""
        if self.alive:
            return self
        with self.log.open("a") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def kill(self) -> None:
        """SIGKILL, no chance to finish or acknowledge anything."""
        self._signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a worker finishes its current task), SIGKILL after `timeout`."""
        if not self.alive:
            return
        self._signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> Process:
        self.stop()
        return self.start()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def _signal(self, sig: int) -> None:
        if self.alive:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)


def celery_argv(*args: str) -> list[str]:
    """The command line of `celery -A leadportal <args>` with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "leadportal", *args]


def worker_argv(queues: list[str], name: str, *, pool: str = "solo", concurrency: int = 1) -> list[str]:
    """The command line of a worker on these queues (also used by bench/loop_jobs.py)."""
    return celery_argv(
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "-Q",
        ",".join(queues),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=WARNING",
    )


def beat_argv(schedule_dir: Path) -> list[str]:
    """The command line of beat with its schedule (and pid file) in `schedule_dir`."""
    schedule, pidfile = schedule_dir / "schedule", schedule_dir / "beat.pid"
    return celery_argv("beat", f"--schedule={schedule}", f"--pidfile={pidfile}", "--loglevel=WARNING")


@contextmanager
def worker_process(
    queue: str,
    *,
    concurrency: int = 1,
    pool: str = "solo",
    env: dict[str, str] | None = None,
    broker_url: str | None = None,
) -> Iterator[Process]:
    """A `celery -A leadportal worker` on `queue` and its routing and scoring queues, started; stopped
    after. Does not touch this process's producer (see `producer`)."""
    name = f"worker-{uuid.uuid4().hex[:6]}"
    argv = worker_argv(queue_names(queue), name, pool=pool, concurrency=concurrency)
    process = Process(argv, django_env(queue, broker_url, env), name).start()
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def beat_process(queue: str, *, env: dict[str, str] | None = None, broker_url: str | None = None) -> Iterator[Process]:
    """`celery -A leadportal beat` sending the schedule's tasks to `queue`, its schedule file in a
    temporary directory; e.g. env={"LOOP_RECONCILE_EVERY": "2"}."""
    schedule_dir = Path(tempfile.mkdtemp(prefix="celerybeat-"))
    argv = beat_argv(schedule_dir)
    process = Process(argv, django_env(queue, broker_url, env), "beat").start()
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(schedule_dir, ignore_errors=True)


def _reset_broker_pools() -> None:
    # The app caches its connection and producer pools for the broker URL it first saw; forget them
    # so the next send builds them for the current broker_url. Not closed: they live on in kombu's
    # process-wide registry (one per URL), and the app gets the same ones back when switched back
    # (even an eager send acquires a producer in Celery 5.7).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def producer(queue: str, broker_url: str | None = None) -> Iterator[None]:
    """This process sends tasks to `queue` (and its routing/scoring queues), on `broker_url` if
    given, instead of running them eagerly; restored after."""
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.task_default_queue, conf.broker_url)
    conf.task_always_eager, conf.task_default_queue = False, queue
    if broker_url:
        conf.broker_url = broker_url
        _reset_broker_pools()
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_default_queue = saved[:2]
        if broker_url:
            conf.broker_url = saved[2]
            _reset_broker_pools()


def drop_queues(queue: str, broker_url: str | None = None) -> None:
    """Empty and delete the private queues (and, on RabbitMQ, their exchanges: durable ones stay)."""
    with celery_app.connection_for_write(broker_url) as conn:
        for name in queue_names(queue):
            for drop in ("queue_delete", "exchange_delete"):
                # Never declared (no task went there): nothing to drop. A refusal closes the channel.
                with suppress(Exception), conn.channel() as channel:
                    getattr(channel, drop)(name)


@contextmanager
def celery_worker(
    concurrency: int = 1, pool: str = "solo", broker_url: str | None = None, queue: str | None = None
) -> Iterator[Process]:
    """Start a worker on queues of its own (`queue`, a new private default queue unless given, and the
    routing and scoring queues named after it), point this process's producer at them, stop it and
    drop the queues after. Yields the worker (`.tail()` when something did not happen)."""
    queue = queue or new_queue()
    try:
        with (
            worker_process(queue, concurrency=concurrency, pool=pool, broker_url=broker_url) as worker,
            producer(queue, broker_url),
        ):
            yield worker
    finally:
        drop_queues(queue, broker_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server (no persistence) on a port of its own; stop() and start() keep the port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.popen is not None and self.popen.poll() is None:
            return self
        self.popen = subprocess.Popen(  # noqa: S603 - the machine's redis-server, our arguments
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A private Redis for one test: `.url` to use as broker or cache, `.stop()` for an outage."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
