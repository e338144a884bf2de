"""The project's own `manage.py check --deploy` warnings, beside Django's (registered in apps.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

# Shorter than this, a token can be guessed by trying (what `opsconsole.dotenv` generates is 43).
METRICS_TOKEN_MIN_LENGTH = 32


@register(Tags.security, deploy=True)
def metrics_exposure_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """/metrics holds the user counts and the at-risk counts: anyone who can reach it reads them."""
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        return [
            Warning(
                "GET /metrics is open to anyone who can reach the console: it tells user counts and at-risk counts.",
                hint="Set METRICS_BEARER_TOKEN (python -m opsconsole.dotenv --production ENV_FILE generates one) "
                "and give it to Prometheus; METRICS_PUBLIC=1 only if a firewall or the proxy closes /metrics.",
                id="opsconsole.W001",
            )
        ]
    if len(token) < METRICS_TOKEN_MIN_LENGTH:
        return [
            Warning(
                f"METRICS_BEARER_TOKEN is {len(token)} characters: short enough to be guessed.",
                hint=f"Use at least {METRICS_TOKEN_MIN_LENGTH} random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))').",
                id="opsconsole.W002",
            )
        ]
    return []
