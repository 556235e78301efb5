"""A real Celery worker process for integration tests: Redis broker, the test's PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from leadportal import celery_app
from leadportal.celery import queues as celery_queues

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def celery_worker(concurrency: int = 1, pool: str = "solo"):
    """Start a worker on queues of its own (a private default queue, and the routing and scoring
    queues named after it), point this process's producer at them, stop it after.
    Yields the worker's log file name (read it when something did not happen)."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    names = list(celery_queues(queue).values())
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
    # A file, not a pipe: a pipe nobody reads fills up and blocks the worker.
    log = tempfile.NamedTemporaryFile("w+", prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "leadportal",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            ",".join(names),
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.task_default_queue)
    conf.task_always_eager, conf.task_default_queue = False, queue
    try:
        yield log.name
    finally:
        conf.task_always_eager, conf.task_default_queue = saved
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        with celery_app.connection_for_write() as conn:
            for name in names:
                conn.default_channel.queue_purge(name)
        log.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
