"""Learning-curve fits and the racing rules of adaptive selection (issue 16's building blocks)."""

import numpy as np
import pytest

from damoc.selection.curves import (
    Rung,
    confident_pick,
    fit_curve,
    prob_best_at,
    rectified_law,
    to_drop,
)

SIZES = [10, 20, 40, 80, 160, 320]


def test_the_fit_recovers_a_synthetic_rectified_law_curve():
    truth = dict(b=6.0, d_l=30.0, beta=0.7, e=0.6)
    values = [rectified_law(d, **truth) for d in SIZES]
    fit = fit_curve(SIZES, values)
    assert fit.law == "rectified"
    # Extrapolated to ten times the last rung, the fit stays within 2% of the law.
    assert fit.predict(3200) == pytest.approx(rectified_law(3200, **truth), rel=0.02)
    assert fit.params["e"] == pytest.approx(truth["e"], abs=0.1)
    assert fit.loo_error is not None and fit.loo_error < 0.02


def test_too_few_rungs_fall_back_to_a_power_law_and_say_so():
    fit = fit_curve([10, 20, 40], [2.0, 1.6, 1.35])
    assert fit.law == "power" and fit.predict(80) < 1.35 and fit.loo_error is None
    assert fit_curve([10, 20], [2.0, 1.6]).law == "flat"


def rung(size, level, n=60, seed=0):
    rng = np.random.default_rng(seed + size)
    nbytes = rng.integers(5, 15, n).astype(float)
    nll = nbytes * np.log(2) * (level + rng.normal(0, 0.05, n))
    return Rung(size, nll, nbytes)


def test_racing_drops_a_candidate_that_cannot_be_best_and_the_stop_rule_fires():
    curves = {"good": [rung(d, 2.0 / d ** 0.3 + 0.5) for d in SIZES],
              "bad": [rung(d, 2.0 / d ** 0.3 + 1.5, seed=1) for d in SIZES]}
    prob = prob_best_at(curves, full_size=1000, samples=50)
    assert prob["good"] == 1.0 and prob["bad"] == 0.0
    assert to_drop(prob, below=0.05) == ["bad"]
    assert confident_pick(prob, level=0.9) == "good"


def test_close_candidates_are_neither_dropped_nor_picked():
    prob = {"a": 0.55, "b": 0.45}
    assert to_drop(prob, below=0.05) == [] and confident_pick(prob, level=0.9) is None
    assert to_drop({"a": 0.0, "b": 0.0}, below=0.05) == []  # never every candidate
