"""Benchmark: does PASER's subset recover a pruned model better than simple choices?

Part `recover`: bundled SmolLM2-135M-Instruct pruned by 25% of its layers (similarity on 32
PubMedQA training prompts, merge none), then LoRA recovery (1 epoch, the step floor) on subsets of
the bundled multi-source pool (205 per source: 1,032 to select from after the 256-token limit and
100 held out) chosen by paser, random, ifd and length: at 10% with seeds 0, 1, 2 (the subset for
random and PASER's clustering, the training order for all), at 20% and on the whole pool with
seed 0; one learning rate for all. Each run scores the neutral metrics (held-out answer NLL
given the prompt, WikiText perplexity, zero-shot accuracy on the first 200 BoolQ and PIQA test
questions) and keeps them per item, so that rows pool their seeds and PASER's differences from
the others come with a paired bootstrap SE. The first run of each method in a scratch DAMOC_HOME
is its cold selection cost.

Part `estimators`: cheaper degradation estimates (the prompt cut to its last N tokens, a share of
each cluster measured) against the full JSD on the same pool (-> paser-estimators.json).

Part `scale`: S2RIC clustering time and peak memory (RSS, in its own process) on 50,000
synthetic 384-d unit embeddings drawn around 16 centres.

Writes bench/results/paser-recover.json, paser-scale.json and a plot; rows are added as they
finish, and a re-run skips finished rows. Parts `rebuild` and `table` run nothing: they aggregate,
plot and print from the result files (bench/_paser_report.py).

    DAMOC_HOME=<scratch, models linked> .venv/bin/python bench/paser.py --part recover [--rows paser:0.1:0 ...]
    DAMOC_HOME=<the same> .venv/bin/python bench/paser.py --part estimators [--cuts 16 64] [--samples 0.3]
    .venv/bin/python bench/paser.py --part rebuild    # or --part table: from the result files only
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _common import RESULTS, RUNS, envelope, read_json, write_json_atomic
from _paser_parts import part_estimators, part_scale, part_subsets, scale_child
from _paser_report import DEFAULT_LR, RECOVER, aggregate, locked, plot, rebuild, split_rate, table

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


METHODS = ("paser", "random", "ifd", "length")


def default_plan() -> list[tuple[str, float, int]]:
    """(method, budget, seed): 10% with three seeds first (the paired comparison), then 20% and the
    whole pool with one; ordered so that a stopped run has whole seeds."""
    plan = [(m, 0.1, seed) for seed in (0, 1, 2) for m in METHODS]
    return plan + [(m, 0.2, 0) for m in METHODS] + [("random", 1.0, 0)]


def recover_config(args: argparse.Namespace, pruned: Path, method: str, budget: float, seed: int):
    from damoc.finetune import FinetuneConfig
    from damoc.recovery.run import RecoverConfig

    return RecoverConfig(
        original=MODEL, pruned=str(pruned), method=method, per_source=args.per_source, seed=seed,
        split_seed=args.seed, heldout=args.heldout, max_len=args.max_seq_len, eval_limit=args.eval_limit,
        eval_tasks=args.eval_tasks, train=True, jsd_prompt_tokens=args.jsd_prompt_tokens,
        jsd_sample=args.jsd_sample,
        budget=budget if budget < 1 else 0.999999,  # "the whole pool" as a share
        finetune=FinetuneConfig(method="lora", max_seq_len=args.max_seq_len, batch_size=8, micro_batch_size=4,
                                learning_rate=args.lr, seed=seed))


def label_of(method: str, budget: float, args: argparse.Namespace) -> str:
    """A row's name: PASER with a cheaper degradation estimate says which; so does another rate."""
    rate = f" (lr {args.lr:g})" if args.lr != DEFAULT_LR else ""
    if budget == 1.0:
        return "whole pool" + rate
    cheaper = ([f"last {args.jsd_prompt_tokens} prompt tokens"] if args.jsd_prompt_tokens else []) + (
        [f"{args.jsd_sample:g} of each cluster"] if args.jsd_sample else [])
    return (f"{method} ({', '.join(cheaper)})" if method == "paser" and cheaper else method) + rate


def slug(label: str, budget: float, seed: int) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in f"{label}-{budget}-seed{seed}")


def lost_to_length(args: argparse.Namespace) -> dict[str, int]:
    """How many samples each source loses to the --max-seq-len limit (before the held-out split)."""
    from collections import Counter

    from damoc.recovery.pool import load_pool, source_of
    from damoc.recovery.run import fitting

    pool = load_pool("bundled:mix", args.per_source, args.seed)
    kept = {e.id for e in fitting(pool, MODEL, args.max_seq_len)[0]}
    return dict(Counter(source_of(e) for e in pool if e.id not in kept))


def held_out_sources(args: argparse.Namespace, pruned: Path) -> list[str]:
    from damoc.recovery.pool import source_of
    from damoc.recovery.run import recovery_pool

    return [source_of(e) for e in recovery_pool(recover_config(args, pruned, "random", 0.1, args.seed))[1]]


def run_record(label: str, budget: float, seed: int, s: dict, name: str, cold: bool) -> dict:
    """One recovery run's line in paser-recover.json, from `run_recover`'s summary."""
    rec = s["recovery"]["recovered"]
    return {"method": label, "budget": budget, "seed": seed, "items": f"paser-recover/{name}",
            "selected": s["selected"], "answer_nll": rec["answer_nll"]["all"]["nll"],
            "answer_nll_se": rec["answer_nll"]["all"]["nll_se"],
            "answer_nll_by_source": {k: v["nll"] for k, v in rec["answer_nll"].items() if k != "all"},
            **{k: rec[k] for k in ("external_ppl", "external_ppl_se", "avg_accuracy", "avg_accuracy_se", "accuracy")},
            "heldout_ppl_whole_samples": rec["ppl"], "select_seconds": s["select_seconds"], "select_cold": cold,
            "seconds_by_stage": s.get("seconds"), "train_seconds": s["recovery"]["train_seconds"],
            **{k: s.get(k) for k in ("jsd_cached", "clusters", "graph_components", "rejected_by_concept_graph",
                                     "taken_despite_concept_graph", "share_rejected_by_concept_graph")},
            "selected_by_source": s["selected_by_source"], "load": os.getloadavg()}


def part_recover(args: argparse.Namespace) -> None:
    """One recovery run per (method, budget, seed), each written as it finishes (its per-item
    figures to results/paser-recover/), then the rows and paired differences rebuilt from them all."""
    from damoc.recovery.run import run_recover

    pruned = pruned_model(args.run_dir, args.seed)
    lost = lost_to_length(args)
    heldout_sources = held_out_sources(args, pruned)
    plan = default_plan()
    if args.rows:
        plan = [(r.split(":")[0], float(r.split(":")[1]), int(r.split(":")[2]) if r.count(":") == 2 else 0)
                for r in args.rows]

    def written() -> dict:
        doc = read_json(RECOVER) if RECOVER.exists() else {}
        return doc if "runs" in doc else {"runs": []}  # an older file (other metrics) is replaced

    for method, budget, seed in plan:
        label = label_of(method, budget, args)
        if (label, budget, seed) in {(r["method"], r["budget"], r["seed"]) for r in written()["runs"]}:
            continue
        print(f"== {label} {budget} seed {seed}", flush=True)
        home = os.environ.get("DAMOC_HOME", "")
        # a selection does not depend on the rate: one cold entry per method, under its rate-free name
        selection = split_rate(label)[0]
        cold = bool(home) and selection not in written().get("cold_selection", {})
        s = run_recover(recover_config(args, pruned, method, budget, seed),
                        args.run_dir / slug(label, budget, seed), progress=True)
        rec = s["recovery"]
        name = slug(label, budget, seed) + ".json"
        items = {k: rec[k].pop("items") for k in ("recovered", "pruned", "original")}
        write_json_atomic(RESULTS / "paser-recover" / name, {"method": label, "budget": budget, "seed": seed, **items})
        run = run_record(label, budget, seed, s, name, cold)
        with locked(args.run_dir / "paser-recover.lock"):  # two lanes may finish at once
            doc = written()
            doc["runs"] = [r for r in doc["runs"] if (r["method"], r["budget"], r["seed"]) != (label, budget, seed)]
            doc["runs"].append(run)
            if cold:  # nothing was cached for this method: its selection's whole cost
                doc.setdefault("cold_selection", {})[selection] = {
                    "select_seconds": s["select_seconds"], "seconds_by_stage": s.get("seconds"), "run": name,
                    "load": run["load"], "train_seconds_same_run": rec["train_seconds"]}
            refs = {k: {m: rec[k][m] for m in ("answer_nll", "external_ppl", "external_ppl_se", "avg_accuracy",
                                                 "avg_accuracy_se", "accuracy", "ppl")} for k in ("pruned", "original")}
            doc.update({**refs, "pool_size": s["pool_size"], "heldout": s["heldout"],
                        "dropped_too_long": s["dropped_too_long"], "lost_to_length_by_source": lost,
                        "heldout_sources": heldout_sources, "pool_by_source": s["pool_by_source"],
                        **envelope(heldout_by_source=s["heldout_by_source"]),
                        "split_seed": args.seed, "eval_tasks": args.eval_tasks, "eval_limit": args.eval_limit,
                        "learning_rate": args.lr, "damoc_home": "scratch (cold)" if home else "default",
                        "config": {k: str(v) for k, v in vars(args).items()},
                        "command": "DAMOC_HOME=<scratch with the converted models> python bench/paser.py "
                                   f"--part recover --per-source {args.per_source} --max-seq-len {args.max_seq_len} "
                                   f"--eval-limit {args.eval_limit} --lr {args.lr:g}"})
            doc.update(aggregate(doc, RECOVER.parent / "paser-recover"))
            write_json_atomic(RECOVER, doc)
    plot(written(), RECOVER.with_suffix(".png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="all",
                    choices=["recover", "scale", "estimators", "table", "rebuild", "subsets", "all"])
    ap.add_argument("--cuts", type=int, nargs="*", default=[16, 64], help="estimators: prompt tokens kept")
    ap.add_argument("--budget", type=float, default=0.1, help="estimators: the top share compared")
    ap.add_argument("--per-source", type=int, default=205, help="a pool of >= 1,000 after the length limit")
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--eval-limit", type=int, default=200, help="test questions per task")
    # PASER's paper scores commonsense zero-shot tasks; BoolQ and PIQA are the ones bundled. MedQA
    # sits at chance for the pruned 135M model (0.15 on 40 questions) at 8x PIQA's cost per question.
    ap.add_argument("--eval-tasks", nargs="+", default=["boolq", "piqa"])
    ap.add_argument("--jsd-prompt-tokens", type=int,
                    help="recover: PASER's JSD with the prompt cut to its last N tokens")
    ap.add_argument("--jsd-sample", type=float, help="recover: PASER's JSD on this share of each cluster")
    ap.add_argument("--samples", type=float, nargs="*", default=[0.3],
                    help="estimators: shares of each cluster measured")
    # 2e-4 (the LoRA default) barely moves the model in the few steps a 10% subset of a small pool
    # gives: one epoch on 48 samples left held-out perplexity within 1% of the pruned model's.
    ap.add_argument("--lr", type=float, default=DEFAULT_LR, help="another rate is its own row (the rate check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=RUNS / "bench-paser")
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
        part_estimators(args, recover_config(args, pruned_model(args.run_dir, args.seed), "paser", 0.1, args.seed))
    if args.part == "rebuild":
        rebuild(args.run_dir)
    if args.part == "subsets":
        part_subsets(args, MODEL, lambda r: args.run_dir / slug(r["method"], r["budget"], r["seed"]))
    if args.part == "table":
        table()


if __name__ == "__main__":
    main()
