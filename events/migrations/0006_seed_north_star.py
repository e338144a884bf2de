"""Seed the north-star rules and settings: user-agent patterns, the spec's
milestones, the DAU/MAU targets, the singleton state rows; and fill the real-user
cache from whatever events already exist."""

import datetime

from django.db import migrations

# pattern, reason, description. Case-insensitive; the subset both Python's re and
# PostgreSQL's ~* understand (no \b, no named groups).
USER_AGENT_PATTERNS = [
    ("curl/", "automation_client", "curl from a terminal"),
    ("wget", "automation_client", "GNU Wget"),
    ("python-requests", "automation_client", "Python requests"),
    ("httpie", "automation_client", "HTTPie"),
    ("go-http-client", "automation_client", "Go net/http"),
    ("python-urllib|aiohttp|python-httpx|okhttp|node-fetch|postmanruntime", "automation_client", "Other HTTP libraries"),
    ("headlesschrome|phantomjs|puppeteer|playwright|selenium|slimerjs", "bot", "Headless browsers"),
    (
        "googlebot|bingbot|yandexbot|duckduckbot|baiduspider|applebot|slurp|facebookexternalhit|ahrefsbot|semrushbot",
        "bot",
        "Search and SEO crawlers",
    ),
    ("crawler|spider|[a-z]bot[/;) ]", "bot", "Anything that calls itself a bot, crawler or spider"),
]

# name, target date, users, max days (the spec's milestone table).
MILESTONES = [
    ("No users yet", datetime.date(2026, 2, 1), 0, None),
    ("First user signs up", datetime.date(2026, 2, 8), 1, None),
    ("5 active users", datetime.date(2026, 2, 15), 5, 1.0),
    ("10 paying users", datetime.date(2026, 3, 1), 10, 0.5),
    ("50 active users", datetime.date(2026, 3, 31), 50, 0.5),
]


def seed(apps, schema_editor):
    UserAgentPattern = apps.get_model("events", "UserAgentPattern")
    for pattern, reason, description in USER_AGENT_PATTERNS:
        UserAgentPattern.objects.get_or_create(pattern=pattern, defaults={"reason": reason, "description": description})
    Milestone = apps.get_model("events", "Milestone")
    if not Milestone.objects.exists():
        for order, (name, target_date, users, max_days) in enumerate(MILESTONES):
            Milestone.objects.create(name=name, target_date=target_date, users=users, max_days=max_days, order=order)
    apps.get_model("events", "NorthStarSettings").objects.get_or_create(pk=1)
    apps.get_model("events", "ClassificationState").objects.get_or_create(pk=1)
    apps.get_model("events", "AlertState").objects.get_or_create(pk=1)
    schema_editor.execute(
        """
        INSERT INTO ops_real_users (user_id, first_interaction_at, last_interaction_at)
        SELECT e.user_id, min(e.occurred_at), max(e.occurred_at)
        FROM ops_events e JOIN events_eventtype t ON t.name = e.event_type AND t.counts_as_real_interaction
        WHERE e.is_real AND e.user_id <> ''
        GROUP BY e.user_id
        ON CONFLICT (user_id) DO NOTHING
        """
    )


def unseed(apps, schema_editor):
    apps.get_model("events", "UserAgentPattern").objects.filter(pattern__in=[p[0] for p in USER_AGENT_PATTERNS]).delete()


class Migration(migrations.Migration):
    dependencies = [("events", "0005_north_star"), ("customers", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
