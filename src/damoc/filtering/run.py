"""Run a selector on a task's training split and write the kept examples atomically."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from damoc.filtering.base import resolve_budget
from damoc.filtering.selectors import get_selector
from damoc.io import outputs_record, write_json_atomic, write_jsonl_atomic
from damoc.tasks.base import Example


def filter_examples(examples: list[Example], method: str, *, rate: float | None = None,
                    budget: int | None = None, seed: int = 0, **options) -> tuple[list[Example], dict]:
    k = resolve_budget(len(examples), rate, budget)
    selector = get_selector(method, **options)
    start = time.perf_counter()
    kept = selector.select(examples, k, seed)
    seconds = time.perf_counter() - start
    assert len(set(kept)) == len(kept) == k, "a selector must return k distinct indices"
    summary = {"method": method, "options": options, "seed": seed, "input_examples": len(examples),
               "selected": k, "rate": k / len(examples), "seconds": seconds,
               "forward_flops": selector.forward_flops}
    return [examples[i] for i in kept], summary


def write_selection(selected: list[Example], summary: dict, out: str | Path) -> Path:
    out = Path(out)
    write_jsonl_atomic(out, (asdict(e) for e in selected))
    write_json_atomic(out.with_suffix(".summary.json"), {**summary, "outputs": outputs_record(out)})
    return out


def read_selection(path: str | Path) -> list[Example]:
    with open(path, encoding="utf-8") as f:
        return [Example(**{**d, "options": tuple(d["options"])}) for d in map(json.loads, f) if d]
