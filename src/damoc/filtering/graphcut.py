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
                    exact: bool | None = None, reserve: int | None = None) -> list[int]:
    """Greedy maximisation; e unit-normalised, lam in [0, 0.5). Exact (the same picks as plain
    greedy) when `exact`, by default up to EXACT_UP_TO points; relaxed above that.

    The gain of j is g_j = e_j . (S - 2 lam T) (dropping the constant -lam). Work goes in
    blocks on two levels. A full pass computes g for everyone (one N x d product) and keeps the
    `reserve` best; a block computes the reserve's gains exactly, keeps the `pool` best as
    candidates, and runs greedy on them alone, updating their gains exactly. A point outside a
    set had gain at most the set's cut-off when the set was formed, and its gain since then is
    bounded by `_outside_bound` (Cauchy-Schwarz on unit vectors). While the best candidate beats
    both bounds (outside the pool, outside the reserve) it is the true greedy choice. When the
    pool's bound stops it, the next block refills the pool from the reserve (reserve x d); only
    when the reserve's bound stops it does a full pass (N x d) come. The reserve is by default a
    sixteenth of the data (at least four pools). Memory is O(N + reserve x d) beyond the
    embeddings themselves.

    Late in a large selection the query S - 2 lam T is small and turns with every pick, and a
    block ends after some twenty picks; with full passes alone those passes were the whole cost
    (1M points: 495 s). The reserve makes most refills 1/16 of a pass. The relaxed mode also drops
    the bounds' sideways term (it assumes no outside point gains from the picks' sideways part)
    and makes the full pass in half precision (`_Screen`: half the memory traffic).
    bench/filter_scale.py measures the objective it gives up against exact greedy. (Forcing
    longer blocks, 32 picks before the bound is checked, cut the passes 1.5x on 100k random
    384-d points at a 1.9e-5 objective gap, but cost 3.5e-3 on 6,000 points in 32 dimensions:
    too dependent on the data to be a default.)
    """
    n = len(e)
    exact = n <= EXACT_UP_TO if exact is None else exact
    budget = min(budget, n)
    reserve = max(4 * pool, n // 16) if reserve is None else max(reserve, pool)
    query = e.sum(axis=0, dtype=np.float64)  # S - 2 lam T
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    screen = None if exact else _Screen(e)
    far: _Outside | None = None  # what points outside the reserve can gain; None: a full pass is due
    while len(chosen) < budget:
        fresh = far is None
        if fresh:
            gains, slack = screen(query) if screen else (e @ query.astype(np.float32), 0.0)
            gains[taken] = -np.inf
            kept, cut = _best(gains, reserve, n - len(chosen))
            res, e_res = kept, e[kept]
            far = _Outside(cut + slack, query)
        g_res = e_res @ query.astype(np.float32)
        g_res[taken[res]] = -np.inf
        local, cut = _best(g_res, pool, int((~taken[res]).sum()))
        cand, e_cand, g = res[local], e_res[local], g_res[local]
        near = _Outside(cut, query)
        picked = 0
        while len(chosen) < budget:
            k = int(np.argmax(g))
            if g[k] < far.bound(lam, exact) and not (fresh and not picked):
                far = None  # a point outside the reserve may be better now
                break
            if picked and g[k] < near.bound(lam, exact):
                break
            j = int(cand[k])
            chosen.append(j)
            taken[j] = True
            picked += 1
            g[k] = -np.inf
            g -= (2 * lam) * (e_cand @ e[j])
            near.drift += e[j]
            far.drift += e[j]
            query -= 2 * lam * e[j]
        if picked < 8 and far is not None:
            pool = min(2 * pool, reserve)  # the pool ran dry quickly: take a wider one next block
    return chosen


def _best(gains: np.ndarray, m: int, remaining: int) -> tuple[np.ndarray, float]:
    """The indices of the m largest gains (of `remaining` not taken) and the largest gain left
    out (-inf when none is left out)."""
    if m < remaining:
        part = np.argpartition(-gains, m)
        return part[:m], float(gains[part[m]])
    return np.flatnonzero(gains > -np.inf), -np.inf


class _Outside:
    """The points left out of a set: their best gain when the set was formed, the query then,
    and the sum of the picks since, from which `_outside_bound` bounds their best gain now."""

    def __init__(self, cut: float, query: np.ndarray):
        self.cut = cut
        self.q_norm = float(np.linalg.norm(query))
        self.q_hat = query / max(self.q_norm, 1e-12)
        self.drift = np.zeros_like(query)

    def bound(self, lam: float, exact: bool) -> float:
        return _outside_bound(self.cut, self.q_norm, self.q_hat, self.drift, lam, exact)


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


def _outside_bound(g_out: float, q_norm: float, q_hat: np.ndarray, drift: np.ndarray, lam: float,
                   exact: bool = True) -> float:
    """Largest gain any point outside the pool can have now.

    With the block's picks D = a q_hat + D_perp, a point's gain is now
    g(t0) (1 - 2 lam a / |q|) - 2 lam e . D_perp, at most c g_out + 2 lam |D_perp| when
    c = 1 - 2 lam a / |q| >= 0. Splitting off the part of D along the query keeps the bound
    tight when the picks all lean the same way (they do: toward the data's centre)."""
    if g_out == -np.inf:
        return -np.inf
    a = float(drift @ q_hat)
    c = 1.0 - 2 * lam * a / max(q_norm, 1e-12)
    if c < 0:
        return g_out + 2 * lam * float(np.linalg.norm(drift))
    if not exact:  # assume no outside point gained from the picks' sideways part
        return c * g_out
    return c * g_out + 2 * lam * float(np.sqrt(max(float(drift @ drift) - a * a, 0.0)))


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
