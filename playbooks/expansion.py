"""The seeded expansion playbooks: accounts whose use grew strongly, and what to do about it.

Defined once here, read by the migration that seeds them (and by tests/conftest.py after a
flush); the founder edits them in admin afterwards like every seeded playbook. Their conditions
are written in roles ("core_value events"), so they match in any product, with the thresholds
of customers/metrics/thresholds.py. Two playbooks because a playbook's conditions all have to
hold, and either kind of growth makes a candidate.
"""

from __future__ import annotations

from typing import Any

from customers.metrics.thresholds import (
    EXPANSION_GROWTH_RATIO,
    EXPANSION_MIN_ACTIVE_USERS,
    EXPANSION_MIN_CORE_VALUE_EVENTS,
    EXPANSION_WINDOW_DAYS,
)

_DAYS = EXPANSION_WINDOW_DAYS
_SUCCESS = (
    "A conversation about their growth within 14 days (a bigger plan, more seats, or a named reason not to), "
    "recorded as expanded or retained."
)
_ACTIONS = [
    (
        "Congratulate the champion and ask what changed",
        "day 0",
        "email",
        "Hi {first name}, I noticed a lot more of your team is using us over the last few weeks: great to see. "
        "What changed? A new team, a new project, a new way of working? I'd love to hear, and to make sure the "
        "setup still fits how you work now.",
    ),
    (
        "Offer a 20-minute review of the account",
        "within 1 week",
        "call",
        "Growing use usually means new people who were never onboarded and limits that will start to bite. Can we "
        "take 20 minutes to look at who uses it now, what they need, and whether your plan still fits?",
    ),
    (
        "Propose the plan that fits and record the outcome",
        "day 14",
        "internal",
        "Their use is still growing: propose the plan or seats that fit and record expanded when they take it. "
        "No interest: record retained, and note what they told you about why.",
    ),
]

EXPANSION_PLAYBOOKS: list[dict[str, Any]] = [
    {
        "id": "expansion_users",
        "name": "Expansion: more people using it",
        "conditions": [
            ("active_users_growth", "", ">=", EXPANSION_GROWTH_RATIO, _DAYS),
            ("active_users", "", ">=", EXPANSION_MIN_ACTIVE_USERS, _DAYS),
        ],
        "success_metric": _SUCCESS,
        "notes": (
            f"Active users over the last {_DAYS} days grew to at least {EXPANSION_GROWTH_RATIO:g}x the "
            f"{_DAYS} days before. More people means more value and, often, a plan that no longer fits: the best "
            "moment to talk about growth is while it happens, led by what they need, not by the price list."
        ),
        "actions": _ACTIONS,
    },
    {
        "id": "expansion_core_value",
        "name": "Expansion: core-value use growing",
        "conditions": [
            ("event_count_growth", "core_value events", ">=", EXPANSION_GROWTH_RATIO, _DAYS),
            ("event_count", "core_value events", ">=", EXPANSION_MIN_CORE_VALUE_EVENTS, _DAYS),
        ],
        "success_metric": _SUCCESS,
        "notes": (
            f"{{core_action}} over the last {_DAYS} days grew to at least {EXPANSION_GROWTH_RATIO:g}x the "
            f"{_DAYS} days before. They rely on the product more than they did: ask what they use it for now, "
            "and whether the plan still fits."
        ),
        "actions": _ACTIONS,
    },
]


def expansion_playbooks_seed(apps: Any, schema_editor: Any) -> None:
    """Create each expansion playbook that does not exist yet (never overwrites an edit)."""
    Playbook = apps.get_model("playbooks", "Playbook")
    TriggerCondition = apps.get_model("playbooks", "TriggerCondition")
    PlaybookAction = apps.get_model("playbooks", "PlaybookAction")
    for spec in EXPANSION_PLAYBOOKS:
        if Playbook.objects.filter(pk=spec["id"]).exists():
            continue
        playbook = Playbook.objects.create(
            id=spec["id"],
            name=spec["name"],
            # Required by the model, ignored for expansion: a match raises no level.
            risk_level="medium",
            purpose="expansion",
            success_metric=spec["success_metric"],
            notes=spec["notes"],
            enabled=True,
        )
        for order, (metric, event_types, operator, threshold, window_days) in enumerate(spec["conditions"], 1):
            TriggerCondition.objects.create(
                playbook=playbook,
                metric=metric,
                event_types=event_types,
                operator=operator,
                threshold=threshold,
                window_days=window_days,
                order=order,
            )
        for order, (step, timing, channel, talk_track) in enumerate(spec["actions"], 1):
            PlaybookAction.objects.create(
                playbook=playbook, order=order, step=step, timing=timing, channel=channel, talk_track=talk_track
            )


def expansion_playbooks_unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("playbooks", "Playbook").objects.filter(pk__in=[p["id"] for p in EXPANSION_PLAYBOOKS]).delete()
