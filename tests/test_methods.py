"""Fine-tuning methods as a registry (issue 25): each trains, saves, reloads with identical outputs,
evaluates, is costed by its own rule, and works after layer pruning (sparse merge included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_model, build_tokenizer
from conftest import training_examples as examples

from damoc.cli import main
from damoc.finetune import METHODS, FinetuneConfig, finetune, get_method
from damoc.finetune.save import save_finetuned
from damoc.flops import head_params, matmul_params, training_flops
from damoc.selection.candidate import Candidate

ALL = ["full", "lora", "dora", "ia3", "loha"]


def test_the_registry_holds_at_least_the_five_methods_each_with_its_rate_and_description():
    assert set(ALL) <= set(METHODS.names())
    for name in ALL:
        m = get_method(name)
        assert m.learning_rate > 0 and len(m.description) > 40
    assert get_method("full").learning_rate < get_method("lora").learning_rate < get_method("ia3").learning_rate


def _logits(model, tok, text="Context: the patient has a fever. Answer: yes"):
    batch = tok(text, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("name", ALL)
def test_each_method_trains_saves_reloads_identically_and_evaluates(name, tmp_path):
    from damoc.evaluation import evaluate
    from damoc.models import load_model
    from damoc.tasks.base import Task

    tok = build_tokenizer()
    model = build_model("llama", len(tok), seed=2)
    params_before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = FinetuneConfig(method=name, epochs=2, batch_size=4, micro_batch_size=2, max_seq_len=96, min_steps=0,
                         learning_rate=1e-2 if name != "full" else 3e-3)
    trained, stats = finetune(model, tok, examples(8), cfg, progress=False)
    assert stats.method == name and stats.steps == 4 and np.isfinite(stats.last_loss)
    if name == "full":
        assert stats.trainable_params == stats.total_params
    else:
        assert 0 < stats.trainable_params < stats.total_params  # the base weights are frozen
    out = save_finetuned(trained, tok, tmp_path / name, {"method": name})
    reloaded = load_model(str(out))
    before_save = _logits(trained, tok)
    assert torch.allclose(_logits(reloaded, tok), before_save, atol=1e-4)
    # and training changed the model (the adapters are not a no-op once merged)
    fresh = build_model("llama", len(tok), seed=2)
    fresh.load_state_dict(params_before)
    assert not torch.allclose(_logits(fresh, tok), before_save, atol=1e-4)
    task = Task(name="t", format="classification", train=examples(8), test=examples(4))
    result = evaluate(reloaded, tok, task, max_len=96, batch_size=4)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and np.isfinite(result.metrics["answer_bpb"])


@pytest.mark.parametrize("name", ALL)
def test_each_method_is_costed_by_its_own_rule(name):
    from damoc.flops import estimate_flops

    tok = build_tokenizer()
    model = build_model("llama", len(tok))
    head = head_params(model)
    body = matmul_params(model) - head
    tokens, loss_tokens, micro = 1000, 300, 7
    per_token = 6 if name == "full" else 4  # weight gradients only where every weight is trained
    expected = per_token * (body * tokens + head * loss_tokens)
    if name == "dora":
        expected += micro * 6.0 * 16 * body  # the weight norms, on every micro-batch (rank 16)
    assert estimate_flops(model, tokens, name, loss_tokens, micro_batches=micro) == pytest.approx(expected)


def test_loha_pays_for_its_dense_update_in_training_and_in_unmerged_scoring():
    """peft's LoHa rebuilds each update as a dense matrix the size of its layer and applies it with a second
    matmul per token: its run costs 10 N per token (4 N frozen, 6 N the trained dense update), and
    scoring it before merging twice the forward of the model it adapts."""
    from damoc.finetune.methods import decoder_linears
    from damoc.flops import dense_delta_params, forward_flops

    tok = build_tokenizer()
    model = build_model("llama", len(tok))
    head = head_params(model)
    body = matmul_params(model) - head
    assert body > 0 and set(decoder_linears(model))  # every decoder linear gets an update
    cfg = FinetuneConfig(method="loha", epochs=1, batch_size=4, micro_batch_size=2, max_seq_len=96, min_steps=0)
    trained, stats = finetune(model, tok, examples(8), cfg, progress=False)
    assert dense_delta_params(trained) == body
    # IA3 on the same run pays 4 N per token (its vectors add no matmul): LoHa 6 N more
    _, ia3 = finetune(build_model("llama", len(tok)), tok, examples(8), cfg.model_copy(update={"method": "ia3"}),
                      progress=False)
    assert ia3.train_tokens == stats.train_tokens
    assert stats.train_flops - ia3.train_flops == pytest.approx(6 * body * stats.train_tokens)
    assert forward_flops(trained, 100, head_tokens=0) == pytest.approx(2 * 2 * body * 100)
    merged = trained.merge_and_unload()
    assert dense_delta_params(merged) == 0
    assert forward_flops(merged, 100, head_tokens=0) == pytest.approx(2 * body * 100)


def test_dora_costs_more_than_lora_on_the_same_run():
    tok = build_tokenizer()
    cfg = FinetuneConfig(method="lora", epochs=1, batch_size=4, micro_batch_size=2, max_seq_len=96, min_steps=0)
    _, lora = finetune(build_model("llama", len(tok)), tok, examples(8), cfg, progress=False)
    _, dora = finetune(build_model("llama", len(tok)), tok, examples(8), cfg.model_copy(update={"method": "dora"}),
                       progress=False)
    assert dora.train_tokens == lora.train_tokens and dora.train_flops > lora.train_flops


def test_full_costs_one_and_a_half_times_an_adapter_per_token():
    full = training_flops(1e6, 1e5, 1000, 400, "full")
    assert full == pytest.approx(1.5 * training_flops(1e6, 1e5, 1000, 400, "ia3"))


@pytest.mark.parametrize("name", ALL)
def test_each_method_trains_after_pruning_with_the_sparse_merge(name, tmp_path):
    from damoc.layers import PruneConfig, prune_model
    from damoc.tasks.base import render

    tok = build_tokenizer()
    model = build_model("llama", len(tok), layers=4, seed=1)
    base = build_model("llama", len(tok), layers=4, seed=3)
    texts = ["the patient has a fever and a cough", "aspirin reduces pain in most patients"]
    result = prune_model(model.eval(), tok, texts, PruneConfig(threshold=-1.0, max_fraction=0.25, merge="sparse"),
                         base_model=base.eval())
    assert result.layers_after == 3
    exs = [render("generation", id=str(i), question=t, answer="yes") for i, t in enumerate(texts * 4)]
    trained, stats = finetune(model, tok, exs, FinetuneConfig(method=name, max_seq_len=64, batch_size=4,
                                                              micro_batch_size=4, min_steps=0), progress=False)
    assert stats.steps >= 1 and np.isfinite(stats.last_loss)


def test_options_are_validated_in_one_line():
    assert Candidate(model="m", method="lora", options={"r": 4}).name == "m lora[r=4]"
    with pytest.raises(ValueError, match="method lora: r"):
        Candidate(model="m", method="lora", options={"r": 0})
    with pytest.raises(ValueError, match="method full: r: Extra inputs"):
        Candidate(model="m", method="full", options={"r": 4})
    with pytest.raises(ValueError, match="unknown fine-tuning method 'qlora'; available: dora, full, ia3"):
        Candidate(model="m", method="qlora")


def test_lora_options_override_the_runs_rank():
    tok = build_tokenizer()
    cfg = FinetuneConfig(method="lora", method_options={"r": 2}, max_seq_len=96, min_steps=0, batch_size=4,
                         micro_batch_size=4)
    _, small = finetune(build_model("llama", len(tok)), tok, examples(4), cfg, progress=False)
    default_cfg = cfg.model_copy(update={"method_options": {}})
    _, default = finetune(build_model("llama", len(tok)), tok, examples(4), default_cfg, progress=False)
    assert small.trainable_params * 8 == default.trainable_params  # rank 2 against 16


def test_adapters_that_change_weights_are_refused_on_4bit():
    from damoc.selection.config import BaselineConfig

    with pytest.raises(ValueError, match="lora or dora"):
        BaselineConfig(task="pubmedqa", quantization="4bit", candidates=[Candidate(model="m", method="ia3")])
    BaselineConfig(task="pubmedqa", quantization="4bit", candidates=[Candidate(model="m", method="dora")])


def test_the_cli_takes_every_registered_method(cls_file, tmp_path, capsys):
    argv = ["select", "--models", "bundled:nosuch", "--methods", "full", "lora", "dora", "ia3", "loha", "--data",
            str(cls_file), "--format", "classification", "--field", "context=passage", "--field", "label=y",
            "--out", str(tmp_path / "r")]
    assert main(argv) == 2  # parsed; refused only for the model, before any work
    assert "unknown bundled model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv[:3], "--methods", "qlora", *argv[9:]])


def test_a_run_file_names_options(tmp_path, cls_file):
    from damoc.cli import build_parser
    from damoc.cli.runs import select_config

    run = tmp_path / "run.yaml"
    run.write_text(f"data: {{path: {cls_file}, format: classification, fields: {{context: passage, label: y}}}}\n"
                   "candidates:\n  - {model: a, method: lora, options: {r: 8}}\n  - {model: a, method: ia3}\n")
    args = build_parser("select").parse_args(["select", "--config", str(run), "--out", str(tmp_path / "o")])
    config, _ = select_config(args)
    assert [c.name for c in config.candidates] == ["a lora[r=8]", "a ia3"]
