"""The selector interface and registry: every data-filtering method is a named class.

A selector gets the examples and a budget and returns the indices it keeps, best first.
The CLI and run files refer to selectors by their registered names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from damoc.errors import DamocError
from damoc.tasks.base import Example

SELECTORS: dict[str, type[Selector]] = {}


class Selector:
    name: ClassVar[str]
    description: ClassVar[str]
    # Model FLOPs spent choosing (embeddings, scoring passes): DaMoC's speed-up counts them.
    forward_flops: float = 0.0

    def select(self, examples: list[Example], budget: int, seed: int = 0) -> list[int]:
        raise NotImplementedError


def register(name: str) -> Callable[[type[Selector]], type[Selector]]:
    def wrap(cls: type[Selector]) -> type[Selector]:
        cls.name = name
        SELECTORS[name] = cls
        return cls
    return wrap


def get_selector(name: str, **options) -> Selector:
    import damoc.filtering.selectors  # noqa: F401  (registers the built-in selectors)

    if name not in SELECTORS:
        raise DamocError(f"unknown selector {name!r}; available: {', '.join(sorted(SELECTORS))}")
    try:
        return SELECTORS[name](**options)
    except (TypeError, ValueError) as e:
        raise DamocError(f"selector {name!r}: {e}") from e


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
