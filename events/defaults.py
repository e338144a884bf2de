"""The events app's defaults, defined once: the default vocabulary, the automation user agents, the
north star's milestones and targets.

A fresh install's migrations seed exactly this (tests/test_defaults.py compares a freshly migrated
database with it); the test suite restores it after a flush and the Vocabulary page's "examples" are
its names. The migrations that first seeded these rows stay as they were written (an older install
upgrades through them); a change to a default here needs a migration that applies it, and the test
fails until there is one.

The vocabulary is the source documents' product's (incidents, replays, exports, certificates): the
example a founder replaces with their own names (every seeded type is marked ``is_example`` until saved).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class DefaultType:
    """One event type of the default vocabulary (fields as on ``events.EventType``)."""

    name: str
    category: str
    description: str
    label: str = ""
    core_value: bool = False
    friction_signal: str = ""
    friction_weight: float = 0.0
    engagement_weight: float = 0.0
    north_star_role: str = ""
    page_view: bool = False
    counts_as_real_interaction: bool = False


@dataclass(frozen=True)
class DefaultMilestone:
    name: str
    target_date: date
    users: int
    max_days: float | None  # the days-since threshold the milestone allows; None: no limit


# The friction weights are each type's friction_weight; the core value, the north-star roles and the
# real-interaction types are its roles (docs/ARCHITECTURE.md, "The registry").
DEFAULT_VOCABULARY: tuple[DefaultType, ...] = (
    DefaultType(
        "INCIDENT_VIEWED_NO_ACTION",
        "friction",
        "Viewed an incident but took no action",
        friction_signal="hesitation",
        friction_weight=1.0,
    ),
    DefaultType("REPLAY_STARTED", "intent", "Started a replay", friction_signal="intent"),
    DefaultType(
        "REPLAY_ABORTED", "friction", "Cancelled a replay mid-flow", friction_signal="friction", friction_weight=3.0
    ),
    DefaultType(
        "REPLAY_FAILED", "friction", "Replay failed with an error", friction_signal="system_issue", friction_weight=2.0
    ),
    DefaultType("EXPORT_STARTED", "intent", "Started an export", friction_signal="intent"),
    DefaultType("EXPORT_ABORTED", "friction", "Cancelled an export", friction_signal="friction", friction_weight=2.5),
    DefaultType("EXPORT_FAILED", "friction", "Export failed", friction_signal="system_issue", friction_weight=2.0),
    DefaultType(
        "POLICY_BLOCK_REPEAT",
        "friction",
        "The same policy blocked repeatedly",
        friction_signal="blocked",
        friction_weight=2.0,
    ),
    DefaultType("SESSION_STARTED", "engagement", "Started a session", friction_signal="engagement"),
    DefaultType("SESSION_ENDED", "engagement", "Ended a session normally", friction_signal="engagement"),
    DefaultType(
        "SESSION_IDLE_TIMEOUT",
        "friction",
        "Went idle and the session timed out",
        friction_signal="friction",
        friction_weight=1.5,
    ),
    DefaultType(
        "INCIDENT_VIEWED", "value", "Investigated an incident (a view)", core_value=True, engagement_weight=0.2
    ),
    DefaultType("REPLAY_COMPLETED", "value", "Completed a replay", core_value=True, engagement_weight=0.3),
    DefaultType(
        "EXPORT_COMPLETED", "value", "Completed an export", engagement_weight=0.5, counts_as_real_interaction=True
    ),
    DefaultType("CERT_GENERATED", "value", "Generated a certificate"),
    DefaultType("CERT_DOWNLOADED", "value", "Downloaded a certificate"),
    DefaultType("API_CALL", "engagement", "Called the product's API"),
    DefaultType(
        "SIGNUP", "lifecycle", "Signed up with an email", north_star_role="signup", counts_as_real_interaction=True
    ),
    DefaultType(
        "LOGIN", "lifecycle", "Logged in (session created)", north_star_role="login", counts_as_real_interaction=True
    ),
    DefaultType("PAGE_VIEW", "lifecycle", "Viewed a page", page_view=True),
    DefaultType(
        "CORE_ACTION",
        "lifecycle",
        "Used the product's core action (a coach call, an agent run)",
        north_star_role="core_action",
        counts_as_real_interaction=True,
    ),
    DefaultType(
        "DECISION",
        "lifecycle",
        "Viewed output and made a decision",
        north_star_role="decision",
        counts_as_real_interaction=True,
    ),
    DefaultType(
        "FEEDBACK", "lifecycle", "Shared feedback", north_star_role="feedback", counts_as_real_interaction=True
    ),
    DefaultType("POLICY_CHANGED", "change", "A policy was changed", label="policy change"),
    DefaultType("MODEL_SWITCHED", "change", "The model was switched", label="model switch"),
    DefaultType("RATE_LIMIT_CHANGED", "change", "A rate limit was changed", label="rate limit change"),
    DefaultType("PLAN_CHANGED", "change", "The plan was changed", label="plan change"),
)

# pattern, reason, description. Case-insensitive; the subset both Python's re and PostgreSQL's ~*
# understand (no \b, no named groups).
AUTOMATION_USER_AGENTS: tuple[tuple[str, str, str], ...] = (
    ("curl/", "automation_client", "curl from a terminal"),
    ("wget", "automation_client", "GNU Wget"),
    ("python-requests", "automation_client", "Python requests"),
    ("httpie", "automation_client", "HTTPie"),
    ("go-http-client", "automation_client", "Go net/http"),
    (
        "python-urllib|aiohttp|python-httpx|okhttp|node-fetch|postmanruntime",
        "automation_client",
        "Other HTTP libraries",
    ),
    ("headlesschrome|phantomjs|puppeteer|playwright|selenium|slimerjs", "bot", "Headless browsers"),
    (
        "googlebot|bingbot|yandexbot|duckduckbot|baiduspider|applebot|slurp|facebookexternalhit|ahrefsbot|semrushbot",
        "bot",
        "Search and SEO crawlers",
    ),
    ("crawler|spider|[a-z]bot[/;) ]", "bot", "Anything that calls itself a bot, crawler or spider"),
)

MILESTONES: tuple[DefaultMilestone, ...] = (
    DefaultMilestone("No users yet", date(2026, 2, 1), users=0, max_days=None),
    DefaultMilestone("First user signs up", date(2026, 2, 8), users=1, max_days=None),
    DefaultMilestone("5 active users", date(2026, 2, 15), users=5, max_days=1.0),
    DefaultMilestone("10 paying users", date(2026, 3, 1), users=10, max_days=0.5),
    DefaultMilestone("50 active users", date(2026, 3, 31), users=50, max_days=0.5),
)
NORTH_STAR_TARGETS = {"dau_target": 10, "mau_target": 50}


def event_type_defaults(default: DefaultType) -> dict[str, Any]:
    """An ``EventType`` row's fields for one default type (seeded types are examples until saved)."""
    return {**asdict(default), "is_example": True}


def events_defaults_seed(apps: Any) -> None:
    """Create the defaults that are missing (an empty table), with the models of ``apps`` (the
    project's registry, or a migration's historical one)."""
    EventType = apps.get_model("events", "EventType")
    if not EventType.objects.exists():
        EventType.objects.bulk_create([EventType(**event_type_defaults(t)) for t in DEFAULT_VOCABULARY])
    UserAgentPattern = apps.get_model("events", "UserAgentPattern")
    for pattern, reason, description in AUTOMATION_USER_AGENTS:
        UserAgentPattern.objects.get_or_create(pattern=pattern, defaults={"reason": reason, "description": description})
    Milestone = apps.get_model("events", "Milestone")
    if not Milestone.objects.exists():
        Milestone.objects.bulk_create([Milestone(**asdict(m), order=order) for order, m in enumerate(MILESTONES)])
    apps.get_model("events", "NorthStarSettings").objects.get_or_create(pk=1, defaults=NORTH_STAR_TARGETS)
    apps.get_model("events", "ClassificationState").objects.get_or_create(pk=1)
    apps.get_model("events", "AlertState").objects.get_or_create(pk=1)
