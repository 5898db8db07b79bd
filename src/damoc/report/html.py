"""report.html for a `damoc select` run: the Markdown report as HTML, plus plots, in one file."""

from __future__ import annotations

from damoc.evaluation.metrics import higher_is_better
from damoc.report.page import html_page, png
from damoc.selection.results import SelectResults


def plots(summary: dict | SelectResults) -> list[tuple[str, str]]:
    """(title, inline <img>) for each figure the run has data for, in the report's order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = summary if isinstance(summary, SelectResults) else SelectResults.model_validate(summary)
    out: list[tuple[str, str]] = []
    for title, draw in FIGURES:
        fig = draw(res, plt)
        if fig is not None:
            fig.tight_layout()
            out.append((title, png(fig, title)))
    return out


def _names(res: SelectResults) -> list[str]:
    return [r.short for r in res.ranked]


def _metric_figure(res: SelectResults, plt):
    ok = res.ranked
    if not ok:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in zip(axes, [res.primary_metric, "answer_bpb"]):
        vals = [r.metrics.get(key, float("nan")) for r in ok]
        errs = [r.metrics.get(f"{key}_se") or 0.0 for r in ok]
        ax.bar(range(len(ok)), vals, yerr=errs, capsize=4)
        ax.set_xticks(range(len(ok)), _names(res), fontsize=8)
        ax.set_title(key + (" (higher is better)" if higher_is_better(key) else " (lower is better)"))
    return fig


def _time_figure(res: SelectResults, plt):
    ok = res.ranked
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.6))
    bottom = [0.0] * len(ok)
    for stage, get in [("load", lambda r: r.load_seconds), ("prune", lambda r: r.prune.seconds if r.prune else 0),
                       ("train", lambda r: r.train_seconds), ("evaluate", lambda r: r.eval_seconds)]:
        vals = [get(r) for r in ok]
        ax.bar(range(len(ok)), vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(ok)), _names(res), fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title(f"time per stage and candidate (shared data stage: {sum(res.data.seconds.values()):.0f} s)")
    ax.legend(fontsize=8)
    return fig


def _similarity_figure(res: SelectResults, plt):
    pruned = [(n, r.prune) for n, r in zip(_names(res), res.ranked) if r.prune]
    if not pruned:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for name, p in pruned:
        line, = ax.plot(p.similarity, "o-", ms=3, label=name.replace("\n", " "))
        ax.plot(p.removed, [p.similarity[i] for i in p.removed], "x", ms=9, color=line.get_color())
    ax.set_xlabel("decoder layer (x: removed)")
    ax.set_ylabel("cosine(input, output)")
    ax.set_title("layer similarity per model")
    ax.legend(fontsize=8)
    return fig


def _compression_figure(res: SelectResults, plt):
    comp = res.data.compress
    if comp is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    shares = [comp.share_passed_without_rewrite, comp.share_rewritten, comp.share_fell_back_milder,
              comp.share_fell_back_original]
    axes[0].bar(range(4), shares)
    axes[0].set_xticks(range(4), ["passed", "rewritten", "milder ratio", "original"], fontsize=8)
    axes[0].set_title(f"contexts by outcome (tokens kept: {comp.context_token_ratio:.2f})")
    keys = ["p05", "median", "mean"]
    axes[1].plot(keys, [comp.bertscore_before.get(k) for k in keys], "o-", label="after word dropping")
    axes[1].plot(keys, [comp.bertscore_after.get(k) for k in keys], "s-", label="emitted")
    threshold = (res.config.get("compress") or {}).get("threshold")
    if threshold is not None:
        axes[1].axhline(threshold, color="grey", lw=0.8)
    axes[1].set_title("rescaled BERTScore")
    axes[1].legend(fontsize=8)
    return fig


def _curves_figure(res: SelectResults, plt):
    adaptive = res.adaptive
    if adaptive is None or not adaptive.fits:
        return None
    import numpy as np

    from damoc.selection.laws import CurveFit

    fig, ax = plt.subplots(figsize=(8, 4.2))
    full = adaptive.train_size
    for name, f in adaptive.fits.items():
        sizes, values = zip(*f.curve)
        line = ax.plot(sizes, values, "o", label=name)[0]
        grid = np.geomspace(min(sizes), full, 60)
        fit = CurveFit(f.law, f.params)
        ax.plot(grid, [fit.predict(d) for d in grid], "-", color=line.get_color(), alpha=0.6)
    ax.axvline(full, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("training examples (dotted: the whole training split)")
    ax.set_ylabel("answer bits per byte")
    ax.legend(fontsize=7)
    return fig


FIGURES = [("Metric per candidate (bars: one standard error)", _metric_figure),
           ("Time per stage and candidate", _time_figure), ("Layer similarity", _similarity_figure),
           ("Token compression", _compression_figure),
           ("Learning curves and their fits (adaptive selection)", _curves_figure)]


def select_html(summary: dict | SelectResults, markdown: str) -> str:
    res = summary if isinstance(summary, SelectResults) else SelectResults.model_validate(summary)
    return html_page(f"damoc select: {res.task}", markdown, plots(res))
