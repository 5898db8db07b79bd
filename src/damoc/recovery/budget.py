"""Share a sample budget among clusters in proportion to their degradation scores.

PASER gives cluster k floor(B * CDS_k / sum_j CDS_j) samples. Capped at a cluster's size,
that rule loses whatever the caps and the flooring leave over; here the remainder goes back
to the clusters that still have room, again in proportion to their scores, until the whole
budget is placed (it always can be when B <= the pool).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from damoc.errors import DamocError


def allocate_budget(budget: int, scores: Sequence[float], sizes: Sequence[int]) -> list[int]:
    """Samples per cluster: sums to `budget`, never above a cluster's size, proportional to
    `scores` up to flooring and caps (all-zero scores share evenly)."""
    if len(scores) != len(sizes):
        raise DamocError("one degradation score per cluster is needed")
    if any(s < 0 or not math.isfinite(s) for s in scores):
        raise DamocError("degradation scores must be finite and non-negative")
    if any(n < 0 for n in sizes):
        raise DamocError("cluster sizes must be non-negative")
    if budget < 1:
        raise DamocError(f"the budget must be at least 1 sample, got {budget}")
    if budget > sum(sizes):
        raise DamocError(f"the budget ({budget}) is larger than the pool ({sum(sizes)} samples)")
    alloc = [0] * len(sizes)
    remaining = budget
    while remaining:
        room = [k for k in range(len(sizes)) if alloc[k] < sizes[k]]
        weight = {k: float(scores[k]) for k in room}
        total = sum(weight.values())
        if total == 0:  # only zero-score clusters have room: share evenly
            weight, total = {k: 1.0 for k in room}, float(len(room))
        share = {k: remaining * weight[k] / total for k in room}
        give = {k: min(math.floor(share[k]), sizes[k] - alloc[k]) for k in room}
        if sum(give.values()) == 0:
            # Every share is below one sample: single samples to the largest shares first.
            for k in sorted(room, key=lambda k: (-share[k], k))[:remaining]:
                alloc[k] += 1
            remaining = budget - sum(alloc)
            continue
        for k, g in give.items():
            alloc[k] += g
        remaining -= sum(give.values())
    return alloc
