"""The default strategy: every candidate trained once on the filtered, compressed data."""

from __future__ import annotations

from damoc.selection.candidate import rank
from damoc.selection.launch import launch
from damoc.selection.strategies import Context, strategy
from damoc.selection.summary import summarise


@strategy("fixed", description="every candidate once on the filtered data")
def fixed(ctx: Context) -> dict:
    candidates = ctx.config.candidates
    ctx.notify("stage", {"name": "candidates", "candidates": len(candidates)})
    folder = ctx.out / "candidates"
    results = launch(ctx.jobs(candidates, ctx.examples, folder), ctx.launch_settings, ctx.notify)
    folders = {c.name: folder / c.slug for c in candidates}
    return summarise(ctx.config, ctx.task, ctx.data, rank(ctx.task.primary_metric, [dict(r) for r in results]),
                     results, folders)
