"""Effectiveness and signal validation on a hand-built history (today = 2026-03-15).

Every figure below is worked out by hand from the definitions in
playbooks/selectors.py's docstring.
"""

from __future__ import annotations

from datetime import date

import pytest

from customers.models import Tenant
from playbooks.effectiveness import playbook_effectiveness
from playbooks.models import ChurnRecord, InterventionRecord, TenantRiskDay
from playbooks.signal_validation import signal_validation

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 15)


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


def tenants(*ids: str, kind: str = "customer") -> None:
    for tenant_id in ids:
        Tenant.objects.create(tenant_id=tenant_id, kind=kind)


def risk(tenant_id: str, day: date, level: str, playbooks: list[str] | None = None) -> None:
    TenantRiskDay.objects.create(tenant_id=tenant_id, day=day, risk_level=level, playbooks=playbooks or [])


def intervene(tenant_id: str, day: date, playbook: str | None = "policy_friction", **kw: object) -> None:
    InterventionRecord.objects.create(
        tenant_id=tenant_id, playbook_id=playbook, action="Emailed", channel="email", date=day, **kw
    )


def churn(tenant_id: str, day: date) -> None:
    ChurnRecord.objects.create(tenant_id=tenant_id, date=day, reason="lost")


@pytest.fixture
def history() -> None:
    tenants("A", "B", "C", "D", "E", "F", "G", "H", "I", "J")
    tenants("K", kind="internal")
    # Treated with policy_friction (medium).
    intervene("A", d(1, 1), outcome="retained", outcome_at=d(1, 20))  # anchor Jan 1: retained at 30 and 60
    intervene("B", d(1, 10))  # anchor Jan 10; latest outcome no_response -> never retained
    intervene("B", d(1, 15), outcome="no_response", outcome_at=d(2, 1))
    intervene("C", d(1, 20))  # anchor Jan 20; churns Mar 5: retained at 30 (Feb 19), 60 not evaluable (Mar 21)
    churn("C", d(3, 5))
    intervene("D", d(2, 1))  # anchor Feb 1: retained at 30 (Mar 3); 60 not evaluable (Apr 2)
    risk("A", d(1, 2), "medium")  # treated: never in the comparison group
    # Comparison candidates (period Jan 1 .. Feb 1).
    for day in (5, 6, 7):
        risk("E", d(1, day), "medium")  # anchor Jan 5, churns Jan 25: lost at 30 and 60
    churn("E", d(1, 25))
    risk("F", d(1, 12), "high", ["policy_friction"])  # matched the playbook: anchor Jan 12, retained 30 and 60
    risk("G", d(1, 15), "medium")  # helped on Jan 20 without a playbook: excluded
    intervene("G", d(1, 20), playbook=None)
    risk("H", d(12, 20, 2025), "medium")  # only outside the period: excluded
    risk("H", d(2, 10), "medium")
    risk("I", d(1, 10), "critical")  # another level, playbook not matched: excluded
    risk("J", d(1, 25), "medium")  # helped BEFORE being flagged: included, anchor Jan 25
    intervene("J", d(1, 1), playbook=None)
    risk("K", d(1, 10), "medium")  # internal: excluded


def test_effectiveness_compares_treated_tenants_with_untreated_ones_of_the_same_level(history):
    by_id = {e["playbook_id"]: e for e in playbook_effectiveness(today=TODAY)}
    e = by_id["policy_friction"]
    assert e["times_applied"] == 5
    assert e["outcomes"] == {"retained": 1, "expanded": 0, "churned": 0, "no_response": 1, "not_recorded": 3}
    assert (e["period_start"], e["period_end"]) == (d(1, 1), d(2, 1))
    assert e["treated"] == {
        "tenants": 4,
        # A, B, C, D followed 30 days; A, C, D retained.
        "retained_30d": {"evaluable": 4, "retained": 3, "share": 0.75},
        # Only A (Mar 2) and B (Mar 11) followed 60 days; A retained.
        "retained_60d": {"evaluable": 2, "retained": 1, "share": 0.5},
    }
    assert e["comparison"] == {
        "tenants": 3,  # E, F, J
        "retained_30d": {"evaluable": 3, "retained": 2, "share": 0.667},  # E churned in its window
        "retained_60d": {"evaluable": 2, "retained": 1, "share": 0.5},  # E and F; J not followed 60 days yet
    }
    assert "Observational" in e["observational_note"]


def test_a_playbook_never_applied_still_shows_its_comparison_group_over_the_whole_history(history):
    e = {x["playbook_id"]: x for x in playbook_effectiveness(today=TODAY)}["abandonment"]  # high
    assert e["times_applied"] == 0
    assert (e["period_start"], e["period_end"]) == (d(12, 20, 2025), TODAY)
    assert e["treated"]["tenants"] == 0
    assert e["treated"]["retained_30d"] == {"evaluable": 0, "retained": 0, "share": None}
    # Only F was at the high level; I was critical.
    assert e["comparison"]["tenants"] == 1
    assert e["comparison"]["retained_60d"] == {"evaluable": 1, "retained": 1, "share": 1.0}


def test_signal_validation_classifies_churns_by_the_level_flagged_before_them():
    tenants("V1", "V2", "V3", "V4", "W1", "W2", "W3")
    tenants("X", kind="internal")
    # V1: medium Feb 1, high Feb 10, critical Feb 20-21; churn Mar 1 -> critical, 9 days before.
    risk("V1", d(2, 1), "medium")
    risk("V1", d(2, 10), "high")
    risk("V1", d(2, 20), "critical")
    risk("V1", d(2, 21), "critical")
    churn("V1", d(3, 1))
    # V2: critical long ago (outside the 90-day lookback), high Feb 8 and Mar 9; churn Mar 10 -> high, 30 days.
    risk("V2", d(11, 1, 2025), "critical")
    risk("V2", d(2, 8), "high")
    risk("V2", d(3, 9), "high")
    churn("V2", d(3, 10))
    # V3: flagged on the churn day itself (and after): flagged medium, 0 days before. Until issue 17
    # one table counted the churn day and the other did not, and they contradicted each other.
    risk("V3", d(2, 15), "medium")
    risk("V3", d(2, 20), "medium")
    churn("V3", d(2, 15))
    # V4: high Jan 21, churn Jan 31 -> high, 10 days.
    risk("V4", d(1, 21), "high")
    churn("V4", d(1, 31))
    # W1 critical, never churned; W2 churned BEFORE it was flagged critical; W3 medium, never churned.
    risk("W1", d(3, 1), "critical")
    churn("W2", d(1, 15))
    risk("W2", d(2, 1), "critical")
    risk("W3", d(3, 1), "medium")
    risk("X", d(3, 1), "critical")  # internal: never counted

    v = signal_validation(today=TODAY)
    assert v["churns_recorded"] == 5
    assert v["warning"].startswith("Only 5 churns recorded")
    assert v["churns_by_level"] == [
        {"risk_level": "critical", "churns": 1, "share": 0.2, "days_before": {"min": 9, "median": 9, "max": 9}},
        {"risk_level": "high", "churns": 2, "share": 0.4, "days_before": {"min": 10, "median": 20.0, "max": 30}},
        {"risk_level": "medium", "churns": 1, "share": 0.2, "days_before": {"min": 0, "median": 0, "max": 0}},
        {"risk_level": "not_flagged", "churns": 1, "share": 0.2, "days_before": None},
    ]
    assert v["flagged"] == [
        # V1 (churned, warned critical), W1, and W2 (churned before it was ever flagged: no warning).
        {"risk_level": "critical", "tenants": 3, "churned": 1, "share_churned": 0.333},
        # V2 (critical 2025, outside the lookback: warned high) and V4, both churned.
        {"risk_level": "high", "tenants": 2, "churned": 2, "share_churned": 1.0},
        # V3 churned on its first medium day; W3 did not churn.
        {"risk_level": "medium", "tenants": 2, "churned": 1, "share_churned": 0.5},
    ]
    # The two tables agree level by level.
    assert [row["churns"] for row in v["churns_by_level"][:3]] == [row["churned"] for row in v["flagged"]]
    by_tenant = {c["tenant_id"]: (c["highest_level"], c["days_flagged_before"]) for c in v["churns"]}
    assert by_tenant == {
        "V1": ("critical", 9),
        "V2": ("high", 30),
        "V3": ("medium", 0),
        "V4": ("high", 10),
        "W2": (None, None),
    }


def test_one_churn_on_the_day_it_was_first_flagged_reads_the_same_in_both_tables():
    """The demo's contradiction: Umbrella flagged critical today, churn recorded today."""
    tenants("umbrella", *[f"n{i}" for i in range(9)])
    risk("umbrella", TODAY, "critical")
    for i in range(9):
        risk(f"n{i}", TODAY, "critical")
    churn("umbrella", TODAY)
    v = signal_validation(today=TODAY)
    assert v["churns_by_level"][0] == {
        "risk_level": "critical",
        "churns": 1,
        "share": 1.0,
        "days_before": {"min": 0, "median": 0, "max": 0},
    }
    assert v["churns_by_level"][-1]["churns"] == 0  # not "NOT FLAGGED 1 (100%)"
    assert v["flagged"][0] == {"risk_level": "critical", "tenants": 10, "churned": 1, "share_churned": 0.1}


def test_the_warning_goes_away_at_ten_churns():
    tenants(*[f"t{i}" for i in range(10)])
    for i in range(9):
        churn(f"t{i}", d(2, 1 + i))
    assert signal_validation(today=TODAY)["warning"] == (
        "Only 9 churns recorded: too few to judge the risk signal. Until at least 10 are recorded, treat the "
        "risk levels as an attention ranking, not a prediction."
    )
    churn("t9", d(3, 1))
    v = signal_validation(today=TODAY)
    assert (v["churns_recorded"], v["warning"]) == (10, None)
    assert v["churns_by_level"][-1] == {"risk_level": "not_flagged", "churns": 10, "share": 1.0, "days_before": None}
