"""The zero-shot strategy: no training; each model evaluated as it is (the free guess; the methods of
one model tie). The evaluation itself is damoc.selection.zero_shot, which every other run also uses."""

from __future__ import annotations

from pathlib import Path

from damoc.selection.strategies import Context, strategy
from damoc.selection.summary import add_zero_shot, summarise
from damoc.selection.zero_shot import zero_shot as evaluate_untrained


@strategy("zero-shot", data="none", description="no training, each model evaluated as it is (the free guess; "
                                                "methods of one model tie)")
def zero_shot(ctx: Context) -> dict:
    ctx.notify("stage", {"name": "zero-shot evaluation", "candidates": len(ctx.config.candidates)})
    zero = evaluate_untrained(ctx.config, ctx.task, ctx.scored, ctx.out, ctx.progress, ctx.notify, ctx.launch_settings)
    summary = summarise(ctx.config, ctx.task, {}, zero["candidates"], [],
                        {k: Path(v) for k, v in zero["folders"].items()})
    add_zero_shot(summary, zero, None)
    return summary
