"""Successive halving: all candidates on 1/n of the compressed data, the better half on twice as
much, and so on until one is left (every round costs about the first's)."""

from __future__ import annotations

import math

from damoc.selection.candidate import display_name as _name
from damoc.selection.candidate import is_ok, rank
from damoc.selection.launch import launch
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
        results = launch(ctx.jobs(survivors, examples[:n], folder, {"halving_examples": n}), ctx.launch_settings,
                         notify)
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
    summary = summarise(config, task, ctx.data, final, runs, {k: v for k, v in folders.items()
                                                          if k in {_name(x) for x in keep}})
    summary["halving"] = {"rounds": rounds,
                          "note": "candidates eliminated early were trained on less data; their metrics are "
                                  "from their last round and only the finalists enter the bootstrap"}
    return summary
