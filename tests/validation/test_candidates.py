"""The learned model's candidates (validation/learned.py): a blend with the heuristic is one linear model of the
features, so the list's reasons stay exact, and it weighs the model and the heuristic as it says."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from validation.candidates import CANDIDATES, HEURISTIC_SHARES, REGULARISATION_STRENGTHS, heuristic_blend
from validation.scaling import BLOCK_ROWS

NAMES = ("log_events_28d", "trend_7d_vs_28d", "low_usage_points", "friction_points")


def _fitted() -> tuple[np.ndarray, np.ndarray, StandardScaler, LogisticRegression]:
    rng = np.random.default_rng(3)
    raw = np.column_stack([rng.normal(2, 1, 400), rng.normal(0, 0.3, 400), rng.choice([0.0, 10.0, 25.0], 400),
                           rng.choice([0.0, 5.0], 400)])  # fmt: skip
    churned = rng.random(400) < 1 / (1 + np.exp(2 + raw[:, 0] - 3 * raw[:, 1]))
    scaler = StandardScaler().fit(raw)
    return raw, churned, scaler, LogisticRegression(C=1.0).fit(scaler.transform(raw), churned)


def test_every_strength_is_a_candidate_alone_and_blended_with_the_heuristic():
    assert len(CANDIDATES) == len(REGULARISATION_STRENGTHS) * len(HEURISTIC_SHARES)
    assert all((c, 0.0) in CANDIDATES for c in REGULARISATION_STRENGTHS)


def test_a_blend_weighs_the_models_log_odds_and_the_heuristics_strength_each_over_its_spread():
    raw, _, scaler, model = _fitted()
    x = scaler.transform(raw)
    blend = heuristic_blend(model, x, scaler, NAMES, share=0.25)
    strength = raw[:, 2] + raw[:, 3]  # the heuristic: the sum of its components' points
    log_odds = model.decision_function(x)
    expected = 0.75 * log_odds / log_odds.std() + 0.25 * strength / strength.std()
    assert np.allclose(blend.decision_function(x), expected)
    # One coefficient per feature: each account's contributions add up to its score exactly.
    contributions = blend.coef_[0] * x
    assert np.allclose(contributions.sum(axis=1) + blend.intercept_[0], expected)
    # The fitted model is left as it was.
    assert np.allclose(model.decision_function(x), log_odds)


def test_a_share_of_nothing_or_a_heuristic_that_never_varied_leaves_the_model_alone():
    raw, _, scaler, model = _fitted()
    x = scaler.transform(raw)
    assert heuristic_blend(model, x, scaler, NAMES, share=0.0) is model
    flat = raw.copy()
    flat[:, 2:] = 5.0
    flat_scaler = StandardScaler().fit(flat)
    assert heuristic_blend(model, flat_scaler.transform(flat), flat_scaler, NAMES, share=0.5) is model


def test_the_information_summed_by_blocks_is_the_whole_design_matrix_s():
    """The standard errors' information, summed over blocks of rows (so a refit never holds the design
    matrix and its weighted copy), equals X'WX + I/C of the whole design [1, x] to rounding."""
    from validation.candidates import information_matrix

    rng = np.random.default_rng(7)
    for rows, columns in ((2 * BLOCK_ROWS + 3, 6), (BLOCK_ROWS, 2), (5, 4)):
        x = rng.standard_normal((rows, columns)).astype(np.float32)
        w = rng.random(rows)
        design = np.hstack([np.ones((rows, 1)), x])
        penalty = np.eye(columns + 1) / 0.2
        penalty[0, 0] = 0.0
        whole = design.T @ (design * w[:, None]) + penalty
        assert np.allclose(information_matrix(x, w, regularisation=0.2), whole, rtol=1e-10, atol=1e-9)


def test_the_strength_s_product_by_blocks_is_the_whole_product_bit_for_bit():
    """The heuristic's strength of a fit's rows, made block by block (no float64 copy of every row), is the whole
    product's to the last bit, a short last block included: its spread sets every blend's coefficients."""
    from validation.candidates import rows_product

    rng = np.random.default_rng(11)
    coef = rng.standard_normal(40)
    for rows in (0, 1, 5, BLOCK_ROWS, BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 7):
        x = (rng.standard_normal((rows, 40)) * 30).astype(np.float32)
        assert np.array_equal(rows_product(x, coef), x @ coef)
