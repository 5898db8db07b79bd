"""The cost model against what runs measure: the same tokens and FLOPs a real training run and a real
embedding pass report, settings that move the prediction the way they move a run, and hub models
priced offline from the packaged catalog."""

import json

import pytest
from conftest import build_tokenizer

from damoc.tasks.base import render


def varied_examples(n: int = 12) -> list:
    """Contexts of different lengths (some past the limit the tests train at), answers of two lengths."""
    return [render("generation", id=str(i), question=f"what does case {i} show?",
                   context=" ".join(["the patient has a fever"] * (1 + i % 5)),
                   answer="a fever" if i % 2 else "a fever and a cough") for i in range(n)]


def config_for(model, method="lora", **levers):
    from damoc.finetune import FinetuneConfig
    from damoc.selection.config import SelectConfig

    ft = FinetuneConfig(max_seq_len=96, batch_size=4, micro_batch_size=2, min_steps=5, lora_r=4, lora_alpha=8)
    off = {"filter": None, "compress": None, "prune": None}
    return SelectConfig(task="asdiv", candidates=[{"model": str(model), "method": method}], finetune=ft,
                        **{**off, **levers})


@pytest.mark.parametrize("method", ["lora", "full", "loha"])
def test_full_route_matches_a_real_training_run(tiny_llama, method):
    from damoc.finetune import finetune
    from damoc.models import load_model, load_tokenizer
    from damoc.selection.estimate import estimate

    examples = varied_examples()
    config = config_for(tiny_llama, method)
    predicted = estimate(config, examples)["candidates"][0]
    ft = config.finetune.model_copy(update={"method": method})
    _, stats = finetune(load_model(str(tiny_llama)), load_tokenizer(str(tiny_llama)), examples, ft, progress=False)
    assert stats.truncated > 0  # the prediction had truncation to get right
    assert predicted["full"]["tokens"] == pytest.approx(stats.train_tokens, abs=1)
    assert predicted["full"]["steps"] == stats.steps
    assert predicted["full"]["flops"] == pytest.approx(stats.train_flops, rel=1e-3)
    # With every lever off, damoc's route is the same run.
    assert predicted["damoc"]["flops"] == pytest.approx(predicted["full"]["flops"])


def test_levers_move_the_prediction_as_they_move_a_run(tmp_path):
    from conftest import save_tiny

    from damoc.layers import PruneConfig
    from damoc.selection.config import FilterSettings
    from damoc.selection.estimate import estimate
    from damoc.selection.shapes import Lengths, lengths
    from damoc.tokens import CompressConfig

    model = save_tiny(tmp_path, layers=4)
    bert = tiny_encoder(tmp_path)
    examples = varied_examples(20)
    plain = estimate(config_for(model), examples)
    levers = estimate(config_for(model, filter=FilterSettings(method="random", rate=0.5),
                                 compress=CompressConfig(ratio=0.5, scorer=str(model), bert_model=str(bert)),
                                 prune=PruneConfig(max_fraction=0.5)), examples)
    row, base = levers["candidates"][0], plain["candidates"][0]
    assert levers["data"]["kept_examples"] == 10 and row["layers_removed"] == 2
    ls = lengths(build_tokenizer(), examples)
    per = sum(x.trained(96, 0.5) for x in ls) / len(ls)
    assert row["damoc"]["tokens"] == pytest.approx(10 * row["damoc"]["epochs"] * per)
    assert per < sum(x.trained(96) for x in ls) / len(ls)  # compression shortens what is trained
    assert row["damoc"]["flops"] < base["damoc"]["flops"] / 2
    assert levers["data_stage_flops"]["compress_surprisal"] > 0 and levers["data_stage_flops"]["filter"] == 0
    assert levers["speedup_flops"] < levers["speedup_flops_training_only"]
    assert Lengths(fixed=5, context=100, answer=3).trained(20) == 20  # truncation cuts the context
    # two methods of one model share one similarity pass, as a run counts it
    from damoc.selection.candidate import Candidate

    two = estimate(config_for(model, prune=PruneConfig(max_fraction=0.5)).model_copy(update={"candidates": [
        Candidate(model=str(model), method="lora"), Candidate(model=str(model), method="full")]}), examples)
    one = estimate(config_for(model, prune=PruneConfig(max_fraction=0.5)), examples)
    pass_flops = one["candidates"][0]["damoc"]["prune_flops"]
    assert pass_flops > 0 and two["damoc_overhead_flops"] == pytest.approx(one["damoc_overhead_flops"])


def tiny_encoder(tmp_path):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-bert"
    tok = build_tokenizer()
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_graphcut_cost_matches_the_embedding_pass(tmp_path, tiny_llama):
    from damoc.filtering.base import example_text
    from damoc.filtering.embeddings import embed_with_cost
    from damoc.selection.config import FilterSettings
    from damoc.selection.estimate import estimate

    bert = tiny_encoder(tmp_path)
    examples = varied_examples(16)
    _, measured = embed_with_cost([example_text(e) for e in examples], str(bert), cache=False, allow_pickle=True)
    whole = FilterSettings(rate=0.25, options={"embedder": str(bert), "pool_factor": None})  # every example embedded
    predicted = estimate(config_for(tiny_llama, filter=whole), examples)
    assert predicted["data"]["filter_tokens"]["embedder"] == measured["tokens"]
    assert predicted["data_stage_flops"]["filter"] == pytest.approx(measured["forward_flops"])


def test_hub_models_are_priced_from_the_catalog_offline(monkeypatch):
    from damoc.selection.shapes import shape

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    llama = shape("meta-llama/Llama-3.1-8B")
    # The published parameter counts: matmul weights plus the (untied) input embedding, the RMS
    # norms (two per layer and a final one) and, for Qwen, the q/k/v biases.
    assert llama.source == "catalog" and llama.layers == 32
    assert llama.matmul + 128256 * 4096 + 65 * 4096 == 8_030_261_248
    assert shape("Qwen/Qwen2.5-7B").matmul + 152064 * 3584 + 57 * 3584 + 28 * (3584 + 2 * 512) == 7_615_616_512


def test_cli_estimate_prints_json_and_refuses_unknown_models(tiny_llama, gen_file, capsys, monkeypatch):
    from damoc.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = ["--data", str(gen_file), "--format", "generation"]
    args = ["estimate", *data, "--models", str(tiny_llama), "--methods", "lora", "full",
            "--no-compress", "--no-prune", "--filter.method", "random", "--max-seq-len", "96", "--examples", "500",
            "--throughput", "1e12", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"] == {"input_examples": 500, "kept_examples": 50, "filter_tokens": {}}
    assert [r["method"] for r in out["candidates"]] == ["lora", "full"]
    assert out["full_hours"] == pytest.approx(out["full_flops"] / 1e12 / 3600)
    assert main(["estimate", *data, "--models", str(tiny_llama), "nobody/no-such-model-7b"]) != 0
    assert "catalog" in capsys.readouterr().err


def test_evaluation_is_priced_as_a_real_evaluation_counts_it(tmp_path):
    """The whole cost (issue 28): each candidate's scoring of the test questions, as evaluate() counts
    its tokens, on both routes (pruned on damoc's) plus damoc's zero-shot pass of each model."""
    from conftest import save_tiny

    from damoc.evaluation import evaluate
    from damoc.flops import forward_flops
    from damoc.layers import PruneConfig
    from damoc.models import load_model, load_tokenizer
    from damoc.selection.estimate import estimate
    from damoc.tasks.base import Task

    model = save_tiny(tmp_path, layers=4)
    train, test = varied_examples(12), varied_examples(6)
    plain = estimate(config_for(model, "full", zero_shot=False), train, test=test)  # no adapters
    m, tok = load_model(str(model)), load_tokenizer(str(model))
    measured = evaluate(m, tok, Task(name="t", format="generation", train=train, test=test), max_len=96,
                        generation=False)
    assert plain["candidates"][0]["eval_tokens"] == measured.scored_tokens
    assert plain["candidates"][0]["eval_head_positions"] == measured.head_positions
    assert plain["full_eval_flops"] == pytest.approx(forward_flops(m, measured.scored_tokens, measured.head_positions))
    assert plain["zero_shot_eval_flops"] == 0
    pruned = estimate(config_for(model, "full", prune=PruneConfig(max_fraction=0.5)), train, test=test)
    row = pruned["candidates"][0]
    assert row["damoc_eval_flops"] < row["full_eval_flops"]  # a pruned candidate is cheaper to score
    assert pruned["zero_shot_eval_flops"] == pytest.approx(row["full_eval_flops"])  # one model, unpruned
    half = estimate(config_for(model, "full", prune=PruneConfig(max_fraction=0.5), zero_shot_questions=3), train,
                    test=test)
    assert half["zero_shot_eval_flops"] == pytest.approx(row["full_eval_flops"] / 2)  # 3 of the 6 questions
    assert pruned["speedup_flops_with_evaluation"] < pruned["speedup_flops"]
    assert "speedup_flops_with_evaluation" not in estimate(config_for(model), train)


def test_sequential_evaluation_is_priced_between_its_best_and_worst_case(tmp_path, capsys):
    from conftest import save_tiny

    from damoc.selection.config import EvalSettings
    from damoc.selection.estimate import estimate

    model = save_tiny(tmp_path, layers=2)
    train, test = varied_examples(12), varied_examples(8)
    config = config_for(model, zero_shot=False, eval=EvalSettings(strategy="sequential", first=2, budget=0.0))
    e = estimate(config, train, test=test)
    assert e["damoc_eval_flops_best_case"] == pytest.approx(e["damoc_eval_flops"] * 2 / 8, rel=0.3)
    assert e["speedup_flops_with_evaluation_best_case"] > e["speedup_flops_with_evaluation"]
    # it scores the kept copy with its LoRA merged; full fine-tuning's LoRA run is scored unmerged
    row = e["candidates"][0]
    assert row["layers_removed"] == 0 and row["damoc_eval_flops"] < row["full_eval_flops"]
    unmerged = estimate(config.model_copy(update={"eval": EvalSettings(strategy="full")}), train, test=test)
    assert unmerged["candidates"][0]["damoc_eval_flops"] == pytest.approx(row["full_eval_flops"])
    full = config_for(model, eval=EvalSettings(strategy="full"))
    assert "damoc_eval_flops_best_case" not in estimate(full, train, test=test)
    # a budget caps the worst case at B x the training, never below the first batch, never above no cap
    def capped(budget: float) -> dict:
        return estimate(config_for(model, zero_shot=False, eval=EvalSettings(strategy="sequential", first=2,
                                                                              budget=budget)), train, test=test)

    assert capped(1e-9)["damoc_eval_flops"] == pytest.approx(e["damoc_eval_flops_best_case"])
    assert capped(1e9)["damoc_eval_flops"] == pytest.approx(e["damoc_eval_flops"])
    between = e["damoc_eval_flops_best_case"] * 1.5 / e["damoc_train_flops"]
    assert capped(between)["damoc_eval_flops"] == pytest.approx(e["damoc_eval_flops_best_case"] * 1.5)
    assert capped(between)["damoc_eval_flops_best_case"] == pytest.approx(e["damoc_eval_flops_best_case"])
    # the printout names the cap only where one was priced
    from damoc.cli.printing import print_estimate

    for budget, named in ((0.0, False), (between, True)):
        print_estimate(e if not budget else capped(budget))
        assert ("--eval.budget cap" in capsys.readouterr().out) == named


def test_halving_is_priced_by_its_rounds_as_a_real_halving_run_pays(models, cls_file, tmp_path):
    """Halving trains every candidate on a quarter of the data, the better half on half of it: the
    estimate's rounds are the run's, its training FLOPs bracket what the run paid (which candidates
    survive is not known before), and its evaluation counts one scoring per round and candidate."""
    from conftest import small_config

    from damoc.selection.candidate import Candidate
    from damoc.selection.config import EvalSettings
    from damoc.selection.estimate import estimate
    from damoc.selection.pipeline import run_select
    from damoc.selection.runner import select_examples
    from damoc.tasks import load_task

    config = small_config(models, cls_file, filter=None, strategy="halving", zero_shot=False,
                          eval=EvalSettings(strategy="full"),
                          candidates=[Candidate(model=m, method=x) for m in models for x in ("lora", "full")])
    summary = run_select(config, tmp_path / "run", progress=False)
    train, test = select_examples(load_task(config.task, config.data), config, quiet=True)
    e = estimate(config, train, test=test)
    ran = summary["halving"]["rounds"]
    assert [(k["candidates"], k["examples"]) for k in e["rounds"]["rounds"]] == \
        [(len(r["ranking"]), r["examples"]) for r in ran] == [(4, 6), (2, 12)]

    paid = summary["cost"]["train_flops"]
    low, high = e["rounds"]["train_flops_low"], e["rounds"]["train_flops_high"]
    assert low < high  # the survivors' methods differ in cost (LoRA 4 N T, full 6 N T)
    assert low * 0.95 <= paid <= high * 1.05 and low <= e["damoc_train_flops"] <= high
    assert e["damoc_eval_flops"] == pytest.approx(summary["cost"]["eval_flops"], rel=1e-6)  # 6 scorings
    assert any("halving" in n for n in e["notes"]) and not any("fixed strategy" in n for n in e["notes"])
    # a budget given for halving is said to be unused, in the estimate as in the run
    budgeted = estimate(config.model_copy(update={"eval": EvalSettings(budget=0.3)}), train, test=test)
    assert any(n.startswith("--eval.budget: not used") for n in budgeted["notes"])


def test_the_zero_shot_strategy_is_priced_as_the_scoring_it_runs(models, cls_file, tmp_path):
    """No data stage, no training: each model scored once, unmerged and unpruned, on every question."""
    from conftest import small_config

    from damoc.selection.estimate import estimate
    from damoc.selection.pipeline import run_select
    from damoc.selection.runner import select_examples
    from damoc.tasks import load_task

    config = small_config(models, cls_file, strategy="zero-shot")
    summary = run_select(config, tmp_path / "run", progress=False)
    train, test = select_examples(load_task(config.task, config.data), config, quiet=True)
    e = estimate(config, train, test=test)
    assert e["damoc_train_flops"] == 0 and e["damoc_overhead_flops"] == 0 and e["speedup_flops"] is None
    assert e["damoc_eval_flops"] == e["zero_shot_eval_flops"] > 0
    assert e["damoc_eval_flops"] == pytest.approx(summary["cost"]["zero_shot_eval_flops"], rel=1e-6)
    assert any(n.startswith("zero-shot") for n in e["notes"])


def test_graphcut_on_a_random_pool_embeds_only_the_pool_and_is_priced_so(tmp_path, tiny_llama, monkeypatch):
    """`pool_factor`: a seeded random pool of that many times the budget is embedded and chosen from; the
    rest of the data costs nothing, and the estimate prices the pool's share of the embedding pass."""
    import random

    from damoc.filtering.run import filter_examples
    from damoc.selection.config import FilterSettings
    from damoc.selection.estimate import estimate

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    bert = str(tiny_encoder(tmp_path))
    examples = varied_examples(16)
    opts = {"embedder": bert}
    whole, whole_info = filter_examples(examples, "graphcut", budget=4, pool_factor=None, **opts)
    kept, info = filter_examples(examples, "graphcut", budget=4, seed=3, pool_factor=2, **opts)
    pool = {examples[i].id for i in random.Random(3).sample(range(16), 8)}
    assert len(kept) == 4 and {e.id for e in kept} <= pool
    assert [e.id for e in filter_examples(examples, "graphcut", budget=4, seed=3, pool_factor=2, **opts)[0]] == \
        [e.id for e in kept]  # seeded
    assert 0 < info["forward_flops"] < whole_info["forward_flops"]
    with pytest.raises(Exception, match="pool_factor"):
        filter_examples(examples, "graphcut", budget=4, pool_factor=0.5, **opts)
    f = FilterSettings(budget=4, options={"embedder": bert, "pool_factor": 2})
    predicted = estimate(config_for(tiny_llama, filter=f), examples)["data_stage_flops"]["filter"]
    assert predicted == pytest.approx(info["forward_flops"], rel=0.3)  # the pool's mean length is the data's
    assert predicted == pytest.approx(whole_info["forward_flops"] / 2, rel=0.01)
