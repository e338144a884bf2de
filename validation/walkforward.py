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

from validation.figures import Churns, churn_marks
from validation.learned import (
    LEARNED_REFIT_DAYS,
    FittedModel,
    ScoreTable,
    labelled_fit,
    no_record,
    ranking_scores,
)


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

    def __init__(self, churns: Churns, *, horizons: list[int], min_churns: int, names: tuple[str, ...]) -> None:
        self.churns = churns
        self.horizons = list(horizons)
        self.min_churns = min_churns
        self.names = names
        self._parts: list[ScoreTable] = []
        self._table: ScoreTable | None = None
        self._schedule = {h: _Schedule() for h in self.horizons}
        # Every churn a fit before a date could learn from is dated before it (a cheap test first).
        self._churn_days = sorted(d for days in churns.values() for d in days)

    def table(self) -> ScoreTable:
        """Every date given so far as one table."""
        if self._table is None:
            self._table = ScoreTable.concatenate(self._parts, names=self.names, horizons=self.horizons)
            self._parts = [self._table] if len(self._table.rows) else []
        return self._table

    def _keep(self, part: ScoreTable) -> None:
        self._parts.append(part)
        self._table = None

    def _advance(self, day: date) -> None:
        known = bisect.bisect_left(self._churn_days, day)
        for horizon, schedule in self._schedule.items():
            if schedule.fitted is not None and day.toordinal() - schedule.fitted_on < LEARNED_REFIT_DAYS:
                continue
            if known < self.min_churns or not self._parts:
                continue  # labelled_fit would find too few churns
            table = self.table()
            labels = churn_marks(table.rows, self.churns, horizon=horizon)
            refit = labelled_fit(table, labels, horizon=horizon, before=day, min_churns=self.min_churns)
            if refit is not None:
                schedule.fitted, schedule.fitted_on = refit, day.toordinal()

    def _record(self, part: ScoreTable) -> None:
        for h, s in self._schedule.items():
            part.track[h] = s.fitted.candidate_log_odds(part.matrix) if s.fitted else no_record(len(part.rows))

    def score(self, day: date, part: ScoreTable) -> ScoreTable:
        """``day``'s learned and ranking scores per horizon, set on ``part`` (returned)."""
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
