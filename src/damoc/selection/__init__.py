"""Candidate ranking: `select` (pipeline.py) and `baseline` (baseline.py) over shared layers:
config.py (settings), runner.py (one candidate), strategies/ (fixed, halving, adaptive, zero-shot),
summary.py (verdict, confidence, cost, validation) and results.py (the typed results.json).

Names are loaded on first use, so that a module that needs no torch (`damoc predict`, curves.py)
does not pay for importing it, and importing one entry point never loads the other."""

from __future__ import annotations

import importlib

_WHERE = {"Candidate": "candidate", "CandidateResult": "candidate", "rank": "candidate",
          "BaselineConfig": "config", "SelectConfig": "config", "run_select": "pipeline", "run_baseline": "baseline"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"damoc.selection.{_WHERE[name]}"), name)
