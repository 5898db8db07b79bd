"""Save a fine-tuned model as a plain safetensors folder (LoRA adapters merged in)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def save_finetuned(model, tokenizer, out: str | Path, report: dict) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        (work / "damoc-finetune.json").write_text(json.dumps(report, indent=2, default=str))
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
