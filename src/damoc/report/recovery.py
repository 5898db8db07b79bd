"""report.md and report.html for a `damoc recover` run, read from its typed summary
(damoc.recovery.results)."""

from __future__ import annotations

from damoc.recovery.results import RecoverSummary
from damoc.report.text import num


def summary_of(s: dict | RecoverSummary) -> RecoverSummary:
    return s if isinstance(s, RecoverSummary) else RecoverSummary.model_validate(s)


def trained_on(summary: dict | RecoverSummary) -> str:
    """What a recovery trained on, in words (the report and the terminal say it alike)."""
    s = summary_of(summary)
    if s.targets == "distill" and s.recovery is not None:
        return (f"the pool's answers and the original model's next-token distributions (KL weight "
                f"{s.recovery.distill_weight}; its forward passes {s.recovery.teacher_flops:.3g} FLOPs)")
    return {"data": "the pool's answers", "self": "the original model's own answers"}.get(s.targets, s.targets)


def recover_report(summary: dict | RecoverSummary) -> str:
    s = summary_of(summary)
    lines = [f"# damoc recover: {s.method}", "",
             f"- pool: {s.pool_size} samples ({s.config.get('pool')}); budget {s.budget}; "
             f"selected {s.selected}; {s.heldout} held out for perplexity; {s.dropped_too_long} left out "
             "as longer than --max-seq-len",
             "- by source (selected / pool): " + ", ".join(f"{k} {s.selected_by_source.get(k, 0)}/{v}"
                                                         for k, v in sorted(s.pool_by_source.items())),
             f"- selection seconds: {s.select_seconds:.1f}"]
    if s.clusters is not None:
        lines += [f"- clusters: {s.clusters}; rejected by the concept graph: {s.rejected_by_concept_graph}; "
                  f"shortfall filled after the cluster pass: {s.shortfall_after_clusters}; taken despite "
                  f"the graph to meet the budget: {s.taken_despite_concept_graph}",
                  f"- mean JSD(original, pruned): pool {num(s.jsd_mean_pool, '.4f')}, selected "
                  f"{num(s.jsd_mean_selected, '.4f')} (nats)", "",
                  "| cluster | size | degradation (mean JSD) | budget | selected |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {n} | {num(d, '.4f')} | {b} | {k} |" for c, (n, d, b, k) in enumerate(
            zip(s.cluster_sizes, s.cluster_degradation, s.cluster_budget, s.cluster_selected))]
    rec = s.recovery
    if rec is not None:
        tasks = list(rec.original.accuracy)
        lines += ["", "## Recovery (LoRA on the subset)", "",
                  "Neutral metrics first (± one SE): perplexity on external WikiText sentences no method selects "
                  "from, and the held-out pool samples' answer NLL per token given their prompt; then zero-shot "
                  "accuracy, and the older held-out perplexity of whole samples (it favours long prose answers).",
                  "", "| model | external perplexity | held-out answer NLL | " + " | ".join(tasks)
                  + " | mean accuracy | held-out perplexity (whole samples) |",
                  "|---|---|---|" + "---|" * len(tasks) + "---|---|"]
        for name, r in (("original", rec.original), ("pruned", rec.pruned), ("recovered", rec.recovered)):
            lines.append(f"| {name} | {num(r.external_ppl)} ± {num(r.external_ppl_se)} | "
                         f"{num(r.nll.nll, '.3f')} ± {num(r.nll.nll_se, '.3f')} | "
                         + " | ".join(_pct(r.accuracy.get(t)) for t in tasks)
                         + f" | {_pct(r.avg_accuracy)} ± {_pct(r.avg_accuracy_se)} | {num(r.ppl)} |")
        lines += ["", f"- recovery training: {rec.train_seconds:.0f} s on {s.selected} samples, on "
                      f"{trained_on(s)}"]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return num(None if x is None else 100 * x, ".1f")


def recover_html(summary: dict | RecoverSummary, markdown: str) -> str:
    from damoc.report.page import html_page, png

    s = summary_of(summary)
    body: list[tuple[str, str]] = []
    if s.clusters is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        for ax, values, title in [(axes[0], s.cluster_sizes, "cluster sizes"),
                                  (axes[1], [float("nan") if v is None else v for v in s.cluster_degradation],
                                   "degradation (mean JSD, nats)"),
                                  (axes[2], s.cluster_budget, "budget per cluster")]:
            ax.bar(range(len(values)), values)
            ax.set_title(title)
            ax.set_xlabel("cluster")
        fig.tight_layout()
        body.append(("Clusters", png(fig, "cluster sizes, degradation and budget")))
        if s.map_2d:
            fig, ax = plt.subplots(figsize=(6, 5))
            xy = list(zip(*s.map_2d))
            ax.scatter(xy[0], xy[1], c=s.labels, s=6, cmap="tab20")
            ax.set_title("samples on the first two diffusion coordinates, by cluster")
            fig.tight_layout()
            body.append(("Map of the clusters", png(fig, "samples on two diffusion coordinates")))
    return html_page(f"damoc recover: {s.method}", markdown, body)
