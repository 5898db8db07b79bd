"""Evaluation: log-likelihood choice accuracy, answer bits per byte, generation metrics, perplexity."""

from damoc.evaluation.evaluate import EvalResult, evaluate
from damoc.evaluation.perplexity import perplexity

__all__ = ["EvalResult", "evaluate", "perplexity"]
