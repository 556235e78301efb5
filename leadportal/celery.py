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

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadportal.settings.local")

app = Celery("leadportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

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
