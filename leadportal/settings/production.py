"""Production (docker compose, gunicorn): refuses to start without a secret key and a database."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import database, env, envbool

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
DEBUG = False
DATABASES = {"default": database(env.str("DATABASE_URL"))}  # no SQLite default here
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", default=True)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
