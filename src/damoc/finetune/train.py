"""Fine-tune a causal LM on a task's examples with any registered method (methods.py: full, LoRA,
DoRA, (IA)^3, LoHa, ...), loss on answer tokens only.

Built on transformers' Trainer so that GPU users keep accelerate, DeepSpeed and FSDP; it trains
in bf16 where the weights are bf16 (CUDA) and in fp32 on a CPU. Wall time, tokens trained and a
FLOP estimate are recorded because DaMoC's whole claim is about training cost.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn
from tqdm.auto import tqdm
from transformers import TrainerCallback

from damoc.compat import ADDED_LATER
from damoc.encoding import encode
from damoc.errors import DamocError
from damoc.finetune.methods import DEFAULT, METHODS, get_method
from damoc.flops import estimate_flops
from damoc.tasks.base import Example, continuation

# Raised inside transformers' own Trainer on every run; nothing a damoc user can act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)



class FinetuneConfig(BaseModel):
    """Training settings; the same ones must be used for every candidate being compared."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: str = Field(DEFAULT, json_schema_extra={"registry": "damoc.finetune.methods:METHODS"},
                        description="how the model is trained: full, lora, dora, ia3, loha (damoc.finetune.methods)")
    method_options: dict = Field(default_factory=dict, json_schema_extra=ADDED_LATER,
                                 description="the method's own options, e.g. {r: 8} for lora (a candidate's `options`)")
    epochs: float = Field(1.0, gt=0, description="passes over the training data")
    max_seq_len: int = Field(512, ge=16, description="tokens per example; longer contexts are cut from their end")
    batch_size: int = Field(8, ge=1, description="examples per optimizer step")
    micro_batch_size: int = Field(4, ge=1, description="examples per forward pass")
    learning_rate: float | None = Field(None, gt=0, description="peak learning rate; none: the method's own ("
                                        + ", ".join(f"{m.name} {m.learning_rate:g}"
                                                    for m in map(get_method, METHODS.names())) + ")")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of the steps spent warming up "
                                "(at least one step)")
    min_steps: int = Field(25, ge=0, description="floor on optimizer steps: with few examples the batch "
                           "shrinks, then epochs are added, until a run takes this many (0: off)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scale numerator (default: twice the rank)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA path")
    seed: int = Field(0, description="training seed (in a run: the run's seed)")
    # GPU-scale settings, handed to transformers' Trainer as they are (users fine-tune 7-8B
    # candidates); those that need CUDA or an extra package refuse in one line where it is missing.
    gradient_checkpointing: bool = Field(False, json_schema_extra=ADDED_LATER, description=(
        "recompute activations in the backward pass: far less memory for about a third more compute"))
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field("auto", json_schema_extra=ADDED_LATER, description=(
        "auto: bf16 when the weights are bf16 (CUDA), else none; fp16 needs CUDA"))
    optim: str = Field("adamw_torch", json_schema_extra=ADDED_LATER, description=(
        "a transformers optimizer name: adamw_torch, adamw_torch_fused (CUDA), adamw_8bit or "
        "paged_adamw_8bit (CUDA, bitsandbytes: pip install 'damoc[gpu]'), adafactor, ..."))
    deepspeed: Path | None = Field(None, json_schema_extra=ADDED_LATER, description=(
        "a DeepSpeed JSON config handed to the Trainer (CUDA; pip install deepspeed)"))
    fsdp: str | None = Field(None, json_schema_extra=ADDED_LATER, description=(
        "FSDP options handed to the Trainer, e.g. 'full_shard auto_wrap' (CUDA; launch with torchrun)"))
    fsdp_config: Path | None = Field(None, json_schema_extra=ADDED_LATER, description="an FSDP JSON config (with fsdp)")
    torch_compile: bool = Field(False, json_schema_extra=ADDED_LATER, description=(
        "compile the model with torch.compile: faster steps on a GPU once compiled, but the first steps pay "
        "the compilation (minutes for an 8B model), so it pays only on long runs"))

    @model_validator(mode="after")
    def _alpha_follows_rank(self) -> FinetuneConfig:
        """LoRA's scale alpha / r stays 2 when only the rank is given, from a flag or a run file."""
        if "lora_alpha" not in self.model_fields_set:
            self.lora_alpha = 2 * self.lora_r
        return self

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        from damoc.finetune.methods import METHODS

        return METHODS.check(name)

    @model_validator(mode="after")
    def _options_fit_the_method(self) -> FinetuneConfig:
        from damoc.finetune.methods import get_method

        get_method(self.method).parse(self.method_options)
        return self

    @property
    def lr(self) -> float:
        from damoc.finetune.methods import get_method

        return self.learning_rate or get_method(self.method).learning_rate


@dataclass(frozen=True)
class Schedule:
    """How a run is batched: what the config asked, or less per step when the step floor binds."""

    micro_batch_size: int
    accumulation: int
    epochs: float
    steps: int
    warmup_steps: int

    @property
    def batch_size(self) -> int:
        return self.micro_batch_size * self.accumulation


def schedule(n: int, config: FinetuneConfig) -> Schedule:
    """Batching for n examples. A run of 10 examples at batch 8 takes 2 optimizer steps and no
    warm-up: a LoRA adapter (B starts at zero) barely moves, and the candidate is judged on its
    untrained prior. So below `min_steps` the batch shrinks (down to 1) and, if that is not enough,
    the data is passed over again (a fractional number of epochs, exactly `min_steps` steps); every
    candidate of a run gets the same rule."""
    def plan(batch: int, epochs: float) -> tuple[int, int, int]:
        micro = min(config.micro_batch_size, batch)
        accum = max(1, batch // micro)
        return micro, accum, math.ceil(math.ceil(n / micro) / accum * epochs)

    batch, epochs = config.batch_size, config.epochs
    micro, accum, steps = plan(batch, epochs)
    if steps < config.min_steps:
        batch = max(1, min(batch, int(n * epochs // config.min_steps)))
        micro, accum, steps = plan(batch, epochs)
        if steps < config.min_steps:  # batch 1 is still too few steps: more passes over the data
            steps = config.min_steps
            epochs = steps / math.ceil(n / batch)
    return Schedule(micro, accum, epochs, steps, max(1, int(config.warmup_ratio * steps)))


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
    batch_size: int = 0
    epochs: float = 0.0
    warmup_steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def lora_target_modules(model: nn.Module) -> list[str]:
    """Names of the linear layers inside the decoder blocks, read from the model itself."""
    from damoc.finetune.methods import decoder_linears

    return decoder_linears(model)


def next_token_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      keep: torch.Tensor) -> torch.Tensor:
    """The decoder's last hidden states that predict each next token, at the positions `keep` marks
    (shape of input_ids[:, 1:]): (positions, hidden size)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return hidden[:, :-1][keep]


def head_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """The output head on `hidden` (final-logit softcapping applied, as Gemma does)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    logits = base.get_output_embeddings()(hidden)
    cap = getattr(base.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def next_token_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      keep: torch.Tensor) -> torch.Tensor:
    """The logits predicting each next token, at the positions `keep` marks (shape of input_ids[:, 1:])
    only: the output head is computed nowhere else."""
    return head_logits(model, next_token_hidden(model, input_ids, attention_mask, keep))


def answer_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                num_items: torch.Tensor | int | None = None) -> torch.Tensor:
    """Next-token cross-entropy on the labelled (answer) positions, with the output head computed
    at those positions only. The head is most of a small model's cost (Gemma-3-270M: a 262k x 640
    matrix, 168M of its 268M parameters) and the loss never looks at prompt positions, so this
    gives the same loss and gradients as the full head for a fraction of the work. Positions are
    chosen per row, so right padding and answers of different lengths are handled. Normalised by
    `num_items` (the labelled positions of the whole accumulated batch) when given, as the
    Trainer does for gradient accumulation; else by this batch's count."""
    targets = labels[:, 1:]
    keep = targets != -100
    logits = next_token_logits(model, input_ids, attention_mask, keep)
    total = nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
    if num_items is None:
        num_items = keep.sum().clamp(min=1)
    return total / num_items


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


def _answer_trainer(loss_fn=None):
    from transformers import Trainer

    class AnswerTrainer(Trainer):
        """Trainer whose loss is `answer_loss` (the head only where the loss is taken)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # The loss is normalised by the accumulated batch's labelled positions: ask the
            # Trainer to count them and not to divide again by the accumulation steps.
            self.model_accepts_loss_kwargs = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if loss_fn is not None:
                steps = getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
                loss = loss_fn(model, inputs, num_items_in_batch, steps)
            else:
                loss = answer_loss(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                                   num_items_in_batch)
            return (loss, None) if return_outputs else loss

    return AnswerTrainer


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


BITSANDBYTES_OPTIMIZERS = ("8bit", "paged_", "lion_", "ademamix")


def check_hardware(config: FinetuneConfig, device: torch.device) -> None:
    """Refuse, in one line, a GPU-only setting where it cannot run (before any training)."""
    import importlib.util

    cuda = device.type == "cuda"
    need_cuda = []
    if config.mixed_precision == "fp16":
        need_cuda.append("mixed_precision fp16")
    if config.optim.endswith("_fused"):
        need_cuda.append(f"optim {config.optim}")
    if any(k in config.optim for k in BITSANDBYTES_OPTIMIZERS):
        need_cuda.append(f"optim {config.optim}")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise DamocError(f"optim {config.optim} needs bitsandbytes: pip install 'damoc[gpu]'")
    if config.deepspeed is not None:
        need_cuda.append("deepspeed")
        if importlib.util.find_spec("deepspeed") is None:
            raise DamocError("--deepspeed needs the deepspeed package: pip install deepspeed")
        if not Path(config.deepspeed).is_file():
            raise DamocError(f"deepspeed config {config.deepspeed}: no such file")
    if config.fsdp:
        need_cuda.append("fsdp")
    if config.fsdp_config is not None and not config.fsdp:
        raise DamocError("fsdp_config is read only with fsdp (e.g. fsdp: 'full_shard auto_wrap')")
    if need_cuda and not cuda:
        raise DamocError(f"{', '.join(need_cuda)} need{'s' if len(need_cuda) == 1 else ''} a CUDA GPU; "
                         f"this run is on {device.type}")


def training_arguments(config: FinetuneConfig, plan: Schedule, out_dir: str, device: torch.device,
                       weights_dtype: torch.dtype):
    """The Trainer's arguments: damoc's schedule, and the GPU-scale settings passed through."""
    from transformers import TrainingArguments

    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if weights_dtype == torch.bfloat16 else "no"
    # Non-reentrant checkpointing works with frozen inputs (LoRA) without forcing input grads.
    # transformers renamed the setting (activation_checkpointing) in 5.x; use the name it has.
    name = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
            else "gradient_checkpointing")
    checkpointing = {name: config.gradient_checkpointing,
                     f"{name}_kwargs": {"use_reentrant": False} if config.gradient_checkpointing else None}
    return TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=plan.micro_batch_size,
        gradient_accumulation_steps=plan.accumulation, num_train_epochs=plan.epochs, max_steps=plan.steps,
        learning_rate=config.lr, weight_decay=config.weight_decay,
        warmup_steps=plan.warmup_steps, lr_scheduler_type="linear",
        logging_steps=1, save_strategy="no", report_to="none", seed=config.seed,
        data_seed=config.seed, use_cpu=device.type == "cpu",
        bf16=precision == "bf16", fp16=precision == "fp16", optim=config.optim,
        **checkpointing,
        deepspeed=str(config.deepspeed) if config.deepspeed else None,
        fsdp=config.fsdp or "", fsdp_config=str(config.fsdp_config) if config.fsdp_config else None,
        remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=0,
    )


@contextmanager
def _compiled_decoder(model, on: bool):
    """torch.compile on the decoder's forward for the training steps only. The Trainer's own
    `torch_compile` would compile the model's forward, which the answer loss never calls (it runs the
    decoder, then the head where the loss is taken); evaluation afterwards runs uncompiled, as always."""
    if not on:
        yield
        return
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder()
    decoder.forward = torch.compile(decoder.forward)
    try:
        yield
    finally:
        del decoder.forward  # the instance attribute goes: the class's forward again


def finetune(model, tokenizer, examples: list[Example], config: FinetuneConfig,
             progress: bool = True, loss_fn=None, head_everywhere: bool = False):
    """Train in place (full) or wrap with LoRA adapters; returns (model, TrainStats). `loss_fn(model,
    inputs, num_items, accumulation)` replaces the answer loss (recovery's distillation does);
    `head_everywhere`: it runs the output head at every position, so train_flops price it there."""
    if not examples:
        raise DamocError("no training examples")
    device = next(model.parameters()).device
    check_hardware(config, device)
    from damoc.finetune.methods import get_method

    method = get_method(config.method)
    options = method.parse(config.method_options)
    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
    if quantized and not method.quantized:
        raise DamocError(f"a quantized (4-bit) model cannot be trained with {method.name}: its weights are frozen; "
                         "use lora or dora (QLoRA)")
    # Seed before the adapters are made: their initial weights must not depend on what ran earlier
    # in this process (a resumed run must give the figures of an uninterrupted one).
    from transformers import set_seed

    set_seed(config.seed)
    model = method.wrap(model, options, config)
    rows = prepare_examples(tokenizer, examples, config.max_seq_len)
    plan = schedule(len(rows), config)
    tokens = sum(len(r["input_ids"]) for r in rows)
    epochs_tokens = int(tokens * plan.epochs)
    loss_tokens = int(sum(len(r["input_ids"]) - max(r["n_prompt"], 1) for r in rows) * plan.epochs)
    if head_everywhere:  # every position whose next token is real
        loss_tokens = int(sum(len(r["input_ids"]) - 1 for r in rows) * plan.epochs)
    steps = plan.steps
    with tempfile.TemporaryDirectory(prefix="damoc-train-") as out_dir:
        args = training_arguments(config, plan, out_dir, device, next(model.parameters()).dtype)
        trainer = _answer_trainer(loss_fn)(model=model, args=args, train_dataset=rows,
                                    data_collator=_Collator(tokenizer.pad_token_id))
        _quiet_logs(trainer, progress, steps)
        start = time.perf_counter()
        with _compiled_decoder(model, config.torch_compile):
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
        train_flops=float(estimate_flops(model, epochs_tokens, config.method, loss_tokens,
                                         micro_batches=trainer.state.global_step * plan.accumulation,
                                         options=options, run=config)),
        trainable_params=trainable, total_params=total,
        first_loss=losses[0] if losses else None, last_loss=losses[-1] if losses else None,
        truncated=sum(r["truncated"] for r in rows),
        batch_size=plan.batch_size, epochs=plan.epochs, warmup_steps=plan.warmup_steps,
    )
    return model, stats
