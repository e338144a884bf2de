"""Where alert webhooks may be sent. Plain Python (no Django), so settings can check
SLACK_WEBHOOK_URL at start and the sender can check again at send time."""

from __future__ import annotations

from urllib.parse import urlparse


def webhook_url_problem(url: str, *, allowed: list[str], insecure: list[str]) -> str | None:
    """Why a webhook URL may not be used, or None.

    HTTPS to a host in ``allowed`` (ALERT_WEBHOOK_ALLOWED_HOSTS, default hooks.slack.com), or
    HTTP/HTTPS to a host in ``insecure`` (ALERT_WEBHOOK_INSECURE_HOSTS, default empty: meant
    for a local receiver or a relay on a private network).
    """
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    allowed_hosts = {h.lower() for h in allowed}
    insecure_hosts = {h.lower() for h in insecure}
    if parsed.scheme == "https" and host in allowed_hosts | insecure_hosts:
        return None
    if parsed.scheme == "http" and host in insecure_hosts:
        return None
    return (
        f"webhook URL must be https:// on one of ALERT_WEBHOOK_ALLOWED_HOSTS ({', '.join(allowed) or 'none'}) "
        f"or http(s):// on one of ALERT_WEBHOOK_INSECURE_HOSTS ({', '.join(insecure) or 'none'}); "
        f"got {parsed.scheme or 'no scheme'}://{host or 'no host'}"
    )
