"""Adaptive selection's racing: each candidate's rungs (trained on growing prefixes, scored per
question), its probability of being best at the full size through the predictor's extrapolation
(curves.py), and the rules that drop candidates and stop the race."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from damoc.selection.curves import choose_extrapolator
from damoc.selection.laws import curve_points


@dataclass
class Rung:
    """One candidate trained on `size` examples, scored per evaluation question."""

    size: int
    nll: np.ndarray    # answer NLL per question, nats
    nbytes: np.ndarray  # answer bytes per question

    def bpb(self, idx: np.ndarray | None = None) -> float:
        idx = np.arange(len(self.nll)) if idx is None else idx
        return float(self.nll[idx].sum() / (self.nbytes[idx].sum() * math.log(2)))


def rung_curves(curves: dict[str, list[Rung]]) -> dict[str, tuple[list[int], list[float]]]:
    return {name: ([r.size for r in rungs], [r.bpb() for r in rungs]) for name, rungs in curves.items()}


def prob_best_at(curves: dict[str, list[Rung]], full_size: int, samples: int = 200, seed: int = 0,
                 rung_dropout: bool = True) -> dict[str, float]:
    """Each candidate's probability of the lowest bits per byte at `full_size`, through the
    predictor's extrapolation (its law and calibration chosen once, on the whole curves).

    Two sources of doubt are sampled together. The questions are resampled (paired across
    candidates and rungs): the noise of the evaluation. And, with `rung_dropout`, every curve of
    four or more rungs is refitted without one of its rungs, drawn at random: the doubt of the
    extrapolation itself, which question noise cannot show. A curve whose prediction hangs on
    one rung (e.g. 1.04, 1.12, 1.01 bits per byte at 10, 20, 40 examples) then spreads its
    predictions instead of claiming certainty from a handful of noisy points.
    """
    ex = choose_extrapolator({k: curve_points(*v) for k, v in rung_curves(curves).items()})
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
            x, y = curve_points([r.size for r in kept], [r.bpb(idx) for r in kept])
            pred[name] = ex.log_prediction(x, y, full_size)[0] if len(x) >= 2 else math.log(y[-1])
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
