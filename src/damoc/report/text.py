"""Sentences that the terminal and the reports both say, written once so they cannot disagree."""

from __future__ import annotations


def verdict_sentence(verdict: dict | None) -> str | None:
    """The recommendation, saying so when the leaders cannot be told apart (the verdict's tie set)."""
    if not verdict:
        return None
    if verdict["tied"]:
        return (f"Tied: {', '.join(verdict['tie_set'])} (within two paired standard errors of the best: cannot be "
                f"told apart at this budget). Recommended: {verdict['recommended']}, the cheapest of them to "
                "fine-tune.")
    return (f"Recommended: {verdict['recommended']} (ahead of every other candidate by more than two paired "
            "standard errors).")


def apart_sentence(verdict: dict | None) -> str | None:
    """Which candidates cannot be told apart from the best: the verdict's tie set, by the verdict's rule."""
    if not verdict:
        return None
    if verdict["tied"]:
        return f"Cannot be told apart from the best: {', '.join(verdict['tie_set'])} (the verdict's tie set)."
    return f"Cannot be told apart from the best: none; {verdict['recommended']} leads."


def warnings(summary: dict) -> list[str]:
    return list(summary.get("warnings") or [])


def num(x: float | None, spec: str = ".2f") -> str:
    """A figure, or "n/a" where it is undefined (stored as null, e.g. Kendall tau when every candidate ties)."""
    return "n/a" if x is None else format(x, spec)


def zero_shot_lines(summary: dict) -> list[str]:
    """The free guess beside the run's ranking: the untrained models' order, and where it disagrees."""
    zero = summary.get("zero_shot")
    if not zero:
        return []
    metric = summary["primary_metric"]
    order = " > ".join(f"{m} ({num(zero['metrics'][m].get(metric), '.3f')})" for m in zero["ranking_models"])
    lines = [f"Zero-shot ranking of the models, untrained, by {metric}: {order or 'none finished'}."]
    comparison = zero.get("comparison")
    if comparison is None:
        lines.append(zero["note"] + ".")
    elif comparison["models_compared"] < 2:
        lines.append("Fewer than two models finished both ways: nothing to compare.")
    elif comparison["same_first_model"] and not comparison["pairs_reordered"]:
        lines.append("This run orders the models as the zero-shot guess does: training did not change the answer "
                     "(the free guess would have done as well here).")
    else:
        first = ("the same model first" if comparison["same_first_model"] else
                 f"{comparison['trained_first']} first where zero-shot puts {comparison['zero_shot_first']} first")
        lines.append(f"Training changed the answer: this run puts {first}; models ordered differently: "
                     + ("; ".join(comparison["pairs_reordered"]) or "none") + ".")
    cost = zero["cost"]
    lines.append(f"The zero-shot pass cost {cost['eval_flops']:.3g} FLOPs ({cost['eval_seconds']:.0f} s), counted in "
                 "this run's cost.")
    return lines
