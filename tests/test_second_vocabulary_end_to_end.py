"""End to end in a third product's words: "Dealflow", a B2B CRM, on every founder-facing surface.

Neither the spec's taxonomy (incidents, replays, exports, certificates, policies) nor the
invoicing, scheduling or CI products the other tests use. The founder replaced the spec's
default types with Dealflow's, through the registry's write service (the one PUT
/ops/event-types uses), with weights:

- deal_created (value, engagement 0.3) and deal_won ("Deal won": the core value, engagement 1.0);
- forecast_viewed ("Forecast viewed": value, unweighted, so a side value);
- email_bounced (a system issue, friction 2.0), sequence_paused ("Sequence paused": friction 3.0),
  seat_limit_hit ("Seat limit reached": blocked, friction 2.5);
- pipeline_renamed ("Pipeline renamed": a change); account_created and user_logged_in (lifecycle).

Four tenants, 30 days of history up to NOW (2026-03-15), recomputed by the real engine with
the playbooks hook on; then every page, API answer, the weekly check-in and the alert texts
are read as a founder would, and none may name the spec's vocabulary.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine

from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantMetrics
from events.alerts import MESSAGES, alert_message
from events.models import EventType
from events.registry import event_type_put
from events.selectors import real_users_summary
from opsconsole.checkin import weekly_checkin_compose
from playbooks.models import Playbook
from tests.customers.conftest import NOW, Ev, days_ago, events_store

pytestmark = pytest.mark.django_db(transaction=True)

# The spec's vocabulary: Dealflow has none of these, so no text a founder reads may name them.
# Words in any case; the spec's type names (POLICY_BLOCK_REPEAT, REPLAY_ABORTED...) as written,
# upper case, so the playbooks' stable ids (policy_friction, in URLs and the API) are not words.
SPEC_WORDS = re.compile(r"incident|replay|export|certificate|\bcerts?\b|cert_|investigat|policy block", re.IGNORECASE)
SPEC_TYPE_NAMES = re.compile(r"POLICY_|REPLAY_|EXPORT_|INCIDENT_|CERT_")
# JSON keys whose values are identifiers of the API contract (field names the issue keeps, such as
# days_since_investigation, and codes), not text a founder reads.
IDENTIFIER_KEYS = {"signal", "intervention_type", "priority", "tenant_id", "kind", "risk_level", "metric", "id"}

DEALFLOW_TYPES: dict[str, dict[str, Any]] = {
    "account_created": {"category": "lifecycle", "north_star_role": "signup", "counts_as_real_interaction": True},
    "user_logged_in": {"category": "lifecycle", "north_star_role": "login", "counts_as_real_interaction": True},
    "deal_created": {"category": "value", "engagement_weight": 0.3, "counts_as_real_interaction": True},
    "deal_won": {
        "label": "Deal won",
        "category": "value",
        "core_value": True,
        "engagement_weight": 1.0,
        "north_star_role": "core_action",
        "counts_as_real_interaction": True,
    },
    "forecast_viewed": {"label": "Forecast viewed", "category": "value", "counts_as_real_interaction": True},
    "email_bounced": {"category": "friction", "friction_signal": "system_issue", "friction_weight": 2.0},
    "sequence_paused": {
        "label": "Sequence paused",
        "category": "friction",
        "friction_signal": "friction",
        "friction_weight": 3.0,
    },
    "seat_limit_hit": {
        "label": "Seat limit reached",
        "category": "friction",
        "friction_signal": "blocked",
        "friction_weight": 2.5,
    },
    "pipeline_renamed": {"label": "Pipeline renamed", "category": "change"},
}
TENANTS = {"closer": "Closer Co", "hush": "Hush Ltd", "stall": "Stall Inc", "gated": "Gated GmbH"}


def _daily(tenant: str, event_type: str, days: range, per_day: int) -> list[Ev]:
    # Two users take turns, so no single user is a champion who went quiet.
    return [
        Ev(tenant, event_type, days_ago(d), user_id=f"{tenant}-u{(d + i) % 2}") for d in days for i in range(per_day)
    ]


def _history() -> list[Ev]:
    events: list[Ev] = []
    # closer (healthy): 2 deals created and 1 won every day for 30 days.
    events += _daily("closer", "deal_created", range(30), 2) + _daily("closer", "deal_won", range(30), 1)
    # hush (silent churn): deals keep being created, 3 a day, but the last deal won was 20 days ago.
    events += _daily("hush", "deal_created", range(30), 3) + _daily("hush", "deal_won", range(20, 30), 1)
    events += [Ev("hush", "pipeline_renamed", days_ago(4), user_id="hush-u0")]
    # stall (friction): steady deals; yesterday 3 sequences were paused half-way, one bounce before.
    events += _daily("stall", "deal_created", range(30), 1) + _daily("stall", "deal_won", range(30), 1)
    events += [Ev("stall", "sequence_paused", days_ago(1), session_id=f"p{i}") for i in range(3)]
    events += [Ev("stall", "email_bounced", days_ago(1), session_id="p0")]
    # gated (blocked): steady deals; yesterday the seat limit stopped 4 sessions; they also view forecasts.
    events += _daily("gated", "deal_created", range(30), 1) + _daily("gated", "deal_won", range(30), 1)
    events += [Ev("gated", "seat_limit_hit", days_ago(1), session_id=f"s{i}") for i in range(4)]
    events += _daily("gated", "forecast_viewed", range(7), 1)
    return events


@pytest.fixture
def dealflow(transactional_db: Any, settings: Any) -> Iterator[datetime]:
    settings.METRICS_POST_RECOMPUTE_HOOKS = ["playbooks.evaluation.playbooks_evaluate"]
    with time_machine.travel(NOW, tick=False):
        # As a founder would: the spec's defaults out, the product's own types in.
        EventType.objects.all().delete()
        for name, fields in DEALFLOW_TYPES.items():
            event_type_put(name=name, data=fields)
        events_store(_history())
        for tenant_id, name in TENANTS.items():
            Tenant.objects.filter(tenant_id=tenant_id).update(name=name)
        metrics_recompute()
        yield NOW


def _visible(page: str) -> str:
    """What a founder sees on a page: the text without tags, scripts, styles and attributes."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _texts(value: Any) -> Iterator[str]:
    """Every string a founder reads in a JSON answer (identifier fields left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in IDENTIFIER_KEYS:
                yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
    elif isinstance(value, str):
        yield value


def _leaks(texts: dict[str, str]) -> dict[str, list[str]]:
    """Surface -> the spec's words it names, each with a little context."""
    out: dict[str, list[str]] = {}
    for surface, text in texts.items():
        matches = [*SPEC_WORDS.finditer(text), *SPEC_TYPE_NAMES.finditer(text)]
        found = [text[max(0, m.start() - 40) : m.end() + 40].strip() for m in matches]
        if found:
            out[surface] = found
    return out


def _metrics(tenant_id: str) -> TenantMetrics:
    return TenantMetrics.objects.get(tenant_id=tenant_id)


def test_the_silent_churn_account_is_found_from_deals_won_and_named_in_those_words(dealflow):
    m = _metrics("hush")
    # Hand-worked: the last deal_won is days_ago(20), so days_since_investigation (the public
    # field's name; it means the last core-value event) = 20.
    assert m.last_investigation == "deal_won"
    assert m.days_since_investigation == 20
    # Silent churn: 25 for real activity in 7 days with no core value for 7+ days, plus
    # min(25, 3 x (20 - 7)) = 25 -> 50.
    # Engagement, last 7 days: 3 deal_created x 0.3 x 7 days = 6.3.
    # Last 30 days: 3 x 0.3 x 30 = 27 plus 10 deal_won x 1.0 = 37, weekly 37 / 4.3 = 8.6047;
    # delta 6.3 / 8.6047 = 0.7322; decay 45 x (1 - 0.7322) = 12.05 -> 12.1.
    # 50 + 12.1 = 62.1: critical (60+, customers/metrics/risk.py); the silent churn playbook
    # (1+ real events in 7 days, 7+ days since the last Deal won) matches and asks for high, which
    # does not lower it.
    points = {c["signal"]: c["points"] for c in m.risk_components}
    assert points["silent_churn"] == 50
    assert m.stickiness_7d == 6.3 and m.stickiness_delta == 0.7322
    assert points["engagement_decay"] == 12.1
    assert m.risk_signal_strength == 62.1
    assert m.risk_level == "critical"
    # This week: 7 days x 3 deals created + the pipeline rename 4 days ago = 22 events.
    assert m.primary_risk_reason == (
        "Nobody at Hush Ltd has used Deal won for 20 days, though other activity keeps arriving (22 events this week)"
    )
    assert Playbook.objects.get(pk="silent_churn").matches.filter(tenant_id="hush").exists()


def test_healthy_friction_and_blocked_accounts_read_as_such(dealflow):
    assert _metrics("closer").risk_level is None
    # 3 sequences paused x 3.0 (each its own session, under the session cap of 5) + a bounce 2.0
    # in session p0 (3 + 2 = 5, at the cap): 5 + 3 + 3 = 11, the day capped at 10.
    assert _metrics("stall").friction_weighted_score == 10.0
    assert Playbook.objects.get(pk="abandonment").matches.filter(tenant_id="stall").exists()
    # 4 seat-limit sessions x 2.5 = 10; 3+ blocked events: the repeated-block playbook and the technical help.
    gated = _metrics("gated")
    assert gated.friction_weighted_score == 10.0
    assert Playbook.objects.get(pk="policy_friction").matches.filter(tenant_id="gated").exists()
    technical = next(i for i in gated.interventions if i["intervention_type"] == "technical")
    assert technical["suggested_action"] == "Review what keeps blocking them (Seat limit reached)"


def _surfaces(staff_client: Any, tenants: list[str]) -> tuple[dict[str, str], list[str], list[dict[str, str]]]:
    """Every text a founder reads: (surface -> text, the pages among them, the at-risk CSV's rows)."""
    pages = ["/", "/customers/", "/playbooks/", "/vocabulary/"]
    pages += [f"/customers/{t}/" for t in tenants]
    pages += [f"/playbooks/{p}/" for p in Playbook.objects.values_list("pk", flat=True)]
    apis = ["/ops/customers/at-risk?limit=10", "/ops/customers", "/metrics/days-since-last-interaction"]
    apis += [f"/ops/customers/{t}" for t in tenants]
    apis += ["/ops/playbooks", "/ops/playbooks/effectiveness", "/ops/signal-validation"]
    apis += [f"/ops/playbooks/{p}" for p in Playbook.objects.values_list("pk", flat=True)]
    texts: dict[str, str] = {}
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        texts[url] = _visible(response.content.decode())
    for url in apis:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        texts[url] = "\n".join(_texts(response.json()))
    # The at-risk CSV: its header is the API's field names (days_since_investigation is kept by the
    # contract); its cells are what the founder reads.
    rows = list(csv.DictReader(io.StringIO(staff_client.get("/customers/at-risk.csv").content.decode())))
    texts["/customers/at-risk.csv"] = "\n".join(v for r in rows for k, v in r.items() if k not in IDENTIFIER_KEYS)
    subject, body = weekly_checkin_compose(now=NOW)
    texts["weekly check-in"] = f"{subject}\n{body}"
    summary = real_users_summary(now=NOW)
    for status in MESSAGES:
        texts[f"alert {status}"] = "\n".join(alert_message(status=status, summary=summary))
    return texts, pages, rows


def test_no_founder_facing_surface_names_a_type_the_product_does_not_have(dealflow, staff_client):
    texts, pages, rows = _surfaces(staff_client, list(TENANTS))
    assert {r["tenant_id"] for r in rows} == {"hush", "stall", "gated"}
    assert _leaks(texts) == {}
    # The product's own words are where they belong.
    assert "Nobody at Hush Ltd has used Deal won for 20 days" in texts["/ops/customers/at-risk?limit=10"]
    assert "Nobody at Hush Ltd has used Deal won for 20 days" in texts["/customers/hush/"]
    assert "Hush Ltd" in texts["weekly check-in"]
    assert "7+ days since the last Deal won" in texts["/playbooks/silent_churn/"]
    assert "Seat limit reached" in texts["/playbooks/policy_friction/"]
    assert "Sequence paused" in texts["/playbooks/abandonment/"]
    assert "Forecast viewed" in texts["/playbooks/legal_only/"]
    # No page shows a raw {placeholder}: a customer's page fills them, a playbook's shows gaps ("[link]").
    # (The Vocabulary page documents the REST path "PUT /ops/event-types/{name}": not a placeholder.)
    braces = {url: re.findall(r"\{[^{}]*\}", texts[url]) for url in pages if url != "/vocabulary/"}
    assert {url: found for url, found in braces.items() if found} == {}


# --- Dealflow beside the example vocabulary ------------------------------------------------------------
# The founder described Dealflow's types and left the example types registered (the Vocabulary
# page offers to remove them; many will not bother): the examples were never sent, so they must
# never speak for Dealflow. "viewer" only views forecasts (Dealflow's side feature).
@pytest.fixture
def dealflow_beside_examples(transactional_db: Any, settings: Any) -> Iterator[datetime]:
    settings.METRICS_POST_RECOMPUTE_HOOKS = ["playbooks.evaluation.playbooks_evaluate"]
    with time_machine.travel(NOW, tick=False):
        assert EventType.objects.filter(is_example=True).count() == 27
        for name, fields in DEALFLOW_TYPES.items():
            event_type_put(name=name, data=fields)
        events_store([*_history(), *_daily("viewer", "forecast_viewed", range(20), 1)])
        for tenant_id, name in {**TENANTS, "viewer": "Viewer AB"}.items():
            Tenant.objects.filter(tenant_id=tenant_id).update(name=name)
        metrics_recompute()
        yield NOW


def test_the_example_types_it_never_sent_never_speak_for_the_product(dealflow_beside_examples, staff_client):
    texts, _pages, rows = _surfaces(staff_client, [*TENANTS, "viewer"])
    assert {r["tenant_id"] for r in rows} >= {"hush", "stall", "gated", "viewer"}
    # The Vocabulary page lists the registry, examples included, to offer removing them: the one
    # place they are named, as what they are.
    vocabulary = texts.pop("/vocabulary/")
    assert "Cert downloaded" in vocabulary
    assert _leaks(texts) == {}
    # The product's own words, and only them, where the examples share the role.
    assert "Nobody at Hush Ltd has used Deal won for 20 days" in texts["/customers/hush/"]
    assert "7+ days since the last Deal won" in texts["/playbooks/silent_churn/"]
    assert "Review what keeps blocking them (Seat limit reached)" in texts["/ops/customers/gated"]
    assert "Forecast viewed" in texts["/customers/viewer/"]  # the side feature's talk track


def test_a_seeded_playbook_in_roles_matches_the_products_own_side_feature(dealflow_beside_examples):
    legal_only = Playbook.objects.get(pk="legal_only")
    match = legal_only.matches.get(tenant_id="viewer")
    # Forecasts viewed on days 0..19 (20 in 30 days); no deal created or won.
    assert match.measured == [
        {"condition": "1+ Forecast viewed in 30 days", "metric": "event_count", "value": 20},
        {"condition": "no deal_created or Deal won in 30 days", "metric": "event_count", "value": 0},
    ]
    assert not legal_only.matches.filter(tenant_id="gated").exists()  # gated wins deals too


def test_the_first_morning_before_any_event_names_no_spec_type(transactional_db, staff_client):
    # The founder registered Dealflow's types and has sent nothing yet: Today shows how to start.
    EventType.objects.all().delete()
    for name, fields in DEALFLOW_TYPES.items():
        event_type_put(name=name, data=fields)
    text = _visible(staff_client.get("/").content.decode())
    assert "Getting started: send your first event" in text
    assert _leaks({"/": text}) == {}
