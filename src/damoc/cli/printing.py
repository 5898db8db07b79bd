"""What commands print: progress lines, the ranking table, plain tables."""

from __future__ import annotations

import sys
from pathlib import Path


def progress_printer(total: int):
    from damoc.selection.candidate import display_name, is_ok

    """One line per candidate as it starts, or is found finished; a line per stage."""
    count = {"n": 0}
    total_ref = [total]

    def on_event(kind: str, info: dict) -> None:
        if kind == "stage":
            print(f"== {info['name']}", file=sys.stderr)
            if "candidates" in info:  # a new round of candidates: count afresh
                count["n"], total_ref[0] = 0, info["candidates"]
        elif kind == "cached":
            count["n"] += 1
            print(f"[{count['n']}/{total_ref[0]}] {display_name(info)}: finished earlier, reused",
                  file=sys.stderr)
        elif kind == "start":
            print(f"[{count['n'] + 1}/{total_ref[0]}] {display_name(info)}: training and evaluating",
                  file=sys.stderr)
        elif kind == "done":
            count["n"] += 1
            if not is_ok(info):
                print(f"    failed: {info['error']}", file=sys.stderr)

    return on_event


def print_ranking(summary: dict) -> None:
    from damoc.selection.candidate import is_ok

    rows = []
    for c in summary["candidates"]:
        m = c.get("metrics", {})
        rows.append({
            "rank": c.get("rank", "-"), "model": c["model"], "method": c["method"],
            "accuracy": _pm(m, "accuracy", pct=True), "answer_bpb": _pm(m, "answer_bpb"),
            "rougeL": _pm(m, "rougeL") if "rougeL" in m else "",
            "train_s": f"{c['train_seconds']:.0f}" if "train_seconds" in c else "",
            "eval_s": f"{c['eval_seconds']:.0f}" if "eval_seconds" in c else "",
            "status": "ok" if is_ok(c) else f"failed: {c.get('error', '')}"[:60],
        })
    cols = ["rank", "model", "method", "accuracy", "answer_bpb", "rougeL", "train_s", "eval_s", "status"]
    if "accuracy" not in summary["primary_metric"]:
        cols.remove("accuracy")
    if not any(r["rougeL"] for r in rows):
        cols.remove("rougeL")
    data = summary.get("data") or {}
    train = (f"{data['input_examples']} -> {summary['train_examples']} (filtered and compressed)"
             if "input_examples" in data else str(summary["train_examples"]))
    ties = " (ties: answer_bpb)" if summary["primary_metric"] != "answer_bpb" else " (lower is better)"
    print(f"\n{summary['task']}: {train} training / {summary['test_examples']} "
          f"test examples, ranked by {summary['primary_metric']}{ties}")
    if "majority_accuracy" in summary:
        print(f"always answering the most common test answer would score "
              f"{100 * summary['majority_accuracy']:.1f}%")
    table(cols, rows)


def _pm(m: dict, key: str, pct: bool = False) -> str:
    if key not in m:
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
    print_ranking(summary)
    for r in (summary.get("halving") or {}).get("rounds", []):
        print(f"halving round {r['round']}: {len(r['ranking'])} candidates on {r['examples']} examples, "
              f"kept {', '.join(r['kept'])}")
    from damoc.report.text import num, verdict_sentence, warnings, zero_shot_lines

    for line in warnings(summary):
        print(f"warning: degenerate predictions: {line}")
    sentence = verdict_sentence(summary.get("verdict"))
    if sentence:
        print(sentence)
    for line in zero_shot_lines(summary):
        print(line)
    conf = summary.get("confidence")
    if conf:
        print("probability of ranking first (paired bootstrap): "
              + ", ".join(f"{n} {p:.2f}" for n, p in sorted(conf["prob_best"].items(), key=lambda x: -x[1])))
    if summary.get("validation_skipped"):
        print(f"\nvalidation skipped: {summary['validation_skipped']}")
    if summary.get("validation"):
        v = summary["validation"]
        r = v["by_rank"]
        print(f"\nvalidation against full fine-tuning: chosen {r['chosen']}, truly best {r['best']}, "
              f"top-1 match {r['top1_match']}, Kendall tau {num(r['kendall_tau'])}, "
              f"Spearman rho {num(r['spearman_rho'])}, regret {v['regret']:.4f}; speed-up "
              f"{num(v['speedup_wall'], '.1f')}x wall time, {num(v['speedup_flops'], '.1f')}x FLOPs "
              "(overheads counted)")
        j = v.get("judged")
        if j:
            print(f"full fine-tuning's tie set: {', '.join(j['truth_tie_set'])}; the pick is in it: {j['in_tie_set']}; "
                  f"regret {j['regret']:.4f} ± {j['regret_se']:.4f}")
    print(f"\nresults: {Path(out) / 'results.json'}\nreport:  {Path(out) / 'report.html'}")


def _flops(x: float) -> str:
    return f"{x:.3g}"


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    """A number as `spec` formats it, or n/a where it is unknown (None: e.g. a ratio over zero)."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def print_estimate(e: dict) -> None:
    """Per candidate: tokens and FLOPs of full fine-tuning beside damoc's; then the data stage and totals."""
    rows = [{"candidate": r["candidate"], "layers": f"{r['layers'] - r['layers_removed']}/{r['layers']}",
             "full tokens": f"{r['full']['tokens']:.3g}", "full FLOPs": _flops(r["full"]["flops"]),
             "damoc tokens": f"{r['damoc']['tokens']:.3g}", "steps": str(r["damoc"]["steps"]),
             "damoc FLOPs": _flops(r["damoc"]["flops"] + r["damoc"]["prune_flops"])} for r in e["candidates"]]
    table(["candidate", "layers", "full tokens", "full FLOPs", "damoc tokens", "steps", "damoc FLOPs"], rows)
    d, stage = e["data"], e["data_stage_flops"]
    print(f"\ndata: {d['input_examples']} examples, {d['kept_examples']} kept; data stage FLOPs: filter "
          f"{_flops(stage['filter'])}, compression {_flops(stage['compress_surprisal'] + stage['compress_bertscore'])}")
    print(f"full fine-tuning: {_flops(e['full_flops'])} FLOPs; damoc: {_flops(e['damoc_train_flops'])} training + "
          f"{_flops(e['damoc_overhead_flops'])} data stage and pruning")
    print(f"predicted saving: {_fmt(e['speedup_flops'], '.1f', 'x')} FLOPs with every overhead "
          f"({_fmt(e['speedup_flops_training_only'], '.1f', 'x')} training only; overhead "
          f"{_fmt(e['data_stage_flops_share'], '.0%')} of damoc's training)")
    if "full_hours" in e:
        print(f"at {e['throughput_flops_per_second']:.3g} FLOP/s: full {e['full_hours']:.3g} h, "
              f"damoc {e['damoc_hours']:.3g} h")
    for note in e["notes"]:
        print(f"note: {note}")
