"""The paired bootstrap over items: statistics of several systems scored on the same items,
resampled together, so that the items' own difficulty cancels from their differences.

A statistic is a function of an index array over the items. Items in strata (the questions of
several tasks, the samples of several sources) are resampled within each stratum: give `n` as a
dict of stratum sizes, and the statistic gets a dict of index arrays, one per stratum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from damoc.evaluation.metrics import BOOTSTRAP_SAMPLES

Index = np.ndarray | dict[str, np.ndarray]


@dataclass(frozen=True)
class ItemBootstrap:
    values: np.ndarray  # each statistic on all the items
    draws: np.ndarray   # samples x statistics, every statistic on the same resamples

    def se(self, i: int = 0) -> float:
        """Statistic i's bootstrap standard error."""
        return float(np.std(self.draws[:, i], ddof=1))

    def difference(self, i: int = 0, j: int = 1) -> dict:
        """Statistic i minus statistic j with its paired standard error, and their ratio z
        (None when the SE is 0)."""
        diff = float(self.values[i] - self.values[j])
        se = float(np.std(self.draws[:, i] - self.draws[:, j], ddof=1))
        return {"difference": diff, "se": se, "z": diff / se if se > 0 else None}


def item_bootstrap(stats: Sequence[Callable[[Index], float]], n: int | Mapping[str, int],
                   samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> ItemBootstrap:
    """Each statistic on all `n` items and on `samples` resamples (with replacement) of them,
    the same resamples for every statistic: all were measured on the same items."""
    rng = np.random.default_rng(seed)

    def draw(every: bool = False) -> Index:
        if isinstance(n, Mapping):
            return {k: np.arange(m) if every else rng.integers(0, m, m) for k, m in n.items()}
        return np.arange(n) if every else rng.integers(0, n, n)

    full = draw(every=True)
    resamples = [draw() for _ in range(samples)]
    return ItemBootstrap(np.array([f(full) for f in stats]),
                         np.array([[f(i) for f in stats] for i in resamples]))
