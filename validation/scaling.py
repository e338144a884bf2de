"""A fit's standardised rows, made block by block: scikit-learn's ``StandardScaler`` fitted and applied with the
same numbers, without its working copies of the rows.

``StandardScaler.fit`` on the float32 features of a fit's sample makes float64 copies of all of them (the rows less
their mean, and a mask of the missing values with a float32 copy of it) beside the sample itself. Here the mean and
variance are summed row after row over blocks of the sample, in float64, in the order NumPy sums a whole array's
column (each block's sum continues from the one before it), so every number of the fitted scaler is scikit-learn's;
the rows are then standardised by the scaler's own ``transform``, block by block, into the one copy of them the
fit keeps (in the features' float32, which scikit-learn's logistic regression fits in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# scikit-learn takes seconds to import and only a fit needs it: imported where a model is fitted.
if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

# Rows of a fit's float32 features widened to float64 at once (here, and by validation/candidates.py's products and
# sums): a block's working copy stays a few megabytes, where the whole sample's would be a copy of all of it.
BLOCK_ROWS = 8192


def _blocks(matrix: np.ndarray, index: np.ndarray | None) -> list[slice]:
    rows = len(matrix) if index is None else len(index)
    return [slice(start, min(start + BLOCK_ROWS, rows)) for start in range(0, rows, BLOCK_ROWS)]


def _column_sums(
    matrix: np.ndarray, index: np.ndarray | None, blocks: list[slice], centre: np.ndarray | None, *, squared: bool
) -> np.ndarray:
    """The float64 sum of each column of the rows (less ``centre``, squared when asked), added row after row:
    each block's sum starts from the sum so far (its first row), as one sum over every row would."""
    total = np.zeros(matrix.shape[1])
    work = np.empty((BLOCK_ROWS + 1, matrix.shape[1]))
    for block in blocks:
        rows = matrix[block] if index is None else matrix[index[block]]
        n = len(rows)
        work[0] = total
        part = work[1 : n + 1]
        part[...] = rows
        if centre is not None:
            part -= centre
        if squared:
            part **= 2
        total = work[: n + 1].sum(axis=0)
    return total


def standardised(
    matrix: np.ndarray, index: np.ndarray | None = None, *, in_place: bool = False
) -> tuple[StandardScaler, np.ndarray]:
    """``StandardScaler().fit(rows)`` and ``transform(rows)``, of the rows ``index`` of ``matrix`` (all of them without
    it), in the matrix's type: the same numbers as scikit-learn's (see the module docstring). The rows must be finite.
    ``in_place``: ``matrix`` is the caller's own copy of the rows (no ``index``), standardised where it is."""
    if in_place and index is not None:
        raise ValueError("only a whole matrix is standardised in place")
    from sklearn.preprocessing import StandardScaler
    from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature

    blocks = _blocks(matrix, index)
    rows = float(len(matrix) if index is None else len(index))
    count = np.full(matrix.shape[1], rows)
    # scikit-learn's incremental mean and variance from nothing seen before: a first pass for the mean, then the
    # corrected two-pass variance around it.
    total = _column_sums(matrix, index, blocks, None, squared=False)
    mean = (0.0 + total) / (0.0 + count)
    centre = total / count
    correction = _column_sums(matrix, index, blocks, centre, squared=False)
    variance = (_column_sums(matrix, index, blocks, centre, squared=True) - correction**2 / count) / (0.0 + count)
    scaler = StandardScaler()
    scaler.n_features_in_ = matrix.shape[1]
    scaler.n_samples_seen_ = count[0]
    scaler.mean_, scaler.var_ = mean, variance
    scaler.scale_ = _handle_zeros_in_scale(
        np.sqrt(variance), copy=False, constant_mask=_is_constant_feature(variance, mean, count[0])
    )
    out = matrix if in_place else np.empty((int(rows), matrix.shape[1]), dtype=matrix.dtype)
    for block in blocks:
        # A copy of the block's rows in their own type, standardised in place as the scaler does a whole array.
        taken = np.array(matrix[block] if index is None else matrix[index[block]])
        out[block] = scaler.transform(taken, copy=False)
    return scaler, out
