"""The default strategy: every candidate trained once on the filtered, compressed data, and evaluated
on every test question, or (`eval.strategy sequential`) on growing batches of them until the
decision is made (damoc.selection.sequential)."""

from __future__ import annotations

from functools import partial

import numpy as np

from damoc.evaluation.evaluate import metrics_of
from damoc.io import write_jsonl_atomic
from damoc.runinfo import stable_hash
from damoc.selection.candidate import candidate_key, display_name, is_ok, rank
from damoc.selection.launch import Job, launch
from damoc.selection.runner import evaluate_kept
from damoc.selection.sequential import looks, per_question, settled, step, z_for
from damoc.selection.strategies import Context, strategy
from damoc.selection.summary import summarise


@strategy("fixed", description="every candidate once on the filtered data")
def fixed(ctx: Context) -> dict:
    candidates = ctx.config.candidates
    ctx.notify("stage", {"name": "candidates", "candidates": len(candidates)})
    folder = ctx.out / "candidates"
    if ctx.config.eval.strategy == "sequential":
        return _sequential(ctx)
    results = launch(ctx.jobs(candidates, ctx.examples, folder), ctx.launch_settings, ctx.notify)
    folders = {c.name: folder / c.slug for c in candidates}
    return summarise(ctx.config, ctx.task, ctx.data, rank(ctx.task.primary_metric, [dict(r) for r in results]),
                     results, folders)


def _sequential(ctx: Context) -> dict:
    """Train every candidate and score it on the first batch (its trained model kept in its folder);
    then score the survivors on the next batch, drop the clearly worse, and so on."""
    config, task, scored = ctx.config, ctx.task, ctx.scored
    settings = config.eval
    plan = looks(min(settings.first, len(scored)), len(scored), settings.growth)
    z = z_for(settings.alpha, len(plan), len(config.candidates))
    folder = ctx.out / "candidates"
    metric = "accuracy" if task.is_choice else "answer_bpb"
    trainers = ctx.jobs(config.candidates, ctx.examples, folder, {"eval_questions": plan[0]},
                        test=scored[: plan[0]], keep=True)
    first = launch(trainers, ctx.launch_settings, ctx.notify)
    trained = {c.name: r for c, r in zip(config.candidates, first)}
    records = {c.name: _predictions(folder / c.slug) for c, r in zip(config.candidates, first) if is_ok(r)}
    runs, alive = list(first), [c for c in config.candidates if c.name in records]
    seen, dropped, stopped, previous = {}, {}, f"all {len(scored)} questions used", 0
    for i, n in enumerate(plan):
        if i:  # the survivors on the next batch, from their kept models
            batch = scored[previous:n]
            ctx.notify("stage", {"name": f"sequential evaluation: test questions {previous + 1}-{n}",
                                 "candidates": len(alive), "evaluating": True})
            batch_jobs = [Job(c, folder / c.slug / f"questions-{n}",
                              stable_hash({"key": candidate_key(config, c), "eval_questions": [previous, n]}),
                              partial(evaluate_kept, config, c, task, batch, folder / c.slug / "model",
                                      ctx.progress)) for c in alive]
            _retrain_missing(batch_jobs, {c.name: j for c, j in zip(config.candidates, trainers)})
            results = launch(batch_jobs, ctx.launch_settings, ctx.notify)
            runs += results
            for c, r in zip(alive, results):
                if is_ok(r):
                    records[c.name] += _predictions(folder / c.slug / f"questions-{n}")
            alive = [c for c, r in zip(alive, results) if is_ok(r)]
        previous = n
        seen.update({c.name: n for c in alive})
        scores = {c.name: per_question(records[c.name], metric) for c in alive}
        worse, within = step(scores, z, settings.margin)
        dropped.update({name: n for name in worse})
        alive = [c for c in alive if c.name not in worse]
        if len(alive) <= 1 or within:
            stopped = (f"one candidate left after {n} questions" if len(alive) <= 1 else
                       f"the {len(alive)} left are within the tie margin {settings.margin:g} after {n} questions")
            break
        if settings.settle and n < len(scored) and settled(
                {c.name: scores[c.name] for c in alive}, {c.name: trained[c.name]["train_flops"] for c in alive},
                len(scored), settings.settle) is not None:  # the verdict below names the pick, as in every run
            stopped = f"the pick is settled after {n} questions"
            break
    _remove_kept(folder, config.candidates)
    final = {}
    for c in config.candidates:
        r = dict(trained[c.name])
        if is_ok(r):
            mine = [x for x in runs if display_name(x) == c.name]  # its training run and its later batches
            r.update({"metrics": metrics_of(records[c.name], task.is_choice, config.seed),
                      "eval_examples": seen[c.name],
                      "eval_flops": sum(x.get("eval_flops") or 0.0 for x in mine),
                      "eval_seconds": sum(x.get("eval_seconds", 0.0) for x in mine)})
            write_jsonl_atomic(ctx.out / "sequential" / c.slug / "predictions.jsonl", records[c.name])
        final[c.name] = r
    # survivors by the metric, then the dropped (the later, the higher), then failures
    order = rank(task.primary_metric, [final[c.name] for c in alive])
    late_first = sorted(dropped, key=lambda name: (-dropped[name], -np.mean(per_question(records[name], metric))))
    order += [final[name] for name in late_first] + [r for r in final.values() if not is_ok(r)]
    for k, r in enumerate((r for r in order if is_ok(r)), start=1):
        r["rank"] = k
    for name in dropped:
        final[name]["dropped_at_questions"] = dropped[name]
    summary = summarise(config, task, ctx.data, order, runs,
                        {c.name: ctx.out / "sequential" / c.slug for c in alive})
    summary["sequential"] = {"looks": plan, "z": z, "alpha": settings.alpha, "margin": settings.margin,
                             "settle": settings.settle,
                             "questions": seen, "dropped": dropped, "stopped": stopped,
                             "note": "candidates dropped early were scored on fewer questions; only the survivors "
                                     "enter the bootstrap"}
    return summary


def _retrain_missing(batch_jobs: list[Job], trainers: dict[str, Job]) -> None:
    """Kept models are removed once a run has decided; a later run with other settings (more batches)
    may need one back. That batch's job then trains its candidate again first (seeded: the same
    weights on the same device and settings; a GPU's kernels need not be bitwise repeatable) and its
    stored result carries what the training cost, so a re-run from the cache reports it too."""
    from damoc.selection.launch import cached

    for job in batch_jobs:
        if cached(job) is None and not (job.folder.parent / "model").is_dir():
            job.run = partial(_trained_then_scored, trainers[job.candidate.name].run, job.run)


def _trained_then_scored(train, score) -> tuple[dict, list[dict]]:
    trained, _ = train()  # saves the kept model; its first-batch predictions are already on record
    record, predictions = score()
    return {**record, "evaluation_only": False, "retrained": True, "train_flops": trained["train_flops"],
            "train_seconds": trained["train_seconds"], "prune": trained.get("prune", {}),
            "eval_flops": (record.get("eval_flops") or 0.0) + (trained.get("eval_flops") or 0.0),
            "eval_seconds": record.get("eval_seconds", 0.0) + trained.get("eval_seconds", 0.0)}, predictions


def _remove_kept(folder, candidates) -> None:
    """The trained copies kept for later batches (pruned, merged; one per candidate, as large as the
    model) are removed once the decision is made: a run of 8B candidates would otherwise leave
    16 GB per candidate behind. Only folders damoc wrote (`damoc-finetune.json` inside) go."""
    import shutil

    for c in candidates:
        kept = folder / c.slug / "model"
        if (kept / "damoc-finetune.json").is_file():
            shutil.rmtree(kept, ignore_errors=True)


def _predictions(folder) -> list[dict]:
    from damoc.io import read_jsonl

    return read_jsonl(folder / "predictions.jsonl")
