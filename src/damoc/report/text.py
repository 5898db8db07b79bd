"""Sentences that the terminal and the reports both say, written once so they cannot disagree.
They read the typed results (damoc.selection.results), never string keys."""

from __future__ import annotations

import math

from damoc.selection.results import SelectResults, Verdict


def num(x: float | None, spec: str = ".2f") -> str:
    """A figure, or "n/a" where it is undefined (stored as null, e.g. Kendall tau when every candidate ties;
    NaN before a run's results are written, e.g. a JSD that was never measured)."""
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def verdict_sentence(verdict: Verdict | None) -> str | None:
    """The recommendation, saying so when the leaders cannot be told apart (the verdict's tie set)."""
    if verdict is None:
        return None
    m = verdict.margin
    if verdict.tied:
        return (f"Tied: {', '.join(verdict.tie_set)} (within two paired standard errors{f' or {m:g}' if m else ''} "
                f"of the best: cannot be told apart at this budget). Recommended: {verdict.recommended}, the "
                "cheapest of them to fine-tune.")
    return (f"Recommended: {verdict.recommended} (ahead of every other candidate by more than two paired standard "
            f"errors{f' and {m:g}' if m else ''}).")


def lighter_sentence(verdict: Verdict | None) -> str | None:
    """When the pick is a full fine-tune: how far its own model's lighter method is from it, and why that
    gap deserves a look before paying for full fine-tuning."""
    alt = verdict.lighter_method if verdict is not None else None
    if alt is None:
        return None
    unit = "accuracy points" if alt.metric == "accuracy" else "bits per byte"
    scale = 100 if alt.metric == "accuracy" else 1
    side = "behind" if alt.diff > 0 else "ahead of"
    where = f"the first {alt.questions} questions (it was dropped there)" if alt.questions else "these questions"
    return (f"The pick is a full fine-tune: {alt.candidate} is {scale * abs(alt.diff):.3g} ± {scale * alt.se:.2g} "
            f"{unit} {side} it on {where}. A full fine-tune's lead on a small training sample may not hold on all "
            "the data (docs/benchmarks/zoo.md), and the lighter method is cheaper to train and serve: weigh that "
            "gap before choosing full fine-tuning.")


def apart_sentence(verdict: Verdict | None) -> str | None:
    """Which candidates cannot be told apart from the best: the verdict's tie set, by the verdict's rule."""
    if verdict is None:
        return None
    if verdict.tied:
        return f"Cannot be told apart from the best: {', '.join(verdict.tie_set)} (the verdict's tie set)."
    return f"Cannot be told apart from the best: none; {verdict.recommended} leads."


def zero_shot_lines(results: SelectResults) -> list[str]:
    """The free guess beside the run's ranking: the untrained models' order, and where it disagrees."""
    zero = results.zero_shot
    if zero is None:
        return []
    metric = results.primary_metric
    order = " > ".join(f"{m} ({num(zero.metrics[m].get(metric), '.3f')})" for m in zero.ranking_models)
    lines = [f"Zero-shot ranking of the models, untrained, by {metric}: {order or 'none finished'}."]
    c = zero.comparison
    if c is None:
        lines.append(zero.note + ".")
    elif c.models_compared < 2:
        lines.append("Fewer than two models finished both ways: nothing to compare.")
    elif c.same_first_model and not c.pairs_reordered:
        lines.append("This run orders the models as the zero-shot guess does: training did not change the answer "
                     "(the free guess would have done as well here).")
    else:
        first = ("the same model first" if c.same_first_model else
                 f"{c.trained_first} first where zero-shot puts {c.zero_shot_first} first")
        lines.append(f"Training changed the answer: this run puts {first}; models ordered differently: "
                     + ("; ".join(c.pairs_reordered) or "none") + ".")
    lines.append(f"The zero-shot pass cost {zero.cost.get('eval_flops', 0.0):.3g} FLOPs "
                 f"({zero.cost.get('eval_seconds', 0.0):.0f} s), counted in this run's cost.")
    return lines


def validation_lines(results: SelectResults) -> list[str]:
    """The comparison with full fine-tuning, for `--validate` runs."""
    v = results.validation
    if v is None:
        return [f"Validation skipped: {results.validation_skipped}"] if results.validation_skipped else []
    r = v.by_rank
    first = (f"chosen: {r.chosen}; truly best: {r.best}; top-1 match: {r.top1_match}" if v.pick in (None, r.chosen)
             else f"recommended: {v.pick} (the ranking's first: {r.chosen}, top-1 match: {r.top1_match}); "
                  f"truly best: {r.best}")
    lines = [first,
             f"Kendall tau {num(r.kendall_tau)}, Spearman rho {num(r.spearman_rho)} (ranks); regret "
             f"{num(v.regret, '.4f')} in {results.primary_metric}",
             f"speed-up: {num(v.speedup_wall, '.1f')}x wall time ({v.speedup_wall_note}); "
             f"{num(v.speedup_flops, '.1f')}x FLOPs with overheads ({num(v.speedup_flops_training_only, '.1f')}x "
             f"training only; {num(v.speedup_flops_with_evaluation, '.1f')}x with both routes' evaluation)"]
    if v.full_confidence is not None:
        ranked = sorted(v.full_confidence.prob_best.items(), key=lambda x: -x[1])
        lines.append("full fine-tuning's probability of ranking first (paired bootstrap): "
                     + ", ".join(f"{n} {p:.2f}" for n, p in ranked))
    j = v.judged
    if j is not None:
        agree = j.separated_pairs_agreement
        lines.append(f"full fine-tuning's tie set (within 2 paired SE of its best): {', '.join(j.truth_tie_set)}; "
                     f"the pick is in it: {j.in_tie_set}; regret {j.regret:.4f} ± {j.regret_se:.4f} (paired SE); "
                     f"pairs the truth separates: {j.separated_pairs}, ordered the same: "
                     + ("n/a" if agree is None else f"{100 * agree:.0f}%"))
    return lines
