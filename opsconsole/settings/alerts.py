"""The north star's outputs: the /metrics exporter, the alert channels (Slack, email) and the digests' links."""

from __future__ import annotations

from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from opsconsole.settings.environment import DEBUG, env

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
# backend, configured by EMAIL_URL (settings/__init__.py).
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
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
