"""The morning digest: Today's page as one message, to Slack (Block Kit) and email, once a day.

At the founder's hour in ``TIME_ZONE`` (``events.MorningDigestSettings``, edited in admin, off by
default) the beat task ``opsconsole.morning_digest`` (every five minutes, opsconsole/schedules.py)
composes what Today shows first (the north star in words, revenue at risk and this month's moves,
the top five calls with whom to call, the first step and why, and the overdue steps), each linked
to the console at ``CONSOLE_BASE_URL``, and queues it through the alerts' retrying delivery
(``core.notifications.notifications_create``: one ``AlertNotification`` per channel, retried with backoff).

Once per day, whatever the number of workers or restarts: the day's ``MorningDigestDay`` row is
turned into ``sent`` by one insert or one compare-and-set update, in the transaction that queues the
messages, so only the run whose write counts sends (a crash before the commit leaves the day open
for the next run). It lives here, at the top, because it reads every app, as Today does.

Stale metrics (older than ``METRICS_STALE_AFTER_MINUTES``, the rule of Today's banner, /readyz and the
stale-metrics alert: ``customers.selectors.metrics_freshness``): nothing is sent, the day's row says
why (``skipped``), and a later run that day sends once the metrics are fresh again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.models import NotificationChannel, NotificationKind
from core.notifications import notifications_create
from customers.metrics.contacts import contacts_people
from customers.selectors import metrics_freshness, revenue_figures
from events.alerts import MESSAGES
from events.models import DigestDayState, MorningDigestDay, MorningDigestSettings
from events.selectors import north_star_targets, real_users_summary
from opsconsole.views import (
    STATUS_WORDS,
    TODAY_AT_RISK_READ,
    money_words,
    revenue_at_risk_words,
    revenue_month_words,
)
from playbooks.call_list import at_risk_answer, call_list_build

logger = logging.getLogger(__name__)

# How many customers to call the digest names (the top of Today's list).
DIGEST_CALLS = 5

# What each outcome of a run is called (the task's return value, and the command's output).
OFF, NOT_YET, NO_CHANNEL, STALE, SENT, ALREADY_SENT = "off", "not_yet", "no_channel", "stale", "sent", "already_sent"

# The digest's texts, defined once (Slack's blocks and the email's text are both made from them).
TEXTS = {
    "subject": "Morning digest {day}: north star {status}",
    "title": "Good morning: {day}",
    "north_star": "North star: {status}. {meaning}; last real user interaction {last}. "
    "{dau} of {dau_target} daily and {mau} of {mau_target} monthly active real users. Action: {action}.",
    "no_revenue": "No MRR is known yet (connect Stripe, import a subscriptions export, or send mrr traits).",
    "calls_title": "Top {n} to call",
    "call": "{rank}. {name}{money}: call {who}. First step: {step}. Why: {why}.",
    "no_calls": "Nobody new to call: no customer is at risk.",
    "overdue_title": "Overdue steps",
    "overdue": "{name}: {step} (due {due})",
    "no_overdue": "No step is overdue.",
    "nobody": "nobody identified yet (the product has sent no real user for this account)",
    "no_step": "read the customer page",
    "open": "Open the console: {url}",
    "no_links": "Set CONSOLE_BASE_URL to get links to the console in this digest.",
    "stale": "Not sent: the customer metrics were last computed {age} (they are stale after {limit} minutes), "
    "so the call list would mislead. The stale-metrics alert says why; the digest goes out once they are fresh.",
    "never_computed": "Not sent: the customer metrics have never been computed.",
    "no_channel": "Not sent: no channel (set SLACK_WEBHOOK_URL or ALERT_EMAILS, and tick them here).",
}


@dataclass(frozen=True)
class MorningDigest:
    subject: str
    text: str
    blocks: list[dict[str, Any]]


def console_url(path: str) -> str:
    """An absolute link into the console, or '' while CONSOLE_BASE_URL is not set."""
    return f"{settings.CONSOLE_BASE_URL}{path}" if settings.CONSOLE_BASE_URL else ""


def _last_interaction_words(days: float | None) -> str:
    if days is None:
        return "never"
    minutes = days * 24 * 60
    if minutes < 60:
        return f"{max(0, round(minutes))} minutes ago"
    if minutes < 24 * 60:
        hours = round(minutes / 60)
        return f"{hours} hour{'' if hours == 1 else 's'} ago"
    return f"{days:.1f} days ago"


def _who(entry: dict[str, Any]) -> str:
    """The first person to call, as "Jane Doe <jane@acme.io> (champion, admin)"."""
    people = contacts_people(entry.get("contacts") or [])
    if not people:
        return TEXTS["nobody"]
    p = people[0]
    who = p["name"] or p["email"] or p["user_id"]
    if p["name"] and p["email"]:
        who = f"{p['name']} <{p['email']}>"
    return f"{who} ({', '.join(p['roles'])})"


def _step(follow_up: dict[str, Any]) -> str:
    step = follow_up.get("next_step") or {}
    if not step or not step.get("step"):
        return TEXTS["no_step"]
    return f"{step['timing'].capitalize()}: {step['step']}" if step.get("timing") else step["step"]


def _linked(text: str, url: str, *, slack: bool) -> str:
    if not url:
        return text
    return f"<{url}|{text}>" if slack else f"{text} ({url})"


def _customer_linked(entry: dict[str, Any], *, slack: bool) -> str:
    """The customer's name, linked to its page when the console's address is known."""
    url = console_url(reverse("customer-page", args=[entry["tenant_id"]]))
    return _linked(entry.get("name") or entry["tenant_id"], url, slack=slack)


def _call_lines(
    to_call: list[dict[str, Any]], overdue: list[dict[str, Any]], *, slack: bool
) -> tuple[list[str], list[str]]:
    """The calls to make and the overdue follow-ups, one line each (Slack's links or plain text)."""
    calls = []
    for rank, entry in enumerate(to_call, start=1):
        money = ""
        if entry.get("mrr") is not None and entry.get("mrr_currency"):
            money = f" ({money_words(entry['mrr'], entry['mrr_currency'])}/mo)"
        calls.append(
            TEXTS["call"].format(
                rank=rank,
                name=_customer_linked(entry, slack=slack),
                money=money,
                who=_who(entry),
                step=_step(entry["follow_up"]),
                why=(entry.get("primary_risk_reason") or "at risk").rstrip("."),
            )
        )
    late = []
    for entry in overdue:
        due = entry["follow_up"].get("due")
        late.append(
            TEXTS["overdue"].format(
                name=_customer_linked(entry, slack=slack),
                step=_step(entry["follow_up"]),
                due=f"{due:%a} {due.day} {due:%b}" if isinstance(due, date) else "earlier",
            )
        )
    return calls or [TEXTS["no_calls"]], late or [TEXTS["no_overdue"]]


def _slack_section(body: str) -> dict[str, Any]:
    # Slack refuses a text block over 3,000 characters.
    return {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}}


def morning_digest_compose(*, now: datetime) -> MorningDigest:
    """The digest as Today would show it at ``now``: reads the same selectors (cached per recompute)."""
    local_day = timezone.localdate(now)
    summary = real_users_summary(now=now)
    targets = north_star_targets()
    _, meaning, action, _ = MESSAGES[summary.status]
    status = STATUS_WORDS[summary.status]
    north_star = TEXTS["north_star"].format(
        status=status,
        meaning=meaning,
        last=_last_interaction_words(summary.days_since_last),
        dau=summary.dau,
        dau_target=targets.dau_target,
        mau=summary.mau,
        mau_target=targets.mau_target,
        action=action,
    )
    figures = revenue_figures(today=local_day)
    revenue = [revenue_at_risk_words(figures) or TEXTS["no_revenue"], *revenue_month_words(figures)]
    call_list = call_list_build(
        at_risk=at_risk_answer(limit=TODAY_AT_RISK_READ), today=local_day, active_limit=DIGEST_CALLS
    )
    to_call = [e for e in call_list["active"] if e["follow_up"]["state"] == "to_call"][:DIGEST_CALLS]
    overdue = [e for e in call_list["active"] if e["follow_up"].get("overdue")]

    day_words = f"{local_day:%A} {local_day.day} {local_day:%B}"
    title = TEXTS["title"].format(day=day_words)
    calls_title = TEXTS["calls_title"].format(n=DIGEST_CALLS)
    today_url = console_url(reverse("home"))
    footer = TEXTS["open"].format(url=today_url) if today_url else TEXTS["no_links"]

    calls, late = _call_lines(to_call, overdue, slack=False)
    text = "\n".join(
        [title, "", north_star, "", *revenue, "", calls_title, *calls, "", TEXTS["overdue_title"], *late, "", footer]
    )
    slack_calls, slack_late = _call_lines(to_call, overdue, slack=True)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        _slack_section(north_star),
        _slack_section("\n".join(revenue)),
        {"type": "divider"},
        _slack_section(f"*{calls_title}*\n" + "\n".join(slack_calls)),
        _slack_section(f"*{TEXTS['overdue_title']}*\n" + "\n".join(slack_late)),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _linked("Open the console", today_url, slack=True) if today_url else TEXTS["no_links"],
                }
            ],
        },
    ]
    subject = TEXTS["subject"].format(day=local_day.isoformat(), status=status)
    return MorningDigest(subject=subject, text=text, blocks=blocks)


def morning_digest_settings() -> MorningDigestSettings:
    row, _ = MorningDigestSettings.objects.get_or_create(pk=1)
    return row


def _channels(row: MorningDigestSettings) -> frozenset[str]:
    chosen = set()
    if row.slack and settings.SLACK_WEBHOOK_URL:
        chosen.add(NotificationChannel.SLACK.value)
    if row.email and settings.ALERT_EMAILS:
        chosen.add(NotificationChannel.EMAIL.value)
    return frozenset(chosen)


def _day_skip(day: date, note: str, now: datetime) -> None:
    """Record why the day's digest was not sent; a day already sent keeps its row."""
    with transaction.atomic():
        _, created = MorningDigestDay.objects.get_or_create(
            day=day, defaults={"state": DigestDayState.SKIPPED, "note": note, "updated_at": now}
        )
        if not created:
            MorningDigestDay.objects.filter(day=day, state=DigestDayState.SKIPPED).update(note=note, updated_at=now)


def morning_digest_send(*, now: datetime | None = None) -> str:
    """Send today's digest if it is on, its hour has come, the metrics are fresh and no run sent it
    yet. Idempotent and safe on several workers; returns what happened (OFF, NOT_YET, NO_CHANNEL,
    STALE, SENT, ALREADY_SENT)."""
    now = now or timezone.now()
    row = morning_digest_settings()
    if not row.enabled:
        return OFF
    local = timezone.localtime(now)
    if local.hour < row.send_hour:
        return NOT_YET
    day = local.date()
    if MorningDigestDay.objects.filter(day=day, state=DigestDayState.SENT).exists():
        return ALREADY_SENT
    channels = _channels(row)
    if not channels:
        _day_skip(day, TEXTS["no_channel"], now)
        return NO_CHANNEL
    freshness = metrics_freshness(now=now)
    if freshness.is_stale:
        note = (
            TEXTS["never_computed"]
            if freshness.computed_at is None
            else TEXTS["stale"].format(age=f"{freshness.minutes_ago} minutes ago", limit=freshness.stale_after_minutes)
        )
        _day_skip(day, note, now)
        logger.info("morning digest for %s skipped: %s", day, note)
        return STALE
    digest = morning_digest_compose(now=now)
    note = f"Sent to {', '.join(sorted(channels))} at {local:%H:%M}."
    with transaction.atomic():
        # The claim: the insert (the day's primary key) or the update from skipped; a second run
        # waits on the row and then finds it sent. Only the run that wrote it queues the messages.
        _, created = MorningDigestDay.objects.get_or_create(
            day=day, defaults={"state": DigestDayState.SENT, "note": note, "updated_at": now}
        )
        if not created and not (
            MorningDigestDay.objects.filter(day=day, state=DigestDayState.SKIPPED).update(
                state=DigestDayState.SENT, note=note, updated_at=now
            )
        ):
            return ALREADY_SENT
        notifications_create(
            kind=NotificationKind.MORNING_DIGEST,
            dedupe_key=f"morning_digest:{day.isoformat()}",
            subject=digest.subject,
            body=digest.text,
            slack_blocks=digest.blocks,
            channels=channels,
        )
    return SENT
