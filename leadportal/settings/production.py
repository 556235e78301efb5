"""Production (docker compose, gunicorn): refuses to start without a strong secret key and a database;
HTTPS only (redirect, HSTS, secure cookies), each settable for a proxy that terminates TLS."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOG_LEVEL, SECRET_KEY_FALLBACKS, database, env, envbool, logs


def strong_secret(name: str, value: str) -> str:
    """The key as given, unless Django's own deploy check (security.W009/W025) would call it weak: then
    production does not start (a guessable key forges sessions and password-reset links)."""
    if (
        len(value) < SECRET_KEY_MIN_LENGTH
        or len(set(value)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or value.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"{name} is too weak: at least {SECRET_KEY_MIN_LENGTH} characters, {SECRET_KEY_MIN_UNIQUE_CHARACTERS} "
            "different ones, not Django's 'django-insecure-' kind. Make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    return value


SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")
strong_secret("DJANGO_SECRET_KEY", SECRET_KEY)
for _fallback in SECRET_KEY_FALLBACKS:
    strong_secret("DJANGO_SECRET_KEY_FALLBACKS (one of its keys)", _fallback)
DEBUG = False
DATABASES = {"default": database(env.str("DATABASE_URL"))}  # no SQLite default here
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Plain http is redirected to https. A proxy that terminates TLS must set X-Forwarded-Proto (above);
# one that redirects http itself may turn this off (DJANGO_SSL_REDIRECT=false; check --deploy then
# warns W008). /healthz stays on http for the container's own health check (docker-compose.yml).
SECURE_SSL_REDIRECT = envbool("DJANGO_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS on every https answer: browsers then refuse plain http to this host for a year.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading puts the whole domain into the browsers' built-in list, hard to undo and only taken for a
# registrable domain: the domain's owner decides it, not this app. Off by default, and then the
# deploy check's reminder about it (W021) is silenced; DJANGO_HSTS_PRELOAD=true sends the directive.
SECURE_HSTS_PRELOAD = envbool("DJANGO_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", default=True)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# JSON lines on stdout for the log collector (LOG_FORMAT=console for a person reading them).
LOGGING = logs.logging_settings(fmt=env("LOG_FORMAT", default="json"), level=LOG_LEVEL, stream="stdout")

# Errors to Sentry only when a DSN is given (sentry-sdk is not even imported otherwise); no personal
# data is sent (leadportal/sentry.py). Traces are off unless SENTRY_TRACES_SAMPLE_RATE says a share.
if SENTRY_DSN := env("SENTRY_DSN", default=""):
    from leadportal.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default="production"),
        release=env("SENTRY_RELEASE", default="") or None,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
