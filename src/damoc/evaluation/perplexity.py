"""Perplexity of plain text: exp of the mean next-token loss over all real tokens.

Texts are cut to max_len tokens and right-padded; the loss is summed per token and divided
once at the end, so long and short texts weigh by their token counts. The log-sum-exp is
taken per batch, never over a stored full-vocabulary log-softmax.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from damoc.errors import DamocError
from damoc.evaluation.scoring import right_pad


@torch.inference_mode()
def text_nll(model, tokenizer, texts: list[str], max_len: int = 256, batch_size: int = 4,
             desc: str | None = None) -> tuple[list[float], list[int]]:
    """Per text (of two or more tokens): the summed next-token loss in nats, and the tokens predicted."""
    seqs = [tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts if t.strip()]
    seqs = [s for s in seqs if len(s) >= 2]
    if not seqs:
        raise DamocError("perplexity needs at least one text of two or more tokens")
    device = next(model.parameters()).device
    nll, count = [], []
    for b in tqdm(range(0, len(seqs), batch_size), desc=desc, disable=desc is None, leave=False):
        batch = seqs[b:b + batch_size]
        ids, mask = right_pad(batch, 0, device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        loss = torch.logsumexp(logits, -1) - logits.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        real = mask[:, 1:].float()
        nll += (loss * real).sum(1).tolist()
        count += real.sum(1).long().tolist()
    return nll, count


def perplexity(model, tokenizer, texts: list[str], max_len: int = 256, batch_size: int = 4,
               desc: str | None = None) -> float:
    nll, count = text_nll(model, tokenizer, texts, max_len, batch_size, desc)
    return math.exp(sum(nll) / sum(count))


def perplexity_with_se(model, tokenizer, texts: list[str], max_len: int = 256, batch_size: int = 4,
                       seed: int = 0) -> dict:
    """Perplexity and its bootstrap standard error over texts, with each text's summed NLL and
    token count (`nll`, `tokens`) for paired comparisons between models."""
    import numpy as np

    from damoc.evaluation.metrics import bootstrap_se

    nll, count = (np.asarray(x, dtype=float) for x in text_nll(model, tokenizer, texts, max_len, batch_size))

    def stat(idx: np.ndarray) -> float:
        return math.exp(nll[idx].sum() / count[idx].sum())

    return {"ppl": stat(np.arange(len(nll))), "ppl_se": bootstrap_se(stat, len(nll), seed),
            "nll": nll.tolist(), "tokens": count.tolist()}
