"""The walk-forward learning of the backtest: the model scoring a date is trained on the dates before it.

``WalkForward`` is given the run's as-of dates one at a time, oldest first (the training dates
before the run's window first, then the window's): each date is scored by the models fitted on
what was known before it (validation/learned.py ``labelled_fit``), then kept to learn from on later
dates. Besides the scores it records every regularisation candidate's out-of-sample log odds
of the date (the candidates' record, which later refits judge them on): the learning cannot
see a date it has not reached.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.memory import heap_release
from validation.figures import Churns, Rows, churn_marks
from validation.learned import (
    FEATURE_DTYPE,
    LEARNED_REFIT_DAYS,
    FittedModel,
    ScoreTable,
    labelled_fit,
    no_record,
    ranking_scores,
)

# The per-horizon scores of a ScoreTable, in the order of its fields (``track``, last, is kept apart).
_SCORES = ("learned", "ranking", "ranked_by_model")
# Room reserved past the rows a table is expected to need when it grows (dates with more customers than the
# latest): reserved pages that are never written take no memory, a regrowth copies every row kept so far.
GROWTH_SLACK = 1.25


class _GrowingTable:
    """The dates kept so far as one ScoreTable whose arrays grow in place: each date's rows are written once
    into arrays reserved for the dates still to come, and ``table()`` gives views of the rows written, so a
    refit reads every date without a copy of the matrix, and a new date never copies the older ones (unless
    it outgrows the room reserved, see GROWTH_SLACK). The customers' codes index the sorted ids of every
    customer seen, as ``Rows.of`` over the whole table would number them."""

    def __init__(self, *, names: tuple[str, ...], horizons: list[int], dates: int) -> None:
        self.names = names
        self.horizons = horizons
        self.dates_left = dates
        self.size = 0
        self.tenant_ids = np.zeros(0, dtype=str)
        self.day = np.zeros(0, dtype=np.int64)
        self.tenant = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, len(names)), dtype=FEATURE_DTYPE)
        self.strength = np.zeros(0)
        self.scores: dict[str, dict[int, np.ndarray]] = {a: {h: np.zeros(0) for h in horizons} for a in _SCORES}
        self.track = {h: no_record(0) for h in horizons}

    def _reserve(self, rows: int) -> None:
        """Room for ``rows`` more rows (and, with the dates still expected, as many per date)."""
        needed = self.size + rows
        if needed <= len(self.day):
            return
        capacity = int((self.size + rows * max(self.dates_left, 1)) * GROWTH_SLACK)

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.empty((capacity, *a.shape[1:]), dtype=a.dtype)
            out[: self.size] = a[: self.size]
            return out

        self.day, self.tenant = grown(self.day), grown(self.tenant)
        self.matrix, self.strength = grown(self.matrix), grown(self.strength)
        self.scores = {a: {h: grown(v) for h, v in by.items()} for a, by in self.scores.items()}
        self.track = {h: grown(v) for h, v in self.track.items()}

    def _codes(self, part: ScoreTable) -> np.ndarray:
        """The part's customers as codes into the sorted ids of every customer seen, new ones added."""
        ids = part.rows.tenant_ids
        if len(ids) and not np.isin(ids, self.tenant_ids).all():
            merged = np.union1d(self.tenant_ids, ids)
            # A fresh array, not in place: a table given out before keeps the codes of its own ids.
            tenant = np.empty_like(self.tenant)
            tenant[: self.size] = np.searchsorted(merged, self.tenant_ids)[self.tenant[: self.size]]
            self.tenant, self.tenant_ids = tenant, merged
        return np.searchsorted(self.tenant_ids, ids)[part.rows.tenant]

    def append(self, part: ScoreTable) -> None:
        n = len(part.rows)
        self._reserve(n)
        codes = self._codes(part)
        rows = slice(self.size, self.size + n)
        self.day[rows], self.tenant[rows] = part.rows.day, codes
        self.matrix[rows], self.strength[rows] = part.matrix, part.strength
        for attr, by in self.scores.items():
            for h, v in by.items():
                v[rows] = getattr(part, attr).get(h, np.nan)
        for h, v in self.track.items():
            v[rows] = part.track[h] if h in part.track else np.nan
        self.size += n
        self.dates_left -= 1

    def table(self) -> ScoreTable:
        """The rows kept so far (views: valid while kept, whatever is appended after)."""
        n = self.size
        learned, ranking, ranked_by_model = ({h: v[:n] for h, v in self.scores[attr].items()} for attr in _SCORES)
        return ScoreTable(
            Rows(self.day[:n], self.tenant[:n], self.tenant_ids), self.matrix[:n], self.names, self.strength[:n],
            learned, ranking, ranked_by_model, {h: v[:n] for h, v in self.track.items()},
        )  # fmt: skip


@dataclass
class _Schedule:
    fitted: FittedModel | None = None
    fitted_on: int = -(10**9)  # the ordinal of the date it was fitted for


class WalkForward:
    """The walk-forward learned and ranking scores, one as-of date at a time, oldest first.

    ``score(day, part)`` gives the scores of ``day``'s customers from a model trained only on
    the dates already given (so on churns dated before ``day``; see ``labelled_fit``), then keeps
    ``part`` to learn from on later dates. The model is refitted every LEARNED_REFIT_DAYS (and on
    every date until the first fit succeeds); a date in between is scored by the latest model,
    trained on what was known before ITS date, earlier still: out of sample either way.
    ``replay`` brings a resumed run's stored dates back in, refitting on the same schedule and
    recomputing their record from the same fits, so its next date is scored as it would have
    been had the run never stopped.
    """

    def __init__(
        self, churns: Churns, *, horizons: list[int], min_churns: int, names: tuple[str, ...], dates: int = 0
    ) -> None:
        """``dates``: how many dates the walk expects to be given (room is reserved for them as it goes)."""
        self.churns = churns
        self.horizons = list(horizons)
        self.min_churns = min_churns
        self.names = names
        self._kept = _GrowingTable(names=names, horizons=self.horizons, dates=dates)
        self._advanced: date | None = None  # the day ``advance`` last refitted for
        self._schedule = {h: _Schedule() for h in self.horizons}
        # Every churn a fit before a date could learn from is dated before it (a cheap test first).
        self._churn_days = sorted(d for days in churns.values() for d in days)

    def table(self) -> ScoreTable:
        """Every date given so far as one table (views of the kept rows: no copy)."""
        return self._kept.table()

    def _keep(self, part: ScoreTable) -> None:
        self._kept.append(part)

    def records_keep(self, horizon: int) -> None:
        """Let go of every horizon's record of the candidates but ``horizon``'s, once every date is given: after
        the walk only the report's final fit reads a record, its own horizon's, and it runs with the whole table
        held (the run's largest moment)."""
        self._kept.track = {h: v for h, v in self._kept.track.items() if h == horizon}

    def advance(self, day: date) -> None:
        """Refit what ``day``'s schedule asks for, ahead of ``score(day, ...)`` (which then refits nothing): a
        caller can have the models fitted before it builds the day's rows, so a refit's working memory and the
        day's engine objects are never held at once."""
        self._advance(day)
        self._advanced = day

    def _advance(self, day: date) -> None:
        known = bisect.bisect_left(self._churn_days, day)
        for horizon, schedule in self._schedule.items():
            if schedule.fitted is not None and day.toordinal() - schedule.fitted_on < LEARNED_REFIT_DAYS:
                continue
            if known < self.min_churns or not self._kept.size:
                continue  # labelled_fit would find too few churns
            table = self.table()
            labels = churn_marks(table.rows, self.churns, horizon=horizon)
            refit = labelled_fit(table, labels, horizon=horizon, before=day, min_churns=self.min_churns)
            if refit is not None:
                schedule.fitted, schedule.fitted_on = refit, day.toordinal()
            del table, labels
            # One horizon's working copies go back to the system before the next horizon's are made.
            heap_release()

    def _record(self, part: ScoreTable) -> None:
        for h, s in self._schedule.items():
            part.track[h] = s.fitted.candidate_log_odds(part.matrix) if s.fitted else no_record(len(part.rows))

    def score(self, day: date, part: ScoreTable) -> ScoreTable:
        """``day``'s learned and ranking scores per horizon, set on ``part`` (returned)."""
        if self._advanced != day:
            self._advance(day)
        for h, s in self._schedule.items():
            part.learned[h], part.ranking[h], part.ranked_by_model[h] = ranking_scores(s.fitted, part)
        self._record(part)
        self._keep(part)
        return part

    def replay(self, stored: ScoreTable) -> None:
        """A resumed run's stored dates (their scores stand as stored; their record is recomputed)."""
        for day in np.unique(stored.rows.day):
            self._advance(date.fromordinal(int(day)))
            part = stored.subset(stored.rows.day == day)
            self._record(part)
            self._keep(part)
