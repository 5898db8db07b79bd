"""The paired bootstrap over items (damoc.evaluation.stats) and recovery runs compared on it
(damoc.recovery.compare)."""

import numpy as np
import pytest

from damoc.evaluation.metrics import bootstrap_se
from damoc.evaluation.stats import item_bootstrap
from damoc.recovery.compare import METRICS, item_statistic, paired_difference, pooled_figure


def test_one_statistic_matches_bootstrap_se():
    x = np.random.default_rng(0).normal(size=50)

    def stat(i):
        return float(x[i].mean())

    boot = item_bootstrap([stat], 50, samples=200, seed=3)
    assert boot.values[0] == pytest.approx(x.mean())
    assert boot.draws.shape == (200, 1)
    assert boot.se() == pytest.approx(bootstrap_se(stat, 50, seed=3, samples=200))
    again = item_bootstrap([stat], 50, samples=200, seed=3)
    assert np.array_equal(boot.draws, again.draws)


def test_pairing_cancels_the_items_difficulty():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 1, 200)
    a, b = difficulty + 0.1 + rng.normal(0, 0.01, 200), difficulty + rng.normal(0, 0.01, 200)
    boot = item_bootstrap([lambda i: float(a[i].mean()), lambda i: float(b[i].mean())], 200, seed=0)
    d = boot.difference(0, 1)
    assert d["difference"] == pytest.approx(a.mean() - b.mean())
    unpaired = (boot.se(0) ** 2 + boot.se(1) ** 2) ** 0.5
    assert d["se"] < unpaired / 10 and d["z"] > 50
    same = item_bootstrap([lambda i: float(a[i].mean())] * 2, 200, seed=0).difference()
    assert same == {"difference": 0.0, "se": 0.0, "z": None}


def test_strata_are_resampled_within_themselves():
    sizes = {"boolq": 3, "piqa": 5}
    seen = []

    def stat(i: dict) -> float:
        seen.append(i)
        return 0.0

    item_bootstrap([stat], sizes, samples=20)
    assert all(set(i) == set(sizes) and all(len(i[k]) == n and i[k].max() < n for k, n in sizes.items())
               for i in seen)
    assert list(seen[0]["boolq"]) == [0, 1, 2]  # the first call: every item once


def runs(shift: float = 0.0) -> list[dict]:
    """Two seeds' per-item figures in `evaluate_model`'s shape: 4 held-out samples, 3 sentences, 2 tasks."""
    return [{"answer": {"nll": [2.0 + shift, 4.0, 3.0, 1.0], "tokens": [2, 4, 1, 1]},
             "external": {"nll": [6.0 + shift, 3.0, 3.0], "tokens": [3, 3, 3]},
             "correct": {"boolq": [1, 0, 1], "piqa": [1, 1]}} for _ in range(2)]


SOURCES = ["fiqa", "fiqa", "xsum", "xsum"]


def test_recovery_metrics_on_all_items():
    r = runs()
    assert pooled_figure(r, "answer_nll", SOURCES)[0] == pytest.approx(10 / 8)
    assert pooled_figure(r, "answer_nll_macro", SOURCES)[0] == pytest.approx((6 / 6 + 4 / 2) / 2)
    assert pooled_figure(r, "external_ppl", SOURCES)[0] == pytest.approx(np.exp(12 / 9))
    assert pooled_figure(r, "avg_accuracy", SOURCES)[0] == pytest.approx((2 / 3 + 1) / 2)
    n, _ = item_statistic(r, "avg_accuracy", SOURCES)
    assert n == {"boolq": 3, "piqa": 2}
    with pytest.raises(ValueError, match="unknown recovery metric"):
        item_statistic(r, "bleu", SOURCES)


def test_recovery_difference_is_paired():
    for metric in METRICS:
        d = paired_difference(runs(), runs(), metric, SOURCES)
        assert d["difference"] == 0.0 and d["se"] == 0.0
    worse = paired_difference(runs(shift=2.0), runs(), "answer_nll", SOURCES)
    assert worse["difference"] == pytest.approx(2 / 8) and worse["se"] > 0
