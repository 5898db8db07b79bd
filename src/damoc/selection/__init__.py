"""Candidate ranking: the full fine-tuning baseline (baseline.py), the DaMoC pipeline (pipeline.py), launchers."""

from damoc.selection.baseline import BaselineConfig, Candidate, rank, run_baseline

__all__ = ["BaselineConfig", "Candidate", "rank", "run_baseline"]
