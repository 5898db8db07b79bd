"""Successive halving: all candidates on 1/n of the compressed data, the better half on twice as
much, and so on until one is left (every round costs about the first's training). Under sequential
evaluation (the default) a round scores its candidates only until its better half is decided."""

from __future__ import annotations

import math

from damoc.selection.batched import score_in_batches
from damoc.selection.candidate import display_name as _name
from damoc.selection.candidate import is_ok, rank
from damoc.selection.launch import launch
from damoc.selection.sequential import looks, part_decided, part_settled, z_for
from damoc.selection.strategies import Context, strategy
from damoc.selection.summary import summarise


def halving_shares(n: int) -> list[float]:
    """Share of the compressed data per successive-halving round for n candidates: 1/n, 2/n,
    4/n, ... while more than one is left, so every round costs about the same as the first."""
    return [min(1.0, 2**r / n) for r in range(math.ceil(math.log2(n)))] if n > 1 else [1.0]


def by_name(config, record: dict):
    return next(c for c in config.candidates if c.name == _name(record))


@strategy("halving", description="successive halving: every candidate on a share of the compressed data, the "
                                 "better half on twice as much, until one is left")
def halving(ctx: Context) -> dict:
    """Successive halving: every round trains the survivors on a longer prefix of the compressed
    data (the filter's order, best first) and keeps the better half. The final order is the last
    round's ranking, then each earlier round's eliminated candidates in their round's order."""
    config, task, examples, out, notify = ctx.config, ctx.task, ctx.examples, ctx.out, ctx.notify
    survivors, runs, rounds, eliminated, folders = list(config.candidates), [], [], [], {}
    for r, share in enumerate(halving_shares(len(survivors)), start=1):
        n = max(1, math.ceil(share * len(examples)))
        folder = out / "halving" / f"round-{r}"
        notify("stage", {"name": f"halving round {r}: {len(survivors)} candidates on {n} examples",
                         "candidates": len(survivors)})
        keeps = math.ceil(len(survivors) / 2)
        if config.eval.strategy == "sequential":
            results, paid, scored_on, stopped = _scored_in_batches(ctx, survivors, examples[:n], folder, keeps)
        else:
            results = launch(ctx.jobs(survivors, examples[:n], folder, {"halving_examples": n}), ctx.launch_settings,
                             notify)
            paid, scored_on, stopped = results, {c.name: folder / c.slug for c in survivors}, "every question"
        runs += paid
        ranked = rank(task.primary_metric, [dict(x) for x in results])
        keep = [x for x in ranked if is_ok(x)][:keeps]
        folders.update({_name(x): scored_on[_name(x)] for x in ranked if _name(x) in scored_on})
        rounds.append({"round": r, "share": share, "examples": n, "ranking": [_name(x) for x in ranked],
                       "kept": [_name(x) for x in keep],
                       "questions": max((x.get("eval_examples") or 0 for x in ranked), default=0), "stopped": stopped})
        eliminated = [x for x in ranked if x not in keep] + eliminated
        survivors = [by_name(config, x) for x in keep]
        if len(survivors) <= 1:
            break
    final = keep + eliminated
    for i, x in enumerate(y for y in final if is_ok(y)):
        x["rank"] = i + 1
    summary = summarise(config, task, ctx.data, final, runs, {k: v for k, v in folders.items()
                                                          if k in {_name(x) for x in keep}})
    summary["halving"] = {"rounds": rounds, "evaluation": config.eval.strategy,
                          "note": "candidates eliminated early were trained on less data; their metrics are "
                                  "from their last round and only the finalists enter the bootstrap"}
    return summary


def _scored_in_batches(ctx: Context, survivors: list, train: list, folder, keeps: int):
    """A round under sequential evaluation: its candidates scored on growing batches of the same questions
    until the better `keeps` are separated (the drop rule's z) or settled (`eval.settle`), instead of all of
    them on every question. Returns each candidate's round record, the runs paid, where its predictions
    on all the questions it saw are, and why the round stopped scoring."""
    config, task, scored, settings = ctx.config, ctx.task, ctx.scored, ctx.config.eval
    plan = looks(min(settings.first, len(scored)), len(scored), settings.growth)
    z = z_for(settings.alpha, len(plan), len(survivors))

    def look(scores: dict, n: int, trained: dict) -> tuple[list[str], str]:
        if part_decided(scores, keeps, z):
            return list(scores), f"the better {keeps} separated after {n} questions"
        if settings.settle and n < len(scored) and part_settled(scores, len(scored), keeps, settings.settle):
            return list(scores), f"the better {keeps} settled after {n} questions"
        return list(scores), ""

    b = score_in_batches(ctx, survivors, train, folder, plan, look, {"halving_examples": len(train)})
    results, places = [], {}
    for c in survivors:
        results.append(b.result(c.name, task.is_choice, config.seed, folder / "sequential" / c.slug))
        if is_ok(results[-1]):
            places[c.name] = folder / "sequential" / c.slug
    return results, b.runs, places, b.stopped
