"""One candidate's run: load -> (prune) -> fine-tune -> evaluate, used by `select` and `baseline`
alike, and the jobs that hand such runs to a launcher (launch.py)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from damoc.errors import DamocError
from damoc.evaluation import evaluate
from damoc.finetune import finetune
from damoc.flops import forward_flops
from damoc.io import read_json_checked, run_folder, warn, write_cache, write_json_atomic
from damoc.models import LoadOptions, load_model, load_tokenizer
from damoc.runinfo import machine, stable_hash, versions
from damoc.selection.candidate import OK, Candidate, candidate_key, rank
from damoc.selection.config import BaselineConfig
from damoc.selection.launch import Job, LaunchSettings, launch
from damoc.tasks import Task, load_task
from damoc.tasks.base import label_counts, label_warnings
from damoc.tasks.sampling import sample_train


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
                  before_training: Callable[[object, object], dict] | None = None,
                  keep: Path | None = None) -> tuple[dict, list[dict]]:
    """Load, (optionally transform, e.g. prune), fine-tune, evaluate one candidate. `keep`: a folder to
    save the trained model in (adapters merged), for sequential evaluation's later batches."""
    options = load_options(config)
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(candidate.model, options)
    model = load_model(candidate.model, options)
    load_seconds = time.perf_counter() - t0
    extra = before_training(model, tokenizer) if before_training else {}
    ft = config.finetune.model_copy(update={"method": candidate.method, "method_options": candidate.options})
    model, stats = finetune(model, tokenizer, train, ft, progress=progress)
    if keep is not None:
        from damoc.finetune.save import save_finetuned

        model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
        save_finetuned(model, tokenizer, keep, {"candidate": candidate.label()}, overwrite=True)
    result = evaluate(model, tokenizer, task, examples=test, max_len=ft.max_seq_len,
                      batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                      generation=config.generation, progress=progress, seed=config.seed)
    eval_flops = forward_flops(model, result.scored_tokens, result.head_positions)  # generation (ROUGE-L) not counted
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


def evaluate_kept(config: BaselineConfig, candidate: Candidate, task: Task, test: list, kept: Path | str,
                  progress: bool) -> tuple[dict, list[dict]]:
    """Score the weights at `kept` with the candidate's tokenizer, training nothing: a trained model saved
    by `run_candidate(keep=...)` on more questions (sequential evaluation), or the candidate's own model
    untrained (the zero-shot pass)."""
    options = load_options(config)
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(candidate.model, options)
    model = load_model(str(kept), options)
    load_seconds = time.perf_counter() - t0
    result = evaluate(model, tokenizer, task, examples=test, max_len=config.finetune.max_seq_len,
                      batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                      generation=config.generation, progress=progress, seed=config.seed)
    eval_flops = forward_flops(model, result.scored_tokens, result.head_positions)
    del model
    gc.collect()
    return {**candidate.label(), "status": OK, "metrics": result.metrics, "evaluation_only": True,
            "train_seconds": 0.0, "train_flops": 0.0, "eval_seconds": result.seconds, "eval_examples": result.n,
            "eval_flops": eval_flops, "load_seconds": load_seconds}, result.records


def pruner(config, candidate: Candidate, texts: list[str]) -> Callable[[object, object], dict]:
    """The before-training step that prunes a freshly loaded candidate in place. The layers to remove
    depend on the weights, the texts and the prune settings, not on the fine-tuning method, so the
    candidates of one model share one similarity pass: its plan is cached under $DAMOC_HOME/prune-plans
    and replayed. Every run records the plan's key and the pass's FLOPs; the summary counts each plan
    once (a later run that reuses it still reports what it cost, like every other cache)."""
    def prune(model, tokenizer) -> dict:
        from damoc.layers import prune_model
        from damoc.layers.arch import decoder_layers
        from damoc.models import load_model
        from damoc.models.bundled import home_cache_path

        start = time.perf_counter()
        base = None
        if config.prune.merge == "sparse":
            if candidate.base is None:
                raise DamocError(f"{candidate.model}: the sparse merge needs the candidate's `base` model")
            base = load_model(candidate.base, load_options(config)).eval()
        key = plan_key(config, candidate, texts, model, tokenizer)
        path = home_cache_path("prune-plans", key)
        plan = stored_plan(path, len(decoder_layers(model)))
        result = prune_model(model.eval(), tokenizer, texts, config.prune, base_model=base, plan=plan)
        del base
        if plan is None:
            record = {"similarity": result.similarity, "removed": result.removed, "steps": result.steps,
                      "layers_before": result.layers_before, "layers_after": result.layers_after,
                      "forward_flops": result.forward_flops}
            write_cache(path, lambda: write_json_atomic(path, record))
        return {"prune": {"removed": result.removed, "layers_before": result.layers_before,
                          "layers_after": result.layers_after, "similarity": result.similarity,
                          "merged_into": {str(k): v for k, v in result.merged_into.items()},
                          "seconds": time.perf_counter() - start, "forward_flops": result.forward_flops,
                          "plan": stable_hash(key), "plan_reused": plan is not None}}
    return prune


def plan_key(config, candidate: Candidate, texts: list[str], model, tokenizer) -> dict:
    """What decides which layers a prune removes: the weights (a local folder's files by name, size and
    time; a hub model's revision), the texts as this tokenizer reads them, the prune settings, and
    the precision and device the similarity is measured in."""
    import torch

    from damoc.runinfo import weight_files

    weights = {spec: weight_files(spec) for spec in (candidate.model, candidate.base)
               if spec and not spec.startswith("bundled:")}
    ids = tokenizer(texts, truncation=True, max_length=config.prune.max_len)["input_ids"]
    return {"model": candidate.model, "base": candidate.base, "weights": weights,
            "revision": getattr(model.config, "_commit_hash", None), "token_ids": stable_hash(ids),
            "prune": config.prune.model_dump(mode="json"), "dtype": str(config.dtype),
            "cuda": torch.cuda.is_available(), "quantization": str(config.quantization), "version": 1}


def stored_plan(path: Path, layers: int):
    """A cached prune plan for a model with this many layers, or None (absent, damaged, or another shape)."""
    from dataclasses import fields

    from damoc.layers import PruneResult

    stored = read_json_checked(path, lambda d: isinstance(d, dict) and {"steps", "similarity"} <= set(d))
    if not stored or stored.get("layers_before") != layers:
        return None
    return PruneResult(**{f.name: stored[f.name] for f in fields(PruneResult) if f.name in stored})


def jobs(config: BaselineConfig, task: Task, candidates: list[Candidate], train: list, test: list, folder: Path,
         progress: bool, texts: list[str] | None = None, extra: dict | None = None, keep: bool = False) -> list[Job]:
    """One job per candidate, in `folder/SLUG`: trained on `train`, scored on `test`, pruned on `texts`
    when the config prunes. `extra` (a strategy's rung or round) joins the cache key; `keep` saves the
    trained model in `folder/SLUG/model`."""
    prunes = getattr(config, "prune", None) is not None
    return [Job(c, folder / c.slug,
                stable_hash({"key": candidate_key(config, c), **extra}) if extra else candidate_key(config, c),
                partial(run_candidate, config, c, task, train, test, progress,
                        pruner(config, c, texts or []) if prunes else None,
                        folder / c.slug / "model" if keep else None),
                legacy=[folder / c.legacy_slug])
            for c in candidates]


def label_stats(task: Task, train: list, test: list) -> dict:
    """Answer shares, and the accuracy of always giving the test split's most common answer:
    the floor a fine-tuned candidate has to clear to have learned anything."""
    if not task.is_choice:
        return {}
    test_counts = label_counts(test, task.format)
    return {"train_answers": label_counts(train, task.format), "test_answers": test_counts,
            "majority_accuracy": max(test_counts.values()) / len(test),
            "label_warnings": label_warnings(train, test, task.format)}


def fine_tune_all(config: BaselineConfig, out: str | Path, progress: bool = True,
                  on_event: Callable[[str, dict], None] | None = None,
                  launch_settings: LaunchSettings | None = None, warn_labels: bool = True) -> dict:
    """Full fine-tuning of every candidate on the task (resuming finished ones) in the run folder `out`,
    results.json rewritten as each finishes: `damoc baseline`, and `select --validate`'s truth."""
    with run_folder(out, "baseline") as folder:
        task = load_task(config.task, config.data)
        train, test = select_examples(task, config, quiet=not warn_labels)
        finished: list[dict] = []

        def notify(kind: str, info: dict) -> None:
            if kind in ("cached", "done"):  # results.json always holds what has finished so far
                finished.append(info)
                _baseline_summary(folder, config, task, train, test, finished)
            if on_event is not None:
                on_event(kind, info)

        results = launch(jobs(config, task, config.candidates, train, test, folder / "candidates", progress),
                         launch_settings, notify)
        return _baseline_summary(folder, config, task, train, test, results)


def _baseline_summary(out: Path, config: BaselineConfig, task: Task, train: list, test: list,
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
