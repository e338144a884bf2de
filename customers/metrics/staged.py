"""How a run's ``ops_tenant_metrics`` rows reach a Citus cluster's shards: COPYed, then upserted on each shard.

On plain PostgreSQL the rows travel as one jsonb parameter (write.METRICS_UPSERT_SQL). On Citus an INSERT
whose rows come from a parameter is pulled to the coordinator: it parses every row's jsonb there (the risk
components are most of a row's few kilobytes), sends the rows to the workers as intermediate results, and
each shard parses them again to upsert them. Here the rows are COPYed into ``ops_metrics_staged``
(customers.models.StagedMetricsRow, co-located with ``ops_tenant_metrics``; the JSON columns as text, so
the coordinator only splits the rows by tenant) and one INSERT ... SELECT, pushed down whole, turns the
text into jsonb and upserts each shard's rows on its own. The values written are the same: a JSON null is
SQL NULL either way, and every other value goes through the same input function. The MRR in force is read
first (ops_tenant_revenue stays on the coordinator, and a join to it would pull the statement back there).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.db import connection

from core.rows import rows_as_dicts

STAGED_TABLE = "ops_metrics_staged"  # customers.models.StagedMetricsRow


def staged_columns(columns: dict[str, str]) -> dict[str, str]:
    """The staged table's columns for the metrics columns (name -> SQL type): jsonb travels as text."""
    return {name: "text" if sql_type == "jsonb" else sql_type for name, sql_type in columns.items()}


# The MRR in force of the rows' tenants (ops_tenant_revenue's primary key; a coordinator table on Citus).
REVENUE_OF_TENANTS_SQL = "SELECT tenant_id, mrr FROM ops_tenant_revenue WHERE tenant_id = ANY(%s::text[])"
STAGED_COPY_SQL = "COPY {table} ({columns}, mrr) FROM STDIN"
# Each shard upserts its own staged rows (ops_tenant_metrics' primary key, the conflict target; the two
# tables are co-located, so Citus pushes the statement down whole).
STAGED_UPSERT_SQL = """
INSERT INTO ops_tenant_metrics ({columns}, mrr)
SELECT {s_columns}, s.mrr FROM {table} s
ON CONFLICT (tenant_id) DO UPDATE SET {updates}, mrr = EXCLUDED.mrr
"""
# The run's rows go before its transaction commits (the shards' part of the table, by the run's own rows).
STAGED_CLEAR_SQL = f"DELETE FROM {STAGED_TABLE}"


def staged_upsert_sql(columns: dict[str, str]) -> str:
    """STAGED_UPSERT_SQL for these metrics columns (name -> SQL type, tenant_id first)."""
    return STAGED_UPSERT_SQL.format(
        table=STAGED_TABLE,
        columns=", ".join(columns),
        s_columns=", ".join(f"s.{c}::jsonb" if t == "jsonb" else f"s.{c}" for c, t in columns.items()),
        updates=", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "tenant_id"),
    )


def _copy_value(value: Any, sql_type: str) -> Any:
    """A row's value as COPY sends it: JSON columns as their JSON text (None stays NULL). Refuses what the
    jsonb parameter refuses (json.dumps with allow_nan=False): a NaN or infinite number anywhere."""
    if value is None:
        return None
    if sql_type == "jsonb":
        return json.dumps(value, allow_nan=False)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    return value


def metrics_rows_upsert_staged(rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """Upsert ``rows`` (write.metrics_row's, keys ``columns``) into ops_tenant_metrics through the staged
    table, in the caller's transaction, and leave the staged table as it found it."""
    with connection.cursor() as cursor:
        cursor.execute(REVENUE_OF_TENANTS_SQL, [[row["tenant_id"] for row in rows]])
        mrr = {found["tenant_id"]: found["mrr"] for found in rows_as_dicts(cursor)}
        copy_sql = STAGED_COPY_SQL.format(table=STAGED_TABLE, columns=", ".join(columns))
        with cursor.cursor.copy(copy_sql) as copy:
            for row in rows:
                values = [_copy_value(row[name], sql_type) for name, sql_type in columns.items()]
                copy.write_row([*values, mrr.get(row["tenant_id"])])
        cursor.execute(staged_upsert_sql(columns))
        cursor.execute(STAGED_CLEAR_SQL)
