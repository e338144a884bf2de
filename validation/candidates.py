"""The candidate models a refit chooses among: the logistic regression at a few strengths of regularisation,
each alone and blended with the heuristic (validation/learned.py's docstring says why), and the penalised
Fisher information its standard errors come from."""

from __future__ import annotations

import copy
import itertools
from typing import TYPE_CHECKING

import numpy as np

from validation.scaling import BLOCK_ROWS

# scikit-learn takes seconds to import and only a fit needs it: imported where a model is fitted.
if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

# A risk component's points as a feature of the model (validation/features.py): the heuristic's strength is their sum.
POINTS_SUFFIX = "_points"
# The inverse regularisation strengths (scikit-learn's C) fitted at every refit and chosen among by their
# walk-forward record (see the module docstring): from very strong shrinkage, which suits a steady low level
# spread over many weak features with few churns, to weak, which lets a few strong signs (a decline, a friction
# spell) lead. Where churn is a steady low level the strongest shrinkage ranks the top of the list best (the top
# decile is who is called first), so the range starts far down and skips a strength between the weak ones.
REGULARISATION_STRENGTHS = (0.001, 0.005, 0.02, 0.2, 5.0)
# The heuristic's share of a candidate's score (see the module docstring): 0 is the fitted model alone; above
# it, the model's standardised log odds and the heuristic's standardised strength (the sum of its components'
# points, which are features of the model) weighted together: still a linear model of the features.
HEURISTIC_SHARES = (0.0, 0.25, 0.5)
# Every candidate, (strength, heuristic share), in the order of the walk-forward record's columns.
CANDIDATES = tuple(itertools.product(REGULARISATION_STRENGTHS, HEURISTIC_SHARES))
# The strength judged on the held-out past before the record holds enough churns (the middle one), alone.
REGULARISATION_FALLBACK = REGULARISATION_STRENGTHS[2]


def logistic_fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, c: float) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, y.astype(int), sample_weight=weights)


def model_part(model: LogisticRegression, x: np.ndarray, *, share: float, spread: float | None = None) -> float:
    """What the blend at ``share`` multiplies the model's log odds by (1: the model alone; see ``heuristic_blend``).
    ``spread``: the model's log odds' spread on ``x``, when already measured."""
    if share <= 0:
        return 1.0
    if spread is None:
        spread = float(np.std(model.decision_function(x)))
    return (1 - share) / spread if spread > 0 else 1.0


def strength_terms(scaler: StandardScaler, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Which features are the heuristic's points, and the strength in standard units of the features
    (points = mean + scale x standardised value)."""
    points = np.asarray([n.endswith(POINTS_SUFFIX) for n in names])
    return points, np.where(points, scaler.scale_, 0.0)


def heuristic_blend(
    model: LogisticRegression,
    x: np.ndarray,
    scaler: StandardScaler,
    names: tuple[str, ...],
    *,
    share: float,
    spreads: tuple[float, float] | None = None,
) -> LogisticRegression:
    """The linear model whose score is (1 - share) x the model's log odds and share x the heuristic's strength,
    each over its spread on the fitted observations ``x`` (standardised): the strength is the sum of the
    components' points, each a feature, so the blend is one coefficient per feature and every account's
    contributions still add up to its score exactly. ``model`` itself at share 0 or when the heuristic never varied.
    ``spreads``: (the model's log odds', the strength's) spreads on ``x``, when already measured."""
    points, strength_coef = strength_terms(scaler, names)
    if spreads is None:
        spreads = (float(np.std(model.decision_function(x))) if share > 0 else 0.0, float(np.std(x @ strength_coef)))
    model_spread, strength_spread = spreads
    a = model_part(model, x, share=share, spread=model_spread)
    if a == 1.0 or strength_spread <= 0:
        return model
    blend = copy.copy(model)
    b = share / strength_spread
    blend.coef_ = (a * model.coef_ + b * strength_coef[None, :]).astype(model.coef_.dtype)
    blend.intercept_ = a * model.intercept_ + b * float(np.sum(np.where(points, scaler.mean_, 0.0)))
    return blend


def rows_product(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``x @ coef`` (one float64 value per row), block by block: the product of float32 rows with float64
    coefficients widens its rows to float64 first, and a whole fit's would be a float64 copy of all of them;
    each row's value is the one the whole product gives (the same widened row times the same coefficients)."""
    out = np.empty(len(x), dtype=np.result_type(x.dtype, coef.dtype))
    # The rows after the last whole block join it: a product of a few rows alone can take another path in BLAS
    # (one row is a dot product) and differ from the whole product's in the last bits.
    starts = list(range(0, max(len(x) - BLOCK_ROWS, 0) + 1, BLOCK_ROWS))
    for start, end in zip(starts, [*starts[1:], len(x)], strict=True):
        out[start:end] = x[start:end] @ coef
    return out


def candidates_fit(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, scaler: StandardScaler, names: tuple[str, ...]
) -> tuple[tuple[LogisticRegression, ...], dict[float, LogisticRegression], dict[float, float]]:
    """Every candidate (CANDIDATES order), the fitted model of each strength and the spread of its log odds on
    ``x``: one fit per strength, its blends with the heuristic computed from it. Each spread is measured once."""
    fits = {c: logistic_fit(x, y, weights, c=c) for c in REGULARISATION_STRENGTHS}
    spreads = {c: float(np.std(model.decision_function(x))) for c, model in fits.items()}
    strength_spread = float(np.std(rows_product(x, strength_terms(scaler, names)[1])))
    candidates = tuple(
        heuristic_blend(fits[c], x, scaler, names, share=w, spreads=(spreads[c], strength_spread))
        for c, w in CANDIDATES
    )
    return candidates, fits, spreads


def candidate_scores(candidates: tuple[LogisticRegression, ...], x: np.ndarray) -> np.ndarray:
    """Each candidate's log odds of the rows ``x`` (standardised features), one column per candidate: every
    candidate is linear, so one product of the rows with all their coefficients, in the rows' own precision
    (no float64 copy of them)."""
    coef = np.column_stack([m.coef_[0] for m in candidates]).astype(x.dtype)
    intercept = np.asarray([float(m.intercept_[0]) for m in candidates])
    return (x @ coef).astype(np.float64) + intercept


def score_spreads(scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean and spread of each column of ``scores`` (a spread of 0 counts as 1: nothing to scale)."""
    centres = np.average(scores, axis=0, weights=weights)
    spreads = np.sqrt(np.average((scores - centres) ** 2, axis=0, weights=weights))
    return centres, np.where(spreads > 0, spreads, 1.0)


def information_matrix(x: np.ndarray, w: np.ndarray, *, regularisation: float) -> np.ndarray:
    """The penalised Fisher information X'WX + I/C of the design [1, x] (weighted as the fit was; the
    intercept is not penalised), summed over blocks of rows: the whole design matrix and its weighted copy would be
    two float64 copies of the fit's rows."""
    k = x.shape[1]
    information = np.zeros((k + 1, k + 1))
    information[0, 0] = w.sum()
    for start in range(0, len(x), BLOCK_ROWS):
        block = x[start : start + BLOCK_ROWS].astype(np.float64)
        weighted = block * w[start : start + BLOCK_ROWS, None]
        information[0, 1:] += weighted.sum(axis=0)
        information[1:, 1:] += block.T @ weighted
    information[1:, 0] = information[0, 1:]
    information[1:, 1:] += np.eye(k) / regularisation
    return information
