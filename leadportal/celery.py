"""The Celery application. Workers: `celery -A leadportal worker`, beat: `celery -A leadportal beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadportal.settings.local")

app = Celery("leadportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
