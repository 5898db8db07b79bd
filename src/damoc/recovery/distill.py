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
prices it at the answers only. The heads run on chunks of positions (`CHUNK_ELEMENTS`), so a 262k
vocabulary does not hold full logits for a whole micro-batch; with more than one chunk both heads run
again in the backward pass, which neither count prices (as gradient checkpointing is not priced).
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


# Logits held at once per model, in elements: 2^26 float32 values are 256 MiB (256 positions of a 262k
# vocabulary, 1,365 of SmolLM2's 49k). Past it the loss runs in chunks of positions, each recomputed in
# the backward pass instead of kept: the logits held at once stay near this size per model, however
# long the micro-batch (a design bound; not measured on a GPU here).
CHUNK_ELEMENTS = 2 ** 26


def _vocabulary(model) -> int:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_output_embeddings().weight.shape[0]


def distill_loss(teacher, weight: float, chunk_elements: int = CHUNK_ELEMENTS) -> Callable:
    """A `finetune` loss_fn: cross-entropy on the answers mixed with KL(teacher || student) everywhere,
    from one pass of the student (the answers' logits are a subset of every position's). The output heads
    run on `chunk_elements // vocabulary` positions at a time (checkpointed when there is more than one
    chunk), which gives the same loss and gradients as one pass."""
    from torch.utils.checkpoint import checkpoint

    from damoc.finetune.train import head_logits, next_token_hidden

    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(model, inputs: dict, num_items, accumulation: int) -> torch.Tensor:
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        keep = mask[:, 1:].bool()  # every position whose next token is real (right padding)
        student = next_token_hidden(model, ids, mask, keep)
        targets = inputs["labels"][:, 1:][keep]
        target_hidden = None
        if weight:
            with torch.no_grad():
                target_hidden = next_token_hidden(teacher, ids.to(teacher.device), mask.to(teacher.device),
                                                  keep.to(teacher.device))

        def chunk(hidden, labels, teacher_hidden):
            logits = head_logits(model, hidden).float()
            answer = labels != -100
            ce = nn.functional.cross_entropy(logits[answer], labels[answer], reduction="sum")
            if teacher_hidden is None:
                return ce, ce.new_zeros(())
            with torch.no_grad():
                target = head_logits(teacher, teacher_hidden).float().to(logits.device)
            kl = nn.functional.kl_div(logits.log_softmax(-1), target.log_softmax(-1), log_target=True,
                                      reduction="sum")
            return ce, kl

        rows = max(1, chunk_elements // _vocabulary(model))
        ce, kl = student.new_zeros((), dtype=torch.float32), student.new_zeros((), dtype=torch.float32)
        for start in range(0, max(len(student), 1), rows):
            part = slice(start, start + rows)
            args = (student[part], targets[part], None if target_hidden is None else target_hidden[part])
            c, k = checkpoint(chunk, *args, use_reentrant=False) if len(student) > rows else chunk(*args)
            ce, kl = ce + c, kl + k
        ce = ce / (num_items if num_items is not None else (targets != -100).sum().clamp(min=1))
        if not weight:
            return ce
        kl = kl / keep.sum().clamp(min=1)
        # the cross-entropy is normalised over the accumulated batch; the KL per micro-batch, so divide
        # by the micro-batches of this step to give both the same footing
        return (1 - weight) * ce + weight * kl / max(accumulation, 1)

    return loss_fn


def teacher_flops(teacher, tokens: int) -> float:
    """The original model's forward passes over the training tokens (2 N per token)."""
    from damoc.flops import forward_flops

    return float(forward_flops(teacher, tokens))
