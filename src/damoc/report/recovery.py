"""report.md and report.html for a `damoc recover` run."""

from __future__ import annotations


def trained_on(s: dict) -> str:
    """What a recovery trained on, in words (the report and the terminal say it alike)."""
    rec = s.get("recovery", {})
    return {"data": "the pool's answers", "self": "the original model's own answers",
            "distill": f"the pool's answers and the original model's next-token distributions (KL weight "
                       f"{rec.get('distill_weight')}; its forward passes {rec.get('teacher_flops', 0):.3g} "
                       "FLOPs)"}.get(s.get("targets", "data"), str(s.get("targets")))


def recover_report(s: dict) -> str:
    lines = [f"# damoc recover: {s['method']}", "",
             f"- pool: {s['pool_size']} samples ({s['config']['pool']}); budget {s['budget']}; "
             f"selected {s['selected']}; {s['heldout']} held out for perplexity; {s['dropped_too_long']} left out "
             "as longer than --max-seq-len",
             "- by source (selected / pool): " + ", ".join(f"{k} {s['selected_by_source'].get(k, 0)}/{v}"
                                                         for k, v in sorted(s["pool_by_source"].items())),
             f"- selection seconds: {s['select_seconds']:.1f}"]
    if "clusters" in s:
        lines += [f"- clusters: {s['clusters']}; rejected by the concept graph: {s['rejected_by_concept_graph']}; "
                  f"shortfall filled after the cluster pass: {s['shortfall_after_clusters']}; taken despite "
                  f"the graph to meet the budget: {s.get('taken_despite_concept_graph', 0)}",
                  f"- mean JSD(original, pruned): pool {s['jsd_mean_pool']:.4f}, selected "
                  f"{s['jsd_mean_selected']:.4f} (nats)", "",
                  "| cluster | size | degradation (mean JSD) | budget | selected |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {n} | {d:.4f} | {b} | {k} |" for c, (n, d, b, k) in enumerate(
            zip(s["cluster_sizes"], s["cluster_degradation"], s["cluster_budget"], s["cluster_selected"]))]
    rec = s.get("recovery")
    if rec:
        tasks = list(rec["original"]["accuracy"])
        lines += ["", "## Recovery (LoRA on the subset)", "",
                  "Neutral metrics first (± one SE): perplexity on external WikiText sentences no method selects "
                  "from, and the held-out pool samples' answer NLL per token given their prompt; then zero-shot "
                  "accuracy, and the older held-out perplexity of whole samples (it favours long prose answers).",
                  "", "| model | external perplexity | held-out answer NLL | " + " | ".join(tasks)
                  + " | mean accuracy | held-out perplexity (whole samples) |",
                  "|---|---|---|" + "---|" * len(tasks) + "---|---|"]
        for name in ("original", "pruned", "recovered"):
            r = rec[name]
            nll = r["answer_nll"]["all"]
            lines.append(f"| {name} | {r['external_ppl']:.2f} ± {r['external_ppl_se']:.2f} | "
                         f"{nll['nll']:.3f} ± {nll['nll_se']:.3f} | "
                         + " | ".join(f"{100 * r['accuracy'][t]:.1f}" for t in tasks)
                         + f" | {100 * r['avg_accuracy']:.1f} ± {100 * r['avg_accuracy_se']:.1f} | {r['ppl']:.2f} |")
        lines += ["", f"- recovery training: {rec['train_seconds']:.0f} s on {s['selected']} samples, on "
                      f"{trained_on(s)}"]
    return "\n".join(lines) + "\n"


def recover_html(s: dict, markdown: str) -> str:
    from damoc.report.page import html_page, png

    body: list[tuple[str, str]] = []
    if "clusters" in s:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        k = s["clusters"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        for ax, key, title in [(axes[0], "cluster_sizes", "cluster sizes"),
                               (axes[1], "cluster_degradation", "degradation (mean JSD, nats)"),
                               (axes[2], "cluster_budget", "budget per cluster")]:
            ax.bar(range(k), s[key])
            ax.set_title(title)
            ax.set_xlabel("cluster")
        fig.tight_layout()
        body.append(("Clusters", png(fig, "cluster sizes, degradation and budget")))
        if s.get("map_2d"):
            fig, ax = plt.subplots(figsize=(6, 5))
            xy = list(zip(*s["map_2d"]))
            ax.scatter(xy[0], xy[1], c=s["labels"], s=6, cmap="tab20")
            ax.set_title("samples on the first two diffusion coordinates, by cluster")
            fig.tight_layout()
            body.append(("Map of the clusters", png(fig, "samples on two diffusion coordinates")))
    return html_page(f"damoc recover: {s['method']}", markdown, body)
