"""`damoc select`, read top to bottom: check the inputs, claim the run folder, make the data the
strategy needs, run the strategy, put the zero-shot free guess beside its ranking, validate against
full fine-tuning when asked, and write results.json, report.md and report.html.

The pieces: settings in config.py; the data stage in data.py; one candidate's run in runner.py;
the strategies (fixed, halving, adaptive, zero-shot) in strategies/; the verdict, confidence and
cost in summary.py; the schema every reader uses in results.py. Every stage is cached in the run
folder, so re-running resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from damoc.compat import strategy_named
from damoc.io import run_folder, write_json_atomic, write_text_atomic
from damoc.selection.config import SelectConfig
from damoc.selection.data import data_stage
from damoc.selection.launch import LaunchSettings
from damoc.selection.preflight import preflight
from damoc.selection.runner import fine_tune_all, label_stats, select_examples
from damoc.selection.strategies import STRATEGIES, Context
from damoc.selection.summary import add_validation, add_zero_shot
from damoc.selection.zero_shot import zero_shot
from damoc.tasks import load_task


def run_select(config: SelectConfig, out: str | Path, progress: bool = True, validate: bool = False,
               on_event: Callable[[str, dict], None] | None = None,
               launch_settings: LaunchSettings | None = None) -> dict:
    """The DaMoC ranking (and with `validate`, the comparison with full fine-tuning). The models and the
    questions' lengths are checked before anything is written (`preflight`); then the run folder is
    claimed (writable, made by damoc or empty) and locked."""
    preflight(config)
    with run_folder(out, "select") as folder:
        return _run_select(config, folder, progress, validate, on_event, launch_settings)


def _run_select(config: SelectConfig, out: Path, progress: bool, validate: bool,
                on_event: Callable[[str, dict], None] | None, launch_settings: LaunchSettings | None) -> dict:
    notify = on_event or (lambda kind, info: None)
    task = load_task(config.task, config.data)
    _, test = select_examples(task, config)
    # `halving: true` is the older switch (also set by model_copy, which skips the config's validators)
    strategy = STRATEGIES.get(strategy_named(config.halving, config.strategy))
    ctx = Context(config, task, test[: config.adaptive.eval_questions] if strategy.data == "ordered" else test,
                  out, progress, notify, launch_settings)
    if strategy.data != "none":
        notify("stage", {"name": "data"})
        # "ordered": the selector orders the whole training split; the strategy trains on prefixes of it
        ordering = config.filter.model_copy(update={"rate": 1.0, "budget": None}) if config.filter else None
        data_config = config.model_copy(update={"filter": ordering}) if strategy.data == "ordered" else config
        ctx.examples, ctx.data = data_stage(data_config, task, out, progress)
    summary = strategy.run(ctx)
    if config.zero_shot and strategy.name != "zero-shot":
        notify("stage", {"name": "zero-shot evaluation (the free guess)", "candidates": len(config.candidates)})
        questions = ctx.scored[: config.zero_shot_questions]
        add_zero_shot(summary, zero_shot(config, task, questions, out, progress, notify, launch_settings),
                      summary["candidates"])
    summary.update({"train_examples": len(ctx.examples), "test_examples": len(test),
                    **label_stats(task, ctx.examples, test)})
    if validate:
        notify("stage", {"name": "full fine-tuning (validation)", "candidates": len(config.candidates)})
        full = fine_tune_all(config.baseline(), out / "full", progress=progress, on_event=on_event,
                             launch_settings=launch_settings, warn_labels=False)
        add_validation(summary, config, task, full, out / "full")
    write_json_atomic(out / "results.json", summary)
    from damoc.report import select_html, select_report  # matplotlib: loaded only when reporting

    markdown = select_report(summary)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", select_html(summary, markdown))
    return summary
