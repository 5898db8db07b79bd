"""Calibration text for layer similarity: a task's training prompts or a file of texts."""

from __future__ import annotations

import random
from pathlib import Path

from damoc.errors import DamocError
from damoc.tasks.base import Example, continuation

TEXT_FIELDS = ("text", "instruction", "input", "question", "context", "passage", "output", "answer")


def example_texts(examples: list[Example]) -> list[str]:
    return [e.prompt + continuation(e) for e in examples]


def file_texts(path: Path) -> list[str]:
    """A .txt file gives one text per non-empty line; a records file its text-like fields."""
    from damoc.inputs import DATA_FILE_LIMIT, read_input_bytes
    from damoc.tasks.files import read_records

    if path.suffix.lower() == ".txt":
        try:
            text = read_input_bytes(path, "--calibration", DATA_FILE_LIMIT).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DamocError(f"{path}: not UTF-8 text (byte {e.start})") from e
        return [line.strip() for line in text.splitlines() if line.strip()]
    texts = []
    for r in read_records(path, "--calibration"):
        parts = [str(r[k]).strip() for k in TEXT_FIELDS
                 if isinstance(r.get(k), str | int | float) and str(r[k]).strip()]
        if parts:
            texts.append("\n".join(parts))
    return texts


def calibration_texts(source: str | Path | None = None, examples: list[Example] | None = None,
                      n: int = 64, seed: int = 0) -> list[str]:
    """A seeded sample of n texts from a bundled task name, a file, or given examples."""
    from damoc.tasks.bundled import BUNDLED_TASKS

    if source is not None and str(source) in BUNDLED_TASKS:
        from damoc.tasks import load_task

        texts = example_texts(load_task(str(source)).train)
    elif source is not None:
        path = Path(source)
        if not path.exists():
            raise DamocError(f"--calibration {source}: neither a bundled task ({', '.join(BUNDLED_TASKS)}) "
                             "nor an existing file")
        texts = file_texts(path)
    elif examples is not None:
        texts = example_texts(examples)
    else:
        raise DamocError("give calibration text: --calibration TASK|FILE, or --task/--data")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DamocError(f"the calibration set {source or ''} is empty".replace("  ", " "))
    rng = random.Random(seed)
    return rng.sample(texts, min(n, len(texts)))
