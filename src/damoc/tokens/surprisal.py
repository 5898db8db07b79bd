"""Per-token surprisal under a small causal LM, in windows so any text length works.

Surprisal is -log p(token | preceding tokens) in nats. A text longer than the window is cut
into consecutive windows; each window after the first is given the `overlap` tokens before
it as unscored context, so no token is scored blind. The first token of a text is conditioned
on the tokenizer's BOS token (EOS where there is none), as a document start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from damoc.evaluation.scoring import right_pad


@dataclass
class Scored:
    """One text's scorer tokens: character spans and surprisal of each."""

    spans: list[tuple[int, int]]
    surprisal: np.ndarray

    @property
    def n_tokens(self) -> int:
        return len(self.spans)


def _windows(n: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
    """(context start, scored start, end) triples covering tokens 0..n-1 once each."""
    out, start = [], 0
    while start < n:
        end = min(start + window - overlap if start else start + window, n)
        out.append((max(0, start - overlap), start, end))
        start = end
    return out


@torch.inference_mode()
def token_surprisals(model, tokenizer, texts: list[str], window: int = 512, overlap: int = 64,
                     batch_size: int = 8, desc: str | None = None) -> list[Scored]:
    if not 0 <= overlap < window // 2:
        raise ValueError("overlap must be at least 0 and under half the window")
    if not texts:
        return []
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else start_id
    # Every window becomes one row: [start] + context + scored tokens (start only for the first).
    rows: list[tuple[int, int, list[int], int]] = []  # (text, first scored position, ids, n scored)
    for t, ids in enumerate(enc["input_ids"]):
        for ctx, s, e in _windows(len(ids), window, overlap):
            prefix = [start_id] if ctx == 0 else []
            rows.append((t, s, prefix + ids[ctx:e], e - s))
    out = [np.zeros(len(ids), dtype=np.float32) for ids in enc["input_ids"]]
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda r: -len(rows[r][2]))
    bar = tqdm(total=len(rows), desc=desc, disable=desc is None, leave=False)
    for b in range(0, len(order), batch_size):
        batch = [rows[r] for r in order[b:b + batch_size]]
        ids, mask = right_pad([r[2] for r in batch], pad_id, device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()[:, :-1]
        target = logits.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        nll = (torch.logsumexp(logits, dim=-1) - target).cpu().numpy()  # no second vocab-sized tensor
        for i, (t, s, seq, n) in enumerate(batch):
            # Position p predicts token p+1; the scored tokens are the last n of the row.
            out[t][s:s + n] = nll[i, len(seq) - 1 - n:len(seq) - 1]
        bar.update(len(batch))
    bar.close()
    return [Scored([tuple(o) for o in offs], s) for offs, s in zip(enc["offset_mapping"], out)]
