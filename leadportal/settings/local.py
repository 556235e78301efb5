"""Developer machine / `make run`: debug on, a throwaway secret key."""

from .base import *  # noqa: F403
from .base import env, envbool

DEBUG = envbool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-only-not-secret")

# Serve static files straight from the apps (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Eager tasks would log every success at INFO; keep the console for what matters.
LOGGING = {**LOGGING, "loggers": {"celery.app.trace": {"level": "WARNING"}}}  # noqa: F405
