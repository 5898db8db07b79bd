"""The full fine-tuning baseline: train every candidate on the task, evaluate, rank.

This is the ground truth DaMoC's cheap ranking is judged against. Each finished candidate
is written to its own folder at once, keyed by a hash of everything that determines it, so
re-running the same command after a crash or Ctrl-C skips what is done.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from damoc.evaluation import evaluate
from damoc.finetune import FinetuneConfig, finetune
from damoc.flops import forward_flops
from damoc.io import run_folder, warn, write_json_atomic
from damoc.models import LoadOptions, load_model, load_tokenizer
from damoc.runinfo import ADDED_LATER, machine, versions
from damoc.selection.candidate import OK, Candidate, candidate_key, rank
from damoc.selection.launch import Job, LaunchSettings, launch
from damoc.tasks import Task, TaskSource, load_task
from damoc.tasks.base import label_counts, label_warnings
from damoc.tasks.sampling import sample_train


class BaselineConfig(TaskSource):
    """Everything that decides a baseline run's figures; hashed for caching."""

    candidates: list[Candidate] = Field(min_length=1)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    train_limit: int | None = Field(None, ge=1, description="train on a seeded sample of N training examples")
    test_limit: int | None = Field(None, ge=1, description="evaluate on the first N of the (fixed, stratified) "
                                   "test split")
    eval_batch_size: int = Field(8, ge=1, description="examples per evaluation forward pass")
    max_new_tokens: int = Field(64, ge=1, description="generation length for generative tasks")
    generation: bool = Field(True, description="generative tasks: also generate answers for ROUGE-L "
                             "(--no-generation: answer bits per byte only)")
    seed: int = Field(0, description="the run's seed: the training sample, training, compression and pruning")
    allow_pickle: bool = Field(False, description="also load .bin/.pt weights (pickle can run code: only "
                               "for files you trust)")
    trust_remote_code: bool = Field(False, description="run a model repository's own Python code")
    dtype: str = Field("auto", description="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16")
    quantization: Literal["none", "4bit"] = Field("none", json_schema_extra=ADDED_LATER, description=(
        "4bit: load each candidate in NF4 and train LoRA adapters on it (QLoRA; CUDA, pip install "
        "'damoc[gpu]'). Keeps a 7-8B candidate within one GPU"))

    @model_validator(mode="after")
    def _seeds_follow_the_run(self) -> BaselineConfig:
        """One `seed` decides a run: training, compression and pruning take it unless their own
        seed was given. (A data file's split keeps its own: the test set must not move with it.)"""
        for name in ("finetune", "compress", "prune"):
            section = getattr(self, name, None)
            if section is not None and "seed" not in section.model_fields_set and section.seed != self.seed:
                setattr(self, name, section.model_copy(update={"seed": self.seed}))
        return self

    @model_validator(mode="after")
    def _check(self) -> BaselineConfig:
        from damoc.finetune.methods import get_method

        if self.quantization != "none" and any(not get_method(c.method).quantized for c in self.candidates):
            raise ValueError("quantization 4bit trains adapters on frozen 4-bit weights (QLoRA): give every candidate "
                             "method lora or dora")
        seen: dict[tuple, Candidate] = {}
        for c in self.candidates:
            if c.identity in seen:
                first = seen[c.identity]
                same = "" if first.model == c.model else f" ({first.model!r} and {c.model!r} are the same model)"
                raise ValueError(f"duplicate candidates: {c.model} {c.method}{same}")
            seen[c.identity] = c
        return self


def select_examples(task: Task, config: BaselineConfig, quiet: bool = False) -> tuple[list, list]:
    """The seeded training sample and the first `test_limit` of the test split (whose order is
    seeded and stratified, so a prefix keeps the answer shares); label problems said in one line."""
    train = sample_train(task.train, config.train_limit, config.seed)
    test = task.test[: config.test_limit] if config.test_limit else list(task.test)
    if not quiet:
        for line in label_warnings(train, test, task.format):
            warn(line)
    return train, test


def load_options(config: BaselineConfig) -> LoadOptions:
    return LoadOptions(allow_pickle=config.allow_pickle, trust_remote_code=config.trust_remote_code,
                       dtype=config.dtype, quantization=config.quantization)


def run_candidate(config: BaselineConfig, candidate: Candidate, task: Task, train: list,
                  test: list, progress: bool,
                  before_training: Callable[[object, object], dict] | None = None) -> tuple[dict, list[dict]]:
    """Load, (optionally transform, e.g. prune), fine-tune, evaluate one candidate."""
    options = load_options(config)
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(candidate.model, options)
    model = load_model(candidate.model, options)
    load_seconds = time.perf_counter() - t0
    extra = before_training(model, tokenizer) if before_training else {}
    ft = config.finetune.model_copy(update={"method": candidate.method, "method_options": candidate.options})
    model, stats = finetune(model, tokenizer, train, ft, progress=progress)
    result = evaluate(model, tokenizer, task, examples=test, max_len=ft.max_seq_len,
                      batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                      generation=config.generation, progress=progress, seed=config.seed)
    eval_flops = forward_flops(model, result.scored_tokens)  # scoring only: generation for ROUGE-L not counted
    del model
    gc.collect()
    return {
        **candidate.label(), "status": OK,
        "metrics": result.metrics, "train_seconds": stats.train_seconds,
        "train_tokens": stats.train_tokens, "tokens_per_second": stats.tokens_per_second,
        "train_flops": stats.train_flops, "train": stats.to_dict(),
        "eval_seconds": result.seconds, "eval_examples": result.n, "eval_flops": eval_flops,
        "eval_truncated": result.truncated, "load_seconds": load_seconds, **extra,
    }, result.records


def run_baseline(config: BaselineConfig, out: str | Path, progress: bool = True,
                 on_event: Callable[[str, dict], None] | None = None,
                 launch_settings: LaunchSettings | None = None, warn_labels: bool = True) -> dict:
    """Fine-tune and evaluate every candidate (resuming finished ones); write results.json.
    `warn_labels=False` where the caller has already said what is wrong with the labels. The models and
    the questions' lengths are checked before the run folder is written (`preflight`)."""
    from damoc.selection.preflight import preflight

    preflight(config)
    with run_folder(out, "baseline") as folder:
        return _run_baseline(config, folder, progress, on_event, launch_settings, warn_labels)


def _run_baseline(config: BaselineConfig, out: Path, progress: bool, on_event: Callable[[str, dict], None] | None,
                  launch_settings: LaunchSettings | None, warn_labels: bool) -> dict:
    task = load_task(config.task, config.data)
    train, test = select_examples(task, config, quiet=not warn_labels)
    jobs = [Job(c, out / "candidates" / c.slug, candidate_key(config, c),
                partial(run_candidate, config, c, task, train, test, progress),
                legacy=[out / "candidates" / c.legacy_slug]) for c in config.candidates]
    finished: list[dict] = []

    def notify(kind: str, info: dict) -> None:
        if kind in ("cached", "done"):  # results.json always holds what has finished so far
            finished.append(info)
            _write_summary(out, config, task, train, test, finished)
        if on_event is not None:
            on_event(kind, info)

    results = launch(jobs, launch_settings, notify)
    return _write_summary(out, config, task, train, test, results)


def label_stats(task: Task, train: list, test: list) -> dict:
    """Answer shares, and the accuracy of always giving the test split's most common answer:
    the floor a fine-tuned candidate has to clear to have learned anything."""
    if not task.is_choice:
        return {}
    test_counts = label_counts(test, task.format)
    return {"train_answers": label_counts(train, task.format), "test_answers": test_counts,
            "majority_accuracy": max(test_counts.values()) / len(test),
            "label_warnings": label_warnings(train, test, task.format)}


def _write_summary(out: Path, config: BaselineConfig, task: Task, train: list, test: list,
                   results: list[dict]) -> dict:
    ranked = rank(task.primary_metric, [dict(r) for r in results])
    summary = {
        "task": task.name, "primary_metric": task.primary_metric,
        "train_examples": len(train), "test_examples": len(test),
        **label_stats(task, train, test),
        "candidates": [{k: v for k, v in r.items() if k != "traceback"} for r in ranked],
        "config": config.model_dump(mode="json"), "seed": config.seed,
        "machine": machine(), "versions": versions(),
    }
    write_json_atomic(out / "results.json", summary)
    return summary
