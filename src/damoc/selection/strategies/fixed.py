"""The default strategy: every candidate trained once on the filtered, compressed data, and evaluated
on every test question, or (`eval.strategy sequential`) on growing batches of them until the
decision is made (damoc.selection.sequential)."""

from __future__ import annotations

import numpy as np

from damoc.selection.batched import score_in_batches
from damoc.selection.candidate import is_ok, rank
from damoc.selection.launch import launch
from damoc.selection.sequential import Rule, per_question
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
    rule = Rule.of(len(scored), len(config.candidates), settings.first, settings.growth, settings.alpha,
                   settings.margin, settings.settle, settings.budget)
    plan = rule.plan
    metric = "accuracy" if task.is_choice else "answer_bpb"
    dropped: dict[str, int] = {}
    seen: dict[str, int] = {}  # questions each candidate was scored on (a dropped or failed one keeps its last)

    def look(scores: dict, n: int, trained: dict) -> tuple[list[str], str]:
        ok = {a: r for a, r in trained.items() if is_ok(r)}  # (one that failed to train is never scored)
        # each candidate's evaluation priced at its first batch's cost per question (sequential.budget_passed)
        return rule.look(scores, n, seen, dropped, {a: r["train_flops"] for a, r in ok.items()},
                         {a: (r.get("eval_flops") or 0.0) / plan[0] for a, r in ok.items()})

    b = score_in_batches(ctx, config.candidates, ctx.examples, ctx.out / "candidates", plan, look)
    records, alive = b.records, [c for c in config.candidates if c.name in b.alive]
    final = {}
    for c in config.candidates:
        final[c.name] = b.result(c.name, task.is_choice, config.seed, ctx.out / "sequential" / c.slug)
    # survivors by the metric, then the dropped (the later, the higher), then failures
    order = rank(task.primary_metric, [final[c.name] for c in alive])
    late_first = sorted(dropped, key=lambda name: (-dropped[name], -np.mean(per_question(records[name], metric))))
    order += [final[name] for name in late_first] + [r for r in final.values() if not is_ok(r)]
    for k, r in enumerate((r for r in order if is_ok(r)), start=1):
        r["rank"] = k
    for name in dropped:
        final[name]["dropped_at_questions"] = dropped[name]
    summary = summarise(config, task, ctx.data, order, b.runs,
                        {c.name: ctx.out / "sequential" / c.slug for c in alive},
                        dropped={name: records[name] for name in dropped if name in records})
    summary["sequential"] = {"looks": plan, "z": rule.z, "alpha": settings.alpha, "margin": settings.margin,
                             "settle": settings.settle, "budget": settings.budget,
                             "questions": b.seen, "dropped": dropped, "stopped": b.stopped,
                             "note": "candidates dropped early were scored on fewer questions; only the survivors "
                                     "enter the bootstrap"}
    return summary
