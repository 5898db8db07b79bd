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
finish, and a re-run skips finished rows.

    DAMOC_HOME=<scratch, models linked> .venv/bin/python bench/paser.py --part recover [--rows paser:0.1:0 ...]
    DAMOC_HOME=<the same> .venv/bin/python bench/paser.py --part estimators [--cuts 16 64] [--samples 0.3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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


METHODS = ("paser", "random", "ifd", "length")
# Lower, lower, lower, higher is better. answer_nll weighs sources by their answer tokens (long
# FiQA and XSum answers dominate); answer_nll_macro is the mean over sources, each capability alike.
METRICS = ("answer_nll_macro", "answer_nll", "external_ppl", "avg_accuracy")


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


# Every method's rate: the best of 3e-4 / 1e-3 / 3e-3 / 1e-2 on random (seed 0, 10%). A run at
# another rate (the rate check, and the first design's runs at 1e-3) is its own row.
DEFAULT_LR = 3e-3


# PASER picks short answers: the random budget whose subsets train on about as many answer
# tokens as PASER's at each budget (paser-subsets.json: PASER 1,318 at 10% and 2,172 at 20%;
# random about 22 per sample, 2,159-2,546 at 10%).
TOKEN_MATCH = {0.1: 0.058, 0.2: 0.1}


def split_rate(label: str) -> tuple[str, str]:
    """A row's name without its rate, and the rate part (empty at DEFAULT_LR): rows are compared
    only at the same rate, and a selection's cost does not depend on it."""
    if label.endswith(")") and " (lr " in label:
        base, rate = label.rsplit(" (lr ", 1)
        return base, f" (lr {rate}"
    return label, ""


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


def part_recover(args: argparse.Namespace) -> None:
    """One recovery run per (method, budget, seed), each written as it finishes (its per-item
    figures to results/paser-recover/), then the rows and paired differences rebuilt from them all."""
    from damoc.recovery.run import run_recover

    pruned = pruned_model(args.run_dir, args.seed)
    lost = lost_to_length(args)
    heldout_sources = held_out_sources(args, pruned)
    path = ROOT / "results" / "paser-recover.json"
    items_dir = ROOT / "results" / "paser-recover"
    plan = default_plan()
    if args.rows:
        plan = [(r.split(":")[0], float(r.split(":")[1]), int(r.split(":")[2]) if r.count(":") == 2 else 0)
                for r in args.rows]

    def written() -> dict:
        doc = read_json(path) if path.exists() else {}
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
        write_json_atomic(items_dir / name, {"method": label, "budget": budget, "seed": seed, **items})
        run = {"method": label, "budget": budget, "seed": seed, "items": f"paser-recover/{name}",
               "selected": s["selected"], "answer_nll": rec["recovered"]["answer_nll"]["all"]["nll"],
               "answer_nll_se": rec["recovered"]["answer_nll"]["all"]["nll_se"],
               "answer_nll_by_source": {k: v["nll"] for k, v in rec["recovered"]["answer_nll"].items() if k != "all"},
               "external_ppl": rec["recovered"]["external_ppl"], "external_ppl_se": rec["recovered"]["external_ppl_se"],
               "avg_accuracy": rec["recovered"]["avg_accuracy"], "avg_accuracy_se": rec["recovered"]["avg_accuracy_se"],
               "accuracy": rec["recovered"]["accuracy"], "heldout_ppl_whole_samples": rec["recovered"]["ppl"],
               "select_seconds": s["select_seconds"], "select_cold": cold,
               "seconds_by_stage": s.get("seconds"), "train_seconds": rec["train_seconds"],
               "jsd_cached": s.get("jsd_cached"), "clusters": s.get("clusters"),
               "graph_components": s.get("graph_components"),
               "rejected_by_concept_graph": s.get("rejected_by_concept_graph"),
               "taken_despite_concept_graph": s.get("taken_despite_concept_graph"),
               "share_rejected_by_concept_graph": s.get("share_rejected_by_concept_graph"),
               "selected_by_source": s["selected_by_source"], "load": os.getloadavg()}
        with _locked(args.run_dir / "paser-recover.lock"):  # two lanes may finish at once
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
                        "heldout_sources": heldout_sources,
                        "pool_by_source": s["pool_by_source"],
                        "heldout_by_source": s["heldout_by_source"], "machine": machine(), "versions": versions(),
                        "split_seed": args.seed, "eval_tasks": args.eval_tasks, "eval_limit": args.eval_limit,
                        "learning_rate": args.lr, "damoc_home": "scratch (cold)" if home else "default",
                        "config": {k: str(v) for k, v in vars(args).items()},
                        "command": "DAMOC_HOME=<scratch with the converted models> python bench/paser.py "
                                   f"--part recover --per-source {args.per_source} --max-seq-len {args.max_seq_len} "
                                   f"--eval-limit {args.eval_limit} --lr {args.lr:g}"})
            doc.update(aggregate(doc, items_dir))
            write_json_atomic(path, doc)
    plot(written(), path.with_suffix(".png"))


@contextlib.contextmanager
def _locked(lock: Path):
    """Serialises the read-modify-write of the result file between benchmark processes (the
    lock goes with the file handle)."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _figures(items: list[dict]) -> dict:
    """Each metric's statistic over item indices, pooled over the given runs' per-item figures
    (several seeds of one method count together)."""
    import numpy as np

    ans_nll = np.array([r["answer"]["nll"] for r in items])
    ans_tok = np.array([r["answer"]["tokens"] for r in items])
    src = np.array(items[0]["answer"]["source"])
    by_source = {k: np.flatnonzero(src == k) for k in sorted(set(src))}

    def macro(i: dict) -> float:
        return float(np.mean([ans_nll[:, ix[i[k]]].sum() / ans_tok[:, ix[i[k]]].sum() for k, ix in by_source.items()]))

    ext_nll = np.array([r["external"]["nll"] for r in items])
    ext_tok = np.array([r["external"]["tokens"] for r in items])
    correct = {t: np.array([r["correct"][t] for r in items]) for t in items[0]["correct"]}
    return {
        "answer_nll_macro": ({k: len(ix) for k, ix in by_source.items()}, macro),
        "answer_nll": (len(ans_nll[0]), lambda i: float(ans_nll[:, i].sum() / ans_tok[:, i].sum())),
        "external_ppl": (len(ext_nll[0]), lambda i: float(np.exp(ext_nll[:, i].sum() / ext_tok[:, i].sum()))),
        "avg_accuracy": ({t: len(c[0]) for t, c in correct.items()},
                         lambda i: float(np.mean([c[:, i[t]].mean() for t, c in correct.items()]))),
    }


def bootstrap(groups: list[list[dict]], metric: str, samples: int = 1000, seed: int = 0):
    """Each group's statistic on all items and on `samples` resamples of the items, the same
    resamples for every group (all groups were scored on the same items), so that differences
    between groups are paired: the items' own difficulty cancels."""
    import numpy as np

    stats = [_figures(g)[metric] for g in groups]
    n = stats[0][0]
    rng = np.random.default_rng(seed)

    def draw(all_items: bool = False):
        if isinstance(n, dict):
            return {t: np.arange(k) if all_items else rng.integers(0, k, k) for t, k in n.items()}
        return np.arange(n) if all_items else rng.integers(0, n, n)

    full = draw(True)
    values = np.array([f(full) for _, f in stats])
    draws = [draw() for _ in range(samples)]
    boot = np.array([[f(i) for _, f in stats] for i in draws])  # samples x groups
    return values, boot


def paired_difference(a: list[dict], b: list[dict], metric: str) -> dict:
    """a - b on one metric with its paired bootstrap SE."""
    import numpy as np

    values, boot = bootstrap([a, b], metric)
    diff, se = float(values[0] - values[1]), float(np.std(boot[:, 0] - boot[:, 1], ddof=1))
    return {"difference": diff, "se": se, "z": diff / se if se > 0 else None}


def aggregate(doc: dict, items_dir: Path) -> dict:
    """Rows (one per method and budget, seeds pooled) and PASER's paired differences against the
    others at each budget, from the per-item files."""
    import numpy as np

    groups: dict[tuple[str, float], list[dict]] = {}
    for r in doc["runs"]:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    loaded = {key: [read_json(items_dir.parent / r["items"])["recovered"] for r in runs]
              for key, runs in groups.items()}
    for runs in loaded.values():
        for items in runs:  # each held-out sample's source, in the order the items are
            items["answer"]["source"] = doc["heldout_sources"]
    rows = []
    # the rows at DEFAULT_LR first, then those at other rates
    for (method, budget), runs in sorted(groups.items(), key=lambda kv: (bool(split_rate(kv[0][0])[1]),
                                                                         kv[0][1], kv[0][0])):
        row = {"method": method, "budget": budget, "seeds": len(runs), "samples": runs[0]["selected"]}
        for metric in METRICS:
            values, boot = bootstrap([loaded[(method, budget)]], metric)
            row[metric], row[f"{metric}_se"] = float(values[0]), float(np.std(boot[:, 0], ddof=1))
        cold = doc.get("cold_selection", {}).get(split_rate(method)[0])
        row.update({
            "rejected_by_concept_graph": runs[0].get("rejected_by_concept_graph"),
            "taken_despite_concept_graph": runs[0].get("taken_despite_concept_graph"),
            "select_seconds_cold": cold["select_seconds"] if cold else None,
            "select_seconds": float(np.mean([r["select_seconds"] for r in runs])),
            "train_seconds": float(np.mean([r["train_seconds"] for r in runs]))})
        rows.append(row)
    # PASER against each other method at its budget and rate, on the seeds both have: pooled over
    # them (the paired bootstrap over items) and seed by seed (how much the seed moves it).
    seeds = {key: [r["seed"] for r in runs] for key, runs in groups.items()}
    differences = []
    for (method, budget), items in loaded.items():
        base, rate = split_rate(method)
        if not base.startswith("paser"):
            continue
        for (other, b2), other_items in loaded.items():
            other_base, other_rate = split_rate(other)
            common = sorted(set(seeds[(method, budget)]) & set(seeds[(other, b2)]))
            fewer_tokens = other_base == "random" and base == "paser" and TOKEN_MATCH.get(budget) == b2
            if ((b2 != budget and not fewer_tokens) or other_rate != rate or other == method or not common
                    or (other_base.startswith("paser") and other_base < base)):
                continue  # (two PASER variants: one direction)
            mine = {sd: it for sd, it in zip(seeds[(method, budget)], items)}
            theirs = {sd: it for sd, it in zip(seeds[(other, b2)], other_items)}
            a, b = [mine[sd] for sd in common], [theirs[sd] for sd in common]
            by_seed = {str(sd): {m: paired_difference([mine[sd]], [theirs[sd]], m)["difference"] for m in METRICS}
                       for sd in common}
            differences.append({
                "budget": budget, "paser": method, "versus": other, "versus_budget": b2, "seeds": common,
                **{m: paired_difference(a, b, m) for m in METRICS}, "by_seed": by_seed,
                # the item bootstrap cannot see how much the seed moves a difference; this SE can
                # (the spread of the seeds' differences, so only with two or more seeds)
                "across_seeds": {m: {"mean": float(np.mean(v)), "se": float(np.std(v, ddof=1) / np.sqrt(len(v)))}
                                 for m in METRICS if len(v := [d[m] for d in by_seed.values()]) > 1}})
    differences.sort(key=lambda d: (bool(split_rate(d["paser"])[1]), d["budget"]))  # DEFAULT_LR first
    return {"rows": rows, "differences": differences}


def part_rebuild(args: argparse.Namespace) -> None:
    """Rows, differences and plot rebuilt from the recorded runs and their per-item files (after
    the aggregation changed, or runs were relabelled), without running anything."""
    path = ROOT / "results" / "paser-recover.json"
    with _locked(args.run_dir / "paser-recover.lock"):
        doc = read_json(path)
        doc.update(aggregate(doc, path.parent / "paser-recover"))
        write_json_atomic(path, doc)
    plot(doc, path.with_suffix(".png"))


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
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if not split_rate(r["method"])[1]]  # other rates: in the JSON only
    names = [f"{r['method']} {r['budget']:g}\n({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})" for r in rows]
    panels = [("answer_nll_macro", "held-out answer NLL, mean over the 7 sources (lower is better)",
               lambda d: float(np.mean([v["nll"] for k, v in d["answer_nll"].items() if k != "all"]))),
              ("answer_nll", "held-out answer NLL per answer token (lower is better)",
               lambda d: d["answer_nll"]["all"]["nll"]),
              ("external_ppl", "WikiText perplexity (lower is better)", lambda d: d["external_ppl"]),
              ("avg_accuracy", f"mean zero-shot accuracy ({', '.join(doc['eval_tasks'])})",
               lambda d: d["avg_accuracy"])]
    fig, axes = plt.subplots(1, 5, figsize=(25, 4.5))
    for ax, (metric, title, ref_value) in zip(axes, panels):
        ax.bar(names, [r[metric] for r in rows], yerr=[r[f"{metric}_se"] for r in rows], capsize=3)
        for ref, style in (("pruned", "--"), ("original", ":")):
            ax.axhline(ref_value(doc[ref]), color="k", ls=style, lw=1, label=f"{ref} {ref_value(doc[ref]):.3g}")
        values = [r[metric] for r in rows] + [ref_value(doc["pruned"]), ref_value(doc["original"])]
        ax.set_ylim(min(values) * 0.97, max(values) * 1.03)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    cold = [r["select_seconds_cold"] or 0.0 for r in rows]
    axes[4].bar(names, [r["train_seconds"] for r in rows], label="recovery training (mean over seeds)")
    axes[4].bar(names, cold, bottom=[r["train_seconds"] for r in rows], label="selection, nothing cached")
    axes[4].set_title("seconds (one torch thread, beside another benchmark)", fontsize=9)
    axes[4].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7, labelrotation=45)
    fig.suptitle(f"Recovering SmolLM2-135M-Instruct pruned by 25%: pool of {doc['pool_size']} samples, "
                 f"lr {DEFAULT_LR:g} (error bars: bootstrap SE over items)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def part_estimators(args: argparse.Namespace) -> None:
    """Cheaper degradation estimates against the full one (issue 15, item 5), on the recovery
    benchmark's pool: the JSD with the prompt cut to its last N tokens (`--cuts`), and measured on a
    share of each cluster only (`--samples`, PASER's picks then come from the measured ones). Per
    estimate: seconds and FLOPs of the JSD pass, Spearman of the per-sample scores with the full
    one (on the samples both measured), and how much of the full estimate's PASER subset at
    `--budget` it picks. Run it with the recovery benchmark's DAMOC_HOME: the whole-prompt JSD is
    then read from its cache and its seconds are those of the benchmark's cold run."""
    import numpy as np
    from scipy.stats import spearmanr

    from damoc.filtering.base import example_text, resolve_budget
    from damoc.filtering.embeddings import embed_with_cost
    from damoc.models import load_tokenizer
    from damoc.recovery.cluster import cluster
    from damoc.recovery.paser import ClusterPicker, Context, measure_degradation, measured_samples
    from damoc.recovery.run import recovery_pool

    pruned = pruned_model(args.run_dir, args.seed)
    pool, _, too_long = recovery_pool(recover_config(args, pruned, "paser", 0.1, args.seed))
    budget = resolve_budget(len(pool), rate=args.budget, round_down=True)
    tok = load_tokenizer(MODEL)
    texts = [example_text(e) for e in pool]
    labels = cluster(embed_with_cost(texts, "bundled:minilm", progress=False)[0], "auto", seed=args.seed).labels
    path = ROOT / "results" / "paser-estimators.json"
    recover = ROOT / "results" / "paser-recover.json"
    cold = (read_json(recover) if recover.exists() else {}).get("cold_selection", {}).get("paser")
    rows, full, full_pick = [], None, None
    for share in [None, *args.samples]:
        for cut in [None, *args.cuts]:
            ctx = Context(pool=pool, budget=budget, seed=args.seed, original=MODEL, pruned=str(pruned),
                          max_len=args.max_seq_len, progress=False, jsd_prompt_tokens=cut, jsd_sample=share)
            measured = measured_samples(labels, share, args.seed)
            start = time.perf_counter()
            values, lengths, cached, flops = measure_degradation(ctx, tok, measured)
            seconds = time.perf_counter() - start
            if cached and cut is None and share is None and cold:
                seconds = cold["seconds_by_stage"]["jsd"]  # the benchmark's cold pass over the same pool
            pick = ClusterPicker(labels, values, lengths, texts, budget)
            pick.run()
            if full is None:
                full, full_pick = values, set(pick.chosen)
            both = np.isfinite(values)
            rows.append({"estimate": ("whole prompt" if cut is None else f"last {cut} prompt tokens")
                         + ("" if share is None else f", {share:g} of each cluster"),
                         "prompt_tokens": cut, "cluster_share": share, "measured": int(both.sum()),
                         "seconds": seconds, "seconds_from": "recover benchmark's cold run" if cached else "this run",
                         "jsd_flops": flops, "tokens": int(sum(lengths)),
                         "spearman_vs_full": float(spearmanr(values[both], full[both]).statistic),
                         "subset_overlap_with_full": len(set(pick.chosen) & full_pick) / budget})
            print(json.dumps(rows[-1]), flush=True)
            write_json_atomic(path, {"pool": len(pool), "pool_left_out_too_long": too_long, "budget": budget,
                                     "max_len": args.max_seq_len, "clusters": int(labels.max()) + 1, "rows": rows,
                                     "machine": machine(), "versions": versions(), "load": os.getloadavg(),
                                     "command": "DAMOC_HOME=<the recover benchmark's> python bench/paser.py "
                                                "--part estimators " + " ".join(sys.argv[1:])})


def part_subsets(args: argparse.Namespace) -> None:
    """How many answer tokens each recorded run trained on (recovery puts its loss on the answer
    only, so at one sample budget a method that picks short answers trains on fewer tokens), from
    the subsets its run folder kept; runs whose folder is gone are left out."""
    from damoc.models import load_tokenizer
    from damoc.recovery.pool import load_pool
    from damoc.tasks.base import continuation

    doc = read_json(ROOT / "results" / "paser-recover.json")
    tok = load_tokenizer(MODEL)
    pool = {e.id: e for e in load_pool("bundled:mix", args.per_source, args.seed)}
    rows = []
    for r in doc["runs"]:
        subset = args.run_dir / slug(r["method"], r["budget"], r["seed"]) / "subset.jsonl"
        if not subset.exists():
            continue
        ids = [json.loads(line)["id"] for line in subset.read_text().splitlines()]
        tokens = [len(tok(continuation(pool[i]), add_special_tokens=False)["input_ids"]) for i in ids]
        rows.append({"method": r["method"], "budget": r["budget"], "seed": r["seed"], "samples": len(ids),
                     "answer_tokens": sum(tokens), "mean_answer_tokens": sum(tokens) / len(ids)})
        print(json.dumps(rows[-1]), flush=True)
    write_json_atomic(ROOT / "results" / "paser-subsets.json",
                      {"rows": rows, "tokenizer": MODEL, "versions": versions(),
                       "command": "python bench/paser.py --part subsets"})


def part_table(args: argparse.Namespace) -> None:
    """The README's tables, from the result files."""
    doc = read_json(ROOT / "results" / "paser-recover.json")
    print("| method | budget | seeds | samples | answer NLL, mean of sources | answer NLL (nats/token) | "
          "WikiText ppl | mean acc. "
          f"({', '.join(doc['eval_tasks'])}) | select s (cold) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ref in ("original", "pruned"):
        r = doc[ref]
        macro = sum(v["nll"] for k, v in r["answer_nll"].items() if k != "all") / (len(r["answer_nll"]) - 1)
        print(f"| {ref} | | | | {macro:.3f} | "
              f"{r['answer_nll']['all']['nll']:.3f} ± {r['answer_nll']['all']['nll_se']:.3f} | "
              f"{r['external_ppl']:.1f} ± {r['external_ppl_se']:.1f} | "
              f"{r['avg_accuracy']:.3f} ± {r['avg_accuracy_se']:.3f} | | |")
    for r in doc["rows"]:
        cold = f" ({r['select_seconds_cold']:.0f})" if r.get("select_seconds_cold") else ""
        print(f"| {r['method']} | {r['budget']:g} | {r['seeds']} | {r['samples']} | "
              f"{r['answer_nll_macro']:.3f} ± {r['answer_nll_macro_se']:.3f} | "
              f"{r['answer_nll']:.3f} ± {r['answer_nll_se']:.3f} | "
              f"{r['external_ppl']:.1f} ± {r['external_ppl_se']:.1f} | "
              f"{r['avg_accuracy']:.3f} ± {r['avg_accuracy_se']:.3f} | {r['select_seconds']:.0f}{cold} | "
              f"{r['train_seconds']:.0f} |")
    print("\n| budget | PASER row | minus | seeds | answer NLL, mean of sources | answer NLL | WikiText ppl | "
          "mean acc. | by seed: mean-of-sources NLL; NLL; ppl |\n|---|---|---|---|---|---|---|---|---|")
    for d in doc["differences"]:
        spread = d.get("across_seeds", {})  # "(seeds ± x)": the SE of the seeds' mean difference
        cells = [f"{d[m]['difference']:+.3f} ± {d[m]['se']:.3f}"
                 + (f" (seeds ± {spread[m]['se']:.3f})" if m in spread else "") for m in METRICS]
        by_seed = "; ".join(", ".join(f"{v[m]:+.{2 if m == 'external_ppl' else 3}f}" for v in d["by_seed"].values())
                            for m in ("answer_nll_macro", "answer_nll", "external_ppl"))
        versus = d["versus"] + (f" at {d['versus_budget']:g}" if d.get("versus_budget", d["budget"]) != d["budget"]
                                else "")
        print(f"| {d['budget']:g} | {d['paser']} | {versus} | {len(d['seeds'])} | " + " | ".join(cells)
              + f" | {by_seed} |")
    path = ROOT / "results" / "paser-estimators.json"
    if path.exists():
        est = read_json(path)
        print(f"\n| estimate (pool {est['pool']}, budget {est['budget']}) | measured | tokens | seconds | "
              "Spearman vs full | PASER subset overlap |\n|---|---|---|---|---|---|")
        for r in est["rows"]:
            print(f"| {r['estimate']} | {r['measured']} | {r['tokens']:,} | {r['seconds']:.0f} | "
                  f"{r['spearman_vs_full']:.2f} | {r['subset_overlap_with_full']:.2f} |")


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
    if args.part == "rebuild":
        part_rebuild(args)
    if args.part == "subsets":
        part_subsets(args)
    if args.part == "table":
        part_table(args)


if __name__ == "__main__":
    main()
