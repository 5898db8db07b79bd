"""report.html for a `damoc select` run: the Markdown report as HTML, plus plots, in one file."""

from __future__ import annotations

from damoc.evaluation.metrics import higher_is_better
from damoc.report.page import html_page, png
from damoc.selection.candidate import is_ok


def plots(summary: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in summary["candidates"] if is_ok(r)]
    names = [f"{r['model'].split(':')[-1].split('/')[-1]}\n{r['method']}" for r in ok]
    out: list[tuple[str, str]] = []

    def add(title: str, fig) -> None:
        out.append((title, png(fig, title)))
    if ok:
        metric = summary["primary_metric"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, key in zip(axes, [metric, "answer_bpb"]):
            vals = [r["metrics"].get(key, float("nan")) for r in ok]
            errs = [r["metrics"].get(f"{key}_se", 0.0) for r in ok]
            ax.bar(range(len(ok)), vals, yerr=errs, capsize=4)
            ax.set_xticks(range(len(ok)), names, fontsize=8)
            ax.set_title(key + (" (higher is better)" if higher_is_better(key) else " (lower is better)"))
        fig.tight_layout()
        add("Metric per candidate (bars: one standard error)", fig)

        fig, ax = plt.subplots(figsize=(10, 3.6))
        bottom = [0.0] * len(ok)
        for stage, get in [("load", lambda r: r.get("load_seconds", 0)),
                           ("prune", lambda r: r.get("prune", {}).get("seconds", 0)),
                           ("train", lambda r: r.get("train_seconds", 0)),
                           ("evaluate", lambda r: r.get("eval_seconds", 0))]:
            vals = [get(r) for r in ok]
            ax.bar(range(len(ok)), vals, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(ok)), names, fontsize=8)
        ax.set_ylabel("seconds")
        data_s = sum(summary.get("data", {}).get("seconds", {}).values())
        ax.set_title(f"time per stage and candidate (shared data stage: {data_s:.0f} s)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        add("Time per stage and candidate", fig)

    pruned = [(n, r["prune"]) for n, r in zip(names, ok) if r.get("prune")]
    if pruned:
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for name, p in pruned:
            line, = ax.plot(p["similarity"], "o-", ms=3, label=name.replace("\n", " "))
            ax.plot(p["removed"], [p["similarity"][i] for i in p["removed"]], "x", ms=9, color=line.get_color())
        ax.set_xlabel("decoder layer (x: removed)")
        ax.set_ylabel("cosine(input, output)")
        ax.set_title("layer similarity per model")
        ax.legend(fontsize=8)
        fig.tight_layout()
        add("Layer similarity", fig)

    comp = summary.get("data", {}).get("compress")
    if comp:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
        shares = {k: comp[f"share_{k}"] for k in ("passed_without_rewrite", "rewritten", "fell_back_milder",
                                                   "fell_back_original")}
        axes[0].bar(range(4), list(shares.values()))
        axes[0].set_xticks(range(4), ["passed", "rewritten", "milder ratio", "original"], fontsize=8)
        axes[0].set_title(f"contexts by outcome (tokens kept: {comp['context_token_ratio']:.2f})")
        before, after = comp["bertscore_before"], comp["bertscore_after"]
        keys = ["p05", "median", "mean"]
        axes[1].plot(keys, [before.get(k) for k in keys], "o-", label="after word dropping")
        axes[1].plot(keys, [after.get(k) for k in keys], "s-", label="emitted")
        axes[1].axhline(summary["config"]["compress"]["threshold"], color="grey", lw=0.8)
        axes[1].set_title("rescaled BERTScore")
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        add("Token compression", fig)
    adaptive = summary.get("adaptive")
    if adaptive and adaptive["fits"]:
        import numpy as np

        from damoc.selection.curves import CurveFit

        fig, ax = plt.subplots(figsize=(8, 4.2))
        full = adaptive["train_size"]
        for name, f in adaptive["fits"].items():
            sizes, values = zip(*f["curve"])
            line = ax.plot(sizes, values, "o", label=name)[0]
            grid = np.geomspace(min(sizes), full, 60)
            fit = CurveFit(f["law"], f["params"])
            ax.plot(grid, [fit.predict(d) for d in grid], "-", color=line.get_color(), alpha=0.6)
        ax.axvline(full, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("training examples (dotted: the whole training split)")
        ax.set_ylabel("answer bits per byte")
        ax.legend(fontsize=7)
        fig.tight_layout()
        add("Learning curves and their fits (adaptive selection)", fig)
    return out


def select_html(summary: dict, markdown: str) -> str:
    return html_page(f"damoc select: {summary['task']}", markdown, plots(summary))
