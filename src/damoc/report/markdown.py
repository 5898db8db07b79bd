"""report.md for a `damoc select` run: the ranking, the evidence, and what it cost (from the typed results)."""

from __future__ import annotations

from damoc.report.text import apart_sentence, lighter_sentence, num, validation_lines, verdict_sentence, zero_shot_lines
from damoc.selection.results import SelectResults, Verdict


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def verdict_lines(verdict: Verdict | None) -> list[str]:
    """The recommendation, saying so when the leaders cannot be told apart."""
    sentence = verdict_sentence(verdict)
    if not sentence:
        return []
    lighter = lighter_sentence(verdict)
    return ([f"**{sentence}** Rule: {verdict.rule}." if verdict.tied else f"**{sentence}**", ""]
            + ([lighter, ""] if lighter else []))


def select_report(summary: dict | SelectResults) -> str:
    res = summary if isinstance(summary, SelectResults) else SelectResults.model_validate(summary)
    lines = [f"# damoc select: {res.task}", "",
             f"Ranked by **{res.primary_metric}** (ties broken by answer bits per byte); each candidate with the "
             "layers its row shows (all: not pruned), trained on the data the run's levers kept (none with "
             "`--strategy zero-shot`).", "",
             "| rank | candidate | accuracy % | answer bits/byte | layers | prune s | train s | eval s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res.candidates:
        if not r.ok:
            lines.append(f"| failed | {r.name} | | | | | | {r.error or ''} |")
            continue
        p = r.prune
        layers = f"{p.layers_after}/{p.layers_before}" if p else "all"
        rank = f"{r.rank} (dropped at rung {r.dropped_at_rung})" if r.dropped_at_rung is not None else r.rank
        bpb = num(r.metrics.get("answer_bpb"), ".3f")
        lines.append(f"| {rank} | {r.name} | {_pct(r.metrics.get('accuracy'))} | {bpb} | {layers} | "
                     f"{p.seconds if p else 0:.0f} | {r.train_seconds:.0f} | {r.eval_seconds:.0f} |")
    lines += ["", "By answer bits per byte alone: " + " > ".join(res.ranking_bpb), ""]
    if res.warnings:
        lines += ["## Warnings: degenerate predictions", ""] + [f"- {w}" for w in res.warnings] + [""]
    lines += verdict_lines(res.verdict)
    if res.zero_shot is not None:
        lines += ["## Against the free guess: zero-shot", ""] + zero_shot_lines(res) + [""]
    lines += _halving(res) + _sequential(res) + _adaptive(res) + _confidence(res) + _data(res)
    if res.validation is not None or res.validation_skipped:
        lines += ["", "## Validation against full fine-tuning", ""] + [f"- {x}" for x in validation_lines(res)]
    return "\n".join(lines) + "\n"


def _halving(res: SelectResults) -> list[str]:
    h = res.halving
    if h is None:
        return []
    lines = ["## Successive halving", "", "| round | training examples | test questions | ranking | kept |",
             "|---|---|---|---|---|"]
    for r in h.rounds:
        questions = r.questions if r.questions is not None else "all"
        lines.append(f"| {r.round} | {r.examples} | {questions} | {' > '.join(r.ranking)} | {', '.join(r.kept)} |")
    lines += ["", h.note + "."]
    if h.evaluation == "sequential":
        stops = "; ".join(f"round {r.round}: {r.stopped}" for r in h.rounds)
        lines.append("Each round's candidates were scored on growing batches of the same test questions until its "
                     f"better half was decided (`--eval.strategy sequential`): {stops}.")
    return lines + [""]


def _sequential(res: SelectResults) -> list[str]:
    s = res.sequential
    if s is None:
        return []
    stops = ["one candidate is left", f"all left are within the tie margin {s.margin:g}" if s.margin else "",
             "the rest of the questions would change the pick with a predictive "
             f"probability below {s.settle:g} against every other candidate" if s.settle else "",
             f"before a batch that would take evaluation past {s.budget:g}x the candidates' training FLOPs (the "
             "verdict then ties what the questions scored cannot separate)" if s.budget else ""]
    lines = ["## Sequential evaluation", "",
             f"Batches at {', '.join(map(str, s.looks))} questions; a candidate clearly worse than another "
             f"(beyond z = {s.z:.2f} paired SE: alpha {s.alpha:g} over every batch and pair) was dropped; the run "
             f"stops once {', or '.join(x for x in stops if x)}. Stopped: {s.stopped}.", "",
             "| candidate | questions scored | dropped |", "|---|---|---|"]
    lines += [f"| {n} | {q} | {'yes' if n in s.dropped else ''} |" for n, q in s.questions.items()]
    return lines + ["", s.note + ".", ""]


def _adaptive(res: SelectResults) -> list[str]:
    a = res.adaptive
    if a is None:
        return []
    lines = ["## Adaptive selection", "", f"{a.note}. Stopped: {a.stopped}.", "",
             "| rung | training examples | candidates | probability of being best at full size |", "|---|---|---|---|"]
    lines += [f"| {r.rung} | {r.examples} | {len(r.candidates)} | "
              + (", ".join(f"{n} {p:.2f}" for n, p in r.prob_best.items()) if r.prob_best else "-") + " |"
              for r in a.rungs]
    lines += ["", "| candidate | law | predicted bits/byte at full size | leave-last-rung-out error |",
              "|---|---|---|---|"]
    lines += [f"| {n} | {f.law} | {f.predicted_answer_bpb_full:.3f} | "
              + ("-" if f.loo_error is None else f"{100 * f.loo_error:.1f}%") + " |" for n, f in a.fits.items()]
    return lines + [f"- dropped: {n} after rung {d.rung} (probability {d.prob_best:.2f})"
                    for n, d in a.dropped.items()] + [""]


def _confidence(res: SelectResults) -> list[str]:
    conf = res.confidence
    if conf is None:
        return []
    lines = ["## Confidence (paired bootstrap over test questions)", "", "| candidate | probability of ranking first |",
             "|---|---|"]
    lines += [f"| {n} | {p:.2f} |" for n, p in sorted(conf.prob_best.items(), key=lambda x: -x[1])]
    apart = apart_sentence(res.verdict)
    return lines + (["", apart, ""] if apart else [""])


def _data(res: SelectResults) -> list[str]:
    d = res.data
    lines = ["## Data", "", f"- training examples: {d.input_examples} -> {d.output_examples} after filtering "
             f"({(d.filter or {}).get('method', 'off')})"]
    c = d.compress
    if c is not None:
        lines.append(f"- contexts compressed to {c.context_token_ratio:.2f} of their tokens; rewritten "
                     f"{_pct(c.share_rewritten)}%, fell back to milder ratios {_pct(c.share_fell_back_milder)}%, "
                     f"kept whole {_pct(c.share_fell_back_original)}%")
    lines.append("- data stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in d.seconds.items()))
    return lines
