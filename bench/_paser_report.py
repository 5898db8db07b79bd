"""bench/paser.py's reading side: rows and PASER's paired differences aggregated from the recorded
runs' per-item files, the plot and the README's tables. It reads bench/results/paser-*.json and
runs nothing (`bench/paser.py --part rebuild`, `--part table`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import RESULTS, locked, pyplot, read_json, save_figure

from damoc.recovery.compare import METRICS, paired_difference, pooled_figure

RECOVER = RESULTS / "paser-recover.json"
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


def grouped(runs: list[dict]) -> dict[tuple[str, float], list[dict]]:
    """The recorded runs by row: (method, budget) -> its runs (one per seed)."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    return groups


def across_seeds(by_seed: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric, the mean of the seeds' differences and its SE (std / sqrt(seeds)): how much the seed
    moves a difference, which the item bootstrap cannot see; only with two or more seeds."""
    out = {}
    for m in METRICS:
        v = [d[m] for d in by_seed.values()]
        if len(v) > 1:
            out[m] = {"mean": float(np.mean(v)), "se": float(np.std(v, ddof=1) / np.sqrt(len(v)))}
    return out


def aggregate(doc: dict, items_dir: Path) -> dict:
    """Rows (one per method and budget, seeds pooled) and PASER's paired differences against the
    others at each budget, from the per-item files."""
    groups = grouped(doc["runs"])
    loaded = {key: [read_json(items_dir.parent / r["items"])["recovered"] for r in runs]
              for key, runs in groups.items()}
    sources = doc["heldout_sources"]  # each held-out sample's source, in the order the items are
    rows = []
    # the rows at DEFAULT_LR first, then those at other rates
    for (method, budget), runs in sorted(groups.items(), key=lambda kv: (bool(split_rate(kv[0][0])[1]),
                                                                         kv[0][1], kv[0][0])):
        row = {"method": method, "budget": budget, "seeds": len(runs), "samples": runs[0]["selected"]}
        if "answer_tokens" in runs[0]:  # issue 30's runs: a token budget's samples vary with the seed
            row.update({"budget_by": runs[0]["budget_by"], "samples_by_seed": [r["selected"] for r in runs],
                        "answer_tokens_by_seed": [r["answer_tokens"] for r in runs],
                        "trained_answer_tokens_by_seed": [r["trained_answer_tokens"] for r in runs]})
        for metric in METRICS:
            row[metric], row[f"{metric}_se"] = pooled_figure(loaded[(method, budget)], metric, sources)
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
            by_seed = {str(sd): {m: paired_difference([mine[sd]], [theirs[sd]], m, sources)["difference"]
                                 for m in METRICS} for sd in common}
            differences.append({
                "budget": budget, "paser": method, "versus": other, "versus_budget": b2, "seeds": common,
                **{m: paired_difference(a, b, m, sources) for m in METRICS}, "by_seed": by_seed,
                "across_seeds": across_seeds(by_seed)})
    differences.sort(key=lambda d: (bool(split_rate(d["paser"])[1]), d["budget"]))  # DEFAULT_LR first
    return {"rows": rows, "differences": differences}


def versus_random(doc: dict, items_dir: Path) -> list[dict]:
    """Every row minus random at the same budget and rate (random on the pool's answers), on the
    seeds both have: pooled over them (the paired item bootstrap) and the SE across seeds."""
    groups = grouped(doc["runs"])
    sources = doc["heldout_sources"]
    out = []
    for (method, budget), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base, rate = split_rate(method)
        reference = groups.get(("random" + rate, budget))
        if base == "random" or not reference:
            continue
        mine = {r["seed"]: r for r in runs}
        theirs = {r["seed"]: r for r in reference}
        common = sorted(set(mine) & set(theirs))
        if not common:
            continue

        def items(r: dict) -> dict:
            return read_json(items_dir.parent / r["items"])["recovered"]

        a, b = [items(mine[sd]) for sd in common], [items(theirs[sd]) for sd in common]
        by_seed = {str(sd): {m: paired_difference([x], [y], m, sources)["difference"] for m in METRICS}
                   for sd, x, y in zip(common, a, b)}
        out.append({"method": method, "versus": "random" + rate, "budget": budget, "seeds": common,
                    **{m: paired_difference(a, b, m, sources) for m in METRICS}, "by_seed": by_seed,
                    "across_seeds": across_seeds(by_seed)})
    return out


BEST_METRICS = {"answer_nll_per_token": "answer_nll", "wikitext_ppl": "external_ppl"}


def best_versus_random(doc: dict, min_seeds: int = 3) -> dict | None:
    """Issue 30's `best`: among the rows at a budget in answer tokens compared with random (on the pool's
    answers, whatever the row's targets: the baseline a user has) on at least
    `min_seeds` seeds, the one whose weaker metric (per-token answer NLL, WikiText perplexity) lies most
    SEs below random. Each SE is the larger of the paired item bootstrap's and the seeds' spread (the
    bootstrap does not see the training order); `beats_random` where both differences + 2 SE < 0."""
    by_tokens = {(r["method"], r["budget"]) for r in doc["rows"] if r.get("budget_by") == "answer tokens"}
    scored = []
    for d in doc.get("versus_random", []):
        if (d["method"], d["budget"]) not in by_tokens or len(d["seeds"]) < min_seeds:
            continue
        vs = {}
        for name, m in BEST_METRICS.items():
            spread = d.get("across_seeds", {}).get(m, {}).get("se", 0.0)
            vs[name] = {"diff": d[m]["difference"], "se": max(d[m]["se"], spread)}
        weaker = min(-v["diff"] / v["se"] if v["se"] > 0 else -np.sign(v["diff"]) * np.inf if v["diff"] else 0.0
                     for v in vs.values())
        scored.append((weaker, {"method": d["method"], "versus": d["versus"], "budget_answer_tokens": d["budget"],
                                "seeds": d["seeds"], "equal_answer_tokens": True, "vs_random": vs,
                                "beats_random": all(v["diff"] + 2 * v["se"] < 0 for v in vs.values())}))
    return max(scored, key=lambda t: t[0])[1] if scored else None


def rebuild(run_dir: Path, path: Path = RECOVER) -> None:
    """Rows, differences and plot rebuilt from the recorded runs and their per-item files (after
    the aggregation changed, or runs were relabelled), without running anything. `path`: paser-recover.json
    or another results file (whose rows are also compared with random, and its best named)."""
    from damoc.io import write_json_atomic

    with locked(run_dir / f"{path.stem}.lock"):  # the lock part_recover takes for this file
        doc = read_json(path)
        items = path.parent / path.stem
        doc.update(aggregate(doc, items))
        if path != RECOVER:
            doc["versus_random"] = versus_random(doc, items)
            doc["best"] = best_versus_random(doc)
        write_json_atomic(path, doc)
    plot(doc, path.with_suffix(".png"))


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


def pm(value: float, se: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def table(path: Path = RECOVER) -> None:
    """The README's tables, from the result files (`path`: paser-recover.json or another --results file)."""
    doc = read_json(path)
    heads = {"answer_nll_macro": "answer NLL, mean of sources", "answer_nll": "answer NLL (nats/token)",
             "external_ppl": "WikiText ppl", "avg_accuracy": f"mean acc. ({', '.join(doc['eval_tasks'])})",
             "answer_nll_sample": "answer NLL, mean of samples"}
    print("| method | budget | seeds | samples | " + " | ".join(heads[m] for m in METRICS)
          + " | select s (cold) | train s |")
    print("|---|---|---|---|" + "---|" * len(METRICS) + "---|---|")
    for ref in ("original", "pruned"):
        r = doc[ref]
        macro = sum(v["nll"] for k, v in r["answer_nll"].items() if k != "all") / (len(r["answer_nll"]) - 1)
        sample = r.get("answer_nll_means", {}).get("per_sample")
        print(f"| {ref} | | | | {macro:.3f} | {pm(r['answer_nll']['all']['nll'], r['answer_nll']['all']['nll_se'])} | "
              f"{pm(r['external_ppl'], r['external_ppl_se'], 1)} | {pm(r['avg_accuracy'], r['avg_accuracy_se'])} | "
              + (pm(sample["nll"], sample["nll_se"]) if sample else "") + " | | |")
    for r in doc["rows"]:
        cold = f" ({r['select_seconds_cold']:.0f})" if r.get("select_seconds_cold") else ""
        print(f"| {r['method']} | {r['budget']:g} | {r['seeds']} | {r['samples']} | "
              + " | ".join(pm(r[m], r[f"{m}_se"], 1 if m == "external_ppl" else 3) if m in r else "" for m in METRICS)
              + f" | {r['select_seconds']:.0f}{cold} | {r['train_seconds']:.0f} |")
    short = {**heads, "answer_nll": "answer NLL", "avg_accuracy": "mean acc."}
    for title, key, differences in (("PASER row", "paser", doc["differences"]),
                                    ("row", "method", doc.get("versus_random", []))):
        if not differences:
            continue
        print(f"\n| budget | {title} | minus | seeds | " + " | ".join(short[m] for m in METRICS)
              + " | by seed: mean-of-sources NLL; NLL; ppl |\n|---|---|---|---|" + "---|" * len(METRICS) + "---|")
        for d in differences:
            spread = d.get("across_seeds", {})  # "(seeds ± x)": the SE of the seeds' mean difference
            cells = [f"{d[m]['difference']:+.3f} ± {d[m]['se']:.3f}"
                     + (f" (seeds ± {spread[m]['se']:.3f})" if m in spread else "") if m in d else "" for m in METRICS]
            by_seed = "; ".join(", ".join(f"{v[m]:+.{2 if m == 'external_ppl' else 3}f}"
                                          for v in d["by_seed"].values()) for m in ("answer_nll_macro", "answer_nll",
                                                                                  "external_ppl"))
            versus = d["versus"] + (f" at {d['versus_budget']:g}"
                                    if d.get("versus_budget", d["budget"]) != d["budget"] else "")
            print(f"| {d['budget']:g} | {d[key]} | {versus} | {len(d['seeds'])} | " + " | ".join(cells)
                  + f" | {by_seed} |")
