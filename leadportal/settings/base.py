"""Settings shared by every run mode; values come from the environment (django-environ).

Embedded default (nothing set): SQLite and Celery tasks run eagerly in-process.
DATABASE_URL → that database (PostgreSQL in production); REDIS_URL → Celery uses Redis and real workers.
"""

import logging
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from leadportal import logs

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    """A boolean from the environment; anything but true/false/yes/no/on/off/1/0 is an error
    (django-environ would quietly read "ture" as False)."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
# Rotating the key: the old one goes here (comma-separated) until sessions and reset links signed with
# it have expired; without it, a new key signs everyone out (README: Headers and production settings).
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = envbool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally, no CDN
    "django_htmx",
    "csp",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "django_countries",
    "leads",
    "scoring",
    "routing",
    "partners",
    "loop",
    "webhooks",  # outbound webhooks: subscriptions, the outbox, deliveries (WEBHOOK_* below)
    "imports",  # CSV import of leads (imports/)
    "axes",  # sign-in lockouts (AXES_* below)
    "accounts",  # the lockout page and password-reset limits
    "django_structlog",  # a task's message carries the ids of the request that queued it (LOGGING below)
]

MIDDLEWARE = [
    # First: every line of a request carries its request_id, every answer its X-Request-ID.
    "leadportal.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer, errors and 503s included (so outermost but one).
    "csp.middleware.CSPMiddleware",
    # Database down or stuck → 503 with Retry-After, never 500.
    "leadportal.middleware.DatabaseUnavailableMiddleware",
    # A NUL in the query string → 400 before any view (PostgreSQL cannot take it).
    "leadportal.middleware.UnstorableQueryMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: every line of a request carries its user_id (leadportal/logs.py).
    "leadportal.logs.UserIdMiddleware",
    # Personal data is never cached: signed-in pages and API answers get no-store.
    "leadportal.middleware.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A service's refusal (AppError) that no page view answered: its message, and back (leads/pages.py).
    "leads.pages.AppErrorMiddleware",
    # DEBUG's technical 404/500 pages for staff only; everyone else gets the styled ones (leads/pages.py).
    "leads.pages.FriendlyErrorsMiddleware",
    # Last: turns a login that django-axes refused into the lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leadportal.urls"
WSGI_APPLICATION = "leadportal.wsgi.application"
AUTH_USER_MODEL = "leads.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "leads.context_processors.dashboard_nav",
            ],
        },
    },
]


def database(url: str) -> dict:
    """The default database from its URL plus the environment's connection settings.

    On PostgreSQL every statement is bounded, so a stuck database makes a request fail fast (a 503,
    leadportal/middleware.py) instead of holding a web worker until the proxy gives up:
    DATABASE_STATEMENT_TIMEOUT (ms, default 15000) and DATABASE_LOCK_TIMEOUT (ms, default 5000); 0 is
    no limit. Workers that run long statements (a full rescoring's batches) get a longer statement
    timeout from `make run` / docker-compose.yml; migrations run with 0.
    DATABASE_POOL_MAX_SIZE > 0 turns on psycopg's connection pool (per process, needs psycopg[pool];
    persistent connections are then off: the pool keeps them).
    """
    db = env.db_url_config(url)
    db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # A health check is a SELECT 1 before every request; off unless a proxy drops idle connections.
    db["CONN_HEALTH_CHECKS"] = envbool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    if db["ENGINE"] == "django.db.backends.postgresql":
        options = db.setdefault("OPTIONS", {})
        statement_ms = env.int("DATABASE_STATEMENT_TIMEOUT", default=15_000)
        lock_ms = env.int("DATABASE_LOCK_TIMEOUT", default=5_000)
        given = options.get("options", "")
        options["options"] = f"{given} -c statement_timeout={statement_ms} -c lock_timeout={lock_ms}".strip()
        options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
        pool_max = env.int("DATABASE_POOL_MAX_SIZE", default=0)
        if pool_max > 0:
            options["pool"] = {
                "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=1), pool_max),
                "max_size": pool_max,
                # A request waits this long for a free connection, then gets a 503 (PoolTimeout).
                "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
            }
            db["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
            db["CONN_HEALTH_CHECKS"] = False
    return db


# Unset or empty: the embedded SQLite file (as `make run` decides between runserver and gunicorn).
DATABASES = {"default": database(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # a batch of 1,000 events fits
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Idle timeout: a session unused for this long is over (ASVS L2: 30 minutes); every request
# renews it (Django saves the session and its expiry on each request), so a rep working the queue
# stays signed in.
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True

# Content-Security-Policy (django-csp): everything from our own origin, no inline script or style
# (templates keep styles in static/css and behaviour in static/js; htmx runs without eval and
# without its injected <style>, see base.html's htmx-config), no framing, forms post only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in protection (django-axes, accounts/) ------------------------------
# The lockout is checked first, before any password is hashed: a locked guesser costs no CPU.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT wrong passwords within LOGIN_COOLOFF_MINUTES lock the client address (any
# username) and, separately, the username (from any address), on /accounts/login/ and /admin/login/.
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=5))
# Attempts while locked are not recorded, so a lock ends LOGIN_COOLOFF_MINUTES after the failure that
# set it even while the guesser keeps trying: the real user is never kept out for longer than that.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful sign-in does not wipe the failures: it would clear its address too, so anyone with an
# account of their own could guess at another one without end (9 wrong, sign in as themselves, again).
AXES_RESET_ON_SUCCESS = False
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # the database, not Redis: it may be away
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.addresses.client_ip"
# 0: the client address is REMOTE_ADDR. n: n proxies of ours append to X-Forwarded-For in front of
# gunicorn; the address is the n-th entry from the right (accounts/addresses.py). Never more than
# there are, or clients choose their own address.
LOGIN_TRUSTED_PROXIES = env.int("LOGIN_TRUSTED_PROXIES", default=0)
# Password-reset e-mails (accounts/services.py, counted in the database): per e-mail address and per
# client address, an hour each.
PASSWORD_RESET_PER_EMAIL = env.int("PASSWORD_RESET_PER_EMAIL", default=3)
PASSWORD_RESET_PER_ADDRESS = env.int("PASSWORD_RESET_PER_ADDRESS", default=10)

EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Development: with a folder set, e-mails are written there as files (one per connection), so a flow
# with links (the double opt-in) can be followed end to end.
EMAIL_FILE_PATH = env("DJANGO_EMAIL_FILE_PATH", default="")
if EMAIL_FILE_PATH:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
# How long a double opt-in confirmation link stays valid (leads.consent); unsubscribe links never expire.
CONSENT_LINK_MAX_AGE_DAYS = env.int("CONSENT_LINK_MAX_AGE_DAYS", default=7)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="LeadPortal <noreply@leadportal.local>")
# Where the portal is reached from outside: the links in e-mails (leads.mail) start with it.
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated API call gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "leads.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": ["leads.api.parsers.BoundedJSONParser"],
    # Partners get 404 from the internal API (the API root included); their own views say so too.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "leads.api.permissions.InternalOnly",
        "leads.api.scopes.TokenHasScope",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "leads.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"user": env("API_THROTTLE_USER", default="100000/hour")},
    "DEFAULT_THROTTLE_CLASSES": ["leads.api.throttling.FixedWindowUserRateThrottle"],
    "EXCEPTION_HANDLER": "leads.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Days a new API token is valid (leads.tokens); 0 = tokens never expire unless given a date.
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=365)

SPECTACULAR_SETTINGS = {
    "TITLE": "LeadPortal API",
    "DESCRIPTION": "Capture leads, send events, sync and move leads through their lifecycle.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "leads.models.Stage",
        "GradeEnum": "leads.models.Grade",
        "ActivityTypeEnum": "leads.models.ActivityType",
        "EventTypeEnum": "leads.api.serializers.EVENT_TYPES",
        "FeedbackStatusEnum": "partners.models.FeedbackStatus",
        "FeedbackReasonEnum": "partners.models.FeedbackReason",
        "LostReasonEnum": "leads.models.LostReason",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Shared by every process when Redis is there (API rate limits count across gunicorn workers).
REDIS_URL = env("REDIS_URL", default="")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Redis away must not hold a request: the throttle (its only user) then fails open.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Celery -----------------------------------------------------------------
# CELERY_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672//) overrides REDIS_URL as the broker.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without a broker, tasks run in-process right after the commit that queued them.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://"
# A dead broker must not hold a request: a send gives up after about a second (leadportal.celery.send
# then leaves the work to the reconciler, which finds it in the database).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis: an unacknowledged message (its worker was killed) returns after this many seconds. The
    # reconciler does not wait for it: it finds the work in the database within LOOP_STALE_AFTER.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="leadportal")
# Routing and scoring have queues of their own (leadportal/celery.py): by default the default
# queue's name + ".routing" / ".scoring"; workers must consume all three (see `make run`).
CELERY_ROUTING_QUEUE = env("CELERY_ROUTING_QUEUE", default="")
CELERY_SCORING_QUEUE = env("CELERY_SCORING_QUEUE", default="")
CELERY_TASK_ROUTES = ("leadportal.celery.route_task",)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the task to be redone
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Leads per batch of a full rescoring: one transaction each, and the unit a crash redoes.
SCORING_RESCORE_BATCH = env.int("SCORING_RESCORE_BATCH", default=20_000)

CELERY_BEAT_SCHEDULE = {
    "scoring-decay-daily": {"task": "scoring.tasks.decay_all", "schedule": crontab(hour=2, minute=0)},
    "routing-enforce-sla": {"task": "routing.tasks.enforce_sla", "schedule": 60.0},
    "routing-retry-unassigned": {"task": "routing.tasks.retry_unassigned", "schedule": 300.0},
    # In-app "SLA soon due" notices (routing.tell.sla_soon): once per assignment, whatever the runs.
    "routing-notify-sla-soon": {"task": "routing.tasks.notify_sla_soon", "schedule": 60.0},
    "partners-chase-feedback": {"task": "partners.tasks.chase_feedback", "schedule": 3600.0},
    # The keys that keep an e-mail from going out twice are kept a week (leads.mail.SENT_KEYS_KEPT).
    "leads-prune-sent-emails": {"task": "leads.tasks.prune_sent_emails", "schedule": crontab(hour=3, minute=0)},
    # The loop's reconciler (loop/reconciler.py): finds and repairs drift, bounded work per run.
    # Every 30 s with work stale after 30 s: a dead worker's work is picked up within about a minute.
    "loop-reconcile": {
        "task": "loop.tasks.reconcile_task",
        "schedule": env.float("LOOP_RECONCILE_EVERY", default=30.0),
        "options": {"expires": 25},
    },
    # CSV imports whose worker died (no batch for IMPORT_STALE_AFTER) go on from their cursor.
    "imports-resume-stalled": {
        "task": "imports.tasks.import_jobs_resume",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "loop-reconcile-nightly": {
        "task": "loop.tasks.reconcile_task",
        "schedule": crontab(hour=3, minute=30),
        "kwargs": {"full": True},
    },
    # Webhook deliveries that are due: retries, and those whose bell was lost (broker down).
    "webhooks-send-due": {
        "task": "webhooks.tasks.send_due",
        "schedule": env.float("WEBHOOK_SEND_DUE_EVERY", default=15.0),
        "options": {"expires": 12},
    },
    # Webhook events (and their delivery log) are kept WEBHOOK_KEEP_DAYS, then pruned.
    "webhooks-prune": {"task": "webhooks.tasks.prune", "schedule": crontab(hour=3, minute=15)},
}
# CSV imports (imports/): the largest file and the most rows one upload may have (a clear 400 beyond),
# the rows per batch (one transaction, and the unit a killed worker redoes), and how long a running
# import may go without finishing a batch before imports.tasks.import_jobs_resume picks it up.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=200_000)
IMPORT_BATCH = env.int("IMPORT_BATCH", default=1000)
IMPORT_STALE_AFTER = env.float("IMPORT_STALE_AFTER", default=60.0)
# Work older than this (seconds) that is still not done counts as drift and is redone by the reconciler:
# pending rescoring, an MQL without an assignment, a full run that stopped moving, an unsent e-mail.
LOOP_STALE_AFTER = env.float("LOOP_STALE_AFTER", default=30.0)
# Leads whose stored score the reconciler recomputes with the engine on each run (all of them nightly).
LOOP_SAMPLE = env.int("LOOP_SAMPLE", default=200)
# Leads that the kinds which would scan every lead look at per run, in turn (all of them nightly).
LOOP_WINDOW = env.int("LOOP_WINDOW", default=10_000)

# --- Outbound webhooks (webhooks/) ---------------------------------------------
# Seconds to connect to a receiver and to wait for its answer; a slower one is a failed attempt.
WEBHOOK_TIMEOUT = tuple(env.list("WEBHOOK_TIMEOUT", cast=float, default=[3.0, 5.0]))
# A failing delivery is retried with backoff for this long after its first attempt, then it has failed.
WEBHOOK_RETRY_FOR_HOURS = env.float("WEBHOOK_RETRY_FOR_HOURS", default=24.0)
# Failed attempts in a row (any of its deliveries) that pause a subscription.
WEBHOOK_PAUSE_AFTER = env.int("WEBHOOK_PAUSE_AFTER", default=20)
# Networks (comma-separated CIDRs) webhooks may call although they are loopback, private or link-local.
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
# Seconds a process keeps the subscriptions (another process's change is seen after this at most).
WEBHOOK_CACHE_SECONDS = env.float("WEBHOOK_CACHE_SECONDS", default=10.0)
# Days an event and its deliveries are kept once nothing is left to send (daily prune).
WEBHOOK_KEEP_DAYS = env.int("WEBHOOK_KEEP_DAYS", default=30)

# --- Logs (leadportal/logs.py) ------------------------------------------------
# One line per event on stderr (production: stdout), JSON (LOG_FORMAT=json, production's default) or text
# (console, key=value), each with the request_id, user_id, task_id/task_name and lead_id it belongs to.
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="console")
logs.configure_structlog()
LOGGING = logs.logging_settings(fmt=LOG_FORMAT, level=LOG_LEVEL)
# No line per request at INFO (the capture path is benchmarked; that is an access log's job): a
# request's request_finished is DEBUG. A 4xx or 5xx gets Django's own line (logger django.request:
# WARNING, or ERROR with the traceback), with the ids. No client addresses, no query strings.
# A task queued from a request carries its request_id and user_id in the message's headers; the task's
# own ids are bound by leadportal.logs.task_started. task_enqueued is DEBUG (one per capture).
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_CELERY_TASK_START_LOG_LEVEL = logging.DEBUG
