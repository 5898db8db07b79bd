"""Adaptive selection as a strategy: learning curves on growing prefixes of the selector's order
over the whole training split (the racing and the curves are in damoc.selection.adaptive)."""

from __future__ import annotations

from damoc.selection.adaptive import run_adaptive
from damoc.selection.strategies import Context, strategy
from damoc.selection.summary import summarise


@strategy("adaptive", data="ordered",
          description="learning curves on growing prefixes of the selector's order over the whole training split, "
                      "extrapolated to its full size, candidates raced out, stopped when one is confidently best")
def adaptive(ctx: Context) -> dict:
    return run_adaptive(ctx.config, ctx.task, ctx.data, ctx.examples, len(ctx.examples), ctx.jobs, ctx.out,
                        ctx.notify, ctx.launch_settings, summarise)
