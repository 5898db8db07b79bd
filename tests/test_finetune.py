import pytest
import torch
from conftest import build_model
from conftest import training_examples as examples

from damoc.finetune import FinetuneConfig, finetune, lora_target_modules
from damoc.finetune.train import _Collator, prepare_examples
from damoc.tasks.base import render


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
                         max_seq_len=128, warmup_ratio=0.0, min_steps=0)
    model, stats = finetune(model, tok, exs, cfg, progress=False)
    after = batch_loss(model, tok, exs)
    assert after < before - 0.1
    assert stats.steps == 12 and stats.train_tokens > 0 and stats.train_flops > 0
    if method == "lora":
        assert stats.trainable_params < stats.total_params / 2
    else:
        assert stats.trainable_params == stats.total_params


def test_full_finetuning_flops_exceed_lora(tok):
    from damoc.flops import estimate_flops

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
                 "--max-seq-len", "64", "--learning-rate", "1e-2", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["method"] == method and "accuracy" in report["metrics"]
    assert (out / "model.safetensors").exists() and (out / "damoc-finetune.json").exists()
    tuned, base = load_model(str(out)), load_model(str(tiny_llama))
    assert not any(n.startswith("base_model") or "lora" in n for n, _ in tuned.named_parameters())
    ids = torch.tensor([[1, 5, 9, 12]], device=next(tuned.parameters()).device)
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))])
@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("lora", [False, True])
def test_answer_only_head_matches_the_full_head(tok, arch, lora, device):
    """The head on loss positions only: same loss and gradients as the full head, with right
    padding, answers of different lengths and two accumulated micro-batches (on CUDA too, where
    the gather and the indexing run as GPU kernels)."""
    from damoc.finetune.train import answer_loss

    exs = examples(2) + [render("generation", id="g1", question="q", answer="a b c d e f"),
                         render("generation", id="g2", question="what is it", answer="x")]
    rows = prepare_examples(tok, exs, 128)
    collate = _Collator(tok.pad_token_id)
    micro = [{k: v.to(device) for k, v in collate(b).items()} for b in (rows[:2], rows[2:])]
    assert micro[1]["attention_mask"].sum(1).tolist()[0] != micro[1]["attention_mask"].shape[1] or \
        micro[1]["attention_mask"].sum(1).tolist()[1] != micro[1]["attention_mask"].shape[1]  # padded
    num_items = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)

    def grads(use_answer_loss: bool):
        model = build_model(arch, len(tok), seed=3).to(device)
        if lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_modules(model),
                                                     init_lora_weights=False))
        model.train()
        model.config.use_cache = False
        total = 0.0
        for b in micro:
            if use_answer_loss:
                loss = answer_loss(model, b["input_ids"], b["attention_mask"], b["labels"], num_items)
            else:
                loss = model(**b, num_items_in_batch=num_items).loss
            loss.backward()
            total += float(loss.detach())
        return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full_loss, full_grads = grads(False)
    ours_loss, ours_grads = grads(True)
    assert ours_loss == pytest.approx(full_loss, rel=1e-5)
    assert full_grads.keys() == ours_grads.keys() and full_grads
    for name in full_grads:
        torch.testing.assert_close(ours_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_flops_count_the_head_only_on_answer_tokens(tok):
    from damoc.flops import estimate_flops, head_params, matmul_params

    model = build_model("llama", len(tok))
    n, h = matmul_params(model), head_params(model)
    assert 0 < h < n
    assert estimate_flops(model, 100, "lora") == 4 * n * 100
    assert estimate_flops(model, 100, "full", loss_tokens=10) == 6 * ((n - h) * 100 + h * 10)


def test_a_loss_on_every_position_prices_the_head_there(tok):
    """Distillation's loss runs the output head at every position: finetune(head_everywhere=True) counts
    it there, plain fine-tuning at the answers only."""
    from damoc.finetune.train import prepare_examples
    from damoc.flops import head_params

    cfg = FinetuneConfig(method="full", epochs=1, batch_size=4, micro_batch_size=2, max_seq_len=128,
                         warmup_ratio=0.0, min_steps=0)
    exs = examples(4)
    rows = prepare_examples(tok, exs, 128)
    answers = sum(len(r["input_ids"]) - max(r["n_prompt"], 1) for r in rows)
    everywhere = sum(len(r["input_ids"]) - 1 for r in rows)
    _, plain = finetune(build_model("llama", len(tok)), tok, exs, cfg, progress=False)
    _, distilled = finetune(build_model("llama", len(tok)), tok, exs, cfg, progress=False, head_everywhere=True)
    assert plain.epochs == 1 and everywhere > answers
    head = head_params(build_model("llama", len(tok)))
    assert distilled.train_flops - plain.train_flops == pytest.approx(6 * head * (everywhere - answers))


@pytest.mark.parametrize("n,expected", [(10, (1, 2.5, 25)), (100, (4, 1.0, 25)), (1000, (8, 1.0, 125)),
                                        (24, (1, 25 / 24, 25))])
def test_step_floor_shrinks_the_batch_then_adds_epochs(n, expected):
    from damoc.finetune.train import schedule

    plan = schedule(n, FinetuneConfig(batch_size=8, micro_batch_size=4, min_steps=25))
    assert (plan.batch_size, plan.epochs, plan.steps) == expected
    assert plan.steps >= 25 and plan.warmup_steps >= 1
    off = schedule(n, FinetuneConfig(batch_size=8, micro_batch_size=4, min_steps=0))
    assert off.batch_size == 8 and off.epochs == 1.0


def test_a_ten_example_run_takes_the_floor_of_steps(tok):
    model = build_model("llama", len(tok))
    _, stats = finetune(model, tok, examples(10), FinetuneConfig(method="lora", max_seq_len=128, batch_size=8,
                                                                 micro_batch_size=4, min_steps=25), progress=False)
    assert stats.steps == 25 and stats.batch_size == 1 and stats.epochs == 2.5 and stats.warmup_steps == 1
