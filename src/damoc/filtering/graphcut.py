"""Greedy GraphCut and facility location over unit-normalised embeddings, without N x N.

GraphCut: f(X) = sum_{i in V, j in X} s_ij - lam * sum_{i, j in X} s_ij, with the cosine
kernel s_ij = e_i . e_j. The gain of adding j to X is e_j . (S - 2 lam T) - lam, where
S = sum over V and T = sum over X of the embeddings: two vectors, no matrix.

Lazy greedy needs gains that only shrink. Raw cosine gains can grow (negative similarities),
but the shifted kernel (1 + cos) / 2 has shrinking gains and, at every step, differs from the
raw one by a term that is the same for all candidates, so it picks the same element. We run
the lazy greedy on shifted gains: the result is exactly the raw-cosine greedy choice.
"""

from __future__ import annotations

import heapq

import numpy as np


def normalise(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(norms, 1e-12)


def graphcut_objective(e: np.ndarray, selected: list[int], lam: float, kernel: str = "shifted") -> float:
    """f(X) by vector sums (e unit-normalised). kernel "shifted": s = (1 + cos) / 2, in which
    f is monotone submodular for lam < 0.5; "cosine": raw cosine, as submodlib's dense mode
    uses (not monotone where similarities are negative). Both give the same greedy order."""
    s = e.sum(axis=0, dtype=np.float64)
    t = e[selected].sum(axis=0, dtype=np.float64)
    if kernel == "cosine":
        return float(t @ s - lam * (t @ t))
    n, k = len(e), len(selected)
    return float(0.5 * (n * k + t @ s) - lam * 0.5 * (k * k + t @ t))


def graphcut_greedy(e: np.ndarray, budget: int, lam: float = 0.4) -> list[int]:
    """Exact greedy maximisation (lazy evaluations); e unit-normalised, lam in [0, 0.5)."""
    n = len(e)
    budget = min(budget, n)
    s = e.sum(axis=0, dtype=np.float64).astype(np.float32)
    t = np.zeros_like(s)
    # Shifted-kernel gain with X empty: (n + e_j . S) / 2 - lam.
    bounds = 0.5 * (n + e @ s) - lam
    heap = [(-float(b), j) for j, b in enumerate(bounds)]
    heapq.heapify(heap)
    fresh = np.full(n, -1, dtype=np.int64)  # the step at which a bound was last recomputed
    chosen: list[int] = []
    for step in range(budget):
        while True:
            _, j = heapq.heappop(heap)
            if fresh[j] == step:
                break
            gain = 0.5 * (n + float(e[j] @ s)) - lam * (step + float(e[j] @ t) + 1.0)
            fresh[j] = step
            heapq.heappush(heap, (-gain, j))
        chosen.append(j)
        t += e[j]
    return chosen


def facility_location_greedy(e: np.ndarray, budget: int, chunk: int = 65536) -> list[int]:
    """Greedy f(X) = sum_i max_{j in X} s'_ij with s' = (1 + cos) / 2 >= 0, lazily.

    Memory is O(N): the current best similarity of every point; a gain costs one N x d
    product, so it suits thousands to some hundred thousand examples."""
    n = len(e)
    budget = min(budget, n)
    best = np.zeros(n, dtype=np.float32)

    def gain(j: int) -> float:
        total = 0.0
        for start in range(0, n, chunk):
            sim = 0.5 * (1.0 + e[start:start + chunk] @ e[j])
            total += float(np.maximum(sim - best[start:start + chunk], 0).sum())
        return total

    # With X empty every gain is sum_i s'_ij = (n + e_j . S) / 2: exact for step 0.
    first = 0.5 * (n + e @ e.sum(axis=0, dtype=np.float64).astype(np.float32))
    heap = [(-float(g), j) for j, g in enumerate(first)]
    heapq.heapify(heap)
    fresh = np.zeros(n, dtype=np.int64)
    chosen: list[int] = []
    for step in range(budget):
        while True:
            _, j = heapq.heappop(heap)
            if fresh[j] == step:
                break
            fresh[j] = step
            heapq.heappush(heap, (-gain(j), j))
        chosen.append(j)
        best = np.maximum(best, 0.5 * (1.0 + e @ e[j]))
    return chosen
