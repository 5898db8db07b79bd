"""report.md for a `damoc select` run: the ranking, the evidence, and what it cost."""

from __future__ import annotations

from damoc.report.text import apart_sentence, num, verdict_sentence, warnings, zero_shot_lines
from damoc.selection.candidate import display_name as _name
from damoc.selection.candidate import is_ok


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def verdict_lines(verdict: dict | None) -> list[str]:
    """The recommendation, saying so when the leaders cannot be told apart."""
    sentence = verdict_sentence(verdict)
    if not sentence:
        return []
    return [f"**{sentence}** Rule: {verdict['rule']}." if verdict["tied"] else f"**{sentence}**", ""]


def select_report(summary: dict) -> str:
    lines = [f"# damoc select: {summary['task']}", ""]
    metric = summary["primary_metric"]
    lines += [f"Ranked by **{metric}** (ties broken by answer bits per byte), each candidate pruned and trained "
              "one epoch on the compressed data, evaluated on the full test split.", "",
              "| rank | candidate | accuracy % | answer bits/byte | layers | prune s | train s | eval s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in summary["candidates"]:
        if not is_ok(r):
            lines.append(f"| failed | {_name(r)} | | | | | | {r.get('error', '')} |")
            continue
        m, p = r["metrics"], r.get("prune", {})
        layers = f"{p['layers_after']}/{p['layers_before']}" if p else "all"
        rank = f"{r['rank']} (dropped at rung {r['dropped_at_rung']})" if "dropped_at_rung" in r else r["rank"]
        lines.append(f"| {rank} | {_name(r)} | {_pct(m.get('accuracy'))} | {m['answer_bpb']:.3f} | {layers} | "
                     f"{p.get('seconds', 0):.0f} | {r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |")
    lines += ["", "By answer bits per byte alone: " + " > ".join(summary.get("ranking_bpb", [])), ""]
    if warnings(summary):
        lines += ["## Warnings: degenerate predictions", ""] + [f"- {w}" for w in warnings(summary)] + [""]
    lines += verdict_lines(summary.get("verdict"))
    if summary.get("zero_shot"):
        lines += ["## Against the free guess: zero-shot", ""] + zero_shot_lines(summary) + [""]
    halving = summary.get("halving")
    if halving:
        lines += ["## Successive halving", "", "| round | training examples | ranking | kept |", "|---|---|---|---|"]
        lines += [f"| {r['round']} | {r['examples']} | {' > '.join(r['ranking'])} | {', '.join(r['kept'])} |"
                  for r in halving["rounds"]]
        lines += ["", halving["note"] + ".", ""]
    adaptive = summary.get("adaptive")
    if adaptive:
        lines += ["## Adaptive selection", "", f"{adaptive['note']}. Stopped: {adaptive['stopped']}.", "",
                  "| rung | training examples | candidates | probability of being best at full size |",
                  "|---|---|---|---|"]
        lines += [f"| {r['rung']} | {r['examples']} | {len(r['candidates'])} | "
                  + (", ".join(f"{n} {p:.2f}" for n, p in r["prob_best"].items()) if "prob_best" in r else "-")
                  + " |" for r in adaptive["rungs"]]
        lines += ["", "| candidate | law | predicted bits/byte at full size | leave-last-rung-out error |",
                  "|---|---|---|---|"]
        lines += [f"| {n} | {f['law']} | {f['predicted_answer_bpb_full']:.3f} | "
                  + ("-" if f["loo_error"] is None else f"{100 * f['loo_error']:.1f}%") + " |"
                  for n, f in adaptive["fits"].items()]
        lines += [f"- dropped: {n} after rung {d['rung']} (probability {d['prob_best']:.2f})"
                  for n, d in adaptive["dropped"].items()] + [""]
    conf = summary.get("confidence")
    if conf:
        lines += ["## Confidence (paired bootstrap over test questions)", "",
                  "| candidate | probability of ranking first |", "|---|---|"]
        lines += [f"| {n} | {p:.2f} |" for n, p in sorted(conf["prob_best"].items(), key=lambda x: -x[1])]
        apart = apart_sentence(summary.get("verdict"))
        lines += ["", apart, ""] if apart else [""]
    data = summary.get("data", {})
    lines += ["## Data", "", f"- training examples: {data.get('input_examples')} -> {data.get('output_examples')} "
              f"after filtering ({(data.get('filter') or {}).get('method', 'off')})"]
    comp = data.get("compress")
    if comp:
        lines.append(f"- contexts compressed to {comp['context_token_ratio']:.2f} of their tokens; "
                     f"rewritten {_pct(comp['share_rewritten'])}%, fell back to milder ratios "
                     f"{_pct(comp['share_fell_back_milder'])}%, kept whole {_pct(comp['share_fell_back_original'])}%")
    secs = data.get("seconds", {})
    lines.append("- data stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in secs.items()))
    val = summary.get("validation")
    if val:
        r = val["by_rank"]
        lines += ["", "## Validation against full fine-tuning", "",
                  f"- chosen: {r['chosen']}; truly best: {r['best']}; top-1 match: **{r['top1_match']}**",
                  f"- Kendall tau {num(r['kendall_tau'])}, Spearman rho {num(r['spearman_rho'])} (ranks); "
                  f"regret {val['regret']:.4f} in {metric}",
                  f"- speed-up: {num(val['speedup_wall'], '.1f')}x wall time ({val['speedup_wall_note']}); "
                  f"{num(val['speedup_flops'], '.1f')}x FLOPs with overheads "
                  f"({num(val['speedup_flops_training_only'], '.1f')}x training only)"]
        full_conf = val.get("full_confidence")
        if full_conf:
            lines.append("- full fine-tuning's probability of ranking first (paired bootstrap): "
                         + ", ".join(f"{n} {p:.2f}" for n, p in sorted(full_conf["prob_best"].items(),
                                                                        key=lambda x: -x[1])))
        judged = val.get("judged")
        if judged:
            agree = judged["separated_pairs_agreement"]
            lines.append(f"- full fine-tuning's tie set (within 2 paired SE of its best): "
                         f"{', '.join(judged['truth_tie_set'])}; the pick is in it: **{judged['in_tie_set']}**; "
                         f"regret {judged['regret']:.4f} ± {judged['regret_se']:.4f} (paired SE); pairs the truth "
                         f"separates: {judged['separated_pairs']}, ordered the same: "
                         + ("n/a" if agree is None else f"{100 * agree:.0f}%"))
    return "\n".join(lines) + "\n"
