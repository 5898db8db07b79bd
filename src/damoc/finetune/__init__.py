"""Fine-tuning on a task with any registered method (methods.py), timed and costed.

Names load on first use: methods.py needs no torch, and the command line reads its registry
without paying for torch (train.py imports it)."""

from __future__ import annotations

import importlib

_WHERE = {"METHODS": "methods", "get_method": "methods", "method": "methods",
          "FinetuneConfig": "train", "TrainStats": "train", "finetune": "train", "lora_target_modules": "train"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"damoc.finetune.{_WHERE[name]}"), name)
