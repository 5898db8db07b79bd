"""Learning curves for adaptive selection: fit each candidate's loss against training-set size,
predict it at full size, and say how sure the prediction is.

The law is the rectified scaling law of Lin et al. 2024 ("Selecting Large Language Model to
Fine-tune via Rectified Scaling Law"): L(D) = B / (D_l + D^beta) + E, where D_l, the
"pre-learned data size", bends the small-data end of the curve so that rankings can cross as D
grows. With few rungs its four parameters are often not identifiable; then the plain power law
B * D^-beta + E is fitted instead, and the fit says which law it used.

Sizes are in training examples; losses are answer bits per byte (lower is better).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def rectified_law(d, b: float, d_l: float, beta: float, e: float):
    return b / (d_l + np.power(d, beta)) + e


def power_law(d, b: float, beta: float, e: float):
    return b * np.power(d, -beta) + e


@dataclass
class CurveFit:
    law: str                      # "rectified", "power" or "flat" (too few usable points)
    params: dict[str, float]
    loo_error: float | None = None  # |prediction - value| / value at the last rung, fitted without it

    def predict(self, d: float) -> float:
        p = self.params
        if self.law == "rectified":
            return float(rectified_law(d, p["b"], p["d_l"], p["beta"], p["e"]))
        if self.law == "power":
            return float(power_law(d, p["b"], p["beta"], p["e"]))
        return p["e"]


def _fit(sizes: np.ndarray, values: np.ndarray) -> CurveFit:
    from scipy.optimize import curve_fit

    floor = float(values.min())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's OptimizeWarning when the covariance is not estimable
        if len(sizes) >= 5:
            try:
                start = [values[0] * sizes[0] ** 0.5, 1.0, 0.5, floor * 0.9]
                p, cov = curve_fit(rectified_law, sizes, values, p0=start,
                                   bounds=([0, 0, 0.01, 0], [np.inf, sizes.max() * 10, 2.0, floor]), maxfev=20000)
                if np.all(np.isfinite(np.diag(cov))):
                    return CurveFit("rectified", dict(zip(("b", "d_l", "beta", "e"), map(float, p))))
            except (RuntimeError, ValueError):
                pass
        if len(sizes) >= 3:
            try:
                p, _ = curve_fit(power_law, sizes, values, p0=[values[0] * sizes[0] ** 0.5, 0.5, floor * 0.9],
                                 bounds=([0, 0.01, 0], [np.inf, 2.0, floor]), maxfev=20000)
                return CurveFit("power", dict(zip(("b", "beta", "e"), map(float, p))))
            except (RuntimeError, ValueError):
                pass
    return CurveFit("flat", {"e": float(values[-1])})


def fit_curve(sizes: Sequence[float], values: Sequence[float]) -> CurveFit:
    """The curve through (size, loss) points, with its leave-last-rung-out error."""
    x, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    fit = _fit(x, y)
    if len(x) >= 4:
        held = _fit(x[:-1], y[:-1])
        fit.loo_error = abs(held.predict(x[-1]) - y[-1]) / abs(y[-1]) if y[-1] else None
    return fit


@dataclass
class Rung:
    """One candidate trained on `size` examples, scored per evaluation question."""

    size: int
    nll: np.ndarray    # answer NLL per question, nats
    nbytes: np.ndarray  # answer bytes per question

    def bpb(self, idx: np.ndarray | None = None) -> float:
        idx = np.arange(len(self.nll)) if idx is None else idx
        return float(self.nll[idx].sum() / (self.nbytes[idx].sum() * math.log(2)))


def prob_best_at(curves: dict[str, list[Rung]], full_size: int, samples: int = 200, seed: int = 0,
                 rung_dropout: bool = True) -> dict[str, float]:
    """Each candidate's probability of the lowest bits per byte at `full_size`.

    Two sources of doubt are sampled together. The questions are resampled (paired across
    candidates and rungs): the noise of the evaluation. And, with `rung_dropout`, every curve of
    four or more rungs is refitted without one of its rungs, drawn at random: the doubt of the
    extrapolation itself, which question noise cannot show. A curve whose prediction hangs on
    one rung (e.g. 1.04, 1.12, 1.01 bits per byte at 10, 20, 40 examples) then spreads its
    predictions instead of claiming certainty from a handful of noisy points.
    """
    rng = np.random.default_rng(seed)
    n = len(next(iter(curves.values()))[0].nll)
    wins = dict.fromkeys(curves, 0.0)
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        pred = {}
        for name, rungs in curves.items():
            kept = rungs
            if rung_dropout and len(rungs) >= 4:
                left_out = int(rng.integers(len(rungs)))
                kept = [r for i, r in enumerate(rungs) if i != left_out]
            pred[name] = fit_curve([r.size for r in kept], [r.bpb(idx) for r in kept]).predict(full_size)
        best = min(pred.values())
        leaders = [k for k, v in pred.items() if v == best]
        for k in leaders:
            wins[k] += 1 / len(leaders)
    return {k: v / samples for k, v in wins.items()}


def to_drop(prob_best: dict[str, float], below: float) -> list[str]:
    """Racing: the candidates whose chance of being best has fallen under `below` (never all)."""
    dropped = [k for k, p in prob_best.items() if p < below]
    return dropped if len(dropped) < len(prob_best) else []


def confident_pick(prob_best: dict[str, float], level: float) -> str | None:
    """The candidate whose probability of being best reached `level`, if one has."""
    name, p = max(prob_best.items(), key=lambda kv: kv[1])
    return name if p >= level else None
