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


def test_judging_a_pick_against_a_truth_with_ties():
    from damoc.selection.confidence import tie_set
    from damoc.selection.validation import judge

    def recs(correct):
        return [{"id": str(i), "label": 1, "pred": 1 if c else 0, "answer_nll": 1.0, "answer_bytes": 4}
                for i, c in enumerate(correct)]

    truth = tie_set({"a": recs([1] * 300 + [0] * 100), "b": recs([1] * 298 + [0] * 102),
                     "c": recs([1] * 200 + [0] * 200)}, choice=True, seed=0)
    assert truth["tie_set"] == ["a", "b"]
    second = judge({"b": 1, "a": 2, "c": 3}, truth, choice=True)
    assert second["in_tie_set"] and not second["top1"]
    assert second["regret"] == pytest.approx(0.005) and 0 < second["regret_se"] < 0.01
    assert second["separated_pairs"] == 2 and second["separated_pairs_agreement"] == 1.0  # a>c, b>c
    wrong = judge({"c": 1, "a": 2, "b": 3}, truth, choice=True)
    assert not wrong["in_tie_set"] and wrong["regret"] == pytest.approx(0.25)
    assert wrong["separated_pairs_agreement"] == 0.0
    # the run recommends another than its ranking's first (the cheapest of its tie set): that pick is judged,
    # the pairs still from the ranking
    recommended = judge({"a": 1, "b": 2, "c": 3}, truth, choice=True, pick="c")
    assert recommended["chosen"] == "c" and not recommended["in_tie_set"]
    assert recommended["regret"] == pytest.approx(0.25) and recommended["separated_pairs_agreement"] == 1.0
    with pytest.raises(ValueError, match="no full fine-tuning result"):
        judge({"a": 1, "b": 2}, truth, choice=True, pick="d")


def test_validation_judges_what_the_run_recommends_not_its_ranking_first():
    """`select --validate`: the verdict's pick (the cheapest of the compressed tie set) is what a user
    fine-tunes, so its regret is the one reported, and the text names both when they differ."""
    from damoc.report.text import validation_lines
    from damoc.selection.results import SelectResults
    from damoc.selection.summary import validation
    from damoc.tasks import load_task

    def cand(method: str, rank: int, acc: float, flops: float = 1.0) -> dict:
        return {"model": "m", "method": method, "status": "ok", "rank": rank, "train_seconds": 1.0,
                "train_flops": flops, "metrics": {"accuracy": acc, "answer_bpb": 1.0}}

    task = load_task("boolq")
    full = {"candidates": [cand("full", 1, 0.80, 6.0), cand("lora", 2, 0.70, 4.0)]}
    damoc = {"candidates": [cand("full", 1, 0.62), cand("lora", 2, 0.61)],
             "verdict": {"recommended": "m lora", "tie_set": ["m full", "m lora"], "tied": True},
             "cost": {"train_flops": 1.0, "prune_flops": 0.0, "train_seconds": 1.0, "prune_seconds": 0.0},
             "seconds": {"data_stage": 0.0}, "data": {}}
    out = validation(task, damoc, full)
    assert out["by_rank"]["chosen"] == "m full" and out["pick"] == "m lora"
    assert out["regret"] == pytest.approx(0.10)
    res = SelectResults.model_validate({"task": "boolq", "primary_metric": "accuracy", "candidates": [],
                                        "validation": out})
    assert validation_lines(res)[0].startswith("recommended: m lora (the ranking's first: m full")


def test_a_guess_that_ties_a_pair_is_half_right_and_method_pairs_are_counted_apart():
    from damoc.selection.confidence import tie_set
    from damoc.selection.validation import judge

    def recs(correct):
        return [{"id": str(i), "label": 1, "pred": 1 if c else 0, "answer_nll": 1.0, "answer_bytes": 4}
                for i, c in enumerate(correct)]

    truth = tie_set({"m lora": recs([1] * 300 + [0] * 100), "m full": recs([1] * 200 + [0] * 200),
                     "s lora": recs([1] * 100 + [0] * 300)}, choice=True, seed=0)
    assert truth["tie_set"] == ["m lora"]
    guess = judge({"m lora": 1, "m full": 1, "s lora": 2}, truth, choice=True)  # methods of m tied
    assert guess["separated_pairs"] == 3 and guess["separated_pairs_agreement"] == pytest.approx(2.5 / 3)
    assert guess["method_pairs"] == 1 and guess["method_pairs_agreement"] == 0.5
    right = judge({"m lora": 1, "m full": 2, "s lora": 3}, truth, choice=True)
    assert right["method_pairs_agreement"] == 1.0
