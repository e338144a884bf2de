"""The playbooks app's defaults, defined once: the five seeded founder playbooks (risk), the two
expansion playbooks (accounts whose use grew strongly), their trigger
conditions (written in roles, so each matches in any product's vocabulary) and their steps with talk
tracks (in the product's words: ``{core_action}``, ``{friction_action}``... are filled from the roles'
labels, customers/metrics/texts.py).

A fresh install's migrations seed exactly this (tests/test_defaults.py); founders edit the rows in
admin afterwards and nothing here overwrites an edit. The migrations that first seeded and then
reworded them stay as written, for older installs to upgrade through.

A condition is (metric, event_types, operator, threshold, window_days), from the catalogue in
playbooks/conditions.py; a step is (step, timing, channel, talk_track).
"""

from __future__ import annotations

from typing import Any

from customers.metrics.thresholds import (
    EXPANSION_GROWTH_RATIO,
    EXPANSION_MIN_ACTIVE_USERS,
    EXPANSION_MIN_CORE_VALUE_EVENTS,
    EXPANSION_WINDOW_DAYS,
)

DEFAULT_PLAYBOOKS: list[dict[str, Any]] = [
    {
        "id": "abandonment",
        "name": "Abandoned workflows",
        "risk_level": "high",
        "conditions": [("event_count", "friction events weighing 2+", ">=", 3.0, 7)],
        "success_metric": "{core_action} within 7 days, and {friction_action} back under one a week for the "
        "following month.",
        "notes": "Someone started the core workflow and gave up, more than once. They wanted the value and the "
        "product got in the way: too slow, a confusing step, or a missing input. This is the warmest "
        "at-risk customer you have, because intent is proven. Fix it for them by hand first; the product "
        "fix comes from what you learn.",
        "actions": [
            (
                "Reconstruct what happened",
                "day 0",
                "internal",
                "On the customer page, read the timeline around each {friction_action}: what they started, how "
                "long before they gave up, and whether {failure_action} came just before.",
            ),
            (
                "Offer to do it for them",
                "within 24h",
                "email",
                "Hi {first name}, it looks like a few things were started and abandoned on your account this "
                "week. Usually that means it was too slow or asked for something you didn't have to hand. Was "
                "it one of those? Tell me what you were trying to get done and I'll do it with you and send you "
                "the result today.",
            ),
            (
                "20-minute working session",
                "within 48h",
                "video_call",
                "Let's do the next one together: bring something you actually need done and we'll finish it on "
                "the call. I'll take notes on every step that felt slow or unclear.",
            ),
            (
                "Check for completions",
                "day 7",
                "internal",
                "{core_action} since the session? Record retained. Still giving up at the same step? File it as "
                "a product bug with the session ids and tell the customer when it ships.",
            ),
        ],
    },
    {
        "id": "engagement_decay",
        "name": "Engagement decay",
        "risk_level": "critical",
        "conditions": [("stickiness_delta", "", "<", 0.5, None)],
        "success_metric": "stickiness_delta back above 0.8 within 14 days of the call.",
        "notes": "This week's engagement is less than half of their usual weekly level over 30 days. Something "
        "changed: a reorg, a competitor, a champion who left, or something we shipped. Check the customer "
        "page's recent changes and decay correlation first; if a change of ours lines up with the drop, say "
        "so on the call. Speed matters more than polish here: call the same day.",
        "actions": [
            (
                "Look for what changed",
                "day 0",
                "internal",
                "Read the customer page before calling: recent changes, the decay correlation, whether the "
                "champion went silent, and the stickiness chart (sudden cliff or slow slide?).",
            ),
            (
                "Founder call, same day",
                "day 0",
                "call",
                "Hi {first name}, it's {your name}, the founder. Your team's usage dropped by more than half "
                "this week compared with your usual month, and I wanted to ask you directly rather than guess. "
                "Did something change on your side, or did we break something? ... What would make this worth "
                "your team's time again?",
            ),
            (
                "Short personal email if the call doesn't happen",
                "within 24h",
                "email",
                "Subject: quick question about last week. Your team used us about half as much as usual this "
                "week. If something changed (a reorg, a new tool, something we did) I'd really like to know. "
                "Reply with one line, or pick a 15-minute slot here: {link}.",
            ),
            (
                "Deliver what you promised",
                "day 3",
                "email",
                "Here's {what you promised}, live on your account now. I'll check in again next week to see "
                "whether it helped.",
            ),
            (
                "Check the trend and record the outcome",
                "day 14",
                "internal",
                "stickiness_delta above 0.8 on the customer page? Record retained (or expanded if they added "
                "users). Still below 0.5? Record no_response or churned and write down what you learned.",
            ),
        ],
    },
    {
        "id": "legal_only",
        "name": "One side feature only",
        "risk_level": "medium",
        "conditions": [
            ("event_count", "side_value events", ">=", 1.0, 30),
            ("event_count", "engaged events", "==", 0.0, 30),
        ],
        "success_metric": "A first {core_action} within 30 days, from someone other than the person who uses "
        "{side_action}.",
        "notes": "They bought for {side_action} and use nothing else. Stable until renewal, when someone asks what "
        "else it does and nobody knows. The person using {side_action} is often not the one the core value "
        "({core_action}) is for. Your job is an introduction, not a pitch.",
        "actions": [
            (
                "Thank the main user and ask who else could use it",
                "day 0",
                "email",
                "Hi {first name}, I see your team uses {side_action} regularly, thank you. Quick question: who "
                "on your side would get the most out of {core_action}? I'd love to give them a 10-minute tour.",
            ),
            (
                "Tour with one real example from their account",
                "within 1 week",
                "video_call",
                "Let me show you {core_action} on your own data from {day}. Would this have saved you time that day?",
            ),
            (
                "Check for a first {core_action}",
                "day 30",
                "internal",
                "Any {core_action} since the tour? Record retained. None: record no_response and note for the "
                "renewal that they value {side_action} only, and price and position accordingly.",
            ),
        ],
    },
    {
        "id": "policy_friction",
        "name": "Repeatedly blocked",
        "risk_level": "medium",
        "conditions": [("event_count", "blocked events", ">=", 3.0, 7)],
        "success_metric": "No {blocked_action} in the 7 days after the cause is fixed, with the same or higher "
        "weekly usage (stickiness_7d).",
        "notes": "The same rule or limit blocking the same people again and again means it fights their workflow. "
        "Users rarely report it; they route around the product instead. Check first whether the block is "
        "right and the user needs help: sometimes the answer is a two-minute explanation, not a config "
        "change.",
        "actions": [
            (
                "Find what blocks them and decide whether the blocks are right",
                "day 0",
                "internal",
                "Before contacting them: open the customer page, read the metadata of the {blocked_action} "
                "events, and decide whether the block is correct and the user needs help, or it is too strict "
                "for how they work.",
            ),
            (
                "Tell them what you found and offer the fix",
                "within 24h",
                "email",
                "Hi {first name}, I saw your team ran into {blocked_action} {n} times this week on what looks "
                "like the same action. That's on us to make smoother. Two options: I can switch it to warn-only "
                "for your workspace, or walk you through an exception for that workflow. Which would you "
                "prefer?",
            ),
            (
                "Screen share if they want to show it",
                "within 48h",
                "video_call",
                "Can you show me the exact step where it blocks you? I want to see what you were trying to do, "
                "not just the error, so the fix is the right one.",
            ),
            (
                "Check the blocks stopped",
                "day 7",
                "internal",
                "Customer page: no {blocked_action} since the change and usage steady? Record retained. Still "
                "blocked? Send engineering one example event, and tell the customer the date you'll have it "
                "fixed by.",
            ),
        ],
    },
    {
        "id": "silent_churn",
        "name": "Silent churn",
        "risk_level": "high",
        "conditions": [("real_events", "", ">=", 1.0, 7), ("days_since_investigation", "", ">=", 7.0, None)],
        "success_metric": "{core_action} again from a named user within 14 days of the first email, and at least "
        "once a week for the 4 weeks after.",
        "notes": "Their integration keeps sending data, so the invoice looks safe, but nobody does what they bought "
        "the product for ({core_action}). This is the most common way B2B tools die: the renewal meeting "
        "asks 'who uses this?' and nobody can answer. Usually the person who used it left, or the work "
        "moved to another tool. Lead with curiosity, not with a sales pitch; the fix is often a person or a "
        "setting, not features.",
        "actions": [
            (
                "Personal check-in to the main user",
                "day 0",
                "email",
                "Hi {first name}, I noticed your account is still active with us every day, but I haven't seen "
                "any {core_action} from your team in over a week. That usually means one of two things: things "
                "are quiet (great), or it stopped fitting how your team works. Which is it for you? If it's the "
                "second, I can help set it up for whoever does that work now in five minutes.",
            ),
            (
                "Send them one concrete example worth looking at",
                "within 48h if no reply",
                "email",
                "Here's something from {day} in your account that we thought was worth a look: {link}. It takes "
                "two minutes. If it isn't useful, tell me and I'll tune it so you only hear about what "
                "matters.",
            ),
            (
                "15-minute call with the account owner",
                "day 5",
                "call",
                "I'm not calling to sell anything. Your usage tells me the product is running but nobody uses "
                "it for {core_action}, and I'd rather hear now if it stopped being useful than find out at "
                "renewal. What would have to be true for your team to use it every week?",
            ),
            (
                "Decide and record the outcome",
                "day 14",
                "internal",
                "Still no {core_action}: record the outcome as no_response, ask the account owner who decides "
                "the renewal, and put a note on the tenant. {core_action} again: record retained and check "
                "again in 4 weeks.",
            ),
        ],
    },
]


# The expansion playbooks: two, because a playbook's conditions must all hold and either kind of
# growth makes a candidate; in roles, with the thresholds of customers/metrics/thresholds.py.
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


def _playbooks_create(apps: Any, defaults: list[dict[str, Any]], *, purpose: str) -> None:
    """Create each of ``defaults`` that does not exist yet (by id), with the models of ``apps``; never
    overwrites an edit."""
    Playbook = apps.get_model("playbooks", "Playbook")
    TriggerCondition = apps.get_model("playbooks", "TriggerCondition")
    PlaybookAction = apps.get_model("playbooks", "PlaybookAction")
    for default in defaults:
        if Playbook.objects.filter(pk=default["id"]).exists():
            continue
        playbook = Playbook.objects.create(
            id=default["id"],
            name=default["name"],
            # Required by the model; an expansion playbook raises no level, so it is ignored there.
            risk_level=default.get("risk_level", "medium"),
            purpose=purpose,
            success_metric=default["success_metric"],
            notes=default["notes"],
            enabled=True,
        )
        TriggerCondition.objects.bulk_create(
            TriggerCondition(
                playbook=playbook,
                metric=metric,
                event_types=event_types,
                operator=operator,
                threshold=threshold,
                window_days=window_days,
                order=order,
            )
            for order, (metric, event_types, operator, threshold, window_days) in enumerate(default["conditions"], 1)
        )
        PlaybookAction.objects.bulk_create(
            PlaybookAction(playbook=playbook, order=order, step=step, timing=timing, channel=channel, talk_track=track)
            for order, (step, timing, channel, track) in enumerate(default["actions"], 1)
        )


def expansion_playbooks_seed(apps: Any, schema_editor: Any) -> None:
    """The migration that added expansion playbooks seeds them from here."""
    _playbooks_create(apps, EXPANSION_PLAYBOOKS, purpose="expansion")


def expansion_playbooks_unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("playbooks", "Playbook").objects.filter(pk__in=[p["id"] for p in EXPANSION_PLAYBOOKS]).delete()


def playbooks_defaults_seed(apps: Any) -> None:
    """Create each default playbook that does not exist yet (by id), with the models of ``apps``."""
    _playbooks_create(apps, DEFAULT_PLAYBOOKS, purpose="risk")
    _playbooks_create(apps, EXPANSION_PLAYBOOKS, purpose="expansion")
