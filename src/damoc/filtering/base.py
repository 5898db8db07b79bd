"""The selector interface: a data-filtering method is a class that gets the examples and a
budget and returns the indices it keeps, best first. The built-in ones, registered by name in
`SELECTORS`, are in `damoc.filtering.selectors`.
"""

from __future__ import annotations

import math
from typing import ClassVar

from damoc.errors import DamocError
from damoc.tasks.base import Example


class Selector:
    name: ClassVar[str]
    description: ClassVar[str]
    # Model FLOPs spent choosing (embeddings, scoring passes): DaMoC's speed-up counts them.
    forward_flops: float = 0.0

    def select(self, examples: list[Example], budget: int, seed: int = 0) -> list[int]:
        raise NotImplementedError


def resolve_budget(n: int, rate: float | None = None, budget: float | None = None, *,
                   round_down: bool = False) -> int:
    """How many of n examples to keep: a share `rate` in (0, 1] of them, or a whole count `budget`.

    A share rounds up, keeping at least one example (`damoc filter`, `select`); with `round_down`
    it rounds down, as PASER's floor(share x pool) does, and a share that keeps nothing is an
    error (`damoc recover`, whose single --budget is a share below 1 and a count from 1 up)."""
    if (rate is None) == (budget is None):
        raise DamocError("give exactly one of --rate (a share in (0, 1]) or --budget (a count)")
    if n == 0:
        raise DamocError("the data set is empty")
    if rate is not None:
        if not 0 < rate <= 1:
            raise DamocError(f"--rate {rate} is outside (0, 1]")
        if not round_down:
            return max(1, math.ceil(rate * n))
        if (k := math.floor(rate * n)) < 1:
            raise DamocError(f"--budget {rate} of {n} examples selects nothing")
        return k
    assert budget is not None
    if budget < 1:
        raise DamocError(f"--budget {budget} must be at least 1")
    if budget != int(budget):
        raise DamocError(f"--budget {budget}: a count must be a whole number")
    if budget > n:
        raise DamocError(f"--budget {int(budget)} is larger than the data ({n} examples)")
    return int(budget)


def example_text(e: Example) -> str:
    """What a sample says, as embedded for distribution-aware selection."""
    return f"{e.prompt} {e.answer}".strip()
