"""`--targets distill`: the pruned model learns the original model's next-token distributions on the
chosen samples, beside the pool's answers (knowledge distillation, as pruned-model recovery does it in
Sheared-LLaMA and Minitron).

Why not only `--targets self`: a small original model's greedy answers are often degenerate (loops,
runs of one token, empty; bench/results/recover-methods.json's self-target rows), and training on them
undoes recovery. The distribution is the original model's knowledge without a decoding step: every
position carries a whole distribution, not one token, so the same samples teach more.

The loss: (1 - weight) x the usual cross-entropy on the answer tokens + weight x KL(original || pruned)
at every position of the sample (prompt and answer: the pruned model lost more than answering), at
temperature 1. The original model runs forward once per micro-batch without gradients; its cost is
2 N FLOPs per token (`teacher_flops`), counted with the recovery. The pruned model's training FLOPs
price its output head at every position (`finetune(head_everywhere=True)`), where plain fine-tuning
prices it at the answers only. Full-vocabulary logits at every position of a micro-batch are held for
both models (a 262k vocabulary wants small micro-batches).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from damoc.errors import DamocError


def check_same_vocabulary(teacher, student) -> None:
    """Distillation compares distributions over one vocabulary: refuse two that differ, in one line."""
    a, b = teacher.get_output_embeddings().weight.shape[0], student.get_output_embeddings().weight.shape[0]
    if a != b:
        raise DamocError(f"--targets distill needs the original and the pruned model to share a vocabulary "
                         f"(output sizes {a} and {b}); use --targets data")


def distill_loss(teacher, weight: float) -> Callable:
    """A `finetune` loss_fn: cross-entropy on the answers mixed with KL(teacher || student) everywhere,
    from one pass of the student (the answers' logits are a subset of every position's)."""
    from damoc.finetune.train import next_token_logits

    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(model, inputs: dict, num_items, accumulation: int) -> torch.Tensor:
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        keep = mask[:, 1:].bool()  # every position whose next token is real (right padding)
        student = next_token_logits(model, ids, mask, keep).float()
        targets = inputs["labels"][:, 1:][keep]
        answer = targets != -100
        ce = nn.functional.cross_entropy(student[answer], targets[answer], reduction="sum")
        ce = ce / (num_items if num_items is not None else answer.sum().clamp(min=1))
        if weight == 0:
            return ce
        with torch.no_grad():
            target = next_token_logits(teacher, ids.to(teacher.device), mask.to(teacher.device),
                                       keep.to(teacher.device)).float().to(student.device)
        kl = nn.functional.kl_div(student.log_softmax(-1), target.log_softmax(-1), log_target=True,
                                  reduction="sum") / keep.sum().clamp(min=1)
        # the cross-entropy is normalised over the accumulated batch; the KL per micro-batch, so divide
        # by the micro-batches of this step to give both the same footing
        return (1 - weight) * ce + weight * kl / max(accumulation, 1)

    return loss_fn


def teacher_flops(teacher, tokens: int) -> float:
    """The original model's forward passes over the training tokens (2 N per token)."""
    from damoc.flops import forward_flops

    return float(forward_flops(teacher, tokens))
