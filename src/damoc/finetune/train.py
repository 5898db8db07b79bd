"""Fine-tune a causal LM on a task's examples, fully or with LoRA, loss on answer tokens only.

Built on transformers' Trainer so that GPU users keep accelerate, DeepSpeed and FSDP; on
this CPU machine it runs in fp32. Wall time, tokens trained and a FLOP estimate are
recorded because DaMoC's whole claim is about training cost.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm.auto import tqdm
from transformers import TrainerCallback

from damoc.encoding import encode
from damoc.errors import DamocError
from damoc.tasks.base import Example, continuation

# Raised inside transformers' own Trainer on every run; nothing a damoc user can act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

Method = Literal["lora", "full"]
DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}


class FinetuneConfig(BaseModel):
    """Training settings; the same ones must be used for every candidate being compared."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "lora"
    epochs: float = Field(1.0, gt=0)
    max_seq_len: int = Field(512, ge=16)
    batch_size: int = Field(8, ge=1, description="examples per optimizer step")
    micro_batch_size: int = Field(4, ge=1, description="examples per forward pass")
    learning_rate: float | None = Field(None, gt=0, description="default 2e-4 (LoRA), 2e-5 (full)")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    seed: int = 0

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LR[self.method]


@dataclass
class TrainStats:
    method: str
    examples: int
    steps: int
    train_seconds: float
    train_tokens: int
    tokens_per_second: float
    train_flops: float
    trainable_params: int
    total_params: int
    first_loss: float | None
    last_loss: float | None
    truncated: int

    def to_dict(self) -> dict:
        return asdict(self)


def lora_target_modules(model: nn.Module) -> list[str]:
    """Names of the linear layers inside the decoder blocks, read from the model itself."""
    names = set()
    for full_name, module in model.named_modules():
        if isinstance(module, nn.Linear) and ".layers." in full_name:
            names.add(full_name.rsplit(".", 1)[-1])
    if not names:
        raise DamocError("found no linear layers inside decoder blocks to put LoRA adapters on")
    return sorted(names)


def matmul_params(model: nn.Module) -> int:
    """Parameters that take part in a matmul per token: every Linear, the output head included
    (counted even when tied to the embedding, which is only a lookup on the way in)."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and id(head.weight) not in seen:
        total += head.weight.numel()
    return total


def forward_flops(model: nn.Module, tokens: int) -> float:
    """2 N T: a forward pass (scoring, similarity, generation), N counted as for training."""
    return 2.0 * matmul_params(model) * tokens


def estimate_flops(model: nn.Module, tokens: int, method: str) -> float:
    """6 N T for full fine-tuning; 4 N T for LoRA (no weight gradients for frozen matrices)."""
    return (6 if method == "full" else 4) * matmul_params(model) * tokens


class _Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            mask[i, :n] = 1
            labels[i, r["n_prompt"]:n] = ids[i, r["n_prompt"]:n]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class _LossBar(TrainerCallback):
    """One progress bar with the running loss, instead of a printed dict per step."""

    def __init__(self, total: int, show: bool):
        self.bar = tqdm(total=total, desc="training", disable=not show, leave=False)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


def _quiet_logs(trainer, progress: bool, steps: int) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_LossBar(steps, progress))


def prepare_examples(tokenizer, examples: list[Example], max_len: int) -> list[dict]:
    rows = []
    for ex in examples:
        enc = encode(tokenizer, ex, continuation(ex), max_len, add_eos=True)
        rows.append({"input_ids": enc.input_ids, "n_prompt": enc.n_prompt, "truncated": enc.truncated})
    return rows


def finetune(model, tokenizer, examples: list[Example], config: FinetuneConfig,
             progress: bool = True):
    """Train in place (full) or wrap with LoRA adapters; returns (model, TrainStats)."""
    from transformers import Trainer, TrainingArguments

    if not examples:
        raise DamocError("no training examples")
    # Seed before the adapters are made: their initial weights must not depend on what ran earlier
    # in this process (a resumed run must give the figures of an uninterrupted one).
    from transformers import set_seed

    set_seed(config.seed)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                          lora_dropout=config.lora_dropout, task_type="CAUSAL_LM",
                          target_modules=lora_target_modules(model))
        model = get_peft_model(model, lora)
    rows = prepare_examples(tokenizer, examples, config.max_seq_len)
    tokens = sum(len(r["input_ids"]) for r in rows)
    epochs_tokens = int(tokens * config.epochs)
    micro = min(config.micro_batch_size, config.batch_size)
    accum = max(1, config.batch_size // micro)
    steps = math.ceil(math.ceil(len(rows) / micro) / accum * config.epochs)
    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory(prefix="damoc-train-") as out_dir:
        args = TrainingArguments(
            output_dir=out_dir, per_device_train_batch_size=micro,
            gradient_accumulation_steps=accum, num_train_epochs=config.epochs,
            learning_rate=config.lr, weight_decay=config.weight_decay,
            warmup_steps=int(config.warmup_ratio * steps), lr_scheduler_type="linear",
            logging_steps=1, save_strategy="no", report_to="none", seed=config.seed,
            data_seed=config.seed, use_cpu=device.type == "cpu",
            bf16=next(model.parameters()).dtype == torch.bfloat16,
            remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=_Collator(tokenizer.pad_token_id))
        _quiet_logs(trainer, progress, steps)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    model.eval()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    stats = TrainStats(
        method=config.method, examples=len(rows), steps=trainer.state.global_step,
        train_seconds=seconds, train_tokens=epochs_tokens,
        tokens_per_second=epochs_tokens / seconds if seconds > 0 else float("nan"),
        train_flops=float(estimate_flops(model, epochs_tokens, config.method)),
        trainable_params=trainable, total_params=total,
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        truncated=sum(r["truncated"] for r in rows),
    )
    return model, stats
