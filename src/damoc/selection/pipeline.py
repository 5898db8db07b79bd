"""DaMoC: rank candidates by training compressed versions of them on compressed data.

Stages, read top to bottom:
1. data: a seeded training sample -> filter (GraphCut 10% by default) -> token compression;
   made once, cached in OUT/data/ by the hash of its settings, shared by every candidate;
2. per candidate: load -> layer pruning (similarity on the compressed training texts) ->
   one epoch of fine-tuning on the compressed data -> evaluation on the task's full,
   uncompressed test split; cached in OUT/candidates/NAME/ by the hash of its settings;
3. rank by the primary metric (bits per byte breaking ties) and by bits per byte, with a
   paired bootstrap for the probability of being best.
Candidates run through a launcher (one after another, or Ray tasks); `halving` replaces the
single round by successive halving.
`validate` runs the full fine-tuning baseline (OUT/full/, cached the same way) and compares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from damoc.errors import DamocError
from damoc.evaluation.metrics import higher_is_better
from damoc.filtering.run import filter_examples, read_selection
from damoc.io import (
    read_checked,
    read_json_checked,
    read_jsonl,
    run_folder,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from damoc.layers import PruneConfig
from damoc.runinfo import ADDED_LATER, machine, stable_hash, versions
from damoc.selection.adaptive import AdaptiveSettings, run_adaptive
from damoc.selection.baseline import BaselineConfig, label_stats, run_baseline, run_candidate, select_examples
from damoc.selection.candidate import Candidate, candidate_key, data_fingerprint, display_name, is_ok, rank
from damoc.selection.launch import Job, LaunchSettings, launch
from damoc.selection.zero_shot import zero_shot
from damoc.tasks import Task, load_task
from damoc.tasks.base import SPLIT_VERSION
from damoc.timing import Stopwatch
from damoc.tokens import CompressConfig


class FilterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: str = Field("graphcut", json_schema_extra={"registry": "damoc.filtering.selectors:SELECTORS"},
                        description="data selector (see `damoc filter --help`)")
    rate: float | None = Field(0.1, gt=0, le=1, description="share of the training data kept")
    budget: int | None = Field(None, ge=1, description="or a count of training examples kept (instead of rate)")
    options: dict = Field(default_factory=dict, description="selector parameters, e.g. lam=0.3 (GraphCut)")

    @model_validator(mode="after")
    def _rate_or_budget(self) -> FilterSettings:
        if self.budget is not None and "rate" not in self.model_fields_set:
            self.rate = None  # a budget alone replaces the default rate
        if (self.rate is None) == (self.budget is None):
            raise ValueError("give exactly one of rate (a share) or budget (a count)")
        return self

    @field_validator("method")
    @classmethod
    def _known_selector(cls, name: str) -> str:
        from damoc.filtering.selectors import SELECTORS

        return SELECTORS.check(name)


class SelectConfig(BaselineConfig):
    """A baseline config plus the three compression levers; `None` turns a lever off."""

    filter: FilterSettings | None = Field(default_factory=FilterSettings)
    compress: CompressConfig | None = Field(default_factory=CompressConfig)
    prune: PruneConfig | None = Field(default_factory=PruneConfig)
    # 8, 16, 32 and 64 texts chose the same layers on NQ-open and ASDiv for both bundled models
    # (bench/results/prune-calibration.json); 16 keeps a margin at half the cost of the former 32.
    calibration_samples: int = Field(16, ge=1, description="compressed training texts for layer similarity")
    adaptive: AdaptiveSettings = Field(default_factory=AdaptiveSettings, json_schema_extra=ADDED_LATER)
    strategy: Literal["fixed", "halving", "adaptive", "zero-shot"] = Field("fixed", json_schema_extra=ADDED_LATER,
                                                                          description=(
        "fixed: every candidate once on the filtered data; halving: successive halving; adaptive: learning "
        "curves on growing prefixes of the selector's order over the whole training split, extrapolated to its "
        "full size, candidates raced out, stopped when one is confidently best; zero-shot: no training, each "
        "model evaluated as it is (the free guess; methods of one model tie)"))
    zero_shot: bool = Field(True, json_schema_extra=ADDED_LATER, description=(
        "also evaluate each model untrained on the same questions, show that ranking beside this run's and say "
        "where they disagree (its cost is counted); --no-zero-shot skips it"))
    halving: bool = Field(False, description="successive halving: all candidates on 1/n of the compressed data, "
                          "the better half on twice as much, until one is left")

    @model_validator(mode="after")
    def _one_strategy(self) -> SelectConfig:
        if self.halving and self.strategy == "fixed":
            self.strategy = "halving"  # the older switch
        self.halving = self.strategy == "halving"
        return self

    @model_validator(mode="after")
    def _quantized_layers_stay_as_loaded(self) -> SelectConfig:
        if self.quantization != "none" and self.prune is not None and self.prune.merge != "none":
            raise ValueError(f"the {self.prune.merge} layer merge rewrites weights, which 4-bit weights cannot take: "
                             "use prune merge none (or no pruning) with quantization 4bit")
        return self

    def baseline(self) -> BaselineConfig:
        return BaselineConfig(**self.model_dump(include=set(BaselineConfig.model_fields)))


def data_stage(config: SelectConfig, task: Task, out: Path, progress: bool) -> tuple[list, dict]:
    """The compressed training data, made once and cached by the hash of what decides it."""
    train, _ = select_examples(task, config, quiet=True)
    key = stable_hash({"task": task.name, "split": SPLIT_VERSION,
                       "data": config.model_dump(mode="json", include={"task", "data"}),
                       "data_files": data_fingerprint(config),
                       "train_limit": config.train_limit, "seed": config.seed,
                       "filter": config.filter.model_dump() if config.filter else None,
                       "compress": config.compress.model_dump() if config.compress else None})
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


def halving_shares(n: int) -> list[float]:
    """Share of the compressed data per successive-halving round for n candidates: 1/n, 2/n,
    4/n, ... while more than one is left, so every round costs about the same as the first."""
    return [min(1.0, 2**r / n) for r in range(math.ceil(math.log2(n)))] if n > 1 else [1.0]


_name = display_name


def by_name(config: SelectConfig, record: dict) -> Candidate:
    return next(c for c in config.candidates if c.name == display_name(record))


def run_select(config: SelectConfig, out: str | Path, progress: bool = True, validate: bool = False,
               on_event: Callable[[str, dict], None] | None = None,
               launch_settings: LaunchSettings | None = None) -> dict:
    """The DaMoC ranking (and with `validate`, the comparison with full fine-tuning); the run folder
    is checked (writable, made by damoc or empty) and locked before any work, after the models and the
    questions' lengths are (`preflight`)."""
    from damoc.selection.preflight import preflight

    preflight(config)
    with run_folder(out, "select") as folder:
        return _run_select(config, folder, progress, validate, on_event, launch_settings)


def _run_select(config: SelectConfig, out: Path, progress: bool, validate: bool,
                on_event: Callable[[str, dict], None] | None, launch_settings: LaunchSettings | None) -> dict:
    from damoc.layers.calibration import example_texts

    notify = on_event or (lambda kind, info: None)
    task = load_task(config.task, config.data)
    _, test = select_examples(task, config)
    if config.strategy == "zero-shot":
        notify("stage", {"name": "zero-shot evaluation", "candidates": len(_models(config))})
        zero = zero_shot(config, task, test, out, progress, notify, launch_settings)
        summary = summarise(config, task, {}, zero["candidates"], [], {k: Path(v) for k, v in zero["folders"].items()})
        summary["zero_shot"] = _zero_shot_summary(zero, None)
        summary["cost"].update(zero_shot_cost(zero))
        return _finish_select(config, task, summary, [], test, out, progress, validate, on_event, launch_settings)
    notify("stage", {"name": "data"})
    adaptive = config.strategy == "adaptive"
    if adaptive:  # the selector orders the whole training split; rungs are prefixes of that order
        ordering = config.filter.model_copy(update={"rate": 1.0, "budget": None}) if config.filter else None
        examples, data = data_stage(config.model_copy(update={"filter": ordering}), task, out, progress)
    else:
        examples, data = data_stage(config, task, out, progress)
    texts = example_texts(examples[: config.calibration_samples])
    scored = test[: config.adaptive.eval_questions] if adaptive else test

    def jobs(candidates: list[Candidate], train: list, folder: Path, extra: dict) -> list[Job]:
        return [Job(c, folder / c.slug, stable_hash({"key": candidate_key(config, c), **extra}) if extra
                    else candidate_key(config, c),
                    partial(run_candidate, config, c, task, train, scored, progress,
                            pruner(config, c, texts) if config.prune is not None else None),
                    legacy=[folder / c.legacy_slug])
                for c in candidates]

    if adaptive:
        summary = run_adaptive(config, task, data, examples, len(examples), jobs, out, notify, launch_settings,
                               summarise)
    elif not config.halving:
        notify("stage", {"name": "candidates", "candidates": len(config.candidates)})
        results = launch(jobs(config.candidates, examples, out / "candidates", {}), launch_settings, notify)
        folders = {_name(r): out / "candidates" / c.slug for r, c in zip(results, config.candidates)}
        summary = summarise(config, task, data, rank(task.primary_metric, [dict(r) for r in results]), results,
                            folders)
    else:
        summary = _halving(config, task, data, examples, jobs, out, notify, launch_settings)
    if config.zero_shot:
        notify("stage", {"name": "zero-shot evaluation (the free guess)", "candidates": len(_models(config))})
        zero = zero_shot(config, task, scored, out, progress, notify, launch_settings)
        summary["zero_shot"] = _zero_shot_summary(zero, summary["candidates"])
        summary["cost"].update(zero_shot_cost(zero))
    return _finish_select(config, task, summary, examples, test, out, progress, validate, on_event, launch_settings)


def _models(config: SelectConfig) -> set[str]:
    from damoc.selection.candidate import model_identity

    return {model_identity(c.model) for c in config.candidates}


def zero_shot_cost(zero: dict) -> dict:
    return {"zero_shot_eval_seconds": zero["cost"]["eval_seconds"], "zero_shot_eval_flops": zero["cost"]["eval_flops"]}


def _zero_shot_summary(zero: dict, ranked: list[dict] | None) -> dict:
    from damoc.selection.zero_shot import disagreements

    out = {k: zero[k] for k in ("note", "ranking_models", "metrics", "failed", "cost")}
    if ranked is not None:
        out["comparison"] = disagreements(zero, ranked)
    return out


def _finish_select(config: SelectConfig, task: Task, summary: dict, examples: list, test: list, out: Path,
                   progress: bool, validate: bool, on_event: Callable[[str, dict], None] | None,
                   launch_settings: LaunchSettings | None) -> dict:
    """Validation (with `validate`), then results.json and the reports."""
    notify = on_event or (lambda kind, info: None)
    summary.update({"train_examples": len(examples), "test_examples": len(test),
                    **label_stats(task, examples, test)})
    if validate:
        notify("stage", {"name": "full fine-tuning (validation)", "candidates": len(config.candidates)})
        full = run_baseline(config.baseline(), out / "full", progress=progress, on_event=on_event,
                            launch_settings=launch_settings, warn_labels=False)
        both = ({_name(r) for r in summary["candidates"] if is_ok(r)}
                & {_name(r) for r in full["candidates"] if is_ok(r)})
        if len(both) < 2:  # nothing to compare: say so rather than fail the run after all that work
            summary["validation_skipped"] = (f"{len(both)} candidate(s) finished on both routes; comparing "
                                             "rankings needs two (see each candidate's error)")
        else:
            summary["validation"] = validation(task, summary, full)
        preds = _predictions({_name(r): out / "full" / "candidates" / by_name(config, r).slug
                              for r in full["candidates"] if is_ok(r)})
        if len(preds) >= 2 and "validation" in summary:
            from damoc.selection.confidence import tie_set
            from damoc.selection.validation import judge

            truth = tie_set(preds, choice=task.is_choice, seed=config.seed)
            summary["validation"]["full_confidence"] = {k: truth[k] for k in ("prob_best", "pairs", "samples")
                                                        if k in truth}
            summary["validation"]["truth_tie_set"] = truth["tie_set"]
            cheap = {_name(r): r["rank"] for r in summary["candidates"] if is_ok(r) and _name(r) in preds}
            if cheap:
                summary["validation"]["judged"] = judge(cheap, truth, task.is_choice)
    write_json_atomic(out / "results.json", summary)
    from damoc.report import select_html, select_report  # matplotlib: loaded only when reporting

    markdown = select_report(summary)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", select_html(summary, markdown))
    return summary


def _halving(config: SelectConfig, task: Task, data: dict, examples: list, jobs: Callable, out: Path,
             notify: Callable[[str, dict], None], launch_settings: LaunchSettings | None) -> dict:
    """Successive halving: every round trains the survivors on a longer prefix of the compressed
    data (the filter's order, best first) and keeps the better half. The final order is the last
    round's ranking, then each earlier round's eliminated candidates in their round's order."""
    survivors, runs, rounds, eliminated, folders = list(config.candidates), [], [], [], {}
    for r, share in enumerate(halving_shares(len(survivors)), start=1):
        n = max(1, math.ceil(share * len(examples)))
        folder = out / "halving" / f"round-{r}"
        notify("stage", {"name": f"halving round {r}: {len(survivors)} candidates on {n} examples",
                         "candidates": len(survivors)})
        results = launch(jobs(survivors, examples[:n], folder, {"halving_examples": n}), launch_settings, notify)
        runs += results
        ranked = rank(task.primary_metric, [dict(x) for x in results])
        keep = [x for x in ranked if is_ok(x)][: math.ceil(len(survivors) / 2)]
        for x in ranked:
            folders[_name(x)] = folder / by_name(config, x).slug
        rounds.append({"round": r, "share": share, "examples": n, "ranking": [_name(x) for x in ranked],
                       "kept": [_name(x) for x in keep]})
        eliminated = [x for x in ranked if x not in keep] + eliminated
        survivors = [by_name(config, x) for x in keep]
        if len(survivors) <= 1:
            break
    final = keep + eliminated
    for i, x in enumerate(y for y in final if is_ok(y)):
        x["rank"] = i + 1
    summary = summarise(config, task, data, final, runs, {k: v for k, v in folders.items()
                                                          if k in {_name(x) for x in keep}})
    summary["halving"] = {"rounds": rounds,
                          "note": "candidates eliminated early were trained on less data; their metrics are "
                                  "from their last round and only the finalists enter the bootstrap"}
    return summary


def _predictions(folders: dict[str, Path]) -> dict[str, list[dict]]:
    return {name: read_jsonl(folder / "predictions.jsonl") for name, folder in folders.items()
            if (folder / "predictions.jsonl").exists()}


def summarise(config: SelectConfig, task: Task, data: dict, ranked: list[dict], runs: list[dict],
              folders: dict[str, Path]) -> dict:
    """`ranked`: the final order (ranks set); `runs`: every training run paid for (several per
    candidate under successive halving), for the cost; `folders`: where ranked candidates'
    predictions are, for the bootstrap."""
    from damoc.selection.confidence import degenerate, paired_bootstrap

    ok = [r for r in ranked if is_ok(r)]
    by_bpb = sorted(ok, key=lambda r: r["metrics"]["answer_bpb"])
    preds = _predictions({k: v for k, v in folders.items() if k in {_name(r) for r in ok}})
    confidence = paired_bootstrap(preds, seed=config.seed) if len(preds) >= 2 and task.is_choice else None
    verdict_ = verdict(ok, preds, task.is_choice, config.seed, boot=confidence)
    warnings = [f"{name} {why}: it has not learned the task at this budget, so its rank says little"
                for name, why in degenerate(preds).items()]
    paid = [r for r in runs if is_ok(r)]
    cost = {"train_seconds": sum(r["train_seconds"] for r in paid),
            "train_flops": sum(r["train_flops"] for r in paid),
            "prune_seconds": sum(r.get("prune", {}).get("seconds", 0.0) for r in paid),
            "prune_flops": sum(r.get("prune", {}).get("forward_flops", 0.0) for r in paid),
            "eval_seconds": sum(r.get("eval_seconds", 0.0) for r in paid),
            "load_seconds": sum(r.get("load_seconds", 0.0) for r in paid), "training_runs": len(paid)}
    return {
        "task": task.name, "primary_metric": task.primary_metric,
        "data": {k: v for k, v in data.items() if k != "key"},
        "candidates": [{k: v for k, v in r.items() if k != "traceback"} for r in ranked],
        "ranking_bpb": [_name(r) for r in by_bpb],
        "confidence": confidence,
        "verdict": verdict_,
        "warnings": warnings,
        "cost": cost,
        # Every run paid for (several per candidate under halving or adaptive), for costing them.
        "paid_runs": [{"model": r["model"], "method": r["method"],
                       **({"options": r["options"]} if r.get("options") else {}),
                       "examples": r.get("train", {}).get("examples"),
                       "eval_examples": r.get("eval_examples"), "train_flops": r["train_flops"],
                       "layers_after": r.get("prune", {}).get("layers_after")} for r in paid],
        "seconds": {"data_stage": sum(data.get("seconds", {}).values()),
                    "candidates": cost["load_seconds"] + cost["prune_seconds"] + cost["train_seconds"]
                    + cost["eval_seconds"]},
        "config": config.model_dump(mode="json"), "machine": machine(), "versions": versions(),
    }


TIE_RULE = ("when the compressed ranking cannot tell its leaders apart (within 2 paired standard errors of the "
            "best on the primary metric), recommend the cheapest of them to fine-tune: the fewest training FLOPs in "
            "this run (smaller model; LoRA before full), then the better bits per byte")


def verdict(ok: list[dict], preds: dict[str, list[dict]], choice: bool, seed: int,
            boot: dict | None = None) -> dict | None:
    """The pick, honest about ties: the compressed ranking's own tie set, and a documented rule
    for choosing within it instead of a silent coin toss."""
    from damoc.selection.confidence import tie_set

    if not ok:
        return None
    if len(preds) < 2:
        return {"tie_set": [_name(ok[0])], "tied": False, "recommended": _name(ok[0]), "rule": TIE_RULE}
    ties = tie_set(preds, choice=choice, seed=seed, boot=boot)
    by_name = {_name(r): r for r in ok}
    members = [n for n in ties["tie_set"] if n in by_name]
    recommended = min(members, key=lambda n: (by_name[n]["train_flops"], by_name[n]["metrics"]["answer_bpb"]))
    return {"tie_set": members, "tied": len(members) > 1, "recommended": recommended,
            "best_by_metric": ties["best"], "differences_to_best": ties["differences"], "rule": TIE_RULE}


def validation(task: Task, damoc: dict, full: dict) -> dict:
    """Agreement with the full fine-tuning ranking, and what the compressed route saved."""
    from damoc.selection.validation import compare_rankings

    def scores(summary: dict, key: str) -> dict[str, float]:
        return {_name(r): r["metrics"][key] for r in summary["candidates"]
                if is_ok(r)}

    primary = task.primary_metric
    higher = higher_is_better(primary)

    def ranked_scores(summary: dict) -> dict[str, float]:
        ok = [r for r in summary["candidates"] if is_ok(r)]
        return {_name(r): -r["rank"] for r in ok}  # ties broken by bits per byte

    out = {"by_rank": compare_rankings(ranked_scores(damoc), ranked_scores(full), higher_is_better=True),
           "by_primary_metric": compare_rankings(scores(damoc, primary), scores(full, primary), higher),
           "by_bpb": compare_rankings(scores(damoc, "answer_bpb"), scores(full, "answer_bpb"), False)}
    chosen = out["by_rank"]["chosen"]
    true = scores(full, primary)
    best = max(true.values()) if higher else min(true.values())
    out["regret"] = abs(best - true[chosen])
    full_ok = [r for r in full["candidates"] if is_ok(r)]
    cost = damoc["cost"]
    full_train = sum(r["train_seconds"] for r in full_ok)
    damoc_train = damoc["seconds"]["data_stage"] + cost["train_seconds"] + cost["prune_seconds"]
    out["speedup_wall"] = full_train / damoc_train if damoc_train else None
    out["speedup_wall_note"] = ("full fine-tuning seconds / (data filtering + compression + pruning + "
                                "compressed training seconds); evaluation, the same on both sides, left out")
    full_flops = sum(r["train_flops"] for r in full_ok)
    damoc_flops = cost["train_flops"]
    overhead_flops = damoc["data"].get("forward_flops", 0.0) + cost["prune_flops"]
    out["speedup_flops_training_only"] = full_flops / damoc_flops if damoc_flops else None
    out["speedup_flops"] = full_flops / (damoc_flops + overhead_flops) if damoc_flops else None
    out["speedup_flops_note"] = ("full fine-tuning FLOPs / (compressed training + the filter's embedding or "
                                 "scoring passes + token scoring, BERTScore and rewriting + layer-similarity "
                                 "passes, each forward pass 2 x matmul parameters x tokens)")
    return out
