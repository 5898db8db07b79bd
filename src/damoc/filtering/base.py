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


def resolve_budget(n: int, rate: float | None = None, budget: int | None = None) -> int:
    """Examples to keep from n, from a rate in (0, 1] or an absolute count."""
    if (rate is None) == (budget is None):
        raise DamocError("give exactly one of --rate (a share in (0, 1]) or --budget (a count)")
    if n == 0:
        raise DamocError("the data set is empty")
    if rate is not None:
        if not 0 < rate <= 1:
            raise DamocError(f"--rate {rate} is outside (0, 1]")
        return max(1, math.ceil(rate * n))
    assert budget is not None
    if budget < 1:
        raise DamocError(f"--budget {budget} must be at least 1")
    if budget > n:
        raise DamocError(f"--budget {budget} is larger than the data ({n} examples)")
    return budget


def example_text(e: Example) -> str:
    """What a sample says, as embedded for distribution-aware selection."""
    return f"{e.prompt} {e.answer}".strip()
