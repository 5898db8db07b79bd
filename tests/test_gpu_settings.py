"""GPU-scale training settings: what runs on a CPU is tested here (gradient checkpointing, the
plumbing into TrainingArguments, the one-line refusals); the CUDA paths run where a GPU is present
(they skip elsewhere, and CI has none: README marks them)."""

import importlib.util
import shutil

import pytest
import torch
from conftest import build_model
from conftest import training_examples as examples

from damoc.errors import DamocError
from damoc.finetune import FinetuneConfig, finetune
from damoc.finetune.train import check_hardware, schedule, training_arguments
from damoc.runinfo import key_settings
from damoc.selection.candidate import Candidate, candidate_key
from damoc.selection.config import BaselineConfig

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")




def train(tok, method, device="cpu", dtype=torch.float32, **settings):
    model = build_model("llama", len(tok), seed=1).to(device=device, dtype=dtype)
    cfg = FinetuneConfig(method=method, epochs=2, learning_rate=1e-2, batch_size=4, micro_batch_size=2,
                         max_seq_len=64, min_steps=0, **settings)
    return finetune(model, tok, examples(), cfg, progress=False)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_gradient_checkpointing_trains_to_the_same_weights(tok, method):
    plain, a = train(tok, method)
    checkpointed, b = train(tok, method, gradient_checkpointing=True)
    assert a.first_loss == pytest.approx(b.first_loss, rel=1e-5) and a.last_loss == pytest.approx(b.last_loss, rel=1e-4)
    for (n, p), (_, q) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)


def test_settings_reach_the_trainer_as_given(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text("{}")
    cfg = FinetuneConfig(optim="adafactor", gradient_checkpointing=True, mixed_precision="no", fsdp="full_shard",
                         deepspeed=ds)
    plan = schedule(40, cfg)
    with pytest.raises(Exception):  # noqa: B017 - transformers refuses DeepSpeed without the package
        training_arguments(cfg, plan, str(tmp_path), torch.device("cpu"), torch.float32)
    args = training_arguments(cfg.model_copy(update={"deepspeed": None, "fsdp": None}), plan, str(tmp_path),
                              torch.device("cpu"), torch.float32)
    assert args.optim == "adafactor" and not args.bf16 and not args.fp16
    assert getattr(args, "activation_checkpointing", None) or getattr(args, "gradient_checkpointing", None)
    assert args.max_steps == plan.steps and args.gradient_accumulation_steps == plan.accumulation
    auto = training_arguments(FinetuneConfig(), plan, str(tmp_path), torch.device("cpu"), torch.bfloat16)
    assert auto.bf16 and auto.optim == "adamw_torch"  # auto: mixed precision follows bf16 weights


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on a CPU builds C++ kernels: no compiler on this machine")
def test_a_compiled_model_trains_as_the_plain_one(tok):
    """torch.compile changes how the steps run, not what they compute: the same losses (the weights are
    not compared: Adam turns the reordered sums' last bits on near-zero gradients into steps of a whole
    learning rate); the decoder is compiled for training only."""
    import torch._dynamo.utils

    _, a = train(tok, "lora")
    torch._dynamo.reset()
    compiled, b = train(tok, "lora", torch_compile=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # something was compiled
    assert "forward" not in vars(compiled.get_base_model().get_decoder())
    assert a.first_loss == pytest.approx(b.first_loss, rel=1e-4) and a.last_loss == pytest.approx(b.last_loss, rel=1e-3)


@pytest.mark.skipif(CUDA, reason="checks the refusals on a machine without CUDA")
@pytest.mark.parametrize("settings,message", [
    ({"mixed_precision": "fp16"}, "mixed_precision fp16 needs a CUDA GPU"),
    ({"optim": "adamw_torch_fused"}, "optim adamw_torch_fused needs a CUDA GPU"),
    ({"optim": "paged_adamw_8bit"}, "bitsandbytes" if importlib.util.find_spec("bitsandbytes") is None
     else "needs a CUDA GPU"),
    ({"fsdp": "full_shard auto_wrap"}, "fsdp needs a CUDA GPU"),
    ({"fsdp_config": "x.json"}, "fsdp_config is read only with fsdp"),
])
def test_gpu_only_settings_refuse_on_cpu_in_one_line(settings, message):
    with pytest.raises(DamocError, match=message) as e:
        check_hardware(FinetuneConfig(**settings), torch.device("cpu"))
    assert "\n" not in str(e.value)


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_qlora_refuses_without_cuda_and_refuses_what_it_cannot_train(tiny_llama):
    from damoc.layers import PruneConfig
    from damoc.models import LoadOptions, load_model
    from damoc.selection.config import SelectConfig

    with pytest.raises(DamocError, match="4bit .*needs a CUDA GPU"):
        load_model(str(tiny_llama), LoadOptions(quantization="4bit"))
    with pytest.raises(ValueError, match="lora or dora"):
        BaselineConfig(task="boolq", candidates=[Candidate(model="m", method="full")], quantization="4bit")
    with pytest.raises(ValueError, match="merge rewrites weights"):
        SelectConfig(task="boolq", candidates=[Candidate(model="m", method="lora")], quantization="4bit",
                     prune=PruneConfig(merge="difference"))


def test_new_settings_at_their_defaults_keep_every_cache_key():
    config = BaselineConfig(task="boolq", candidates=[Candidate(model="m", method="lora")])
    settings = key_settings(config)
    assert "quantization" not in settings and "optim" not in settings["finetune"]
    assert settings["finetune"]["lora_r"] == 16  # older settings are always in the key
    changed = config.model_copy(update={"finetune": config.finetune.model_copy(update={"optim": "adafactor"})})
    assert candidate_key(changed, config.candidates[0]) != candidate_key(config, config.candidates[0])
    same = config.model_copy(update={"finetune": config.finetune.model_copy(update={"gradient_checkpointing": False})})
    assert candidate_key(same, config.candidates[0]) == candidate_key(config, config.candidates[0])


@needs_cuda
@pytest.mark.parametrize("method", ["lora", "full"])
def test_cuda_bf16_checkpointing_and_fused_adamw_train(tok, method):
    _, stats = train(tok, method, "cuda", torch.bfloat16, gradient_checkpointing=True, optim="adamw_torch_fused")
    assert stats.steps == 4 and stats.last_loss < stats.first_loss


@needs_cuda
def test_cuda_fp16_mixed_precision_on_fp32_weights_trains(tok):
    model, stats = train(tok, "lora", "cuda", torch.float32, mixed_precision="fp16")
    assert stats.steps == 4 and stats.last_loss < stats.first_loss


@needs_cuda
def test_cuda_qlora_and_paged_8bit_adamw_train(tok, tiny_llama):
    pytest.importorskip("bitsandbytes")
    from damoc.models import LoadOptions, load_model

    model = load_model(str(tiny_llama), LoadOptions(quantization="4bit"))
    assert getattr(model, "is_loaded_in_4bit", False)
    cfg = FinetuneConfig(method="lora", epochs=2, learning_rate=1e-2, batch_size=4, micro_batch_size=2,
                         max_seq_len=64, min_steps=0, optim="paged_adamw_8bit", gradient_checkpointing=True)
    _, stats = finetune(model, tok, examples(), cfg, progress=False)
    assert stats.steps == 4 and stats.trainable_params < stats.total_params
    with pytest.raises(DamocError, match="only be trained with LoRA"):
        finetune(load_model(str(tiny_llama), LoadOptions(quantization="4bit")), tok, examples(),
                 cfg.model_copy(update={"method": "full"}), progress=False)
