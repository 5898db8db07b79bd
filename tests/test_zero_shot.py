"""The zero-shot free guess (issue 25): a strategy of its own, and beside every `select` run."""

from __future__ import annotations

import json

import pytest

from damoc.finetune import FinetuneConfig
from damoc.selection.candidate import Candidate
from damoc.selection.config import FilterSettings, SelectConfig
from damoc.selection.pipeline import run_select
from damoc.selection.zero_shot import disagreements
from damoc.tasks import DataSpec


def config(models, cls_file, **update) -> SelectConfig:
    base = dict(data=DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"}),
                candidates=[Candidate(model=m, method=meth) for m in models for meth in ("lora", "ia3")],
                finetune=FinetuneConfig(max_seq_len=96, batch_size=4, micro_batch_size=4, min_steps=2),
                test_limit=6, eval_batch_size=6, filter=FilterSettings(method="random", rate=0.3),
                compress=None, prune=None)
    return SelectConfig(**(base | update))


def test_the_zero_shot_strategy_trains_nothing_and_ties_the_methods_of_a_model(models, cls_file, tmp_path):
    summary = run_select(config(models, cls_file, strategy="zero-shot"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "candidates").exists() and not (tmp_path / "run" / "data").exists()
    assert summary["cost"]["train_flops"] == 0 and summary["cost"]["zero_shot_eval_flops"] > 0
    by_name = {f"{c['model']} {c['method']}": c["metrics"] for c in summary["candidates"]}
    for m in models:
        assert by_name[f"{m} lora"] == by_name[f"{m} ia3"]  # one evaluation per model
    best = summary["candidates"][0]["model"]
    assert {f"{best} lora", f"{best} ia3"} <= set(summary["verdict"]["tie_set"])
    assert "methods of one model cannot be told apart" in (tmp_path / "run" / "report.md").read_text()
    assert len(list((tmp_path / "run" / "zero-shot").iterdir())) == 2


def test_every_select_run_shows_the_zero_shot_ranking_and_counts_its_cost(models, cls_file, tmp_path):
    summary = run_select(config(models, cls_file), tmp_path / "run", progress=False)
    zero = summary["zero_shot"]
    assert sorted(zero["ranking_models"]) == sorted(models)
    assert zero["comparison"]["models_compared"] == 2
    assert summary["cost"]["zero_shot_eval_flops"] == pytest.approx(zero["cost"]["eval_flops"])
    assert zero["cost"]["eval_flops"] > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Against the free guess: zero-shot" in report
    json.loads((tmp_path / "run" / "results.json").read_text())
    off = run_select(config(models, cls_file, zero_shot=False), tmp_path / "off", progress=False)
    assert "zero_shot" not in off and "zero_shot_eval_flops" not in off["cost"]
    # the pass beside a run scores only the first zero_shot_questions (the strategy itself scores all)
    few = run_select(config(models, cls_file, zero_shot_questions=2), tmp_path / "few", progress=False)
    for folder in (tmp_path / "few" / "zero-shot").iterdir():
        assert len((folder / "predictions.jsonl").read_text().splitlines()) == 2
    assert 0 < few["cost"]["zero_shot_eval_flops"] < zero["cost"]["eval_flops"]


def test_disagreements_name_the_first_model_and_the_reordered_pairs():
    zero = {"ranking_models": ["a", "b", "c"]}
    trained = [{"model": "b", "method": "lora", "status": "ok", "rank": 1},
               {"model": "a", "method": "full", "status": "ok", "rank": 2},
               {"model": "c", "method": "lora", "status": "ok", "rank": 3},
               {"model": "a", "method": "lora", "status": "ok", "rank": 4}]
    d = disagreements(zero, trained)
    assert not d["same_first_model"] and d["trained_first"] == "b" and d["zero_shot_first"] == "a"
    assert d["pairs_reordered"] == ["b over a"]
    same = disagreements(zero, [dict(r, rank=i) for i, r in enumerate([trained[1], trained[0], trained[2]], 1)])
    assert same["same_first_model"] and same["pairs_reordered"] == []


def test_the_truths_tie_set_counts_seed_noise_beside_question_noise():
    import numpy as np

    from damoc.selection.confidence import tie_set_over_seeds

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)

    def run(p_correct: float, s: int) -> list[dict]:
        r = np.random.default_rng(s)
        correct = r.random(400) < p_correct
        return [{"id": str(i), "label": int(y), "pred": int(y if c else 1 - y), "answer_nll": 1.0, "answer_bytes": 4}
                for i, (y, c) in enumerate(zip(labels, correct))]

    # a is steady; b is as good on average but swings between seeds: seed noise makes it a tie
    steady = {"a": [run(0.80, 1), run(0.80, 2)], "b": [run(0.70, 3), run(0.70, 4)]}
    swing = {"a": [run(0.80, 1), run(0.80, 2)], "b": [run(0.62, 3), run(0.90, 4)]}
    clear = tie_set_over_seeds(steady, choice=True)
    assert clear["best"] == "a" and clear["tie_set"] == ["a"]
    assert clear["differences"]["b"]["question_se"] > 0 and clear["differences"]["b"]["seed_se"] is not None
    noisy = tie_set_over_seeds(swing, choice=True)
    assert noisy["tie_set"] == ["a", "b"] or noisy["tie_set"] == ["b", "a"]
    assert noisy["differences"]["b"]["seed_se"] > clear["differences"]["b"]["seed_se"]
