"""Recovery runs compared item by item: the neutral metrics of `run.evaluate_model` as
statistics over its per-item figures (`items`), the runs of one method (its seeds, all scored
on the same held-out items) pooled, with the paired bootstrap of `damoc.evaluation.stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from damoc.evaluation.stats import Index, item_bootstrap

# Lower, lower, lower, higher, lower is better. answer_nll weighs the sources by their answer tokens
# (long answers dominate); answer_nll_macro is the mean over sources, each capability alike (a
# 3-sample source weighs as much as a 25-sample one); answer_nll_sample is the mean over held-out
# samples of each one's NLL per answer token, each sample alike.
METRICS = ("answer_nll_macro", "answer_nll", "external_ppl", "avg_accuracy", "answer_nll_sample")


def item_statistic(runs: list[dict], metric: str,
                   sources: Sequence[str]) -> tuple[int | dict[str, int], Callable[[Index], float]]:
    """One metric as a function of item indices over the pooled `runs` (their `items`), and the
    items it resamples: a count, or per stratum (held-out samples by source for the macro NLL,
    questions by task for the accuracy). `sources`: each held-out sample's source, in order."""
    if metric in ("answer_nll", "answer_nll_macro", "answer_nll_sample"):
        nll = np.array([r["answer"]["nll"] for r in runs])
        tokens = np.array([r["answer"]["tokens"] for r in runs])
        if metric == "answer_nll":
            return len(nll[0]), lambda i: float(nll[:, i].sum() / tokens[:, i].sum())
        if metric == "answer_nll_sample":
            per_sample = nll / tokens
            return len(nll[0]), lambda i: float(per_sample[:, i].mean())
        src = np.array(sources)
        by_source = {k: np.flatnonzero(src == k) for k in sorted(set(src))}

        def macro(i: dict) -> float:
            return float(np.mean([nll[:, ix[i[k]]].sum() / tokens[:, ix[i[k]]].sum()
                                  for k, ix in by_source.items()]))

        return {k: len(ix) for k, ix in by_source.items()}, macro
    if metric == "external_ppl":
        nll = np.array([r["external"]["nll"] for r in runs])
        tokens = np.array([r["external"]["tokens"] for r in runs])
        return len(nll[0]), lambda i: float(np.exp(nll[:, i].sum() / tokens[:, i].sum()))
    if metric == "avg_accuracy":
        correct = {t: np.array([r["correct"][t] for r in runs]) for t in runs[0]["correct"]}
        return ({t: len(c[0]) for t, c in correct.items()},
                lambda i: float(np.mean([c[:, i[t]].mean() for t, c in correct.items()])))
    raise ValueError(f"unknown recovery metric {metric!r}; known: {', '.join(METRICS)}")


def pooled_figure(runs: list[dict], metric: str, sources: Sequence[str], seed: int = 0) -> tuple[float, float]:
    """The metric over the pooled runs and its bootstrap SE over items."""
    n, stat = item_statistic(runs, metric, sources)
    boot = item_bootstrap([stat], n, seed=seed)
    return float(boot.values[0]), boot.se(0)


def paired_difference(a: list[dict], b: list[dict], metric: str, sources: Sequence[str], seed: int = 0) -> dict:
    """Runs `a` minus runs `b` on one metric, with its paired bootstrap SE over items and z."""
    n, stat_a = item_statistic(a, metric, sources)
    return item_bootstrap([stat_a, item_statistic(b, metric, sources)[1]], n, seed=seed).difference(0, 1)
