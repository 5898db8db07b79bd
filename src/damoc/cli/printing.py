"""What commands print: progress lines, the ranking table, plain tables."""

from __future__ import annotations

import sys
from pathlib import Path


def progress_printer(total: int):
    """One line per candidate as it starts, or is found finished; a line per stage."""
    from damoc.selection.candidate import display_name, is_ok

    state = {"n": 0, "total": total, "doing": "training and evaluating"}

    def on_event(kind: str, info: dict) -> None:
        if kind == "stage":
            print(f"== {info['name']}", file=sys.stderr)
            if "candidates" in info:  # a new round of candidates (or of test questions): count afresh
                state.update(n=0, total=info["candidates"],
                             doing="evaluating" if info.get("evaluating") else "training and evaluating")
        elif kind == "cached":
            state["n"] += 1
            print(f"[{state['n']}/{state['total']}] {display_name(info)}: finished earlier, reused", file=sys.stderr)
        elif kind == "start":
            print(f"[{state['n'] + 1}/{state['total']}] {display_name(info)}: {state['doing']}", file=sys.stderr)
        elif kind == "done":
            state["n"] += 1
            if not is_ok(info):
                print(f"    failed: {info['error']}", file=sys.stderr)
        elif kind == "zero-shot start":
            print(f"    {info['model']}: evaluating untrained (the zero-shot free guess)", file=sys.stderr)
        elif kind == "zero-shot done" and not is_ok(info):
            print(f"    failed: {info['error']}", file=sys.stderr)

    return on_event


def print_ranking(summary: dict) -> None:
    from damoc.selection.results import SelectResults

    res = SelectResults.model_validate(summary)
    rows = []
    for c in res.candidates:
        rows.append({
            "rank": c.rank or "-", "model": c.model, "method": c.method,
            "accuracy": _pm(c.metrics, "accuracy", pct=True), "answer_bpb": _pm(c.metrics, "answer_bpb"),
            "rougeL": _pm(c.metrics, "rougeL"), "train_s": f"{c.train_seconds:.0f}", "eval_s": f"{c.eval_seconds:.0f}",
            "status": "ok" if c.ok else f"failed: {c.error or ''}"[:60],
        })
    cols = ["rank", "model", "method", "accuracy", "answer_bpb", "rougeL", "train_s", "eval_s", "status"]
    if "accuracy" not in res.primary_metric:
        cols.remove("accuracy")
    if not any(r["rougeL"] for r in rows):
        cols.remove("rougeL")
    data = res.data
    train = (f"{data.input_examples} -> {res.train_examples} (filtered and compressed)"
             if data.input_examples is not None else str(res.train_examples))
    ties = " (ties: answer_bpb)" if res.primary_metric != "answer_bpb" else " (lower is better)"
    print(f"\n{res.task}: {train} training / {res.test_examples} test examples, ranked by {res.primary_metric}{ties}")
    if res.majority_accuracy is not None:
        print(f"always answering the most common test answer would score {100 * res.majority_accuracy:.1f}%")
    table(cols, rows)


def _pm(m: dict, key: str, pct: bool = False) -> str:
    if m.get(key) is None:
        return ""
    v, se = m[key], m.get(f"{key}_se")
    if se is None:
        return f"{100 * v:.1f}" if pct else f"{v:.3f}"
    return f"{100 * v:.1f} ± {100 * se:.1f}" if pct else f"{v:.3f} ± {se:.3f}"


def table(columns: list[str], rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*columns)
    for r in rows:
        t.add_row(*[str(r.get(c, "")) for c in columns])
    # Piped output has no terminal width: do not squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(t)


def print_select(summary: dict, out: Path) -> None:
    """A select run's ranking, verdict, confidence and validation, then where its files are."""
    from damoc.report.text import lighter_sentence, validation_lines, verdict_sentence, zero_shot_lines
    from damoc.selection.results import SelectResults

    print_ranking(summary)
    res = SelectResults.model_validate(summary)
    for r in res.halving.rounds if res.halving else []:
        scored = f", scored on {r.questions} test questions" if r.questions is not None else ""
        print(f"halving round {r.round}: {len(r.ranking)} candidates on {r.examples} examples{scored}, "
              f"kept {', '.join(r.kept)}")
    for line in res.warnings:
        print(f"warning: degenerate predictions: {line}")
    for line in [verdict_sentence(res.verdict), lighter_sentence(res.verdict), *zero_shot_lines(res)]:
        if line:
            print(line)
    if res.confidence is not None:
        ranked = sorted(res.confidence.prob_best.items(), key=lambda x: -x[1])
        print("probability of ranking first (paired bootstrap): " + ", ".join(f"{n} {p:.2f}" for n, p in ranked))
    lines = validation_lines(res)
    if lines:
        print("\nvalidation against full fine-tuning: " + "; ".join(lines))
    print(f"\nresults: {Path(out) / 'results.json'}\nreport:  {Path(out) / 'report.html'}")


def _flops(x: float) -> str:
    return f"{x:.3g}"


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    """A number as `spec` formats it, or n/a where it is unknown (None: e.g. a ratio over zero)."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def print_estimate(estimate: dict) -> None:
    """Per candidate: tokens and FLOPs of full fine-tuning beside damoc's; then the data stage and totals."""
    from damoc.selection.estimated import Estimate

    e = Estimate.model_validate(estimate)
    rows = [{"candidate": r.candidate, "layers": f"{r.layers - r.layers_removed}/{r.layers}",
             "full tokens": f"{r.full.tokens:.3g}", "full FLOPs": _flops(r.full.flops),
             "damoc tokens": f"{r.damoc.tokens:.3g}", "steps": str(r.damoc.steps),
             "damoc FLOPs": _flops(r.damoc.flops + r.damoc.prune_flops)} for r in e.candidates]
    table(["candidate", "layers", "full tokens", "full FLOPs", "damoc tokens", "steps", "damoc FLOPs"], rows)
    d, stage = e.data, e.data_stage_flops
    print(f"\ndata: {d.input_examples} examples, {d.kept_examples} kept; data stage FLOPs: filter "
          f"{_flops(stage.filter)}, compression {_flops(stage.compress_surprisal + stage.compress_bertscore)}")
    print(f"full fine-tuning: {_flops(e.full_flops)} FLOPs; damoc: {_flops(e.damoc_train_flops)} training + "
          f"{_flops(e.damoc_overhead_flops)} data stage and pruning")
    if e.rounds is not None:
        k = e.rounds
        steps = ", ".join(f"{x.candidates} on {x.examples}" for x in k.rounds)
        why = ("as the cheapest or the dearest candidates survive" if k.strategy == "halving" else
               "as the racing decides after its first rungs or never")
        print(f"{k.strategy}: rounds of {steps} examples; training {_flops(k.train_flops_low)} to "
              f"{_flops(k.train_flops_high)} FLOPs {why}")
    print(f"predicted saving: {_fmt(e.speedup_flops, '.1f', 'x')} FLOPs with every overhead "
          f"({_fmt(e.speedup_flops_training_only, '.1f', 'x')} training only; overhead "
          f"{_fmt(e.data_stage_flops_share, '.0%')} of damoc's training)")
    if e.test_examples is not None:
        print(f"evaluation on {e.test_examples} test questions: full {_fmt(e.full_eval_flops, '.3g')}, damoc "
              f"{_fmt(e.damoc_eval_flops, '.3g')} FLOPs (its zero-shot pass included); saving with evaluation: "
              f"{_fmt(e.speedup_flops_with_evaluation, '.1f', 'x')}")
    if e.speedup_flops_with_evaluation_best_case is not None:
        capped = f" or the --eval.budget cap ({e.eval_budget:g}x the training) is reached" if e.eval_budget else ""
        print(f"sequential evaluation: {_fmt(e.speedup_flops_with_evaluation_best_case, '.1f', 'x')} if the first "
              f"batch decides, the figure above if every question is needed{capped}")
    if e.throughput_flops_per_second is not None:
        print(f"at {e.throughput_flops_per_second:.3g} FLOP/s: full {_fmt(e.full_hours, '.3g')} h, "
              f"damoc {_fmt(e.damoc_hours, '.3g')} h")
    for note in e.notes:
        print(f"note: {note}")
