"""Which training examples a run uses: a seeded sample, the same on every machine."""

from __future__ import annotations

import random

from damoc.errors import DamocError


def sample_train(train: list, limit: int | None, seed: int) -> list:
    """A seeded sample of `limit` training examples (all of them when limit is None)."""
    if limit is None:
        return list(train)
    if limit > len(train):
        raise DamocError(f"--train-limit {limit} is larger than the training split ({len(train)} examples)")
    return random.Random(seed).sample(train, limit)
