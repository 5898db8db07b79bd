"""Candidate ranking: the full fine-tuning baseline (and later the DaMoC pipeline)."""

from damoc.selection.baseline import BaselineConfig, Candidate, rank, run_baseline

__all__ = ["BaselineConfig", "Candidate", "rank", "run_baseline"]
