"""How much pruning changed a model on each sample: Jensen-Shannon divergence of next-token
distributions, averaged over the positions that predict the sample's response (PASER defines the
degradation on the model's output for the instruction; averaging over a long prompt as well would
measure how much worse the pruned model reads passages, which recovery training never trains).
`span="all"` keeps the older average over every position.

Averaged, not summed as PASER's public code does (a sum makes long samples look degraded);
batched with right padding; computed from log-softmax so that nothing under- or overflows:
log M = logsumexp(log P, log Q) - log 2. In nats, between 0 and log 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from damoc.errors import DamocError


def same_vocabulary(tok_a, tok_b) -> bool:
    return tok_a.get_vocab() == tok_b.get_vocab()


def _jsd(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Per position, over the last dimension."""
    logm = torch.logaddexp(logp, logq) - math.log(2.0)
    kl_pm = (logp.exp() * (logp - logm)).sum(-1)
    kl_qm = (logq.exp() * (logq - logm)).sum(-1)
    return (0.5 * (kl_pm + kl_qm)).clamp_min(0.0)


@torch.inference_mode()
def sample_jsd(original, pruned, token_ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 4,
               progress: bool = False, response_starts: Sequence[int] | None = None) -> list[float]:
    """Mean JSD over the positions that predict each sample's tokens from `response_starts[i]` on
    (its first response token), or over every position that predicts a next token (None)."""
    from damoc.evaluation.scoring import right_pad

    if original.config.vocab_size != pruned.config.vocab_size:
        raise DamocError("the pruned model's vocabulary differs from the original's: not the same tokenizer")
    if any(len(ids) < 2 for ids in token_ids):
        raise DamocError("every sample needs at least two tokens")
    if response_starts is not None and any(not 1 <= s < len(ids) for s, ids in zip(response_starts, token_ids)):
        raise DamocError("every sample needs a response token after at least one prompt token")
    device = next(original.parameters()).device
    out: list[float] = []
    bar = tqdm(total=len(token_ids), desc="JSD(original, pruned)", disable=not progress)
    for start in range(0, len(token_ids), batch_size):
        chunk = token_ids[start:start + batch_size]
        ids, mask = right_pad(chunk, pad_id, device)
        # Position t predicts token t + 1; only positions from the batch's earliest response token
        # on are averaged, so the output head (most of a small model's cost: 49k x 576 of SmolLM2's
        # 135M) runs on those alone. The models' own logit processing stays in (`logits_to_keep`).
        first = min(response_starts[start:start + batch_size]) - 1 if response_starts is not None else 0
        keep = torch.arange(first, ids.shape[1], device=device)
        logp = torch.log_softmax(original(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits.float(), -1)
        other = next(pruned.parameters()).device
        logq = torch.log_softmax(pruned(input_ids=ids.to(other), attention_mask=mask.to(other),
                                        logits_to_keep=keep.to(other)).logits.float(), -1)
        per_pos = _jsd(logp, logq.to(logp.device))[:, :-1]  # the last real position of the longest predicts nothing
        valid = mask[:, first + 1:].float()  # position t predicts token t + 1, which must be real
        if response_starts is not None:  # ... and t + 1 must be a response token
            starts = torch.tensor(response_starts[start:start + batch_size], device=valid.device)
            predicted = torch.arange(first + 1, ids.shape[1], device=valid.device)
            valid = valid * (predicted[None, :] >= starts[:, None])
        out += ((per_pos * valid).sum(1) / valid.sum(1)).tolist()
        bar.update(len(chunk))
    bar.close()
    return out


def cached_sample_jsd(original_spec: str, pruned_spec: str, original, pruned, token_ids: Sequence[Sequence[int]],
                      pad_id: int, batch_size: int = 4, progress: bool = False,
                      response_starts: Sequence[int] | None = None) -> tuple[list[float], bool]:
    """`sample_jsd`, kept in $DAMOC_HOME/jsd by the models' fingerprints, the token ids and the
    span, so another budget or method on the same pool does not pay for it again. (values, was_cached)."""
    from damoc.io import read_json_checked, write_cache, write_json_atomic
    from damoc.models import home_cache_path, model_fingerprint

    key = {"original": model_fingerprint(original_spec), "pruned": model_fingerprint(pruned_spec),
           "ids": [list(x) for x in token_ids]}
    if response_starts is not None:  # the all-position key stays as it was: its old values are still valid
        key["response_starts"] = list(response_starts)
    path = home_cache_path("jsd", key)
    hit = read_json_checked(path, lambda v: isinstance(v, list) and len(v) == len(token_ids)
                            and all(isinstance(x, (int, float)) for x in v))
    if hit is not None:
        return hit, True
    values = sample_jsd(original(), pruned(), token_ids, pad_id, batch_size, progress, response_starts)
    write_cache(path, lambda: write_json_atomic(path, values))
    return values, False
