"""One churn fact: every way a churn arrives or leaves (the console form, ``POST /ops/churns``, the
Stripe webhook and the mapping of a waiting Stripe customer, ``import_churns``, admin add, edit and
delete) sets the customer's churn state and takes it off (or puts it back on) the at-risk list.

The clock is the metrics tests' (2026-03-15 12:00 UTC). "decay" and "policy" are at risk; their
last real activity is on the 13th and the 15th, so a churn on the 15th leaves them gone.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from customers.metrics.recompute import metrics_recompute
from customers.models import Tenant, TenantMetrics
from playbooks.billing import stripe_customer_map
from playbooks.churns import churn_record
from playbooks.models import ChurnRecord, PlaybookMatch
from tests.conftest import owner_login
from tests.playbooks.stripe_events import STRIPE_SECRET, stripe_event, stripe_post

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = date(2026, 3, 15)


@pytest.fixture
def admin_client(at_risk: None) -> Client:
    return owner_login()


def _at_risk_ids(client: Any) -> list[str]:
    response = client.get("/ops/customers/at-risk?limit=10")
    assert response.status_code == 200
    return [row["tenant_id"] for row in response.json()]


def _churned_at(tenant_id: str) -> date | None:
    return Tenant.objects.get(tenant_id=tenant_id).churned_at


def _gone(client: Any, tenant_id: str, day: date = TODAY) -> None:
    """The customer is churned on ``day`` and off the at-risk list and its playbooks, before any recompute."""
    assert _churned_at(tenant_id) == day
    assert tenant_id not in _at_risk_ids(client)
    assert not PlaybookMatch.objects.filter(tenant_id=tenant_id).exists()


def _back_after_the_next_recompute(client: Any, tenant_id: str) -> None:
    """Un-churned: no churn state, its row waits for the next recompute, which puts it back on the list."""
    assert _churned_at(tenant_id) is None
    assert TenantMetrics.objects.get(tenant_id=tenant_id).stale is True
    metrics_recompute()
    assert tenant_id in _at_risk_ids(client)
    assert PlaybookMatch.objects.filter(tenant_id=tenant_id).exists()


def test_the_console_form_takes_the_customer_off_the_list(at_risk, staff_client):
    assert "decay" in _at_risk_ids(staff_client)
    form = {"tenant_id": "decay", "reason": "Left", "confirm": "yes"}
    assert staff_client.post("/playbooks/churns/new/", form).status_code == 302
    _gone(staff_client, "decay")


def test_the_api_takes_the_customer_off_the_list(at_risk, make_key, read_client):
    _, raw = make_key("write", "founder-scripts")
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert "decay" in _at_risk_ids(read_client)
    assert writer.post("/ops/churns", {"tenant_id": "decay"}, format="json").status_code == 201
    _gone(read_client, "decay")


def _stripe_deletion(event_id: str, *, customer: str, metadata: dict[str, str] | None = None) -> str:
    return stripe_event(
        event_id,
        "customer.subscription.deleted",
        customer=customer,
        metadata=metadata,
        ended=datetime(2026, 3, 15, 11, tzinfo=UTC),
        cancellation_details={"feedback": "too_expensive", "comment": "x" * 6000},
    )


def test_a_stripe_cancellation_takes_the_customer_off_the_list(at_risk, client, read_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    assert "decay" in _at_risk_ids(read_client)
    payload = _stripe_deletion("evt_1", customer="cus_1", metadata={"tenant_id": "decay"})
    response = stripe_post(client, payload)
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    _gone(read_client, "decay")
    # The customer's long comment is kept to the length every churn reason keeps, never a 500.
    assert len(ChurnRecord.objects.get(tenant_id="decay").reason) == 5000


def test_a_waiting_stripe_cancellation_takes_the_customer_off_the_list_once_mapped(
    at_risk, client, read_client, settings
):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    assert stripe_post(client, _stripe_deletion("evt_2", customer="cus_new")).json()["status"] == "unmapped"
    assert "policy" in _at_risk_ids(read_client)
    assert stripe_customer_map(stripe_customer_id="cus_new", tenant_id="policy") == 1
    _gone(read_client, "policy")


def test_a_churn_typed_in_and_then_sent_by_stripe_is_one_churn(at_risk, client, read_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    churn_record(tenant_id="decay", reason="Told us on the phone")
    stripe_post(client, _stripe_deletion("evt_3", customer="cus_1", metadata={"tenant_id": "decay"}))
    assert list(ChurnRecord.objects.values_list("tenant_id", "reason")) == [("decay", "Told us on the phone")]
    _gone(read_client, "decay")


def test_import_churns_takes_the_customers_off_the_list(at_risk, read_client, tmp_path: Path):
    assert {"decay", "policy"} <= set(_at_risk_ids(read_client))
    path = tmp_path / "churns.csv"
    path.write_text("tenant_id,churned_at,reason\ndecay,2026-03-15,left\npolicy,2026-03-14T23:00:00-02:00,\n")
    call_command("import_churns", str(path))
    _gone(read_client, "decay")
    _gone(read_client, "policy", date(2026, 3, 15))  # the UTC day of the timestamp


def test_rerunning_an_import_sets_the_churn_state_a_recorded_churn_lacked(at_risk, read_client, tmp_path: Path):
    # A churn stored without its churn state (as billing and imports left them before).
    ChurnRecord.objects.create(tenant_id="decay", date=TODAY, reason="left")
    assert "decay" in _at_risk_ids(read_client)
    path = tmp_path / "churns.csv"
    path.write_text("tenant_id,churned_at\ndecay,2026-03-15\n")
    call_command("import_churns", str(path))
    assert ChurnRecord.objects.count() == 1
    _gone(read_client, "decay")


def test_a_churn_added_in_admin_takes_the_customer_off_the_list(admin_client, read_client):
    response = admin_client.post(
        "/admin/playbooks/churnrecord/add/", {"tenant": "decay", "date": "2026-03-15", "reason": "Left"}
    )
    assert response.status_code == 302
    assert ChurnRecord.objects.get().created_by == "owner"
    _gone(read_client, "decay")


def test_admin_refuses_a_future_or_second_churn_with_the_apis_words(admin_client):
    churn_record(tenant_id="decay")
    future = admin_client.post("/admin/playbooks/churnrecord/add/", {"tenant": "decay", "date": "2026-03-16"})
    assert future.status_code == 200 and "A churn cannot be dated in the future." in future.content.decode()
    twice = admin_client.post("/admin/playbooks/churnrecord/add/", {"tenant": "decay", "date": "2026-03-15"})
    assert "A churn of &#x27;decay&#x27; on 2026-03-15 is already recorded." in twice.content.decode()
    assert ChurnRecord.objects.count() == 1


def test_a_churn_edited_in_admin_moves_the_customer_on_and_off_the_list(admin_client, read_client):
    # Dated before decay's last activity (the 13th): it came back and stays on the list.
    churn = churn_record(tenant_id="decay", day=date(2026, 3, 10))
    assert _churned_at("decay") == date(2026, 3, 10) and "decay" in _at_risk_ids(read_client)
    change = f"/admin/playbooks/churnrecord/{churn.pk}/change/"
    assert admin_client.post(change, {"tenant": "decay", "date": "2026-03-15", "reason": ""}).status_code == 302
    _gone(read_client, "decay")
    # Put on the wrong customer: moved to policy, which leaves; decay is un-churned.
    assert admin_client.post(change, {"tenant": "policy", "date": "2026-03-15", "reason": ""}).status_code == 302
    _gone(read_client, "policy")
    _back_after_the_next_recompute(read_client, "decay")


def test_deleting_a_customers_only_churn_in_admin_puts_it_back_on_the_list(admin_client, read_client):
    churn = churn_record(tenant_id="decay")
    _gone(read_client, "decay")
    response = admin_client.post(f"/admin/playbooks/churnrecord/{churn.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ChurnRecord.objects.exists()
    _back_after_the_next_recompute(read_client, "decay")


def test_deleting_churns_in_bulk_in_admin_settles_every_customer(admin_client, read_client):
    earlier = churn_record(tenant_id="policy", day=date(2026, 3, 1))
    later = churn_record(tenant_id="policy")
    decay = churn_record(tenant_id="decay")
    _gone(read_client, "policy")
    _gone(read_client, "decay")
    response = admin_client.post(
        "/admin/playbooks/churnrecord/",
        {"action": "delete_selected", "_selected_action": [later.pk, decay.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(ChurnRecord.objects.values_list("pk", flat=True)) == [earlier.pk]
    # policy keeps its earlier churn, which its later activity outlived: it came back.
    assert _churned_at("policy") == date(2026, 3, 1)
    _back_after_the_next_recompute(read_client, "decay")
    assert "policy" in _at_risk_ids(read_client)


# --- Nothing else writes the churn state ---------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
APPS = ("customers", "events", "infra", "opsconsole", "playbooks", "validation")
# The one writer of Tenant.churned_at, and the one writer of ChurnRecord rows (which calls it).
CHURN_STATE_WRITER = Path("customers/founder_actions.py")
CHURN_RECORD_WRITER = Path("playbooks/churns.py")
WRITE_METHODS = {"create", "bulk_create", "update", "delete", "get_or_create", "update_or_create", "save"}
SQL_WRITES = (
    re.compile(r"\bupdate\b.*\bset\b.*\bchurned_at\s*=(?!=)", re.IGNORECASE | re.DOTALL),
    re.compile(r"\b(insert\s+into|update|delete\s+from)\s+playbooks_churnrecord\b", re.IGNORECASE),
)


def _sources() -> list[tuple[Path, ast.AST]]:
    # Migrations are history, frozen as they ran; they are not a way a churn arrives today.
    files = [p for app in APPS for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]
    return [(p.relative_to(ROOT), ast.parse(p.read_text(encoding="utf-8"))) for p in files]


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _offences(path: Path, tree: ast.AST) -> list[str]:
    """Writes of the churn state or of churn records in ``tree`` that ``path`` may not make."""
    offences = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if path != CHURN_STATE_WRITER:
            if isinstance(node, ast.Call) and any(k.arg == "churned_at" for k in node.keywords):
                offences.append(f"{where} passes churned_at=")
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "churned_at" for t in targets):
                offences.append(f"{where} assigns .churned_at")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and path not in (CHURN_STATE_WRITER, CHURN_RECORD_WRITER)
            and any(pattern.search(node.value) for pattern in SQL_WRITES)
        ):
            offences.append(f"{where} writes churns in SQL")
        if (
            path != CHURN_RECORD_WRITER
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITE_METHODS
            and "ChurnRecord" in _names(node.func)
        ):
            offences.append(f"{where} writes ChurnRecord rows")
    return offences


def test_no_other_code_writes_the_churn_state_or_the_churn_records():
    assert [offence for path, tree in _sources() for offence in _offences(path, tree)] == []


def test_the_scan_sees_each_kind_of_write():
    """The scan above is not blind: each write it looks for, made elsewhere, is named."""
    source = (
        "Tenant.objects.filter(tenant_id=t).update(churned_at=day)\n"
        "tenant.churned_at = day\n"
        "ChurnRecord.objects.create(tenant=t, date=d)\n"
        "ChurnRecord.objects.filter(pk=1).delete()\n"
        "SQL = 'UPDATE customers_tenant SET churned_at = %s WHERE tenant_id = %s'\n"
        "READ = 'UPDATE ops_tenant_metrics SET risk_level = NULL FROM t WHERE t.churned_at IS NOT NULL'\n"
    )
    offences = _offences(Path("events/elsewhere.py"), ast.parse(source))
    assert sorted(o.split(" ", 1)[1] for o in offences) == [
        "assigns .churned_at",
        "passes churned_at=",
        "writes ChurnRecord rows",
        "writes ChurnRecord rows",
        "writes churns in SQL",
    ]
    assert _offences(CHURN_STATE_WRITER, ast.parse(source.splitlines()[0])) == []
