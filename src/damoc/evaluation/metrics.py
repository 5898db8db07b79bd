"""Metrics over per-example records, each with a bootstrap standard error."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from damoc.registry import Registry

BOOTSTRAP_SAMPLES = 1000


def bootstrap_se(stat: Callable[[np.ndarray], float], n: int, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> float:
    """Standard deviation of stat over resamples (with replacement) of the n example indices."""
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n, n)) for _ in range(samples)]
    return float(np.std(values, ddof=1))


def accuracy(pred: np.ndarray, gold: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda idx: float(np.mean(pred[idx] == gold[idx]))


def macro_f1(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> Callable[[np.ndarray], float]:
    def stat(idx: np.ndarray) -> float:
        p, g = pred[idx], gold[idx]
        scores = []
        for c in range(n_labels):
            tp = np.sum((p == c) & (g == c))
            fp = np.sum((p == c) & (g != c))
            fn = np.sum((p != c) & (g == c))
            if tp + fp + fn == 0:
                continue  # a label absent from both: no evidence either way
            scores.append(2 * tp / (2 * tp + fp + fn))
        return float(np.mean(scores)) if scores else 0.0
    return stat


def bits_per_byte(nll_nats: np.ndarray, n_bytes: np.ndarray) -> Callable[[np.ndarray], float]:
    """Summed NLL over summed bytes, in bits: comparable across tokenizers."""
    return lambda idx: float(nll_nats[idx].sum() / max(n_bytes[idx].sum(), 1) / math.log(2))


def mean(values: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda idx: float(np.mean(values[idx]))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased whitespace tokens (punctuation stripped at word edges)."""
    def words(t: str) -> list[str]:
        return [w.strip(".,;:!?\"'()[]").lower() for w in t.split() if w.strip(".,;:!?\"'()[]")]
    p, r = words(prediction), words(reference)
    if not p or not r:
        return 0.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def with_se(name: str, stat: Callable[[np.ndarray], float], n: int, seed: int = 0) -> dict[str, float]:
    return {name: stat(np.arange(n)), f"{name}_se": bootstrap_se(stat, n, seed)}


# The metrics a result reports, each with the direction in which it improves: ranking, tie sets,
# regret, plots and tables ask here instead of testing a metric's name.
METRICS: Registry[Callable] = Registry("metric")
METRICS.add("accuracy", accuracy, higher_is_better=True, description="log-likelihood choice accuracy")
METRICS.add("accuracy_norm", accuracy, higher_is_better=True, description="choice accuracy, length-normalised")
METRICS.add("macro_f1", macro_f1, higher_is_better=True, description="macro-averaged F1 over the answer classes")
METRICS.add("answer_bpb", bits_per_byte, higher_is_better=False, description="answer bits per byte")
METRICS.add("rougeL", rouge_l, higher_is_better=True, description="ROUGE-L F1 of generated answers")


def higher_is_better(metric: str) -> bool:
    return bool(METRICS.info(metric)["higher_is_better"])
