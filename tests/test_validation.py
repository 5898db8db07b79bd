"""Rank agreement between a cheap ranking and the full fine-tuning one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from damoc.errors import DamocError
from damoc.selection.validation import compare_rankings, kendall_tau_b, spearman_rho


@pytest.mark.parametrize("seed", range(6))
def test_tau_and_rho_equal_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, 9).astype(float), rng.integers(0, 4, 9).astype(float)
    assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_known_rankings():
    truth = {"a": 0.60, "b": 0.55, "c": 0.50, "d": 0.40}
    same = compare_rankings({"a": 4, "b": 3, "c": 2, "d": 1}, truth)
    assert same["top1_match"] and same["kendall_tau"] == pytest.approx(1.0) and same["regret"] == 0.0
    swapped = compare_rankings({"a": 3, "b": 4, "c": 2, "d": 1}, truth)
    assert not swapped["top1_match"] and swapped["chosen"] == "b"
    assert swapped["kendall_tau"] == pytest.approx(4 / 6) and swapped["regret"] == pytest.approx(0.05)
    # Lower is better (bits per byte): the orientation flips.
    bpb = compare_rankings({"a": 0.4, "b": 0.5}, {"a": 0.45, "b": 0.47}, higher_is_better=False)
    assert bpb["chosen"] == "a" and bpb["top1_match"] and bpb["kendall_tau"] == pytest.approx(1.0)
    # A tie for best in the truth: choosing either counts as a match with zero regret.
    tie = compare_rankings({"a": 1, "b": 2}, {"a": 0.5, "b": 0.5})
    assert tie["top1_match"] and tie["regret"] == 0.0
    with pytest.raises(DamocError):
        compare_rankings({"a": 1}, {"a": 1})
