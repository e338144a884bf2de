"""GET /ops/customers, /ops/customers/at-risk and /ops/customers/{tenant_id}."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import ApiKey
from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant
from tests.customers.conftest import (
    RANKED_AT_RISK,
    RANKED_BY_STRENGTH,
    RANKED_TENANTS,
    Ev,
    days_ago,
    metrics_rows_store,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _population(store) -> None:
    """Three customers at different risk, one healthy, one internal tenant with friction."""
    events = []
    # "decay": 2 exports/day for days 7..29 (baseline), 1 export and 1 view this week
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(d)) for d in range(7, 30) for _ in range(2)]
    events += [Ev("decay", "EXPORT_COMPLETED", days_ago(2)), Ev("decay", "INCIDENT_VIEWED", days_ago(2))]
    # "policy": 4 policy blocks in 4 sessions this week (friction 8 -> 24 points) + recent views
    events += [Ev("policy", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"p{d}") for d in range(4)]
    events += [Ev("policy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    # "healthy": steady views every day
    events += [Ev("healthy", "INCIDENT_VIEWED", days_ago(d)) for d in range(0, 28)]
    # "ops": our own account, lots of friction, never at risk
    events += [Ev("ops", "REPLAY_ABORTED", days_ago(1), session_id=f"o{i}") for i in range(5)]
    store(events)
    Tenant.objects.filter(tenant_id="ops").update(kind="internal")
    Tenant.objects.filter(tenant_id="healthy").update(name="Healthy Corp")
    metrics_recompute()


def test_it_lists_customers_at_risk_strongest_first_with_interventions(metrics_db, read_client):
    _population(metrics_db)
    response = read_client.get("/ops/customers/at-risk?limit=10")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [c["tenant_id"] for c in body] == ["decay", "policy"]
    decay = body[0]
    # 7d: 1 export + 1 view = 0.7; 30d: 47 exports + 1 view = 23.7 -> 5.5116 weekly
    # delta = 0.7 / 5.5116 = 0.1270 -> 45 x (1 - 0.127) = 39.3; plus a cliff (2 events vs 14 last
    # week): 15 -> 54.3, high
    assert decay["stickiness_7d"] == 0.7
    assert decay["stickiness_30d"] == 5.5116
    assert decay["stickiness_delta"] == 0.127
    assert decay["risk_level"] == "high"
    assert decay["risk_signal_strength"] == decay["risk_score"] == 54.3
    assert (
        decay["secondary_signals"][0]
        == "Activity at decay fell to 2 events this week from 14 last week (less than half)"
    )
    assert decay["primary_risk_reason"].startswith(
        "Usage this week is 13% of decay's normal (weighted use 0.70 this week vs 5.51"
    )
    email = next(i for i in decay["interventions"] if i["intervention_type"] == "email")
    assert email["triggering_signals"][0] == "This week's use is 13% of normal (below 50%; ratio 0.13)"
    assert set(decay) >= {
        "tenant_id",
        "risk_level",
        "risk_signal_strength",
        "primary_risk_reason",
        "secondary_signals",
        "stickiness_7d",
        "stickiness_30d",
        "stickiness_delta",
        "last_investigation",
        "days_since_investigation",
        "friction_events_7d",
        "friction_weighted_score",
        "top_friction_type",
        "recent_changes",
        "decay_correlation",
        "interventions",
    }
    policy = body[1]
    assert policy["friction_weighted_score"] == 8.0
    assert policy["risk_signal_strength"] == 24.0
    assert policy["top_friction_type"] == "POLICY_BLOCK_REPEAT"
    technical = next(i for i in policy["interventions"] if i["intervention_type"] == "technical")
    assert technical["triggering_signals"] == ["4 blocked attempts in the last 7 days (Policy block repeat; 3 or more)"]

    assert [c["tenant_id"] for c in read_client.get("/ops/customers/at-risk?limit=1").json()] == ["decay"]


def test_it_lists_a_critical_customer_before_a_stronger_high_one(metrics_db, read_client):
    """A playbook raised "globex" to critical at strength 45: it is called before "acme" (high, 55)."""
    metrics_rows_store(RANKED_TENANTS)
    body = read_client.get("/ops/customers/at-risk?limit=10").json()
    assert [(c["tenant_id"], c["risk_level"], c["risk_signal_strength"]) for c in body] == [
        ("initech", "critical", 70.0),
        ("globex", "critical", 45.0),
        ("acme", "high", 55.0),
        ("bravo", "high", 55.0),
        ("umbrella", "high", 38.0),
        ("hooli", "medium", 30.0),
        ("zeta", "medium", 12.0),
    ]
    assert [c["tenant_id"] for c in read_client.get("/ops/customers/at-risk?limit=3").json()] == RANKED_AT_RISK[:3]


def test_its_customer_list_puts_the_most_at_risk_first_and_still_sorts_by_strength_alone(metrics_db, read_client):
    metrics_rows_store(RANKED_TENANTS)

    def order(query: str) -> list[str]:
        return [r["tenant_id"] for r in read_client.get(f"/ops/customers{query}").json()["results"]]

    # The default is the at-risk order, then the tenants not at risk.
    assert order("") == order("?ordering=-risk_level") == [*RANKED_AT_RISK, "calm"]
    assert order("?ordering=risk_level") == ["zeta", "hooli", "umbrella", "acme", "bravo", "globex", "initech", "calm"]
    assert order("?ordering=-risk_signal_strength") == RANKED_BY_STRENGTH
    assert order("?ordering=risk_signal_strength") == [
        "zeta",
        "calm",
        "hooli",
        "umbrella",
        "globex",
        "acme",  # ties by tenant_id in either direction
        "bravo",
        "initech",
    ]
    assert order("?at_risk=true&page_size=2&page=2") == ["acme", "bravo"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten"])
def test_it_rejects_a_bad_limit(metrics_db, read_client, query):
    response = read_client.get(f"/ops/customers/at-risk?{query}")
    assert response.status_code == 400
    assert "limit" in response.json()


def test_it_lists_filters_and_sorts_customers(metrics_db, read_client):
    _population(metrics_db)
    body = read_client.get("/ops/customers").json()
    assert body["count"] == 3  # customers only by default
    assert [r["tenant_id"] for r in body["results"]] == ["decay", "policy", "healthy"]
    healthy = body["results"][2]
    assert healthy["name"] == "Healthy Corp"
    assert healthy["stickiness_7d"] == 1.4  # 7 views x 0.2
    assert healthy["friction_score"] == 0
    assert healthy["risk_level"] is None

    by_delta = read_client.get("/ops/customers?ordering=stickiness_delta").json()["results"]
    assert [r["tenant_id"] for r in by_delta] == ["decay", "healthy", "policy"]
    assert [r["tenant_id"] for r in read_client.get("/ops/customers?risk_level=none").json()["results"]] == ["healthy"]
    assert read_client.get("/ops/customers?at_risk=true").json()["count"] == 2
    assert read_client.get("/ops/customers?kind=all").json()["count"] == 4
    assert [r["tenant_id"] for r in read_client.get("/ops/customers?q=corp").json()["results"]] == ["healthy"]
    page = read_client.get("/ops/customers?page_size=2&page=2").json()
    assert [r["tenant_id"] for r in page["results"]] == ["healthy"]


@pytest.mark.parametrize("query", ["ordering=password", "kind=alien", "risk_level=severe", "at_risk=perhaps"])
def test_it_rejects_unknown_filters_and_orderings(metrics_db, read_client, query):
    response = read_client.get(f"/ops/customers?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_it_shows_one_customer_with_components_and_sixty_days(metrics_db, staff_client):
    _population(metrics_db)
    response = staff_client.get("/ops/customers/policy")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [c["signal"] for c in body["risk_components"]] == [
        "silent_churn",
        "engagement_decay",
        "never_investigated",
        "friction",
        "champion_silent",
        "usage_cliff",
        "low_usage",
        "below_own_level",
        "not_onboarded",
        "early_days",
    ]
    assert sum(c["points"] for c in body["risk_components"]) == body["risk_signal_strength"]
    daily = body["daily"]
    assert len(daily) == 60
    assert daily[0]["day"] == "2026-01-15" and daily[-1]["day"] == "2026-03-15"
    today = daily[-1]
    # one view per day: 7-day stickiness 7 x 0.2; one policy block (2.0) today
    assert today["stickiness_7d"] == 1.4 and today["friction_score"] == 2.0 and today["events"] == 2
    # views began 27 days ago (2026-02-16): the day before 0, then 0.2, then 0.4
    assert [d["stickiness_7d"] for d in daily[-29:-26]] == [0.0, 0.2, 0.4]
    assert daily[-28]["day"] == "2026-02-16"


def test_it_answers_404_for_an_unknown_tenant(metrics_db, read_client):
    response = read_client.get("/ops/customers/nobody")
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_it_refuses_anonymous_and_ingest_keys(metrics_db, client, ingest_client):
    assert client.get("/ops/customers/at-risk").status_code == 401
    assert ingest_client.get("/ops/customers").status_code == 403


def test_it_reads_with_a_constant_number_of_queries(metrics_db, read_client):
    def count(path: str) -> int:
        from django.core.cache import cache

        # The key's last_used_at is refreshed at most once a minute: stamped now, so the measured
        # request never pays that write (a request first left a window: on a slow run the minute
        # could end between it and the measured one).
        read_client.get(path)
        ApiKey.objects.update(last_used_at=timezone.now())
        cache.clear()  # the cold path: what a request costs right after a recompute
        with CaptureQueriesContext(connection) as ctx:
            assert read_client.get(path).status_code == 200
        return len(ctx.captured_queries)

    metrics_db([Ev("t0", "API_CALL", days_ago(1))])
    metrics_recompute()
    read_client.get("/ops/customers")  # the key's first use writes last_used_at once
    few = [count("/ops/customers"), count("/ops/customers/at-risk"), count("/ops/customers/t0")]
    metrics_db([Ev(f"t{i}", "REPLAY_ABORTED", days_ago(1)) for i in range(1, 40)])
    metrics_recompute()
    many = [count("/ops/customers"), count("/ops/customers/at-risk"), count("/ops/customers/t0")]
    assert few == many


def test_the_at_risk_answer_is_reused_until_the_next_recompute(metrics_db, read_client, django_assert_max_num_queries):
    from customers.metrics.recompute import metrics_recompute
    from tests.customers.conftest import Ev, days_ago, events_store

    events_store([Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{d}") for d in range(4)])
    metrics_recompute(full=True)
    first = read_client.get("/ops/customers/at-risk?limit=10").json()
    assert [row["tenant_id"] for row in first] == ["acme"]
    with django_assert_max_num_queries(3):  # key lookup, key last-used, the engine's run stamps
        assert read_client.get("/ops/customers/at-risk?limit=10").json() == first
    events_store([Ev("globex", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"g{d}") for d in range(5)])
    metrics_recompute()
    assert {row["tenant_id"] for row in read_client.get("/ops/customers/at-risk?limit=10").json()} == {"acme", "globex"}


def test_a_cached_answer_costs_one_query_within_the_version_check_interval(
    metrics_db, read_client, settings, django_assert_num_queries
):
    from customers.metrics.recompute import metrics_recompute
    from tests.customers.conftest import Ev, days_ago, events_store

    settings.METRICS_VERSION_CHECK_SECONDS = 3600
    events_store([Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{d}") for d in range(4)])
    metrics_recompute(full=True)
    first = read_client.get("/ops/customers/at-risk?limit=10")
    with django_assert_num_queries(1):  # the key lookup: the run stamps were read a moment ago
        again = read_client.get("/ops/customers/at-risk?limit=10")
    assert again.content == first.content
    assert again["Content-Type"] == "application/json"


def test_a_revoked_key_is_refused_at_once_even_for_a_cached_answer(metrics_db, read_client, make_key, settings):
    from django.utils import timezone

    from core.models import ApiKey

    settings.METRICS_VERSION_CHECK_SECONDS = 3600
    metrics_db([Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{d}") for d in range(4)])
    metrics_recompute(full=True)
    assert read_client.get("/ops/customers/at-risk").status_code == 200
    ApiKey.objects.filter(name="dashboard").update(revoked_at=timezone.now())
    response = read_client.get("/ops/customers/at-risk")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_rebuilding_a_tenant_refreshes_the_cached_answers(metrics_db, read_client):
    """A tenant flagged internal is rebuilt (not a periodic run): it leaves the cached list at once."""
    from customers.metrics.recompute import tenant_rollups_rebuild

    metrics_db([Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{d}") for d in range(4)])
    metrics_recompute(full=True)
    assert [r["tenant_id"] for r in read_client.get("/ops/customers/at-risk").json()] == ["acme"]
    Tenant.objects.filter(tenant_id="acme").update(kind="internal")
    tenant_rollups_rebuild(tenant_ids=["acme"])
    assert read_client.get("/ops/customers/at-risk").json() == []


def test_the_browsable_api_still_renders_a_cached_answer(metrics_db, staff_client):
    metrics_db([Ev("acme", "POLICY_BLOCK_REPEAT", days_ago(d), session_id=f"s{d}") for d in range(4)])
    metrics_recompute(full=True)
    assert staff_client.get("/ops/customers/at-risk").status_code == 200  # JSON, cached
    page = staff_client.get("/ops/customers/at-risk", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"acme" in page.content
