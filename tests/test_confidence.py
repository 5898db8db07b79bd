import numpy as np
import pytest

from damoc.selection.confidence import paired_bootstrap


def records(correct, nll, ids=None):
    return [{"id": ids[i] if ids else str(i), "label": 0, "pred": 0 if c else 1, "answer_nll": x, "answer_bytes": 4}
            for i, (c, x) in enumerate(zip(correct, nll))]


def test_a_clearly_better_candidate_is_almost_surely_best():
    rng = np.random.default_rng(0)
    good = records(rng.random(300) < 0.8, rng.random(300))
    bad = records(rng.random(300) < 0.4, rng.random(300))
    out = paired_bootstrap({"good": good, "bad": bad}, samples=300)
    assert out["prob_best"]["good"] > 0.99
    assert out["pairs"][0]["accuracy_diff"] > 0.3


def test_pairing_shrinks_the_standard_error_of_a_difference():
    rng = np.random.default_rng(1)
    base = rng.random(400) * 3
    a = records([True] * 400, base)
    b = records([True] * 400, base + 0.05 + 0.01 * rng.standard_normal(400))  # same questions, slightly worse
    out = paired_bootstrap({"a": a, "b": b}, samples=300)
    pair = out["pairs"][0]
    assert pair["bpb_diff"] < 0 and abs(pair["bpb_diff"]) > 5 * pair["bpb_diff_se"]
    assert out["prob_best"]["a"] > 0.99  # accuracy ties; bits per byte decides


def test_different_questions_are_refused():
    with pytest.raises(ValueError, match="different questions"):
        paired_bootstrap({"a": records([True], [1.0], ["x"]), "b": records([True], [1.0], ["y"])})


def _records(correct: list[int], nll: float = 1.0) -> list[dict]:
    return [{"id": str(i), "label": 1, "pred": 1 if c else 0, "answer_nll": nll, "answer_bytes": 4}
            for i, c in enumerate(correct)]


def test_tie_set_from_a_paired_bootstrap_where_the_answer_is_known():
    from damoc.selection.confidence import tie_set

    n = 400
    strong = _records([1] * 300 + [0] * 100)          # 75%
    twin = _records([1] * 299 + [0] * 1 + [0] * 100)  # 74.75%, differs on one question: tied
    weak = _records([1] * 200 + [0] * 200)            # 50%, far below: separated
    assert len(strong) == len(twin) == len(weak) == n
    out = tie_set({"strong": strong, "twin": twin, "weak": weak}, choice=True, seed=0)
    assert out["best"] == "strong" and out["tie_set"] == ["strong", "twin"]
    assert out["differences"]["weak"]["diff"] == pytest.approx(0.25)
    assert out["differences"]["weak"]["diff"] > 2 * out["differences"]["weak"]["se"]
    alone = tie_set({"strong": strong, "weak": weak}, choice=True, seed=0)
    assert alone["tie_set"] == ["strong"]  # a confident leader
    # Generation tasks: bits per byte, lower is better.
    low, high = _records([1] * n, nll=1.0), _records([1] * n, nll=2.0)
    gen = tie_set({"low": low, "high": high}, choice=False, seed=0)
    assert gen["best"] == "low" and gen["differences"]["high"]["diff"] > 0
