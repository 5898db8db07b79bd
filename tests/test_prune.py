"""Layer pruning: similarity, removal, merging, and the saved folder as a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import build_model, build_tokenizer

from damoc.cli import main
from damoc.errors import DamocError
from damoc.layers import PruneConfig, choose_layers, layer_similarity, prune_model, save_pruned
from damoc.layers.arch import decoder_layers
from damoc.layers.merge import MERGES, nearest_retained, sparsify

TEXTS = ["the patient has a fever and a cough", "aspirin reduces pain", "the quick brown fox jumps over the dog",
         "should I save or invest? diversify and keep costs low"]
ARCHS = ["llama", "gemma3"]


def tiny(arch: str, layers: int = 5, seed: int = 0):
    tok = build_tokenizer()
    return build_model(arch, len(tok), layers=layers, seed=seed).eval(), tok


def logits(model, tok, text: str = "the patient has a cold") -> torch.Tensor:
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def make_identity(model, i: int) -> None:
    """Zero the layer's output projections: it then adds nothing to the residual stream."""
    layer = decoder_layers(model)[i]
    with torch.no_grad():
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()


@pytest.mark.parametrize("arch", ARCHS)
def test_similarity_equals_a_direct_computation(arch):
    model, tok = tiny(arch)
    head_calls = []
    hook = model.get_output_embeddings().register_forward_hook(lambda *a: head_calls.append(1))
    sim = layer_similarity(model, tok, TEXTS, batch_size=3)
    hook.remove()
    assert not head_calls  # hidden states only: the output head is never run
    # Direct: one text at a time, hidden states from output_hidden_states (input of layer i is
    # entry i; the output of every layer but the last is entry i + 1), first token left out.
    sums, count = np.zeros(len(sim)), 0
    for t in TEXTS:
        with torch.no_grad():
            hs = model(**tok(t, return_tensors="pt"), output_hidden_states=True).hidden_states
        for i in range(len(sim) - 1):
            sums[i] += torch.nn.functional.cosine_similarity(hs[i][0, 1:], hs[i + 1][0, 1:], dim=-1).sum().item()
        count += hs[0].shape[1] - 1
    np.testing.assert_allclose(sim[:-1], sums[:-1] / count, rtol=1e-4, atol=1e-5)
    assert np.all(sim <= 1 + 1e-6) and np.all(sim >= -1 - 1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_removing_an_identity_layer_leaves_the_logits_unchanged(arch):
    model, tok = tiny(arch)
    make_identity(model, 2)
    before = logits(model, tok)
    sim = layer_similarity(model, tok, TEXTS)
    assert sim[2] == pytest.approx(1.0, abs=1e-5)
    assert choose_layers(sim, 0.99, 0.25) == [2]
    result = prune_model(model, tok, TEXTS, PruneConfig(threshold=0.99, max_fraction=0.25))
    assert result.removed == [2] and result.layers_after == 4
    assert [layer.self_attn.layer_idx for layer in decoder_layers(model)] == [0, 1, 2, 3]
    torch.testing.assert_close(logits(model, tok), before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_folder_reloads_with_identical_logits_and_generates(arch, tmp_path):
    from transformers import AutoModelForCausalLM

    model, tok = tiny(arch, layers=6)
    result = prune_model(model, tok, TEXTS, PruneConfig(threshold=-1.0, max_fraction=0.34, merge="difference"))
    assert len(result.removed) == 2 and 0 not in result.removed and 5 not in result.removed
    before = logits(model, tok)
    out = save_pruned(model, tok, tmp_path / "pruned", result, {"model": "tiny"})
    again = AutoModelForCausalLM.from_pretrained(out).eval()
    assert again.config.num_hidden_layers == 4
    if arch == "gemma3":
        assert len(again.config.layer_types) == 4
    torch.testing.assert_close(logits(again, tok), before)
    ids = tok("the patient", return_tensors="pt")
    gen = again.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 5
    record = json.loads((out / "damoc-prune.json").read_text())
    assert record["removed"] == result.removed and (out / "similarity.png").stat().st_size > 0
    assert set(map(int, record["merged_into"])) == set(result.removed)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_pruned_model_fine_tunes(method, tmp_path):
    from damoc.finetune import FinetuneConfig, finetune
    from damoc.tasks.base import render

    model, tok = tiny("llama", layers=4)
    result = prune_model(model, tok, TEXTS, PruneConfig(threshold=-1.0, max_fraction=0.25))
    folder = save_pruned(model, tok, tmp_path / "p", result, {})
    from damoc.models import load_model

    reloaded = load_model(str(folder))
    examples = [render("generation", id=str(i), question=t, answer="yes") for i, t in enumerate(TEXTS * 2)]
    _, stats = finetune(reloaded, tok, examples, FinetuneConfig(method=method, epochs=1, max_seq_len=64,
                                                                 batch_size=4, micro_batch_size=4),
                        progress=False)
    assert stats.steps >= 1 and np.isfinite(stats.last_loss)


def test_sparse_merge_density_one_is_the_task_vector_sum_and_zero_is_dropping():
    base, _ = tiny("llama", seed=0)
    tuned, _ = tiny("llama", seed=1)

    def merged(density):
        m, _ = tiny("llama", seed=1)
        MERGES["sparse"](decoder_layers(m), [2, 3], base_layers=decoder_layers(base), density=density, scale=1.0)
        return dict(decoder_layers(m)[1].named_parameters())

    full, zero = merged(1.0), merged(0.0)
    t_layers, b_layers = decoder_layers(tuned), decoder_layers(base)
    # Layer 2 goes to 1 (preceding on a tie), layer 3 to 4 (nearest).
    assert nearest_retained(2, {2, 3}, 5) == 1 and nearest_retained(3, {2, 3}, 5) == 4
    for name, p in t_layers[1].named_parameters():
        expected = p + dict(t_layers[2].named_parameters())[name] - dict(b_layers[2].named_parameters())[name]
        torch.testing.assert_close(full[name], expected)
        torch.testing.assert_close(zero[name], p)


def test_sparsify_keeps_the_largest_or_rescales_random_entries():
    delta = torch.tensor([0.1, -5.0, 0.3, 2.0, -0.2, 0.0, 1.0, -0.05, 0.4, 3.0])
    g = torch.Generator().manual_seed(0)
    top = sparsify(delta, 0.3, "magnitude", g)
    assert torch.count_nonzero(top) == 3 and set(top[top != 0].tolist()) == {-5.0, 2.0, 3.0}
    big = torch.randn(100_000, generator=g)
    rnd = sparsify(big, 0.3, "random", g)
    kept = rnd != 0
    assert 0.28 < kept.float().mean() < 0.32
    torch.testing.assert_close(rnd[kept], big[kept] / 0.3)


def test_wrong_shapes_and_bad_settings_are_refused(tmp_path):
    model, tok = tiny("llama")
    other = build_model("llama", len(tok), layers=5)
    other_config = other.config
    other_config.intermediate_size = 48
    wide = type(other)(other_config)
    with pytest.raises(DamocError, match="does not match"):
        prune_model(model, tok, TEXTS, PruneConfig(merge="sparse"), base_model=wide)
    with pytest.raises(DamocError, match="needs --base"):
        prune_model(model, tok, TEXTS, PruneConfig(merge="sparse"))
    with pytest.raises(DamocError, match="fewer than two"):
        choose_layers(np.ones(2), 0.5, 0.5)
    with pytest.raises(DamocError, match=r"\[-1, 1\]"):
        choose_layers(np.ones(5), 1.5, 0.25)
    with pytest.raises(DamocError, match="empty"):
        layer_similarity(model, tok, ["", "  "])


def test_iterative_removal_recomputes_and_respects_the_cap():
    model, tok = tiny("llama", layers=8)
    result = prune_model(model, tok, TEXTS, PruneConfig(threshold=-1.0, max_fraction=0.25, iterative=True))
    assert len(result.steps) == 2 and len(result.removed) == 2 and result.layers_after == 6
    assert len(set(result.removed)) == 2 and 0 not in result.removed and 7 not in result.removed


def test_cli_prune_writes_a_model_and_refuses_bad_input(tiny_llama, tmp_path, capsys):
    calib = tmp_path / "calib.txt"
    calib.write_text("\n".join(TEXTS))
    out = tmp_path / "pruned"
    common = ["prune", "--model", str(tiny_llama), "--calibration", str(calib), "--out", str(out)]
    assert main([*common, "--threshold", "2"]) == 2 and not out.exists()
    assert "threshold" in capsys.readouterr().err
    assert main([*common, "--merge", "sparse"]) == 2 and not out.exists()
    assert "--base" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert main(["prune", "--model", str(tiny_llama), "--calibration", str(empty), "--out", str(out)]) == 2
    assert "empty" in capsys.readouterr().err and not out.exists()
    # The tiny model has 2 layers: any removal would leave fewer than two.
    assert main([*common, "--max-fraction", "0.5"]) == 2 and not out.exists()
    assert main([*common, "--max-fraction", "0.2", "--threshold", "-1"]) == 0
    assert json.loads((out / "damoc-prune.json").read_text())["layers_after"] == 2
    assert "at most 20% of 2 layers is none: nothing removed (raise --max-fraction)" in capsys.readouterr().err


def test_difference_merge_is_lacos_sum_of_layer_differences():
    model, _ = tiny("llama")
    layers = decoder_layers(model)
    before = [{n: p.detach().clone() for n, p in layers[i].named_parameters()} for i in range(5)]
    into = MERGES["difference"](layers, [2, 3], scale=0.5)
    assert into == {2: 1, 3: 4}
    for name, p in layers[1].named_parameters():
        torch.testing.assert_close(p, before[1][name] + 0.5 * (before[2][name] - before[1][name]))
    for name, p in layers[4].named_parameters():
        torch.testing.assert_close(p, before[4][name] + 0.5 * (before[3][name] - before[4][name]))


@pytest.mark.parametrize("family", ["qwen2", "mistral", "qwen3"])
def test_other_supported_families_prune_save_and_reload(family, tmp_path):
    import transformers
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer()
    config_cls = {"qwen2": transformers.Qwen2Config, "mistral": transformers.MistralConfig,
                  "qwen3": transformers.Qwen3Config}[family]
    torch.manual_seed(0)
    config = config_cls(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                        pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = AutoModelForCausalLM.from_config(config).eval()
    result = prune_model(model, tok, TEXTS, PruneConfig(threshold=-1.0, max_fraction=0.25))
    assert result.layers_after == 3
    before = logits(model, tok)
    again = AutoModelForCausalLM.from_pretrained(save_pruned(model, tok, tmp_path / family, result, {})).eval()
    assert again.config.num_hidden_layers == 3
    torch.testing.assert_close(logits(again, tok), before)
    gen = again.generate(**tok("the patient", return_tensors="pt"), max_new_tokens=3, do_sample=False,
                         pad_token_id=0)
    assert gen.shape[1] > 3


def test_an_unsupported_family_is_named_in_the_error():
    from transformers import AutoModelForCausalLM, GPT2Config

    tok = build_tokenizer()
    model = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4))
    with pytest.raises(DamocError, match="gpt2.*supported families: llama"):
        prune_model(model, tok, TEXTS, PruneConfig())


@pytest.mark.parametrize("iterative,merge", [(False, "none"), (True, "difference")])
def test_a_replayed_plan_prunes_exactly_as_measuring_does(iterative, merge):
    """The candidates of one model share one similarity pass: replaying its plan on fresh weights
    gives the same layers, the same merges, the same logits, and reports the first pass's FLOPs."""
    config = PruneConfig(threshold=-1.0, max_fraction=0.4, iterative=iterative, merge=merge)
    measured, tok = tiny("llama", layers=6)
    first = prune_model(measured, tok, TEXTS, config)
    replayed, _ = tiny("llama", layers=6)
    again = prune_model(replayed, tok, ["texts a replay never reads"], config, plan=first)
    assert again.removed == first.removed and again.merged_into == first.merged_into and len(first.removed) == 2
    assert again.steps == first.steps and again.layers_after == first.layers_after == 4
    assert again.forward_flops == first.forward_flops > 0 and again.seconds["similarity"] == 0.0
    assert torch.equal(logits(measured, tok), logits(replayed, tok))
    with pytest.raises(DamocError, match="6 layers"):
        prune_model(tiny("llama", layers=5)[0], tok, TEXTS, config, plan=first)
