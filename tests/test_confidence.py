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


def _bpb_records(rng, mean: float, n: int = 300) -> list[dict]:
    return [{"id": str(i), "answer_nll": float(x), "answer_bytes": 10}
            for i, x in enumerate(mean * 10 * np.log(2) + 0.5 * rng.standard_normal(n))]


def _ran(name: str, preds: dict[str, list[dict]], flops: float) -> dict:
    model, method = name.split()
    nll = sum(r["answer_nll"] for r in preds[name]) / sum(r["answer_bytes"] for r in preds[name]) / np.log(2)
    return {"model": model, "method": method, "train_flops": flops, "metrics": {"answer_bpb": nll}}


def test_a_full_fine_tune_pick_names_its_own_models_lighter_method_and_the_gap():
    from damoc.report.text import lighter_sentence
    from damoc.selection.results import Verdict
    from damoc.selection.summary import verdict

    rng = np.random.default_rng(0)
    preds = {"big full": _bpb_records(rng, 1.00), "big lora": _bpb_records(rng, 1.06),
             "big ia3": _bpb_records(rng, 1.20), "small lora": _bpb_records(rng, 1.03)}
    ok = [_ran(n, preds, f) for n, f in [("big full", 3.0), ("big lora", 2.0), ("big ia3", 2.0), ("small lora", 1.0)]]
    v = verdict(ok, preds, choice=False, seed=0)
    assert v["recommended"] == "big full" and not v["tied"]
    alt = v["lighter_method"]
    # the same model's best other method (not the other model's LoRA, closer to the pick)
    assert alt["candidate"] == "big lora" and alt["metric"] == "answer_bpb"
    assert alt["diff"] == pytest.approx(ok[1]["metrics"]["answer_bpb"] - ok[0]["metrics"]["answer_bpb"])
    assert alt["diff"] > 2 * alt["se"] > 0
    line = lighter_sentence(Verdict.model_validate(v))
    assert "big lora" in line and f"{alt['diff']:.3g}" in line and "bits per byte behind" in line
    # a LoRA pick needs no such line; neither does a full fine-tune whose model has no other method here
    lora_first = {**preds, "big lora": _bpb_records(rng, 0.95)}
    ok2 = [_ran(n, lora_first, f) for n, f in [("big full", 3.0), ("big lora", 2.0), ("big ia3", 2.0)]]
    assert "lighter_method" not in verdict(ok2, lora_first, choice=False, seed=0)
    alone = {k: preds[k] for k in ("big full", "small lora")}
    ok3 = [_ran(n, alone, f) for n, f in [("big full", 3.0), ("small lora", 1.0)]]
    assert verdict(ok3, alone, choice=False, seed=0)["recommended"] == "big full"
    assert "lighter_method" not in verdict(ok3, alone, choice=False, seed=0)
    assert lighter_sentence(Verdict.model_validate(verdict(ok3, alone, choice=False, seed=0))) is None


def test_on_a_choice_task_the_lighter_method_is_judged_by_accuracy(tmp_path):
    from damoc.selection.summary import verdict

    rng = np.random.default_rng(1)

    def answers(p: float, n: int = 400) -> list[dict]:
        right = rng.random(n) < p
        return [{"id": str(i), "label": 1, "pred": 1 if r else 0, "answer_nll": float(1 + rng.random()),
                 "answer_bytes": 4} for i, r in enumerate(right)]

    preds = {"big full": answers(0.85), "big lora": answers(0.60), "big dora": answers(0.55),
             "small lora": answers(0.62)}
    ok = []
    for name, flops in [("big full", 3.0), ("big lora", 2.0), ("big dora", 2.0), ("small lora", 1.0)]:
        model, method = name.split()
        acc = float(np.mean([r["pred"] == r["label"] for r in preds[name]]))
        ok.append({"model": model, "method": method, "train_flops": flops,
                   "metrics": {"accuracy": acc, "answer_bpb": 1.0}})
    v = verdict(ok, preds, choice=True, seed=0)
    assert v["recommended"] == "big full"
    alt = v["lighter_method"]
    assert alt["candidate"] == "big lora" and alt["metric"] == "accuracy"
    assert alt["diff"] == pytest.approx(ok[0]["metrics"]["accuracy"] - ok[1]["metrics"]["accuracy"])
    assert alt["diff"] > 2 * alt["se"] > 0  # positive: the lighter method is behind


def test_a_rival_dropped_early_is_measured_on_the_questions_both_answered():
    """Sequential evaluation drops the clearly worse after the first batch: the pick has 300 answers, its
    model's LoRA 100. The gap is taken on those 100, and the line says so."""
    from damoc.report.text import lighter_sentence
    from damoc.selection.results import Verdict
    from damoc.selection.summary import lighter_on_shared_questions

    rng = np.random.default_rng(2)
    records = {"big full": _bpb_records(rng, 1.00), "big lora": _bpb_records(rng, 1.10)[:100],
               "small full": _bpb_records(rng, 1.30)[:100]}
    ok = [_ran(n, records, 1.0) for n in records]
    alt = lighter_on_shared_questions("big full", ok, records, choice=False, seed=0)
    first = {k: v[:100] for k, v in records.items()}
    bpb = {n: _ran(n, first, 1.0)["metrics"]["answer_bpb"] for n in first}
    expected = bpb["big lora"] - bpb["big full"]
    assert alt["candidate"] == "big lora" and alt["questions"] == 100
    assert alt["diff"] == pytest.approx(expected) and alt["diff"] > 2 * alt["se"] > 0
    assert "on the first 100 questions (it was dropped there)" in lighter_sentence(
        Verdict(tie_set=["big full"], tied=False, recommended="big full", lighter_method=alt))
    assert lighter_on_shared_questions("big lora", ok, records, choice=False, seed=0) is None  # not a full pick
    assert lighter_on_shared_questions("small full", ok, records, choice=False, seed=0) is None  # no rival
    # the verdict itself: the pick the only survivor (no pair to bootstrap), its rivals' early answers given
    from damoc.selection.summary import verdict

    survivor = {"big full": records["big full"]}
    early = {k: v for k, v in records.items() if k != "big full"}
    v = verdict(ok, survivor, choice=False, seed=0, dropped=early)
    assert v["recommended"] == "big full" and v["lighter_method"] == alt
    assert "lighter_method" not in verdict(ok, survivor, choice=False, seed=0)  # without them, nothing to say


def test_the_report_and_the_terminal_carry_the_lighter_method_line(tmp_path, capsys):
    from damoc.cli.printing import print_select
    from damoc.report.markdown import select_report

    alt = {"candidate": "m lora", "metric": "accuracy", "diff": 0.031, "se": 0.012}
    v = {"tie_set": ["m full"], "tied": False, "recommended": "m full", "rule": "cheapest", "lighter_method": alt}
    summary = {"task": "t", "primary_metric": "accuracy", "candidates": [], "verdict": v, "warnings": []}
    assert "m lora is 3.1 ± 1.2 accuracy points behind" in select_report(summary)
    print_select({**summary, "ranking_bpb": []}, tmp_path)
    assert "m lora is 3.1 ± 1.2 accuracy points behind" in capsys.readouterr().out
    ahead = {**summary, "verdict": {**v, "lighter_method": {**alt, "diff": -0.02}}}  # outside the tie set, ahead
    assert "m lora is 2 ± 1.2 accuracy points ahead of it" in select_report(ahead)
