"""Benchmark: does DaMoC's cheap ranking name the model full fine-tuning would, and how much cheaper?

The four bundled candidates {smollm2-135m-instruct, gemma3-270m} x {lora, full} are fully
fine-tuned once per task (the ground truth, cached in RUN/TASK/full), then ranked by
`damoc select` at the default settings (the headline row), with successive halving, without
LLM rewriting (failing contexts fall back to milder ratios), and across the paper's sweep:
selector {graphcut, random, perplexity} x rate {5%, 10%, 20%} with token compression and
pruning on, and the default selector and rate with token compression off, pruning off, and both
off. Each row is scored against the same full ranking (top-1 match, Kendall tau-b, regret,
wall and FLOP speed-ups with every compression overhead counted).

Rows are written to bench/results/select-TASK.json as they finish (a re-run resumes from the
run folders), with a plot. Order: every task's headline first, then the sweep, so a cut-short
run still has the headlines.

    .venv/bin/python bench/select_validate.py [--tasks pubmedqa boolq] [--train-limit 96] [--test-limit 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import torch

from damoc.finetune import FinetuneConfig
from damoc.io import read_json, write_json_atomic
from damoc.layers import PruneConfig
from damoc.runinfo import machine, versions
from damoc.selection import Candidate
from damoc.selection.baseline import run_baseline
from damoc.selection.candidate import display_name, is_ok
from damoc.selection.pipeline import FilterSettings, SelectConfig, run_select, validation
from damoc.tasks import load_task
from damoc.tokens import CompressConfig

ROOT = Path(__file__).resolve().parent
MODELS = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]


def settings() -> list[tuple[str, dict]]:
    """(row name, SelectConfig overrides): the headline first, then the levers one at a time at the
    default rate, then the other rates (so a cut-short run has the most telling rows)."""
    rows = [("headline", {}), ("halving", {"halving": True}),
            ("no-rewrite", {"compress": CompressConfig(max_tries=0)})]
    rows += [(f"{sel}-0.1", {"filter": FilterSettings(method=sel, rate=0.1)}) for sel in ("random", "perplexity")]
    rows += [("no-compress", {"compress": None}), ("no-prune", {"prune": None}),
             ("no-compress-no-prune", {"compress": None, "prune": None})]
    rows += [(f"{sel}-{rate:g}", {"filter": FilterSettings(method=sel, rate=rate)})
             for rate in (0.05, 0.2) for sel in ("graphcut", "random", "perplexity")]
    return rows


def base_config(task: str, args: argparse.Namespace) -> SelectConfig:
    return SelectConfig(
        task=task,
        candidates=[Candidate(model=m, method=meth) for m in MODELS for meth in ("lora", "full")],
        finetune=FinetuneConfig(max_seq_len=args.max_seq_len, epochs=1.0, batch_size=8, micro_batch_size=4,
                                seed=args.seed),
        train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed,
        filter=FilterSettings(), compress=CompressConfig(), prune=PruneConfig(),
    )


def row(name: str, task: str, config: SelectConfig, summary: dict, val: dict, wall: float) -> dict:
    return {
        "name": name, "task": task,
        "selector": config.filter.method if config.filter else None,
        "rate": config.filter.rate if config.filter else 1.0,
        "token_ratio": config.compress.ratio if config.compress else None,
        "achieved_token_ratio": (summary["data"].get("compress") or {}).get("context_token_ratio"),
        "prune": config.prune is not None, "halving": config.halving,
        "rewrite": bool(config.compress and config.compress.max_tries and config.compress.rewriter),
        "layers_removed": {display_name(c): len(c.get("prune", {}).get("removed", []))
                           for c in summary["candidates"] if is_ok(c)},
        "train_examples": summary["train_examples"],
        "top1_match": val["by_rank"]["top1_match"], "kendall_tau": val["by_rank"]["kendall_tau"],
        "spearman_rho": val["by_rank"]["spearman_rho"], "regret": val["regret"],
        "speedup_wall": val["speedup_wall"], "speedup_flops": val["speedup_flops"],
        "speedup_flops_training_only": val["speedup_flops_training_only"],
        "chosen": val["by_rank"]["chosen"], "true_best": val["by_rank"]["best"],
        "damoc_ranking": [display_name(c) for c in summary["candidates"] if is_ok(c)],
        "damoc_metrics": {display_name(c): c["metrics"] for c in summary["candidates"]
                          if is_ok(c)},
        "prob_best": (summary.get("confidence") or {}).get("prob_best"),
        "seconds": {"data_stage": summary["seconds"]["data_stage"], "candidates": summary["seconds"]["candidates"],
                    "this_invocation": wall},
        "validation": val,
        # The machine is shared: wall speed-ups of rows run beside another job are understated.
        "torch_threads": torch.get_num_threads(), "load_average_at_end": list(os.getloadavg()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["pubmedqa", "boolq"])
    ap.add_argument("--train-limit", type=int, default=96)
    ap.add_argument("--test-limit", type=int, default=100)
    ap.add_argument("--max-seq-len", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="row names to run (default: all)")
    ap.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "bench-select")
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args()

    plan = [(task, name, over) for i, (name, over) in enumerate(settings())
            for task in args.tasks if args.only is None or name in args.only
            if i == 0 or task == args.tasks[0]]  # the sweep on the first task only
    for task, name, over in [] if args.plot_only else plan:
        config = base_config(task, args).model_copy(update=over)
        print(f"== {task} {name}", flush=True)
        full = run_baseline(config.baseline(), args.run_dir / task / "full", progress=True,
                            on_event=lambda kind, info: print(kind, info.get("model"), info.get("method"), flush=True))
        # Rows whose data settings match the headline's reuse its data stage (its recorded seconds
        # and FLOPs still count in every row's speed-up); a different key is simply recomputed.
        shared, own = args.run_dir / task / "headline" / "data", args.run_dir / task / name / "data"
        if name != "headline" and shared.exists() and not own.exists():
            shutil.copytree(shared, own)
        start = time.perf_counter()
        summary = run_select(config, args.run_dir / task / name, progress=True,
                             on_event=lambda kind, info: print(kind, info.get("model"), info.get("method"),
                                                               flush=True))
        val = validation(load_task(task), summary, full)
        record(task, row(name, task, config, summary, val, time.perf_counter() - start), full, args)
    for task in args.tasks:
        path = ROOT / "results" / f"select-{task}.json"
        if path.exists():
            plot(read_json(path), path.with_suffix(".png"))


def record(task: str, new: dict, full: dict, args: argparse.Namespace) -> None:
    path = ROOT / "results" / f"select-{task}.json"
    doc = read_json(path) if path.exists() else {"rows": []}
    doc["rows"] = [r for r in doc["rows"] if r["name"] != new["name"]] + [new]
    doc.update({
        "task": task, "machine": machine(), "versions": versions(), "seed": args.seed,
        "config": {"train_limit": args.train_limit, "test_limit": args.test_limit, "max_seq_len": args.max_seq_len,
                   "candidates": [f"{m} {meth}" for m in MODELS for meth in ("lora", "full")]},
        "command": f"python bench/select_validate.py --tasks {task} --train-limit {args.train_limit} "
                   f"--test-limit {args.test_limit} --max-seq-len {args.max_seq_len} --seed {args.seed}",
        "full": {"majority_accuracy": full.get("majority_accuracy"),
                 "prob_best": full_prob_best(args.run_dir / task / "full"),
                 "ranking": [display_name(c) for c in full["candidates"] if is_ok(c)],
                 "metrics": {display_name(c): c["metrics"] for c in full["candidates"]
                             if is_ok(c)},
                 "train_seconds": {display_name(c): c["train_seconds"] for c in full["candidates"]
                                   if is_ok(c)}},
    })
    write_json_atomic(path, doc)
    print(f"wrote {path} ({len(doc['rows'])} rows)", flush=True)


def full_prob_best(folder: Path) -> dict | None:
    """How sure the ground truth itself is: paired bootstrap over the full fine-tunings' predictions."""
    from damoc.io import read_jsonl
    from damoc.selection.confidence import paired_bootstrap

    preds = {}
    for result in sorted((folder / "candidates").glob("*/result.json")):
        r = read_json(result)
        if is_ok(r) and (result.parent / "predictions.jsonl").exists():
            preds[display_name(r)] = read_jsonl(result.parent / "predictions.jsonl")
    return paired_bootstrap(preds, seed=0)["prob_best"] if len(preds) >= 2 else None


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    names = [r["name"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    axes[0].bar(names, [r["kendall_tau"] for r in rows],
                color=["tab:green" if r["top1_match"] else "tab:red" for r in rows])
    axes[0].set_title("Kendall tau-b vs full fine-tuning\n(green: top-1 match, red: wrong pick)")
    axes[0].axhline(0, color="k", lw=0.8)
    axes[1].bar(names, [r["speedup_wall"] for r in rows], color="tab:blue")
    axes[1].axhline(20, color="k", ls="--", lw=1, label="20x target")
    axes[1].set_title("wall-time speed-up (overheads counted)")
    axes[1].legend()
    axes[2].bar(names, [r["speedup_flops"] for r in rows], color="tab:orange")
    axes[2].set_title("FLOP speed-up (overheads counted)")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.suptitle(f"damoc select vs full fine-tuning on {doc['task']}: 4 candidates, "
                 f"{doc['config']['train_limit']} train / {doc['config']['test_limit']} test examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
