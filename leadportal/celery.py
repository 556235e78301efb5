"""The Celery application. Workers: `celery -A leadportal worker -Q <queues>`, beat: `celery -A leadportal beat`.

Three queues, named after the default one (`CELERY_QUEUE`, "leadportal"):
  <default>          e-mail and anything else
  <default>.scoring  rescoring (a full rescoring's batches take seconds each)
  <default>.routing  routing MQLs and SLA checks — never stuck behind scoring work
`CELERY_ROUTING_QUEUE` / `CELERY_SCORING_QUEUE` name them explicitly. Run a worker (or several) on
the routing queue of its own, e.g. `make run` and docker-compose.yml do:
  celery -A leadportal worker -Q leadportal,leadportal.scoring
  celery -A leadportal worker -Q leadportal.routing
"""

import logging
import os
import time
from typing import TypedDict

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun
from django.db import transaction

from leadportal import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadportal.settings.local")

app = Celery("leadportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every task's lines carry task_id and task_name, in a worker and when run eagerly (leadportal/logs.py).
task_prerun.connect(logs.task_started, weak=False)
task_postrun.connect(logs.task_finished, weak=False)


@setup_logging.connect(weak=False)
def _worker_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (structlog, LOG_FORMAT), not Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)

# Tasks that stay on the default queue although their app has a queue of its own.
DEFAULT_QUEUE_TASKS = {"routing.tasks.notify_assignments"}


def queues(default: str | None = None) -> dict[str, str]:
    """The queue names for this default queue (the configured one if not given)."""
    from django.conf import settings

    default = default or app.conf.task_default_queue
    return {
        "default": default,
        "routing": getattr(settings, "CELERY_ROUTING_QUEUE", "") or f"{default}.routing",
        "scoring": getattr(settings, "CELERY_SCORING_QUEUE", "") or f"{default}.scoring",
    }


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router (CELERY_TASK_ROUTES): routing.* and scoring.* tasks to their app's queue,
    derived from the default queue when a message is sent (so a test or bench that points the
    default queue somewhere private moves the other two with it)."""
    app_label = name.split(".", 1)[0]
    if app_label in ("routing", "scoring") and name not in DEFAULT_QUEUE_TASKS:
        return {"queue": queues()[app_label]}
    return None


# --- the doorbell: queue a task after the commit, never fail the caller because the broker is away --------

log = logging.getLogger("leadportal.queue")
# After a failed send, skip the broker for this long: a request during a Redis outage does not wait
# for another connection timeout. The work is durable in the database (pending rows, MQLs without an
# assignment, unsent notifications); the reconciler (loop.tasks.reconcile_task) rings again.
BROKER_PAUSE_S = 5.0
_broker_down_until = 0.0


def broker_errors() -> tuple[type[BaseException], ...]:
    """What a send raises when the broker is down or unreachable (Redis and AMQP alike)."""
    from kombu.exceptions import OperationalError as KombuOperationalError

    errors: list[type[BaseException]] = [KombuOperationalError, OSError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


def _transient_errors() -> tuple[type[BaseException], ...]:
    from django.db import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, *broker_errors())


# What a task retries with backoff (autoretry_for): the database or the broker was away, a lock or
# statement timed out, a deadlock was broken. Anything else is a bug and fails the task.
TRANSIENT_ERRORS = _transient_errors()


class RetryOptions(TypedDict):
    """The retry options a task module passes to each of its tasks (`@shared_task(..., **RETRY)`), typed
    so that mypy checks them against shared_task's signature."""

    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    max_retries: int


def transient_retry(*, backoff_max: int) -> RetryOptions:
    """Retry TRANSIENT_ERRORS up to 8 times, backing off exponentially from 1 second to at most
    `backoff_max` seconds (each task module picks its cap)."""
    return {"autoretry_for": TRANSIENT_ERRORS, "retry_backoff": 1, "retry_backoff_max": backoff_max, "max_retries": 8}


def send(task, *args, **kwargs) -> bool:
    """`task.delay(*args, **kwargs)` unless the broker is down: then log, return False and let the
    reconciler do it later. Only broker errors are swallowed."""
    global _broker_down_until
    if not app.conf.task_always_eager and time.monotonic() < _broker_down_until:
        return False
    try:
        task.delay(*args, **kwargs)
    except broker_errors() as exc:
        from kombu.exceptions import OperationalError as KombuOperationalError

        # Eager (tests, `make run` without a broker), delay() runs the task itself: only a publish
        # error is the broker's; anything else the task raised is a bug and propagates.
        if app.conf.task_always_eager:
            if not isinstance(exc, KombuOperationalError):
                raise
        else:
            _broker_down_until = time.monotonic() + BROKER_PAUSE_S
        log.warning("Broker unavailable (%s: %s); %s left to the reconciler", type(exc).__name__, exc, task.name)
        return False
    return True


def reset_broker_pause() -> None:
    """Forget an earlier send failure (tests that bring a broker back, or point at another one)."""
    global _broker_down_until
    _broker_down_until = 0.0


def enqueue(task, *args, **kwargs) -> None:
    """Queue `task` once the current transaction commits (at once outside one), through `send`.
    The caller must have recorded the work durably in that transaction: this is only the doorbell."""
    transaction.on_commit(lambda: send(task, *args, **kwargs))
