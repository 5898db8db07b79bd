"""How a `select` run spends its training budget: each strategy is one module here, registered by
name behind one small interface, so a new strategy is one file.

A strategy says which data it needs from the data stage (`data`: the filtered subset, the whole
training split in the selector's order, or none) and turns a `Context` into the run's summary
(summary.summarise plus a section of its own). Caching, launching and reporting are shared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from damoc.registry import Registry
from damoc.selection.launch import Job, LaunchSettings

Notify = Callable[[str, dict], None]


@dataclass
class Context:
    """What every strategy gets: the run's settings, its task and questions, the data stage's output,
    where to write, and how to report progress and launch candidates."""

    config: object  # SelectConfig
    task: object  # Task
    scored: list  # the test questions candidates are evaluated on
    out: Path
    progress: bool
    notify: Notify
    launch_settings: LaunchSettings | None
    examples: list = field(default_factory=list)  # the data stage's training examples
    data: dict = field(default_factory=dict)  # the data stage's summary

    def jobs(self, candidates: list, train: list, folder: Path, extra: dict | None = None,
             test: list | None = None, keep: bool = False) -> list[Job]:
        """Candidate runs trained on `train`, scored on `test` (default: every question of the run)."""
        from damoc.layers.calibration import example_texts
        from damoc.selection.runner import jobs

        texts = example_texts(self.examples[: self.config.calibration_samples])
        return jobs(self.config, self.task, candidates, train, self.scored if test is None else test, folder,
                    self.progress, texts, extra, keep)


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    data: Literal["filtered", "ordered", "none"]  # what the data stage hands it
    run: Callable[[Context], dict]


STRATEGIES: Registry[Strategy] = Registry("strategy")


def strategy(name: str, *, description: str, data: Literal["filtered", "ordered", "none"] = "filtered"):
    """Register the decorated `run(ctx) -> summary` as strategy `name`."""
    def register(run: Callable[[Context], dict]) -> Callable[[Context], dict]:
        STRATEGIES.add(name, Strategy(name, description, data, run), description=description)
        return run
    return register


for _module in ("fixed", "halving", "adaptive", "zero_shot"):
    importlib.import_module(f"damoc.selection.strategies.{_module}")
