"""`damoc baseline`: fine-tune every candidate on the task, evaluate, rank (the ground truth a cheap
ranking is judged against). Each finished candidate is written to its own folder at once, keyed by
a hash of everything that determines it, so re-running after a crash or Ctrl-C skips what is done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from damoc.selection.config import BaselineConfig
from damoc.selection.launch import LaunchSettings
from damoc.selection.preflight import preflight
from damoc.selection.runner import fine_tune_all


def run_baseline(config: BaselineConfig, out: str | Path, progress: bool = True,
                 on_event: Callable[[str, dict], None] | None = None,
                 launch_settings: LaunchSettings | None = None, warn_labels: bool = True) -> dict:
    """Fine-tune and evaluate every candidate (resuming finished ones); write results.json. The models
    and the questions' lengths are checked before the run folder is written (`preflight`);
    `warn_labels=False` where the caller has already said what is wrong with the labels."""
    preflight(config)
    return fine_tune_all(config, out, progress, on_event, launch_settings, warn_labels)
