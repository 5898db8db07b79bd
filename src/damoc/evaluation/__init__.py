"""Evaluation: log-likelihood choice accuracy, answer bits per byte, generation metrics."""

from damoc.evaluation.evaluate import EvalResult, evaluate

__all__ = ["EvalResult", "evaluate"]
