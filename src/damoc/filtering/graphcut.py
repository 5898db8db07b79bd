"""Greedy GraphCut and facility location over unit-normalised embeddings, without N x N.

GraphCut: f(X) = sum_{i in V, j in X} s_ij - lam * sum_{i, j in X} s_ij, with the cosine
kernel s_ij = e_i . e_j. The gain of adding j to X is e_j . (S - 2 lam T) - lam, where
S = sum over V and T = sum over X of the embeddings: two vectors, no matrix.

The shifted kernel (1 + cos) / 2 is non-negative, so there f is monotone submodular for
lam < 0.5; at every step its gains differ from the raw-cosine ones by a scale and a term
that is the same for all candidates, so both kernels give the same greedy sequence.
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


EXACT_UP_TO = 50_000


def graphcut_greedy(e: np.ndarray, budget: int, lam: float = 0.4, pool: int = 4096,
                    exact: bool | None = None) -> list[int]:
    """Greedy maximisation; e unit-normalised, lam in [0, 0.5). Exact (the same picks as plain
    greedy) when `exact`, by default up to EXACT_UP_TO points; relaxed above that.

    The gain of j is g_j = e_j . (S - 2 lam T) (dropping the constant -lam). Work goes in
    blocks: compute g for everyone (one N x d product), keep the `pool` best as candidates,
    and run greedy on them alone, updating their gains exactly. A point outside the pool
    had gain at most g_out when the block began, and its gain since then is bounded by
    `_outside_bound` (Cauchy-Schwarz on unit vectors). While the best candidate beats that
    bound it is the true greedy choice; when it does not, a new block starts. Memory is
    O(N + pool x d) beyond the embeddings themselves.

    Late in a large selection the query S - 2 lam T is small (|q| about 2 on random 384-d
    points, while each pick moves it by 2 lam) and turns with every pick, the bound stops the
    blocks after some twenty to forty picks, and every block costs a pass over all N: those
    passes are most of the cost. The relaxed mode drops the bound's sideways term (it assumes no outside
    point gains from the picks' sideways part) and makes the pass in half precision
    (`_Screen`: half the memory traffic, the pool's gains then computed exactly).
    bench/results/filter-scale.json has the objective it gives up against exact greedy. (Forcing
    longer blocks, 32 picks before the bound is checked, cut the passes 1.5x on 100k random
    384-d points at a 1.9e-5 objective gap, but cost 3.5e-3 on 6,000 points in 32 dimensions:
    too dependent on the data to be a default.)
    """
    n = len(e)
    exact = n <= EXACT_UP_TO if exact is None else exact
    budget = min(budget, n)
    query = e.sum(axis=0, dtype=np.float64)  # S - 2 lam T
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    screen = None if exact else _Screen(e)
    while len(chosen) < budget:
        gains, slack = screen(query) if screen else (e @ query.astype(np.float32), 0.0)
        g_min = float(gains.min()) - slack  # no point's gain was lower (taken ones included)
        gains[taken] = -np.inf
        m = min(pool, n - len(chosen))
        if m < n - len(chosen):
            cand, g_out = _top(gains, m)
            g_out += slack
        else:
            cand, g_out = np.flatnonzero(~taken), -np.inf
        e_cand = e[cand]
        g = e_cand @ query.astype(np.float32) if screen else gains[cand]
        q_norm = float(np.linalg.norm(query))
        q_hat = query / max(q_norm, 1e-12)
        drift = np.zeros_like(query)  # the block's picks, summed
        picked = 0
        while len(chosen) < budget:
            k = int(np.argmax(g))
            if picked and g[k] < _outside_bound(g_out, g_min, q_norm, q_hat, drift, lam, exact):
                break
            j = int(cand[k])
            chosen.append(j)
            taken[j] = True
            picked += 1
            g[k] = -np.inf
            g -= (2 * lam) * (e_cand @ e[j])
            drift += e[j]
            query -= 2 * lam * e[j]
        if picked < 8:
            pool *= 2  # the pool ran dry quickly: take a wider one next block
    return chosen


class _Screen:
    """Every point's gain in half precision, with how far it can be off.

    A pass over N x d float32 embeddings is bound by memory traffic; a float16 copy halves it
    (2.6x faster measured at 1M x 384 on this machine, torch's float16 matrix-vector product).
    The query goes in as a unit vector (float16 overflows at 65504, and |S| grows with N), so
    the error is relative to |q|: storing e and q_hat in float16 and rounding the result cost
    at most 3 x 2^-11 |q| with float32 accumulation (measured: 1.1e-4 |q|); `slack` is 3e-3 |q|,
    added to the outside points' gain."""

    def __init__(self, e: np.ndarray):
        import torch

        self.torch = torch
        self.half = torch.from_numpy(np.ascontiguousarray(e)).to(torch.float16)

    def __call__(self, query: np.ndarray) -> tuple[np.ndarray, float]:
        norm = float(np.linalg.norm(query))
        q_hat = self.torch.from_numpy((query / max(norm, 1e-12)).astype(np.float32)).to(self.torch.float16)
        return (self.half @ q_hat).float().numpy() * np.float32(norm), 3e-3 * norm


def _top(gains: np.ndarray, m: int) -> tuple[np.ndarray, float]:
    """The m largest gains' indices and the (m+1)-th gain: torch's top-k is about twice as fast
    as numpy's argpartition on a million gains, and the pass runs thousands of times."""
    import torch

    values, index = torch.topk(torch.from_numpy(gains), m + 1, sorted=False)
    last = int(torch.argmin(values))
    keep = torch.ones(m + 1, dtype=torch.bool)
    keep[last] = False
    return index[keep].numpy(), float(values[last])


def _outside_bound(g_out: float, g_min: float, q_norm: float, q_hat: np.ndarray, drift: np.ndarray,
                   lam: float, exact: bool = True) -> float:
    """Largest gain any point outside the pool can have now.

    With the block's picks D = a q_hat + D_perp, a point's gain is now
    g(t0) c - 2 lam e . D_perp with c = 1 - 2 lam a / |q|, and g(t0) lies in [g_min, g_out]:
    at most max(c g_out, c g_min) + 2 lam |D_perp|. Splitting off the part of D along the query
    keeps the bound tight when the picks all lean the same way (they do: toward the data's
    centre); g_min keeps it finite once the picks have overshot the query (c < 0). The plain
    Cauchy-Schwarz bound g_out + 2 lam |D| also holds; exact mode takes the smaller."""
    if g_out == -np.inf:
        return -np.inf
    a = float(drift @ q_hat)
    c = 1.0 - 2 * lam * a / max(q_norm, 1e-12)
    along = max(c * g_out, c * g_min)
    if not exact:  # assume no outside point gained from the picks' sideways part
        return along
    sideways = float(np.sqrt(max(float(drift @ drift) - a * a, 0.0)))
    # g(t0) - 2 lam e . D <= g_out + 2 lam |D| holds too, and is the tighter one when c << 0
    return min(along + 2 * lam * sideways, g_out + 2 * lam * float(np.linalg.norm(drift)))


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
