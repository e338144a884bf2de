"""The backtest's one seam into the metrics engine (customers/metrics/).

The backtest must score each as-of date D exactly as the live engine would have on
D, from the events that had occurred by D: the same SQL and the same Python, not a
second implementation. The engine's signals query reads five rollup tables by
unqualified name, with day windows ending on ``as_of`` (the newest 60 days at
most) plus the per-type first/last spans over all history. So the backtest
builds PRIVATE copies of those tables as TEMP tables of the same names:
PostgreSQL searches ``pg_temp`` before every other schema, so the engine's own
fold statements write into them and its own signals query reads them, unchanged.

* ``backtest_rollups(through=D0, last=Dn)`` creates the copies and folds every
  event that occurred by the end of D0 (day rows from D0's retention start, spans
  over all history), with the engine's fold statements, into empty tables; then
  copies the events of the days (D0, Dn] into a TEMP ``ops_events`` (indexed on
  occurred_at) that the fold statements read from then on.
* ``backtest_rollups_advance(after=D_prev, through=D)`` folds the events of the
  days (D_prev, D] the way the engine's incremental run folds new events (upserts),
  so the spans are those of D and the day rows of D exist, and prunes day rows to
  D's retention window as the engine does. Rows of days after D never exist when
  D is measured: nothing after D is read.
* ``backtest_day_assess(as_of=D)`` is the engine's ``tenant_signals_measure``,
  ``tenant_points`` (``tenant_assess``'s numbers) and ``features_matrix`` for every customer seen by D, from the same
  private rollups.

Nothing here writes a live table or takes the metrics lock: the copies live in
this database session only and are dropped when the context manager exits (or
with the session if the process dies). While they exist this connection must run
nothing but the backtest, which is why the backtest runs in its own Celery task
or command. Every engine name the backtest uses is imported here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import numpy as np
import psycopg
from django.db import DatabaseError, connection, transaction

from customers.metrics.features import component_points, feature_types, features_matrix, type_counts_measure
from customers.metrics.fold import (
    DAY_ROLLUP_TABLES,
    FOLD_WORK_MEM,
    ROLLUP_KEYS,
    fold_run,
    friction_types_current,
    rollups_start_day,
)
from customers.metrics.peers import peer_levels_measure
from customers.metrics.risk import tenant_assess, tenant_points
from customers.metrics.signals import TenantSignals, tenant_signals_measure
from customers.metrics.thresholds import RISK_LEVEL_THRESHOLDS
from customers.metrics.vocabulary import registry_key_current, vocabulary_current
from customers.metrics.weights import risk_weights_current
from customers.models import RiskWeights, RiskWeightsSource, TenantKind

# The session's buffers for its TEMP tables (PostgreSQL's default is 8MB): the private rollups of
# a 10M-event history are far larger, and every fold and signals query works on them, so with the
# default each date's statements page them through the kernel. Only a limit: buffers are taken as
# used, in the backtest's own connection. It can be set only before the session first uses a TEMP
# table (a second run in the same connection keeps the first one's).
BACKTEST_TEMP_BUFFERS = "512MB"

logger = logging.getLogger(__name__)

# The at-risk threshold: a customer is flagged from the lowest risk level up (medium).
AT_RISK_THRESHOLD = RISK_LEVEL_THRESHOLDS[-1][1]


def risk_components() -> dict[str, float]:
    """The engine's risk components and their default maximum points, read from the engine itself (an
    assessment of a customer with no events and no weights given lists every component once with
    its default): the scale learned weights are expressed in, never the weights in force."""
    return {
        c["signal"]: float(c["max_points"])
        for c in tenant_assess(TenantSignals(tenant_id=""), as_of=date(2000, 1, 1)).risk_components
    }


# The events of the days after the first as-of date, copied once into a private TEMP table that
# shadows ops_events for the engine's fold statements (pg_temp is searched first): each date's
# slice is then an index range of the copy, not a scan of the whole event table per date.
# Uses index: ops_events_occurred_brin (one range scan of the live table). Only the columns the
# fold statements read: if the engine ever reads another, they fail loudly instead of folding wrong.
WINDOW_EVENTS_SQL = """
CREATE TEMP TABLE ops_events AS
SELECT e.tenant_id, e.user_id, e.session_id, e.event_type, e.occurred_at, e.is_real
FROM ops_events e
WHERE e.occurred_at >= %(since)s::timestamptz AND e.occurred_at < %(until)s::timestamptz
ORDER BY e.occurred_at
"""
WINDOW_EVENTS_TABLE = "ops_events"

# Users with events in the 7 and 30 days ending on as_of, from the backtest's private copy of
# the user/day rollup: a scan of it, like the engine's own reads of its rollups (no index on day;
# the copy holds the retention window's days only).


@dataclass
class DayScores:
    """The customers measured and assessed on one as-of date, in the engine's order: per customer its
    heuristic strength and component points, and its features as one row of ``matrix`` (a column per name)."""

    tenant_ids: list[str]
    risk_signal_strength: np.ndarray
    components: list[dict[str, float]]
    names: tuple[str, ...]
    matrix: np.ndarray

    def features_of(self, names: tuple[str, ...]) -> np.ndarray:
        """The matrix with its columns in ``names``' order (0 for a name it lacks)."""
        if names == self.names:
            return self.matrix
        column = {name: j for j, name in enumerate(self.names)}
        out = np.zeros((len(self.tenant_ids), len(names)))
        for k, name in enumerate(names):
            if name in column:
                out[:, k] = self.matrix[:, column[name]]
        return out


def engine_registry_key() -> str:
    """The fingerprint of the registry the engine computes with (a run is for one registry)."""
    return registry_key_current()


def weights_in_force() -> str:
    """Which risk weights the engine uses: "spec" (the seeded default, or none active),
    "learned-<version>" once a learned version is adopted, "founder-<version>" for weights the
    founder set in admin (customers.RiskWeights)."""
    active = RiskWeights.objects.filter(is_active=True).only("version", "source").first()
    if active is None or active.source == RiskWeightsSource.DEFAULT:
        return "spec"
    return f"{active.source}-{active.version}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, dt_time.min, tzinfo=UTC)


def _fold(*, after: date | None, through: date, into_empty: bool) -> int:
    """Fold the events that occurred in the days (after, through] with the engine's fold statements."""
    # Uses index: ops_events_occurred_brin (a time range of the event table).
    where = "e.occurred_at < %(bt_until)s::timestamptz"
    params: dict[str, Any] = {
        "bt_until": _day_start(through + timedelta(days=1)),
        "friction_types": friction_types_current(),
        "start_day": rollups_start_day(through),
    }
    if after is not None:
        where += " AND e.occurred_at >= %(bt_from)s::timestamptz"
        params["bt_from"] = _day_start(after + timedelta(days=1))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{FOLD_WORK_MEM}'")
        folded, _ = fold_run(where, params, track_xids=False, into_empty=into_empty)
    return folded


def _temp_buffers_raise() -> None:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET temp_buffers = '{BACKTEST_TEMP_BUFFERS}'")  # the session's, past the transaction
    except DatabaseError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.InvalidParameterValue):
            raise
        # This session has used a TEMP table before (an earlier backtest in the same connection):
        # it keeps its buffers, and the backtest runs as it would with the default, only slower.
        logger.info("backtest keeps the session's temp_buffers: %s", exc)


def _copies_drop() -> None:
    with connection.cursor() as cursor:
        for table in (*ROLLUP_KEYS, WINDOW_EVENTS_TABLE):
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")


@contextmanager
def backtest_rollups(*, through: date, last: date) -> Iterator[int]:
    """Private rollups of every event that occurred by the end of ``through``, ready to advance up to
    ``last``; yields how many events were folded."""
    _temp_buffers_raise()
    _copies_drop()
    with connection.cursor() as cursor:
        for table in ROLLUP_KEYS:
            # LIKE resolves to the live table (no copy exists yet): same columns, no rows.
            cursor.execute(f"CREATE TEMP TABLE {table} (LIKE {table} INCLUDING DEFAULTS)")
    try:
        folded = _fold(after=None, through=through, into_empty=True)
        with connection.cursor() as cursor:
            for table, key in ROLLUP_KEYS.items():
                # The keys the engine's upserts and lookups rely on, built once after the bulk load.
                cursor.execute(f"ALTER TABLE pg_temp.{table} ADD PRIMARY KEY ({', '.join(key)})")
                cursor.execute(f"ANALYZE pg_temp.{table}")
            if last > through:
                cursor.execute(
                    WINDOW_EVENTS_SQL,
                    {"since": _day_start(through + timedelta(days=1)), "until": _day_start(last + timedelta(days=1))},
                )
                cursor.execute(f"CREATE INDEX ON pg_temp.{WINDOW_EVENTS_TABLE} (occurred_at)")
                cursor.execute(f"ANALYZE pg_temp.{WINDOW_EVENTS_TABLE}")
        yield folded
    finally:
        _copies_drop()


def backtest_rollups_advance(*, after: date, through: date) -> int:
    """Add the events of the days (after, through] to the private rollups (the engine's upserts), and
    drop the day rows older than ``through``'s retention window, as the engine's daily prune does: the
    copies stay the size of the live rollups, and so does the cost of measuring each date."""
    if through <= after:
        raise ValueError(f"cannot advance the backtest rollups from {after} back to {through}")
    folded = _fold(after=after, through=through, into_empty=False)
    with connection.cursor() as cursor:
        for table in DAY_ROLLUP_TABLES:
            # pg_temp, spelled out: this must never reach a live table.
            cursor.execute(f"DELETE FROM pg_temp.{table} WHERE day < %s", [rollups_start_day(through)])
    return folded


def backtest_day_assess(*, as_of: date) -> DayScores:
    """Every customer seen by ``as_of``, measured and assessed by the engine as of that day."""
    with transaction.atomic(), connection.cursor() as cursor:
        # As the engine's run does: JIT compiles for longer than these statements run.
        cursor.execute("SET LOCAL jit = off")
        # The registry and the weights in force, read as the live run reads them.
        vocabulary = vocabulary_current()
        weights = risk_weights_current()
        # The customers' levels of that day, from the private rollups (what the live engine measured that day).
        measured = tenant_signals_measure(
            as_of=as_of, scope="all", vocabulary=vocabulary, peers=peer_levels_measure(as_of=as_of)
        )
    types = feature_types(vocabulary)
    # A tenant with no span had no event by as_of (it appeared later): it did not exist yet.
    customers = [s for s in measured if s.kind == TenantKind.CUSTOMER and s.first_seen_at is not None]
    # The heuristic's numbers only: its texts and interventions are the live pages', not the backtest's.
    assessed = [tenant_points(s, as_of=as_of, vocabulary=vocabulary, weights=weights) for s in customers]
    components = [points for _, points in assessed]
    names, matrix = features_matrix(
        customers,
        as_of=as_of,
        types=types,
        type_counts=type_counts_measure(as_of=as_of, scope="all", types=types),
        points=component_points(components),
    )
    return DayScores(
        [s.tenant_id for s in customers],
        np.asarray([strength for strength, _ in assessed], dtype=float),
        components,
        names,
        matrix,
    )
