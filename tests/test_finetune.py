import pytest
import torch
from conftest import build_model, build_tokenizer

from damoc.finetune import FinetuneConfig, finetune, lora_target_modules
from damoc.finetune.train import _Collator, prepare_examples
from damoc.tasks.base import render


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def examples(n=8):
    return [render("classification", id=str(i), question=f"is case {i} positive?",
                   context="patient has a fever", options=["yes", "no"], label=i % 2) for i in range(n)]


def batch_loss(model, tok, exs, max_len=128):
    rows = prepare_examples(tok, exs, max_len)
    batch = _Collator(tok.pad_token_id)(rows)
    model.eval()
    with torch.no_grad():
        return float(model(**batch).loss)


def test_collator_masks_the_prompt_and_padding(tok):
    rows = prepare_examples(tok, examples(2) + [render("generation", id="g", question="q", answer="a b c")], 128)
    batch = _Collator(tok.pad_token_id)(rows)
    for i, r in enumerate(rows):
        labels = batch["labels"][i]
        n = len(r["input_ids"])
        assert (labels[: r["n_prompt"]] == -100).all() and (labels[n:] == -100).all()
        assert labels[r["n_prompt"]:n].tolist() == r["input_ids"][r["n_prompt"]:]
        assert labels[n - 1] == tok.eos_token_id


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_lora_targets_come_from_the_model(tok, arch):
    names = lora_target_modules(build_model(arch, len(tok)))
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"} <= set(names)
    assert "lm_head" not in names


@pytest.mark.parametrize("method,lr", [("lora", 1e-2), ("full", 3e-3)])
def test_training_lowers_the_loss_on_its_data(tok, method, lr):
    model = build_model("llama", len(tok))
    exs = examples(8)
    before = batch_loss(model, tok, exs)
    cfg = FinetuneConfig(method=method, epochs=6, learning_rate=lr, batch_size=4, micro_batch_size=2,
                         max_seq_len=128, warmup_ratio=0.0)
    model, stats = finetune(model, tok, exs, cfg, progress=False)
    after = batch_loss(model, tok, exs)
    assert after < before - 0.1
    assert stats.steps == 12 and stats.train_tokens > 0 and stats.train_flops > 0
    if method == "lora":
        assert stats.trainable_params < stats.total_params / 2
    else:
        assert stats.trainable_params == stats.total_params


def test_full_finetuning_flops_exceed_lora(tok):
    from damoc.finetune.train import estimate_flops

    model = build_model("llama", len(tok))
    assert estimate_flops(model, 1000, "full") == pytest.approx(1.5 * estimate_flops(model, 1000, "lora"))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_cli_finetune_saves_a_loadable_safetensors_model(tmp_path, tiny_llama, cls_file, method, capsys):
    import json

    from damoc.cli import main
    from damoc.models import load_model

    out = tmp_path / f"ft-{method}"
    code = main(["finetune", "--model", str(tiny_llama), "--method", method, "--data", str(cls_file),
                 "--format", "classification", "--field", "context=passage", "--field", "label=y",
                 "--max-seq-len", "64", "--lr", "1e-2", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["method"] == method and "accuracy" in report["metrics"]
    assert (out / "model.safetensors").exists() and (out / "damoc-finetune.json").exists()
    tuned, base = load_model(str(out)), load_model(str(tiny_llama))
    assert not any(n.startswith("base_model") or "lora" in n for n, _ in tuned.named_parameters())
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)
