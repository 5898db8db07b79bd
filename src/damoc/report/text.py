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
