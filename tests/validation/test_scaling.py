"""A fit's standardised rows made block by block (validation/scaling.py) are scikit-learn's, to the last bit: the
fitted models, and so every stored score, do not change with the way the rows are standardised."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from validation.scaling import BLOCK_ROWS, standardised


def _features(rows: int, seed: int) -> np.ndarray:
    """Float32 features of very different scales and centres, one constant, one all zero, one nearly constant."""
    rng = np.random.default_rng(seed)
    matrix = (rng.standard_normal((rows, 12)) * rng.uniform(1e-3, 1e4, 12) + rng.uniform(-50, 50, 12)).astype(
        np.float32
    )
    matrix[:, 3], matrix[:, 4] = 7.0, 0.0
    matrix[::5, 5] = np.float32(1e-7)
    return matrix


@pytest.mark.parametrize("rows", [2, BLOCK_ROWS, 2 * BLOCK_ROWS + 17])
def test_the_rows_taken_from_a_table_are_standardised_exactly_as_scikit_learn_does(rows):
    table = _features(3 * rows, seed=rows)
    index = np.random.default_rng(1).choice(len(table), rows, replace=False)
    sampled = table[index]
    expected = StandardScaler().fit(sampled)
    scaler, x = standardised(table, index)
    for name in ("mean_", "var_", "scale_"):
        assert np.array_equal(getattr(scaler, name), getattr(expected, name)), name
    assert scaler.n_samples_seen_ == expected.n_samples_seen_ and scaler.n_features_in_ == expected.n_features_in_
    assert x.dtype == np.float32 and np.array_equal(x, expected.transform(sampled))
    # The scaler scores other rows as scikit-learn's does (a later date's record).
    assert np.array_equal(scaler.transform(table[:9]), expected.transform(table[:9]))
    # The caller's own copy, standardised where it is: the same numbers, no other copy.
    copy = table[index]
    in_place, y = standardised(copy, in_place=True)
    assert y is copy and np.array_equal(y, x) and np.array_equal(in_place.scale_, expected.scale_)


def test_only_a_whole_matrix_is_standardised_in_place():
    with pytest.raises(ValueError, match="in place"):
        standardised(_features(4, seed=1), np.arange(2), in_place=True)
