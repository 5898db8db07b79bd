"""Benchmark: does PASER's subset recover a pruned model better than simple choices?

Part `recover`: bundled SmolLM2-135M-Instruct pruned by 25% of its layers (similarity on 32
PubMedQA training prompts, merge none), then LoRA recovery (1 epoch) on subsets of the
bundled multi-source pool chosen by paser, random, ifd and length at budgets of 10% and 20%,
and on the whole pool. Each row: held-out perplexity (pool samples set aside, never
selected), zero-shot accuracy on boolq, pubmedqa and medqa (first --eval-limit test
questions), selection and training seconds. The pruned and original models are the
references.

Part `estimators`: cheaper degradation estimates (the prompt cut to its last N tokens) against the
full JSD: Spearman of per-sample scores, overlap of the top 10%, seconds (-> paser-estimators.json).

Part `scale`: S2RIC clustering time and peak memory (RSS, in its own process) on 50,000
synthetic 384-d unit embeddings drawn around 16 centres.

Writes bench/results/paser-recover.json, paser-scale.json and a plot; rows are added as they
finish, and a re-run skips finished rows.

    .venv/bin/python bench/paser.py [--part recover|scale|all] [--per-source 150] [--max-seq-len 256]
        [--eval-limit 100] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from damoc.io import read_json, write_json_atomic
from damoc.runinfo import machine, versions

ROOT = Path(__file__).resolve().parent
MODEL = "bundled:smollm2-135m-instruct"


def pruned_model(run_dir: Path, seed: int) -> Path:
    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts
    from damoc.models import load_model, load_tokenizer

    out = run_dir / "pruned-smollm2-25"
    if not (out / "config.json").exists():
        tok, model = load_tokenizer(MODEL), load_model(MODEL).eval()
        result = prune_model(model, tok, calibration_texts("pubmedqa", n=32, seed=seed),
                             PruneConfig(max_fraction=0.25, seed=seed))
        save_pruned(model, tok, out, result, {"model": MODEL})
    return out


def part_recover(args: argparse.Namespace) -> None:
    from damoc.finetune import FinetuneConfig
    from damoc.recovery.run import RecoverConfig, run_recover

    pruned = pruned_model(args.run_dir, args.seed)
    path = ROOT / "results" / "paser-recover.json"
    plan = [(m, b) for b in (0.1, 0.2) for m in ("paser", "random", "ifd", "length")] + [("random", 1.0)]
    if args.rows:
        plan = [(r.split(":")[0], float(r.split(":")[1])) for r in args.rows]

    def written() -> dict:
        # Read afresh for every row: two processes may share the machine's cores, each on its rows.
        return read_json(path) if path.exists() else {"rows": []}

    for method, budget in plan:
        label = "full pool" if budget == 1.0 else method
        if (label, budget) in {(r["method"], r["budget"]) for r in written()["rows"]}:
            continue
        print(f"== {method} {budget}", flush=True)
        config = RecoverConfig(
            original=MODEL, pruned=str(pruned), method=method, per_source=args.per_source, seed=args.seed,
            heldout=args.heldout, max_len=args.max_seq_len, eval_limit=args.eval_limit, train=True,
            budget=budget if budget < 1 else 0.999999,  # "the whole pool" as a share
            finetune=FinetuneConfig(method="lora", max_seq_len=args.max_seq_len, batch_size=8, micro_batch_size=4,
                                    learning_rate=args.lr, seed=args.seed))
        s = run_recover(config, args.run_dir / f"{method}-{budget}", progress=True)
        rec = s["recovery"]
        row = {
            "method": label, "budget": budget, "selected": s["selected"],
            "ppl": rec["recovered"]["ppl"], "avg_accuracy": rec["recovered"]["avg_accuracy"],
            "accuracy": rec["recovered"]["accuracy"], "select_seconds": s["select_seconds"],
            "train_seconds": rec["train_seconds"], "selection_share_of_training": s["select_seconds"]
            / rec["train_seconds"], "jsd_cached": s.get("jsd_cached"), "clusters": s.get("clusters"),
            "rejected_by_concept_graph": s.get("rejected_by_concept_graph"),
            "selected_by_source": s["selected_by_source"]}
        doc = written()
        doc["rows"] = [r for r in doc["rows"] if (r["method"], r["budget"]) != (label, budget)] + [row]
        doc.update({"pruned": rec["pruned"], "original": rec["original"], "pool_size": s["pool_size"],
                    "heldout": s["heldout"], "dropped_too_long": s["dropped_too_long"],
                    "pool_by_source": s["pool_by_source"], "machine": machine(), "versions": versions(),
                    "seed": args.seed, "config": {k: str(v) for k, v in vars(args).items()},
                    "command": f"python bench/paser.py --part recover --per-source {args.per_source} "
                               f"--max-seq-len {args.max_seq_len} --eval-limit {args.eval_limit} --lr {args.lr:g}"})
        write_json_atomic(path, doc)
    plot(written(), path.with_suffix(".png"))


def scale_child(n: int, seed: int) -> None:
    """Runs in its own process so that its peak RSS is its own."""
    import resource

    import numpy as np

    from damoc.recovery.cluster import cluster

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, 384))
    x = centres[rng.integers(0, 16, n)] + 0.6 * rng.standard_normal((n, 384))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    start = time.perf_counter()
    result = cluster(x, "auto", seed=seed)  # defaults: 10 neighbours, K tried 1..20
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": seconds, "peak_rss_mb": peak_mb, "clusters_found": result.k,
                      "true_clusters": 16}))


def part_scale(args: argparse.Namespace) -> None:
    rows = []
    for n in (5000, 50000):
        out = subprocess.run([sys.executable, __file__, "--scale-child", str(n), "--seed", str(args.seed)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    write_json_atomic(ROOT / "results" / "paser-scale.json",
                      {"rows": rows, "machine": machine(), "versions": versions(), "seed": args.seed,
                       "command": "python bench/paser.py --part scale",
                       "note": "synthetic 384-d unit embeddings around 16 centres (noise 0.6); cluster(k='auto'), "
                               "K tried 1..20: kNN graph, Laplacian eigenpairs, 20 NMF fits"})


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["rows"]
    names = [f"{r['method']}\n{r['budget']:g}" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].bar(names, [r["ppl"] for r in rows])
    for ref, style in (("pruned", "--"), ("original", ":")):
        axes[0].axhline(doc[ref]["ppl"], color="k", ls=style, lw=1, label=f"{ref} {doc[ref]['ppl']:.1f}")
    axes[0].set_title("held-out perplexity (lower is better)")
    axes[0].legend(fontsize=8)
    axes[1].bar(names, [100 * r["avg_accuracy"] for r in rows])
    for ref, style in (("pruned", "--"), ("original", ":")):
        axes[1].axhline(100 * doc[ref]["avg_accuracy"], color="k", ls=style, lw=1, label=ref)
    axes[1].set_title("mean zero-shot accuracy, % (boolq, pubmedqa, medqa)")
    axes[1].legend(fontsize=8)
    axes[2].bar(names, [r["train_seconds"] for r in rows], label="recovery training")
    axes[2].bar(names, [r["select_seconds"] for r in rows], bottom=[r["train_seconds"] for r in rows],
                label="selection")
    axes[2].set_title("seconds (2 CPU cores)")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"Recovering SmolLM2-135M-Instruct pruned by 25%: pool of {doc['pool_size']} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def part_estimators(args: argparse.Namespace) -> None:
    """Cheaper degradation estimates against the full one (issue 15, item 5): the per-sample JSD
    over the response with the whole prompt, and with the prompt cut to its last N tokens; per
    estimate its seconds and FLOPs (no cache), the Spearman correlation of per-sample scores with
    the full one, and the overlap of the top `--budget` share (what a selection would take)."""
    import numpy as np
    from scipy.stats import spearmanr

    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.degradation import sample_jsd
    from damoc.recovery.paser import encoded
    from damoc.recovery.pool import load_pool
    from damoc.recovery.run import fitting

    pruned = str(pruned_model(args.run_dir, args.seed))
    pool, too_long = fitting(load_pool("bundled:mix", args.per_source, args.seed), MODEL, args.max_seq_len)
    tok = load_tokenizer(MODEL)
    a, b = load_model(MODEL).eval(), load_model(pruned).eval()
    pairs = encoded(tok, pool, args.max_seq_len)
    path = ROOT / "results" / "paser-estimators.json"
    rows, full = [], None
    for cut in [None, *args.cuts]:
        kept = [(ids[max(0, n - cut):], min(n, cut)) if cut else (ids, n) for ids, n in pairs]
        start = time.perf_counter()
        values = np.array(sample_jsd(a, b, [i for i, _ in kept], tok.pad_token_id, batch_size=4,
                                     response_starts=[max(1, n) for _, n in kept]))
        seconds = time.perf_counter() - start
        full = values if cut is None else full
        k = max(1, int(args.budget * len(values)))
        top = set(np.argsort(-values)[:k])
        rows.append({"estimate": "whole prompt" if cut is None else f"last {cut} prompt tokens",
                     "prompt_tokens": cut, "seconds": seconds, "tokens": sum(len(i) for i, _ in kept),
                     "spearman_vs_full": float(spearmanr(values, full).statistic),
                     "top_share_overlap": len(top & set(np.argsort(-full)[:k])) / k})
        print(json.dumps(rows[-1]), flush=True)
        write_json_atomic(path, {"pool": len(pool), "left_out_too_long": too_long, "max_len": args.max_seq_len,
                                 "budget": args.budget, "rows": rows, "machine": machine(), "versions": versions(),
                                 "command": "python bench/paser.py --part estimators " + " ".join(sys.argv[1:])})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["recover", "scale", "estimators", "all"], default="all")
    ap.add_argument("--cuts", type=int, nargs="*", default=[16, 32, 64], help="estimators: prompt tokens kept")
    ap.add_argument("--budget", type=float, default=0.1, help="estimators: the top share compared")
    ap.add_argument("--per-source", type=int, default=150)
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--eval-limit", type=int, default=100)
    # 2e-4 (the LoRA default) barely moves the model in the few steps a 10% subset of a small pool
    # gives: one epoch on 48 samples left held-out perplexity within 1% of the pruned model's.
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "bench-paser")
    ap.add_argument("--rows", nargs="*", metavar="METHOD:BUDGET",
                    help="only these rows, e.g. paser:0.1 random:1.0 (default: all)")
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.seed)
        return
    if args.part in ("scale", "all"):
        part_scale(args)
    if args.part in ("recover", "all"):
        part_recover(args)
    if args.part == "estimators":
        part_estimators(args)


if __name__ == "__main__":
    main()
