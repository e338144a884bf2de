"""The weekly check-in digest and its schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from core.models import AlertNotification
from opsconsole.checkin import weekly_checkin_send

pytestmark = pytest.mark.django_db

FRIDAY = datetime(2026, 2, 13, 7, 0, tzinfo=UTC)  # 09:00 in Johannesburg


def test_weekly_checkin_prints_the_north_star_and_says_what_is_not_available(ingest, capsys):
    with time_machine.travel(FRIDAY - timedelta(days=2), tick=False):
        ingest(
            {"event_id": str(uuid.uuid4()), "event_type": "SIGNUP", "user_id": "u1"},
            {"event_id": str(uuid.uuid4()), "event_type": "LOGIN", "user_id": "u2"},
        )
    with time_machine.travel(FRIDAY, tick=False):
        call_command("weekly_checkin")
    out = capsys.readouterr().out
    assert "value: 2.00 days   status: warning   target: 0" in out
    assert "real users: 2" in out
    assert "DAU (24 h): 0 / target 10 (below target)" in out
    assert "MAU (30 d): 2 / target 50 (below target)" in out
    assert "signup: 2.00 / 2.00" in out
    assert "First user signs up (target 2026-02-08): reached 2026-02-11" in out
    # The at-risk customers (with their follow-ups, playbooks') and the runway (infra's).
    assert "Top at-risk customers\n  No customer is at risk right now." in out
    assert "Infrastructure days to limit\n  Database storage: no projection (unknown)." in out


def test_the_sections_of_other_apps_are_shown_and_a_failing_one_is_reported(capsys, monkeypatch):
    from opsconsole import checkin

    monkeypatch.setattr(
        checkin,
        "SECTIONS",
        [
            ("at_risk_customers", "Top at-risk customers", lambda now: ["acme: high (score 81)"]),
            ("infra_days_to_limit", "Infrastructure days to limit", lambda now: 1 / 0),
        ],
    )
    call_command("weekly_checkin")
    out = capsys.readouterr().out
    assert "Top at-risk customers\n  acme: high (score 81)" in out
    assert "Infrastructure days to limit\n  unavailable this week" in out


def test_the_digest_goes_out_once_per_week_on_every_channel(
    receiver, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAILS = ["founder@example.com"]
    with time_machine.travel(FRIDAY, tick=False), django_capture_on_commit_callbacks(execute=True):
        first = weekly_checkin_send()
        again = weekly_checkin_send()  # a second run the same week (two beats, a retry)
    assert sorted(n.channel for n in first) == ["email", "slack"] and again == []
    assert len(receiver.texts) == 1
    assert receiver.texts[0].startswith("Weekly check-in 2026-02-13: north star no_users_yet")
    from django.core import mail

    assert len(mail.outbox) == 1
    with time_machine.travel(FRIDAY + timedelta(days=7), tick=False):
        assert len(weekly_checkin_send()) == 2
    assert AlertNotification.objects.filter(kind="weekly_checkin").count() == 4


def test_install_schedules_creates_the_friday_checkin_in_johannesburg_time():
    # Called by object: opsconsole is not an installed app, so the command is not found by name.
    from opsconsole.management.commands.install_schedules import Command

    call_command(Command())
    task = PeriodicTask.objects.get(task="events.tasks.weekly_checkin_task")
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "9", "5")
    assert str(crontab.timezone) == "Africa/Johannesburg"
    assert task.expire_seconds == 6 * 3600
    for name in ("classification_pass_task", "north_star_alerts_evaluate_task", "alert_notifications_retry_due_task"):
        assert PeriodicTask.objects.get(task=f"events.tasks.{name}").expire_seconds
