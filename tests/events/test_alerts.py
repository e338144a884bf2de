"""North-star alerts: transitions, the daily reminder, and delivery to a live receiver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from core.models import AlertNotification
from core.notifications import (
    PermanentDeliveryError,
    alert_notification_deliver,
    alert_notifications_retry_due,
    slack_webhook_post,
)
from events.alerts import north_star_alerts_evaluate
from events.models import AlertState

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 8, 12, 0, tzinfo=UTC)


def login(user_id: str = "u1") -> dict:
    return {"event_id": str(uuid.uuid4()), "event_type": "LOGIN", "user_id": user_id}


def evaluate_and_deliver(moment: datetime, django_capture_on_commit_callbacks, eager: bool = True) -> list:
    """One beat tick: evaluate, then run the delivery tasks queued on commit."""
    with time_machine.travel(moment, tick=False), django_capture_on_commit_callbacks(execute=eager):
        created = north_star_alerts_evaluate()
    return created


def test_it_announces_each_transition_once_and_recovery(
    ingest, receiver, eager_celery, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        ingest(login())
    timeline = [
        (T0, []),  # first evaluation, healthy: baseline only
        (T0 + timedelta(hours=12), []),
        (T0 + timedelta(days=1), ["WARNING"]),
        (T0 + timedelta(days=1, minutes=5), []),  # still warning: no repeat
        (T0 + timedelta(days=3), []),
        (T0 + timedelta(days=7), ["ALERT"]),
        (T0 + timedelta(days=7, minutes=5), []),
        (T0 + timedelta(days=7, hours=23), []),  # less than a day since the alert
    ]
    for moment, expected in timeline:
        created = evaluate_and_deliver(moment, django_capture_on_commit_callbacks)
        assert [n.subject.split(":")[0].split()[-1] for n in created] == expected, moment
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["path"] == "/services/T000/B000/secret"
    assert receiver.texts[0].startswith("🟡 WARNING: Days since last user interaction = 1-7")
    assert "→ Action: Email retention campaign" in receiver.texts[0]
    assert "→ Escalation: Analyze first-run experience" in receiver.texts[0]
    assert receiver.texts[1].startswith("🚨 ALERT: Days since last user interaction = 7+")
    assert "Days since last real user interaction: 7.00 days" in receiver.texts[1]
    assert "→ Action: Schedule launch sprint" in receiver.texts[1]

    # A real user comes back: recovery is announced once.
    with time_machine.travel(T0 + timedelta(days=7, hours=23, minutes=30), tick=False):
        ingest(login("u2"))
    created = evaluate_and_deliver(T0 + timedelta(days=7, hours=23, minutes=31), django_capture_on_commit_callbacks)
    assert [(n.status_from, n.status_to) for n in created] == [("critical", "active")]
    assert receiver.texts[2].startswith("🟢 HEALTHY")
    assert "→ Escalation: None, stay the course" in receiver.texts[2]
    assert list(AlertNotification.objects.values_list("state", flat=True)) == ["sent"] * 3


def test_it_reminds_daily_while_critical_and_never_twice(
    ingest, receiver, eager_celery, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        ingest(login())
    evaluate_and_deliver(T0, django_capture_on_commit_callbacks)
    evaluate_and_deliver(T0 + timedelta(days=8), django_capture_on_commit_callbacks)  # straight to critical
    for hours in (1, 12, 23):
        assert evaluate_and_deliver(T0 + timedelta(days=8, hours=hours), django_capture_on_commit_callbacks) == []
    reminder = evaluate_and_deliver(T0 + timedelta(days=9), django_capture_on_commit_callbacks)
    assert [n.kind for n in reminder] == ["reminder"]
    assert evaluate_and_deliver(T0 + timedelta(days=9, minutes=5), django_capture_on_commit_callbacks) == []
    assert [n.kind for n in evaluate_and_deliver(T0 + timedelta(days=10), django_capture_on_commit_callbacks)] == [
        "reminder"
    ]
    assert len(receiver.texts) == 3
    assert receiver.texts[1].startswith("Reminder (still critical): 🚨 ALERT")
    assert "Days since last real user interaction: 9.00 days" in receiver.texts[1]


def test_a_first_evaluation_that_finds_critical_announces_it_and_no_users_is_silent(
    ingest, receiver, eager_celery, django_capture_on_commit_callbacks
):
    assert evaluate_and_deliver(T0, django_capture_on_commit_callbacks) == []  # no users yet: baseline
    assert AlertState.objects.get(pk=1).status == "no_users_yet"
    with time_machine.travel(T0, tick=False):
        ingest(login())
    evaluate_and_deliver(T0 + timedelta(days=10), django_capture_on_commit_callbacks)
    assert [t.split(":")[0] for t in receiver.texts] == ["🚨 ALERT"]


def test_a_failed_delivery_is_retried_with_backoff_and_never_crashes(
    ingest, receiver, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.ALERT_RETRY_BASE_SECONDS = 60
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 6
    receiver.statuses = [500, 503]  # two failures, then the receiver recovers
    with time_machine.travel(T0, tick=False):
        ingest(login())
    evaluate_and_deliver(T0, django_capture_on_commit_callbacks)
    evaluate_and_deliver(T0 + timedelta(days=1), django_capture_on_commit_callbacks)  # attempt 1 fails
    notification = AlertNotification.objects.get()
    assert (notification.state, notification.attempts) == ("retrying", 1)
    assert notification.next_attempt_at == T0 + timedelta(days=1, seconds=60)
    assert "HTTP 500" in notification.last_error

    assert alert_notifications_retry_due(now=T0 + timedelta(days=1, seconds=59)) == 0  # not due yet
    assert alert_notifications_retry_due(now=T0 + timedelta(days=1, seconds=60)) == 1  # attempt 2 fails
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == ("retrying", 2)
    assert notification.next_attempt_at == T0 + timedelta(days=1, seconds=180)  # then 120 s more

    assert alert_notifications_retry_due(now=T0 + timedelta(days=1, seconds=180)) == 1  # attempt 3 succeeds
    notification.refresh_from_db()
    assert (notification.state, notification.attempts, notification.last_error) == ("sent", 3, "")
    assert len(receiver.requests) == 3
    assert len(set(receiver.texts)) == 1  # the same message each time
    assert alert_notifications_retry_due(now=T0 + timedelta(days=2)) == 0


def test_it_gives_up_after_the_last_attempt_and_on_a_client_error(ingest, receiver, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    receiver.statuses = [502, 502, 404]
    n1 = AlertNotification.objects.create(
        kind="transition", channel="slack", dedupe_key="a", subject="s", body="b", target="127.0.0.1"
    )
    alert_notification_deliver(notification_id=n1.pk, now=T0)
    alert_notification_deliver(notification_id=n1.pk, now=T0 + timedelta(minutes=1))
    n1.refresh_from_db()
    assert (n1.state, n1.attempts, n1.next_attempt_at) == ("failed", 2, None)
    n2 = AlertNotification.objects.create(
        kind="transition", channel="slack", dedupe_key="b", subject="s", body="b", target="127.0.0.1"
    )
    alert_notification_deliver(notification_id=n2.pk, now=T0)
    n2.refresh_from_db()
    assert (n2.state, n2.attempts) == ("failed", 1)  # 404: retrying cannot help
    assert "HTTP 404" in n2.last_error


def test_an_unreachable_receiver_is_retried(db, settings):
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/hooks"  # discard port: connection refused
    settings.ALERT_WEBHOOK_INSECURE_HOSTS = ["127.0.0.1"]
    n = AlertNotification.objects.create(
        kind="transition", channel="slack", dedupe_key="c", subject="s", body="b", target="127.0.0.1"
    )
    alert_notification_deliver(notification_id=n.pk, now=T0)
    n.refresh_from_db()
    assert (n.state, n.attempts) == ("retrying", 1)
    assert "URLError" in n.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/x",  # not HTTPS
        "https://evil.example/services/x",  # not on the allowlist
        "https://hooks.slack.com.evil.example/x",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
    ],
)
def test_it_refuses_a_webhook_off_the_allowlist(db, url):
    with pytest.raises(PermanentDeliveryError):
        slack_webhook_post(url=url, text="hello")


def test_a_bad_slack_webhook_url_stops_the_console_at_start():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            "DJANGO_SETTINGS_MODULE": "opsconsole.settings",
            "DEBUG": "1",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
            "SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/x",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        cwd=__import__("django.conf").conf.settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: SLACK_WEBHOOK_URL: webhook URL must be https://" in result.stderr


def test_it_emails_the_same_alert_through_djangos_email_backend(
    ingest, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.SLACK_WEBHOOK_URL = ""
    settings.ALERT_EMAILS = ["founder@example.com", "cto@example.com"]
    with time_machine.travel(T0, tick=False):
        ingest(login())
    evaluate_and_deliver(T0, django_capture_on_commit_callbacks)
    evaluate_and_deliver(T0 + timedelta(days=2), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["founder@example.com", "cto@example.com"]
    assert message.subject == "🟡 WARNING: Days since last user interaction = 1-7"
    assert "→ Action: Email retention campaign" in message.body
    assert AlertNotification.objects.get().state == "sent"


def test_two_evaluations_of_the_same_transition_create_one_notification(ingest, receiver):
    with time_machine.travel(T0, tick=False):
        ingest(login())
    north_star_alerts_evaluate(now=T0)
    first = north_star_alerts_evaluate(now=T0 + timedelta(days=2))
    second = north_star_alerts_evaluate(now=T0 + timedelta(days=2))
    assert len(first) == 1 and second == []
    assert AlertNotification.objects.count() == 1
