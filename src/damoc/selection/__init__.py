"""Candidate ranking: `select` (pipeline.py) and `baseline` (baseline.py) over shared layers:
config.py (settings), runner.py (one candidate), strategies/ (fixed, halving, adaptive, zero-shot),
summary.py (verdict, confidence, cost, validation) and results.py (the typed results.json)."""

from damoc.selection.candidate import Candidate, CandidateResult, rank
from damoc.selection.config import BaselineConfig, SelectConfig

__all__ = ["BaselineConfig", "Candidate", "CandidateResult", "SelectConfig", "rank", "run_baseline", "run_select"]


def __getattr__(name: str):
    """`run_select` and `run_baseline` on first use, so that importing one entry point never loads the other."""
    if name == "run_select":
        from damoc.selection.pipeline import run_select

        return run_select
    if name == "run_baseline":
        from damoc.selection.baseline import run_baseline

        return run_baseline
    raise AttributeError(name)
