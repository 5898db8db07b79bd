"""One stopwatch for every stage that reports its seconds (compression, PASER, pruning)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Seconds per named stage, summed over every time the stage runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self, *leave_out: str) -> float:
        return sum(v for k, v in self.seconds.items() if k not in leave_out)
