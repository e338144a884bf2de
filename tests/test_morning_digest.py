"""The morning digest: at the founder's hour, one message to a real Slack-style HTTP receiver and a real
SMTP server, once a day across restarts, skipped with a note while the metrics are stale.

The clock is the metrics tests' (2026-03-15 12:00 UTC, a Sunday); the console's TIME_ZONE is Berlin
(UTC+1 in March), so it is 13:00 there. "decay" is at risk (Engagement decay) and has a step overdue,
"policy" is at risk and nobody has called it yet.
"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from core.models import AlertNotification
from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant
from customers.revenue import tenant_founder_revenue_set
from events.ingestion.identities import Identity, identities_apply
from events.models import MorningDigestDay, MorningDigestSettings, RealUser
from opsconsole import digest
from opsconsole.celery import app as celery_app
from opsconsole.digest import ALREADY_SENT, NOT_YET, OFF, SENT, STALE, morning_digest_send
from tests.customers.conftest import NOW, Ev, days_ago
from tests.events.conftest import Receiver
from tests.playbooks.conftest import frozen_now, metrics_db  # noqa: F401  (the playbooks' hooks stay on)

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_13_05 = NOW + timedelta(minutes=5)  # 13:05 in Berlin


class SmtpReceiver:
    """A real SMTP server on 127.0.0.1 (the subset of RFC 5321 Django's smtplib client speaks)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 127.0.0.1 test SMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.upper()
                    if verb.startswith(("EHLO", "HELO")):
                        self.reply("250 127.0.0.1")
                    elif verb.startswith("MAIL FROM:"):
                        sender, recipients = command[10:].strip().strip("<>"), []
                        self.reply("250 OK")
                    elif verb.startswith("RCPT TO:"):
                        recipients.append(command[8:].strip().strip("<>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        message = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                        outer.messages.append({"from": sender, "to": recipients, "message": message})
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def channels(settings: Any) -> Iterator[tuple[Receiver, SmtpReceiver]]:
    slack, smtp = Receiver(), SmtpReceiver()
    slack.thread.start()
    smtp.thread.start()
    settings.SLACK_WEBHOOK_URL = slack.url
    settings.ALERT_WEBHOOK_INSECURE_HOSTS = ["127.0.0.1"]
    settings.ALERT_EMAILS = ["founder@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "ops-console@example.com"
    settings.TIME_ZONE = "Europe/Berlin"
    settings.CONSOLE_BASE_URL = "https://ops.example.com"
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the delivery task queued on commit runs in-process
    yield slack, smtp
    celery_app.conf.task_always_eager = eager
    for server in (slack.server, smtp.server):
        server.shutdown()
        server.server_close()


@pytest.fixture
def morning(metrics_db: Any, staff_client: Any) -> None:  # noqa: F811
    events = [Ev("decay", "EXPORT_COMPLETED", days_ago(d), user_id="u_jane") for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", t, days_ago(2), user_id="u_bob") for t in ("EXPORT_COMPLETED", "INCIDENT_VIEWED")]
    events += [Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)]
    events += [Ev("policy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    metrics_db(events)
    # The north star's cache of real users, as the ingest keeps it: the last one 2 hours ago.
    RealUser.objects.create(
        user_id="u_jane", first_interaction_at=NOW - timedelta(days=30), last_interaction_at=NOW - timedelta(hours=2)
    )
    identities_apply([Identity(user_id="u_jane", name="Jane Doe", email="jane@decay.io")], now=NOW)
    Tenant.objects.filter(tenant_id="decay").update(name="Decay Inc")
    metrics_recompute()
    tenant_founder_revenue_set(tenant=Tenant.objects.get(tenant_id="decay"), mrr=Decimal("490"), currency="USD")
    # Two steps of Engagement decay done on Tuesday 10 March: the next ("within 24h") was due the 11th.
    for action, channel in (("Read the customer page", "internal"), ("Called the CTO", "call")):
        response = staff_client.post(
            "/playbooks/interventions/new/",
            {"tenant_id": "decay", "playbook_id": "engagement_decay", "channel": channel, "action": action,
             "date": "2026-03-10", "next": "/"},
        )  # fmt: skip
        assert response.status_code == 302
    cache.clear()
    MorningDigestSettings.objects.update_or_create(pk=1, defaults={"enabled": True, "send_hour": 13})


def _restart() -> None:
    """What a restarted worker has lost: every in-process cache and memo."""
    cache.clear()


def test_it_is_off_until_switched_on(db: Any, settings: Any) -> None:
    assert not MorningDigestSettings.objects.filter(enabled=True).exists()
    assert morning_digest_send() == OFF
    assert not MorningDigestDay.objects.exists()


def test_it_sends_once_at_the_founders_hour_to_slack_and_email_even_across_a_restart(morning, channels):
    slack, smtp = channels
    with time_machine.travel(NOW - timedelta(minutes=30), tick=False):  # 12:30 in Berlin
        assert morning_digest_send() == NOT_YET
    with time_machine.travel(LOCAL_13_05, tick=False):
        assert morning_digest_send() == SENT
    assert len(slack.requests) == 1 and len(smtp.messages) == 1

    posted = slack.requests[0]["json"]
    blocks = posted["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Good morning: Sunday 15 March"}}
    assert blocks[1]["text"]["text"].startswith("North star: HEALTHY. Real users engaging with the product; last real")
    assert "last real user interaction 2 hours ago" in blocks[1]["text"]["text"]
    assert blocks[2]["text"]["text"] == "Revenue at risk: $490 across 1 customer"
    calls = blocks[4]["text"]["text"]
    # policy's only user never said who they are: the digest names their id.
    assert calls == (
        "*Top 5 to call*\n1. <https://ops.example.com/customers/policy/|policy>: call u1 (champion). First step: "
        "Day 0: Find what blocks them and decide whether the blocks are right. Why: policy ran into 4 friction "
        "events in the last 7 days, mostly Policy block repeat (friction score 8.00)."
    )
    overdue = blocks[5]["text"]["text"]
    assert overdue == (
        "*Overdue steps*\n<https://ops.example.com/customers/decay/|Decay Inc>: Within 24h: Short personal email "
        "if the call doesn't happen (due Wed 11 Mar)"
    )
    assert blocks[6]["elements"][0]["text"] == "<https://ops.example.com/|Open the console>"

    mail = smtp.messages[0]
    assert mail["to"] == ["founder@example.com"] and mail["from"] == "ops-console@example.com"
    assert mail["message"]["Subject"] == "Morning digest 2026-03-15: north star HEALTHY"
    body = mail["message"].get_content()
    assert "Revenue at risk: $490 across 1 customer" in body
    assert "Decay Inc (https://ops.example.com/customers/decay/): Within 24h: Short personal email" in body
    assert "Open the console: https://ops.example.com/" in body
    assert set(AlertNotification.objects.values_list("kind", "channel", "state")) == {
        ("morning_digest", "slack", "sent"),
        ("morning_digest", "email", "sent"),
    }

    # A restarted worker, a second beat tick and an overlapping run later that day send nothing.
    _restart()
    for minutes in (10, 60, 600):
        with time_machine.travel(LOCAL_13_05 + timedelta(minutes=minutes), tick=False):
            assert morning_digest_send() == ALREADY_SENT
    assert len(slack.requests) == 1 and len(smtp.messages) == 1
    assert MorningDigestDay.objects.get().state == "sent"


def test_the_top_calls_name_whom_to_call_with_the_first_step_and_why(morning, channels):
    # decay's step is overdue (in progress), so it is listed there; with its follow-up undone it is to call.
    from playbooks.models import InterventionRecord

    InterventionRecord.objects.filter(tenant_id="decay").delete()
    cache.clear()
    with time_machine.travel(LOCAL_13_05, tick=False):
        text = digest.morning_digest_compose(now=LOCAL_13_05).text
    call = next(line for line in text.splitlines() if "Decay Inc" in line)
    assert call.startswith("1. Decay Inc (https://ops.example.com/customers/decay/) ($490/mo): call Jane Doe ")
    assert "call Jane Doe <jane@decay.io> (champion). First step: " in call
    assert "Why: " in call and "No step is overdue." in text


def test_stale_metrics_skip_the_day_with_a_note_and_a_fresh_run_that_day_sends_it(morning, channels):
    slack, smtp = channels
    next_day = LOCAL_13_05 + timedelta(days=1)  # the metrics were computed 24 h before
    with time_machine.travel(next_day, tick=False):
        assert morning_digest_send() == STALE
    day = MorningDigestDay.objects.get()
    assert (day.day.isoformat(), day.state) == ("2026-03-16", "skipped")
    assert day.note.startswith("Not sent: the customer metrics were last computed 1445 minutes ago")
    assert not slack.requests and not smtp.messages and not AlertNotification.objects.exists()

    with time_machine.travel(next_day + timedelta(minutes=5), tick=False):
        metrics_recompute()
        _restart()
        assert morning_digest_send() == SENT
    assert len(slack.requests) == 1 and len(smtp.messages) == 1
    assert MorningDigestDay.objects.get().state == "sent"


def test_two_workers_at_the_same_moment_send_it_once(morning, channels):
    from django.db import connection

    slack, smtp = channels
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            start.wait()
            outcomes.append(morning_digest_send())
        finally:
            connection.close()

    with time_machine.travel(LOCAL_13_05, tick=False):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(outcomes) == [ALREADY_SENT, SENT]
    assert len(slack.requests) == 1 and len(smtp.messages) == 1
