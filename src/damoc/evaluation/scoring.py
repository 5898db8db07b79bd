"""Batched log-likelihood of continuations and greedy generation.

Batches are left-padded with explicit position ids, so every real token sees the same
positions and attention as when scored alone (same scores at any batch size), and only the
last positions' logits are computed: a 262k-token vocabulary makes full logits costly. The
FLOPs are priced on what runs (`scoring_cost`, from the same batch plan): the body on every real
token, the output head on the kept positions only. Pricing the head at every token, as damoc did
until 2026-12, more than doubled a Gemma-3 candidate's evaluation bill.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from damoc.encoding import Encoded

T = TypeVar("T")


def _batches(order: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(order), size):
        yield order[start:start + size]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
        mask[row, width - len(s):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask with padding on the right: every sequence keeps positions 0.. ,
    which is all a causal model needs when only whole-text scores are wanted."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[row, :len(s)] = 1
    return ids.to(device), mask.to(device)


@dataclass(frozen=True)
class Plan:
    """The forward passes that score a list of requests. Single-token continuations that share a
    prompt (yes / no / maybe) share one pass over the prompt, whose last position gives every option;
    the others run whole, longest first, with the last `keep` positions through the head."""

    groups: dict[tuple[int, ...], list[int]]  # prompt -> the requests it answers
    prompt_batches: list[list[tuple[int, ...]]]
    batches: list[list[int]]  # request indices


def plan(requests: Sequence[Encoded], batch_size: int) -> Plan:
    groups: dict[tuple[int, ...], list[int]] = {}
    multi = []
    for i, r in enumerate(requests):
        if len(r.input_ids) - r.n_prompt == 1:
            groups.setdefault(tuple(r.input_ids[:-1]), []).append(i)
        else:
            multi.append(i)
    prompts = sorted(groups, key=len, reverse=True)
    order = sorted(multi, key=lambda i: -len(requests[i].input_ids))
    return Plan(groups, list(_batches(prompts, batch_size)), list(_batches(order, batch_size)))


def _keep(requests: Sequence[Encoded], idx: list[int]) -> int:
    """Positions whose logits a batch needs: its longest continuation's, plus the one before it."""
    return max(len(requests[i].input_ids) - requests[i].n_prompt for i in idx) + 1


def scoring_cost(requests: Sequence[Encoded], batch_size: int) -> tuple[int, int]:
    """(real tokens through the body, positions through the output head) when `continuation_logprobs`
    scores these requests: what its forward FLOPs are priced on. The body's padding is left out, as
    everywhere damoc counts FLOPs; the head's kept positions are counted whether they are padding or not."""
    p = plan(requests, batch_size)
    tokens = sum(len(prompt) for batch in p.prompt_batches for prompt in batch)
    head = sum(len(batch) for batch in p.prompt_batches)
    for idx in p.batches:
        tokens += sum(len(requests[i].input_ids) for i in idx)
        head += _keep(requests, idx) * len(idx)
    return tokens, head


@torch.inference_mode()
def continuation_logprobs(model, requests: Sequence[Encoded], pad_id: int, batch_size: int = 8,
                          desc: str | None = None) -> list[tuple[float, bool]]:
    """For each request: (sum of log p(continuation token | prefix) in nats, greedy match)."""
    device = next(model.parameters()).device
    out: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    p = plan(requests, batch_size)
    bar = tqdm(total=len(requests), desc=desc, disable=desc is None, leave=False)
    for batch in p.prompt_batches:
        ids, mask, pos = left_pad(batch, pad_id, device)
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                       logits_to_keep=1).logits[:, -1].float(), dim=-1)
        best = logp.argmax(-1)
        for row, prompt in enumerate(batch):
            for i in p.groups[prompt]:
                target = requests[i].input_ids[-1]
                out[i] = (float(logp[row, target]), bool(best[row] == target))
            bar.update(len(p.groups[prompt]))
    for idx in p.batches:
        ids, mask, pos = left_pad([requests[i].input_ids for i in idx], pad_id, device)
        n_cont = [len(requests[i].input_ids) - requests[i].n_prompt for i in idx]
        keep = _keep(requests, idx)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                       logits_to_keep=keep).logits.float()
        # logits[:, j] predicts the token at absolute column width - keep + j + 1.
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = ids[:, -keep + 1:]
        tok_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        greedy = logp.argmax(-1) == targets
        for row, i in enumerate(idx):
            n = n_cont[row]
            out[i] = (float(tok_logp[row, -n:].sum()), bool(greedy[row, -n:].all()))
        bar.update(len(idx))
    bar.close()
    return out


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[Sequence[int]], max_new_tokens: int,
             batch_size: int = 8, desc: str | None = None) -> list[str]:
    """Greedy continuations of already-encoded prompts, decoded without special tokens."""
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out = [""] * len(prompts)
    bar = tqdm(total=len(prompts), desc=desc, disable=desc is None, leave=False)
    for idx in _batches(order, batch_size):
        ids, mask, _ = left_pad([prompts[i] for i in idx], pad_id, device)
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad_id,
                             eos_token_id=tokenizer.eos_token_id)
        for row, i in enumerate(idx):
            out[i] = tokenizer.decode(gen[row, ids.shape[1]:], skip_special_tokens=True).strip()
        bar.update(len(idx))
    bar.close()
    return out
