"""The data stage of a `select` run: the seeded training sample, filtered and token-compressed,
made once and cached in OUT/data/ by the hash of what decides it, shared by every candidate."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from damoc.compat import whole_data_unkeyed
from damoc.filtering.run import filter_examples, read_selection
from damoc.io import read_checked, read_json_checked, write_json_atomic, write_jsonl_atomic
from damoc.runinfo import stable_hash
from damoc.selection.candidate import data_fingerprint
from damoc.selection.config import SelectConfig
from damoc.selection.runner import select_examples
from damoc.tasks import Task
from damoc.tasks.base import SPLIT_VERSION
from damoc.timing import Stopwatch


def data_key(config: SelectConfig, task_name: str) -> str:
    """The hash of what decides the data stage's output (GraphCut over all the data keyed as before its pool
    was written into the settings: damoc.compat)."""
    return stable_hash({"task": task_name, "split": SPLIT_VERSION,
                        "data": config.model_dump(mode="json", include={"task", "data"}),
                        "data_files": data_fingerprint(config),
                        "train_limit": config.train_limit, "seed": config.seed,
                        "filter": whole_data_unkeyed(config.filter.model_dump()) if config.filter else None,
                        "compress": config.compress.model_dump() if config.compress else None})


def data_stage(config: SelectConfig, task: Task, out: Path, progress: bool) -> tuple[list, dict]:
    """The compressed training data, made once and cached by the hash of what decides it."""
    train, _ = select_examples(task, config, quiet=True)
    key = data_key(config, task.name)
    folder = out / "data"
    summary_path = folder / "summary.json"
    done = read_json_checked(summary_path, lambda d: isinstance(d, dict) and isinstance(d.get("key"), str))
    if done is not None and done["key"] == key:
        examples = read_checked(folder / "examples.jsonl", read_selection,
                                lambda xs: len(xs) == done.get("output_examples"))
        if examples is not None:
            return examples, done
    clock = Stopwatch()
    summary: dict = {"key": key, "input_examples": len(train), "seconds": clock.seconds}
    examples = train
    if config.filter is not None:
        with clock.stage("filter"):
            rate = None if config.filter.budget is not None else config.filter.rate
            examples, fsum = filter_examples(examples, config.filter.method, rate=rate,
                                             budget=config.filter.budget, seed=config.seed, **config.filter.options)
        summary["filter"] = fsum
        summary["forward_flops"] = fsum["forward_flops"]
    if config.compress is not None:
        from damoc.tokens import compress_examples

        with clock.stage("compress"):
            examples, _, csum = compress_examples(examples, config.compress, progress=progress)
        summary["compress"] = {k: v for k, v in csum.items() if k != "config"}
        summary["forward_flops"] = summary.get("forward_flops", 0.0) + sum(csum["forward_flops"].values())
    summary["output_examples"] = len(examples)
    write_jsonl_atomic(folder / "examples.jsonl", (asdict(e) for e in examples))
    write_json_atomic(summary_path, summary)
    return examples, summary
