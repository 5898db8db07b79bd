"""Save a fine-tuned model as a plain safetensors folder (LoRA adapters merged in)."""

from __future__ import annotations

import json
from pathlib import Path

from damoc.io import atomic_dir


def save_finetuned(model, tokenizer, out: str | Path, report: dict, overwrite: bool = False) -> Path:
    out = Path(out)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with atomic_dir(out, "finetune", overwrite) as work:
        model.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        (work / "damoc-finetune.json").write_text(json.dumps(report, indent=2, default=str))
    return out
