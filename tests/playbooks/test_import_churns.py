"""manage.py import_churns FILE.csv: all or nothing, idempotent, every bad row named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command

from customers.models import Tenant
from playbooks.models import ChurnRecord


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel("2026-03-15T12:00:00Z", tick=False):
        yield


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "churns.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.django_db
def test_it_loads_known_churns_and_a_rerun_records_nothing_twice(tmp_path: Path, capsys):
    Tenant.objects.create(tenant_id="acme")
    Tenant.objects.create(tenant_id="globex")
    path = _csv(
        tmp_path,
        "tenant_id,churned_at,reason,plan\nacme,2026-02-01,too expensive,pro\nglobex,2026-03-01T23:30:00-02:00,\n",
    )
    call_command("import_churns", path)
    assert "Imported 2 churn(s); 0 already recorded." in capsys.readouterr().out
    assert set(ChurnRecord.objects.values_list("tenant_id", "date", "reason")) == {
        ("acme", date(2026, 2, 1), "too expensive"),
        ("globex", date(2026, 3, 2), ""),  # the UTC day of the timestamp
    }
    call_command("import_churns", path)
    assert "Imported 0 churn(s); 2 already recorded." in capsys.readouterr().out
    assert ChurnRecord.objects.count() == 2


@pytest.mark.django_db
def test_one_bad_row_and_nothing_is_written_with_every_problem_listed(tmp_path: Path):
    Tenant.objects.create(tenant_id="acme")
    path = _csv(
        tmp_path,
        "tenant_id,churned_at\nacme,2026-02-01\nnobody,2026-02-01\nacme,yesterday\nacme,2026-04-01\n,2026-01-01\n",
    )
    with pytest.raises(CommandError) as raised:
        call_command("import_churns", path)
    message = str(raised.value)
    assert "line 3: unknown tenant 'nobody'" in message
    assert "line 4: churned_at 'yesterday' is not a date" in message
    assert "line 5: churned_at 2026-04-01 is in the future" in message
    assert "line 6: tenant_id is empty" in message
    assert not ChurnRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "tenant,date\nacme,2026-01-01\n", "tenant_id,churned_at\n"])
def test_a_file_without_the_columns_or_rows_is_refused(tmp_path: Path, text: str):
    Tenant.objects.create(tenant_id="acme")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_churns", _csv(tmp_path, text))
    assert not ChurnRecord.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_churns", str(tmp_path / "none.csv"))
