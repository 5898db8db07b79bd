"""DaMoC: rank candidates by training compressed versions of them on compressed data.

Stages, read top to bottom:
1. data: a seeded training sample -> filter (GraphCut 10% by default) -> token compression;
   made once, cached in OUT/data/ by the hash of its settings, shared by every candidate;
2. per candidate: load -> layer pruning (similarity on the compressed training texts) ->
   one epoch of fine-tuning on the compressed data -> evaluation on the task's full,
   uncompressed test split; cached in OUT/candidates/NAME/ by the hash of its settings;
3. rank by the primary metric (bits per byte breaking ties) and by bits per byte, with a
   paired bootstrap for the probability of being best.
`validate` runs the full fine-tuning baseline (OUT/full/, cached the same way) and compares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from damoc.errors import DamocError
from damoc.filtering.run import filter_examples, read_selection
from damoc.io import read_json, write_json_atomic, write_jsonl_atomic, write_text_atomic
from damoc.layers import PruneConfig
from damoc.runinfo import machine, stable_hash, versions
from damoc.selection.baseline import (
    BaselineConfig,
    Candidate,
    candidate_key,
    label_stats,
    rank,
    run_baseline,
    run_cached,
    run_candidate,
    select_examples,
)
from damoc.tasks import Task, load_task
from damoc.tokens import CompressConfig


class FilterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = "graphcut"
    rate: float | None = Field(0.1, gt=0, le=1)
    budget: int | None = Field(None, ge=1)
    options: dict = Field(default_factory=dict)


class SelectConfig(BaselineConfig):
    """A baseline config plus the three compression levers; `None` turns a lever off."""

    filter: FilterSettings | None = Field(default_factory=FilterSettings)
    compress: CompressConfig | None = Field(default_factory=CompressConfig)
    prune: PruneConfig | None = Field(default_factory=PruneConfig)
    calibration_samples: int = Field(32, ge=1, description="compressed training texts for layer similarity")

    def baseline(self) -> BaselineConfig:
        return BaselineConfig(**self.model_dump(include=set(BaselineConfig.model_fields)))


def data_stage(config: SelectConfig, task: Task, out: Path, progress: bool) -> tuple[list, dict]:
    """The compressed training data, made once and cached by the hash of what decides it."""
    train, _ = select_examples(task, config)
    key = stable_hash({"task": task.name, "data": config.model_dump(mode="json", include={"task", "data"}),
                       "train_limit": config.train_limit, "seed": config.seed,
                       "filter": config.filter.model_dump() if config.filter else None,
                       "compress": config.compress.model_dump() if config.compress else None})
    folder = out / "data"
    summary_path = folder / "summary.json"
    if summary_path.exists() and read_json(summary_path).get("key") == key:
        return read_selection(folder / "examples.jsonl"), read_json(summary_path)
    summary: dict = {"key": key, "input_examples": len(train), "seconds": {}}
    examples = train
    if config.filter is not None:
        start = time.perf_counter()
        rate = None if config.filter.budget is not None else config.filter.rate
        examples, fsum = filter_examples(examples, config.filter.method, rate=rate, budget=config.filter.budget,
                                         seed=config.seed, **config.filter.options)
        summary["filter"] = fsum
        summary["seconds"]["filter"] = time.perf_counter() - start
        summary["forward_flops"] = fsum["forward_flops"]
    if config.compress is not None:
        from damoc.tokens import compress_examples

        start = time.perf_counter()
        examples, _, csum = compress_examples(examples, config.compress, progress=progress)
        summary["compress"] = {k: v for k, v in csum.items() if k != "config"}
        summary["seconds"]["compress"] = time.perf_counter() - start
        summary["forward_flops"] = summary.get("forward_flops", 0.0) + sum(csum["forward_flops"].values())
    summary["output_examples"] = len(examples)
    write_jsonl_atomic(folder / "examples.jsonl", (asdict(e) for e in examples))
    write_json_atomic(summary_path, summary)
    return examples, summary


def pruner(config: SelectConfig, candidate: Candidate, texts: list[str]) -> Callable[[object, object], dict]:
    """The before-training step that prunes a freshly loaded candidate in place."""
    def prune(model, tokenizer) -> dict:
        from damoc.layers import prune_model
        from damoc.models import load_model
        from damoc.selection.baseline import load_options

        start = time.perf_counter()
        base = None
        if config.prune.merge == "sparse":
            if candidate.base is None:
                raise DamocError(f"{candidate.model}: the sparse merge needs the candidate's `base` model")
            base = load_model(candidate.base, load_options(config)).eval()
        result = prune_model(model.eval(), tokenizer, texts, config.prune, base_model=base)
        del base
        return {"prune": {"removed": result.removed, "layers_before": result.layers_before,
                          "layers_after": result.layers_after, "similarity": result.similarity,
                          "merged_into": {str(k): v for k, v in result.merged_into.items()},
                          "seconds": time.perf_counter() - start, "forward_flops": result.forward_flops}}
    return prune


def run_select(config: SelectConfig, out: str | Path, progress: bool = True, validate: bool = False,
               on_event: Callable[[str, dict], None] | None = None) -> dict:
    from damoc.layers.calibration import example_texts

    out = Path(out)
    notify = on_event or (lambda kind, info: None)
    task = load_task(config.task, config.data)
    _, test = select_examples(task, config)
    notify("stage", {"name": "data"})
    examples, data = data_stage(config, task, out, progress)
    texts = example_texts(examples[: config.calibration_samples])
    results = []
    for c in config.candidates:
        hook = pruner(config, c, texts) if config.prune is not None else None
        record = run_cached(out / "candidates" / c.slug, candidate_key(config, c), c,
                            lambda c=c, hook=hook: run_candidate(config, c, task, examples, test, progress, hook),
                            notify)
        results.append(record)
    summary = summarise(config, task, data, results, out)
    summary.update({"train_examples": len(examples), "test_examples": len(test),
                    **label_stats(task, examples, test)})
    if validate:
        notify("stage", {"name": "full fine-tuning (validation)"})
        full = run_baseline(config.baseline(), out / "full", progress=progress, on_event=on_event)
        summary["validation"] = validation(task, summary, full)
    write_json_atomic(out / "results.json", summary)
    from damoc.report import select_html, select_report  # matplotlib: loaded only when reporting

    markdown = select_report(summary)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", select_html(summary, markdown))
    return summary


def _predictions(out: Path, results: list[dict]) -> dict[str, list[dict]]:
    import json

    preds = {}
    for r in results:
        if r["status"] == "ok":
            path = out / "candidates" / Candidate(model=r["model"], method=r["method"]).slug / "predictions.jsonl"
            preds[f"{r['model']} {r['method']}"] = [json.loads(x) for x in path.read_text().splitlines() if x]
    return preds


def summarise(config: SelectConfig, task: Task, data: dict, results: list[dict], out: Path) -> dict:
    from damoc.selection.confidence import paired_bootstrap

    ranked = rank(task.primary_metric, [dict(r) for r in results])
    ok = [r for r in ranked if r["status"] == "ok"]
    by_bpb = sorted(ok, key=lambda r: r["metrics"]["answer_bpb"])
    preds = _predictions(out, ok)
    confidence = paired_bootstrap(preds, seed=config.seed) if len(preds) >= 2 and task.is_choice else None
    overhead = sum(data.get("seconds", {}).values())
    return {
        "task": task.name, "primary_metric": task.primary_metric,
        "data": {k: v for k, v in data.items() if k != "key"},
        "candidates": [{k: v for k, v in r.items() if k != "traceback"} for r in ranked],
        "ranking_bpb": [f"{r['model']} {r['method']}" for r in by_bpb],
        "confidence": confidence,
        "seconds": {"data_stage": overhead,
                    "candidates": sum(r.get("load_seconds", 0) + r.get("prune", {}).get("seconds", 0)
                                      + r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in ok)},
        "config": config.model_dump(mode="json"), "machine": machine(), "versions": versions(),
    }


def validation(task: Task, damoc: dict, full: dict) -> dict:
    """Agreement with the full fine-tuning ranking, and what the compressed route saved."""
    from damoc.selection.validation import compare_rankings

    def scores(summary: dict, key: str) -> dict[str, float]:
        return {f"{r['model']} {r['method']}": r["metrics"][key] for r in summary["candidates"]
                if r["status"] == "ok"}

    primary = task.primary_metric
    higher = primary == "accuracy"

    def ranked_scores(summary: dict) -> dict[str, float]:
        ok = [r for r in summary["candidates"] if r["status"] == "ok"]
        return {f"{r['model']} {r['method']}": -r["rank"] for r in ok}  # ties broken by bits per byte

    out = {"by_rank": compare_rankings(ranked_scores(damoc), ranked_scores(full), higher_is_better=True),
           "by_primary_metric": compare_rankings(scores(damoc, primary), scores(full, primary), higher),
           "by_bpb": compare_rankings(scores(damoc, "answer_bpb"), scores(full, "answer_bpb"), False)}
    chosen = out["by_rank"]["chosen"]
    true = scores(full, primary)
    best = max(true.values()) if higher else min(true.values())
    out["regret"] = abs(best - true[chosen])
    full_ok = [r for r in full["candidates"] if r["status"] == "ok"]
    damoc_ok = [r for r in damoc["candidates"] if r["status"] == "ok"]
    full_train = sum(r["train_seconds"] for r in full_ok)
    damoc_train = damoc["seconds"]["data_stage"] + sum(r["train_seconds"] + r.get("prune", {}).get("seconds", 0)
                                                      for r in damoc_ok)
    out["speedup_wall"] = full_train / damoc_train if damoc_train else None
    out["speedup_wall_note"] = ("full fine-tuning seconds / (data filtering + compression + pruning + "
                                "compressed training seconds); evaluation, the same on both sides, left out")
    full_flops = sum(r["train_flops"] for r in full_ok)
    damoc_flops = sum(r["train_flops"] for r in damoc_ok)
    overhead_flops = damoc["data"].get("forward_flops", 0.0) + sum(r.get("prune", {}).get("forward_flops", 0.0)
                                                                 for r in damoc_ok)
    out["speedup_flops_training_only"] = full_flops / damoc_flops if damoc_flops else None
    out["speedup_flops"] = full_flops / (damoc_flops + overhead_flops) if damoc_flops else None
    out["speedup_flops_note"] = ("full fine-tuning FLOPs / (compressed training + the filter's embedding or "
                                 "scoring passes + token scoring, BERTScore and rewriting + layer-similarity "
                                 "passes, each forward pass 2 x matmul parameters x tokens)")
    return out
