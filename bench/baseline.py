"""Benchmark: the full fine-tuning baseline ranking of the four bundled candidates on PubMedQA.

{smollm2-135m-instruct, gemma3-270m} x {lora, full}, trained one epoch on a seeded sample of
the training split and evaluated on the fixed 300-question test split (expert labels).
Writes bench/results/baseline-pubmedqa.json and a plot. Resumable: the run folder keeps
finished candidates, so re-running after an interruption continues.

    .venv/bin/python bench/baseline.py [--train-limit 200] [--max-seq-len 224]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from damoc.finetune import FinetuneConfig
from damoc.io import write_json_atomic
from damoc.selection import BaselineConfig, Candidate, run_baseline
from damoc.selection.candidate import is_ok
from damoc.selection.confidence import paired_bootstrap

ROOT = Path(__file__).resolve().parent
MODELS = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-limit", type=int, default=200)
    ap.add_argument("--test-limit", type=int, default=None, help="default: the whole test split")
    ap.add_argument("--max-seq-len", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "bench-baseline-pubmedqa")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "baseline-pubmedqa.json")
    args = ap.parse_args()

    config = BaselineConfig(
        task="pubmedqa",
        candidates=[Candidate(model=m, method=meth) for m in MODELS for meth in ("lora", "full")],
        finetune=FinetuneConfig(max_seq_len=args.max_seq_len, epochs=1.0, batch_size=8,
                                micro_batch_size=4, seed=args.seed),
        train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed,
    )
    start = time.perf_counter()
    summary = run_baseline(config, args.run_dir, progress=True,
                           on_event=lambda kind, info: print(kind, info.get("model"), info.get("method"),
                                                             flush=True))
    # Finished candidates are reused on a re-run, so the cost is summed from their own records.
    summary["invocation_wall_seconds"] = time.perf_counter() - start
    summary["candidates_total_seconds"] = sum(
        c.get("load_seconds", 0) + c.get("train_seconds", 0) + c.get("eval_seconds", 0)
        for c in summary["candidates"])
    summary["command"] = "python bench/baseline.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("train_limit", "max_seq_len", "seed"))
    summary["candidates"] = [
        {k: c.get(k) for k in ("rank", "model", "method", "status", "metrics", "train_seconds",
                               "train_tokens", "tokens_per_second", "train_flops", "eval_seconds",
                               "eval_examples", "load_seconds", "train", "error")}
        for c in summary["candidates"]
    ]
    summary["confidence"] = confidence(args.run_dir, config)
    write_json_atomic(args.out, summary)
    plot(summary, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


def confidence(run_dir: Path, config: BaselineConfig) -> dict:
    """Paired bootstrap over the test questions, from the per-question predictions kept in the run."""
    import json

    preds = {}
    for c in config.candidates:
        path = run_dir / "candidates" / c.slug / "predictions.jsonl"
        if path.exists():
            preds[f"{c.model.removeprefix('bundled:')} {c.method}"] = [
                json.loads(line) for line in path.read_text().splitlines() if line]
    return paired_bootstrap(preds, seed=config.seed) if len(preds) > 1 else {}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in summary["candidates"] if is_ok(c)]
    names = [f"{c['model'].removeprefix('bundled:').split('-')[0]}\n{c['method']}" for c in ok]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, label, scale in [(axes[0], "accuracy", "test accuracy (%)", 100),
                                  (axes[1], "answer_bpb", "answer bits per byte (lower is better)", 1)]:
        vals = [scale * c["metrics"][key] for c in ok]
        errs = [scale * c["metrics"][f"{key}_se"] for c in ok]
        ax.bar(names, vals, yerr=errs, capsize=4, color="tab:blue")
        ax.set_title(label)
    if "majority_accuracy" in summary:
        axes[0].axhline(100 * summary["majority_accuracy"], color="k", ls="--", lw=1,
                        label="always the commonest answer")
        axes[0].legend(loc="lower right", fontsize=8)
    axes[2].bar(names, [c["train_seconds"] for c in ok], color="tab:orange", label="train")
    axes[2].bar(names, [c["eval_seconds"] for c in ok], bottom=[c["train_seconds"] for c in ok],
                color="tab:gray", label="evaluate")
    axes[2].set_title("seconds (2 CPU cores)")
    axes[2].legend()
    for ax in axes:
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"Full fine-tuning baseline on {summary['task']}: {summary['train_examples']} train / "
                 f"{summary['test_examples']} test examples, 1 epoch (error bars: bootstrap SE)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
