"""The table a Citus recompute stages its metrics rows in has the metrics row's columns (the JSON ones as
text) and the MRR: a column added to the row and not to the table would fail the cluster's write."""

from __future__ import annotations

import pytest
from django.db import connection

from customers.metrics.staged import STAGED_TABLE, staged_columns
from customers.metrics.write import METRICS_COLUMNS

# information_schema's name of each type METRICS_COLUMNS uses.
TYPE_NAMES = {
    "text": "text",
    "timestamptz": "timestamp with time zone",
    "date": "date",
    "bigint": "bigint",
    "integer": "integer",
    "double precision": "double precision",
    "boolean": "boolean",
}


@pytest.mark.django_db
def test_the_staged_table_holds_each_metrics_column_with_the_json_ones_as_text():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", [STAGED_TABLE]
        )
        found = dict(cursor.fetchall())
    expected = {name: TYPE_NAMES[sql_type] for name, sql_type in staged_columns(METRICS_COLUMNS).items()}
    expected["tenant_id"] = "character varying"
    assert found == {**expected, "mrr": "numeric"}
