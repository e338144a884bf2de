"""Known churns from a CSV file (``manage.py import_churns FILE.csv``).

The file has a header row with ``tenant_id`` and ``churned_at`` (a date,
``2026-03-14``, or an ISO timestamp, whose UTC day is used) and optionally
``reason``; other columns are ignored. Every row is checked before anything is
written: one bad row (unknown tenant, bad or future date, missing value) and the
whole file is refused with every problem listed by line, so a file is loaded
entirely or not at all. Idempotent: a churn already recorded for that tenant and
day (by hand, from Stripe or by an earlier import) is counted as already there.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.utils import timezone

from core.csv_command import CsvRefused
from customers.models import Tenant
from playbooks.churns import ChurnArrival, churns_record

REQUIRED_COLUMNS = ("tenant_id", "churned_at")
IMPORT_RECORDER = "import_churns"


@dataclass
class ChurnImportResult:
    created: int = 0
    already_recorded: int = 0
    ignored_columns: list[str] = field(default_factory=list)


def _day_parse(value: str) -> date:
    value = value.strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("a timestamp needs a UTC offset (e.g. 2026-03-14T10:00:00+00:00)") from None
        return moment.astimezone(UTC).date()


def churns_import(lines: Iterable[str]) -> ChurnImportResult:
    """Validate every row of a churn CSV, then record the new churns in one transaction."""
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CsvRefused([f"line 1: the header must name the columns {', '.join(missing)} (got {header})"])
    reader.fieldnames = header
    today = timezone.localdate()
    problems: list[str] = []
    wanted: dict[tuple[str, date], str] = {}
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise CsvRefused([f"line {reader.line_num}: not valid CSV ({exc})"]) from exc
    if not rows:
        raise CsvRefused(["the file has no rows after the header"])
    known = set(
        Tenant.objects.filter(tenant_id__in={(r.get("tenant_id") or "").strip() for _, r in rows}).values_list(
            "tenant_id", flat=True
        )
    )
    for line, row in rows:
        if None in row:
            problems.append(f"line {line}: more values than columns")
            continue
        tenant_id = (row.get("tenant_id") or "").strip()
        raw_day = (row.get("churned_at") or "").strip()
        if not tenant_id:
            problems.append(f"line {line}: tenant_id is empty")
            continue
        if tenant_id not in known:
            problems.append(f"line {line}: unknown tenant '{tenant_id}'")
            continue
        try:
            day = _day_parse(raw_day)
        except ValueError as exc:
            problems.append(f"line {line}: churned_at '{raw_day}' is not a date ({exc})")
            continue
        if day > today:
            problems.append(f"line {line}: churned_at {day.isoformat()} is in the future")
            continue
        wanted.setdefault((tenant_id, day), (row.get("reason") or "").strip())
    if problems:
        raise CsvRefused(problems)
    result = ChurnImportResult(ignored_columns=[c for c in header if c not in (*REQUIRED_COLUMNS, "reason")])
    # The one churn service: the customers leave every at-risk list in the same transaction.
    result.created, result.already_recorded = churns_record(
        churns=[
            ChurnArrival(tenant_id=t, day=d, reason=reason, created_by=IMPORT_RECORDER)
            for (t, d), reason in sorted(wanted.items())
        ]
    )
    return result
