"""Drop the least informative words of a text, keeping a target share of its tokens.

Tokens are scored by surprisal (see surprisal.py) but dropped a whole word at a time: a
word's score is the mean surprisal of its tokens and its cost is its token count. Dropping
sub-word pieces (as LLMLingua does) leaves fragments such as "diagn" that the training model
then learns from; whole words keep the compressed text readable. Kept words are joined by
single spaces in their original order.
"""

from __future__ import annotations

import re

import numpy as np

from damoc.tokens.surprisal import Scored

WORD = re.compile(r"\S+")


def words_of(text: str, scored: Scored) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Words of the text with their mean token surprisal and their token count."""
    spans = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
    costs, totals = np.zeros(len(spans), dtype=int), np.zeros(len(spans))
    w = 0
    for (s, e), nll in zip(scored.spans, scored.surprisal):
        while w < len(spans) and spans[w][1] <= s:  # token starts after this word ends
            w += 1
        # A token belongs to every word it overlaps (usually exactly one).
        k = w
        while k < len(spans) and spans[k][0] < e:
            totals[k] += nll
            costs[k] += 1
            k += 1
        if k == w and spans:  # whitespace alone: it costs a token of the next word (or the last)
            costs[min(w, len(spans) - 1)] += 1
    scores = np.where(costs > 0, totals / np.maximum(costs, 1), 0.0)
    return [t for _, _, t in spans], scores, np.maximum(costs, 1)


def keep_mask(scores: np.ndarray, costs: np.ndarray, ratio: float) -> np.ndarray:
    """The most surprising words whose token cost fits in ratio x all tokens (at least one word)."""
    budget = ratio * costs.sum()
    keep = np.zeros(len(scores), dtype=bool)
    used = 0
    for i in np.lexsort((np.arange(len(scores)), -scores)):  # highest score first, stable
        if used + costs[i] <= budget + 1e-9:
            keep[i] = True
            used += costs[i]
    if len(scores) and not keep.any():
        keep[int(np.argmax(scores))] = True
    return keep


def compress_text(text: str, scored: Scored, ratio: float) -> str:
    if ratio >= 1.0:
        return text
    words, scores, costs = words_of(text, scored)
    keep = keep_mask(scores, costs, ratio)
    return " ".join(w for w, k in zip(words, keep) if k)
