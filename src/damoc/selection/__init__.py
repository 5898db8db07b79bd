"""Candidate ranking: the full fine-tuning baseline (baseline.py), the DaMoC pipeline (pipeline.py), launchers."""

from damoc.selection.baseline import BaselineConfig, run_baseline
from damoc.selection.candidate import Candidate, CandidateResult, rank

__all__ = ["BaselineConfig", "Candidate", "CandidateResult", "rank", "run_baseline"]
