"""Learning curves extrapolated: each candidate's metric at a larger training-set size, with an
interval, and its probability of being best there.

One predictor, `predict_curves`, serves both `damoc predict` (a CSV of small-run results) and
`select --strategy adaptive` (racing.py resamples its rungs' questions through the same
extrapolation). The laws and their fits are in laws.py.

Which law extrapolates is decided by backtesting on the points themselves: every candidate's
curve is cut at an earlier point and extrapolated to its own last point, and the law with the
smaller median error per unit of log-distance on the cuts both laws can make wins (loglinear when
there is none). The same backtests calibrate the extrapolation (a drift shared by all candidates
and a gain on each one's predicted change, fitted across candidates) and give the interval: the
quantiles of their residuals per unit of log-distance, scaled to the distance to the target.

The loglinear law's points are chosen per curve by AtS's accept-then-stop (laws.accepted_window)
rather than a fixed last three: a curve whose last point jumped (Gigaword's bart-base fell 0.37 in
one doubling) keeps the earlier points that say where it is heading. Chosen on the AtS benchmark's
columns up to its largest budget alone (bench/scaling_law.py --part design), over the last three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from damoc.selection.laws import ACCEPT, MIN_POINTS, CurveFit, curve_points, fit_curve, fit_law

LN2 = math.log(2)


@dataclass
class Extrapolator:
    """How the points are extrapolated: the law chosen by the backtests, its calibration and the
    residuals that make the interval. `drift` is per unit of ln(size); the residuals (log units) are
    the backtests' errors after calibration, at their ln-distances."""

    law: str = "loglinear"
    window: int = ACCEPT
    drift: float = 0.0
    gain: float = 1.0
    residuals: tuple[float, ...] = ()
    centered: tuple[float, ...] = ()
    distances: tuple[float, ...] = ()  # each residual's ln-distance
    backtest: dict = field(default_factory=dict)

    def spread(self):
        """(sd(distance), standardised residuals, the same centred within each cut), or None when the
        backtests are too few. The interval comes from the most recent regime of the curves: the
        backtests cut at the shortest distance (one doubling before the last point, on a doubling
        grid), their residuals scaled to any distance as (distance in doublings)^GROWTH. GROWTH = 1
        would be a fixed error of the slope, 1.5 a slope that wanders as the curves bend (an
        integrated random walk); 1.25 was chosen on the AtS benchmark's columns up to its largest
        budget alone (bench/scaling_law.py --part design: the coverage closest to the nominal 90% over
        its pseudo tasks, at least 85% at 1/8 on both sets)."""
        if len(self.residuals) < 2:
            return None
        d = np.array(self.distances)
        recent = d <= 1.5 * d.min()
        if recent.sum() < MIN_RESIDUALS:
            return None

        def sd(dist: float) -> float:
            return (max(dist, LN2) / LN2) ** GROWTH

        scale = np.array([sd(x) for x in d[recent]])
        return sd, np.array(self.residuals)[recent] / scale, np.array(self.centered)[recent] / scale

    def fit(self, x: np.ndarray, y: np.ndarray) -> CurveFit:
        law = self.law if len(x) >= MIN_POINTS.get(self.law, 2) else "loglinear"
        return fit_law(x, y, law, self.window)

    def log_prediction(self, x: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float]:
        """(log of the calibrated prediction at `target`, ln-distance from the last point)."""
        fit = self.fit(x, y)
        level = math.log(max(fit.predict(x[-1]), 1e-300))
        change = math.log(max(fit.predict(target), 1e-300)) - level
        dist = math.log(target / x[-1])
        return level + self.drift * max(dist, 0.0) + self.gain * change, dist


def _backtest_pairs(curves: dict[str, tuple[np.ndarray, np.ndarray]], law: str, window: int) -> list[tuple]:
    """(candidate, origin size, last size, ln-distance, predicted change, realised change) for every
    cut of every curve at least one doubling before its last point."""
    ex = Extrapolator(law, window)
    pairs = []
    # a fixed window cuts from that many points ("every point": from 5); accept-then-stop from two
    need = max(MIN_POINTS[law], min(window, 5) if law == "loglinear" else 0)
    for name, (x, y) in curves.items():
        for o in range(need - 1, len(x) - 1):
            dist = math.log(x[-1] / x[o])
            if dist < LN2 - 1e-9:
                continue
            fit = ex.fit(x[:o + 1], y[:o + 1])
            level = math.log(max(fit.predict(x[o]), 1e-300))
            pred = math.log(max(fit.predict(x[-1]), 1e-300)) - level
            pairs.append((name, float(x[o]), float(x[-1]), dist, pred, math.log(y[-1]) - level))
    return pairs


def choose_extrapolator(curves: dict[str, tuple[np.ndarray, np.ndarray]], laws: Sequence[str] = ("loglinear",
                        "rectified"), window: int = ACCEPT, calibrate: bool = True) -> Extrapolator:
    """The law with the smaller median backtest error per unit of ln-distance (compared on the cuts
    every law can make), calibrated on its own backtests."""
    pairs = {law: _backtest_pairs(curves, law, window) for law in laws}
    keys = {law: {(p[0], p[1]) for p in ps} for law, ps in pairs.items()}
    common = set.intersection(*keys.values()) if keys else set()
    errors = {law: float(np.median([abs(p[5] - p[4]) / p[3] for p in ps if (p[0], p[1]) in common]))
              for law, ps in pairs.items()} if common else {}
    law = min(errors, key=errors.get) if errors else laws[0]
    chosen = pairs.get(law, [])
    drift, gain = 0.0, 1.0
    dist = np.array([p[3] for p in chosen])
    pred, real = np.array([p[4] for p in chosen]), np.array([p[5] for p in chosen])
    if calibrate and len(chosen) >= 12 and len({p[0] for p in chosen}) >= 4 and np.ptp(pred / dist) > 0:
        # realised = drift * dist + gain * predicted, across candidates: the gain shrinks changes that
        # the backtests show to be overstated; the drift is a bend all candidates share.
        drift, gain = np.linalg.lstsq(np.column_stack([dist, pred]), real, rcond=None)[0]
        gain = float(np.clip(gain, 0.0, 1.5))
        drift = float(np.mean((real - gain * pred) / dist))
    elif calibrate and len(chosen) >= 3:
        drift = float(np.mean((real - pred) / dist))
    resid = real - drift * dist - gain * pred if len(chosen) else np.array([])
    centered = resid.copy()
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(chosen):
        groups.setdefault((p[1], p[2]), []).append(i)
    for idx in groups.values():
        if len(idx) >= 3:  # what candidates cut at the same sizes share cannot change their ranking
            centered[idx] -= centered[idx].mean()
    return Extrapolator(law, window, float(drift), float(gain), tuple(map(float, resid)), tuple(map(float, centered)),
                        tuple(map(float, dist)),
                        {"pairs": len(chosen), "candidates": len({p[0] for p in chosen}),
                         "median_error_per_doubling": {k: v * LN2 for k, v in errors.items()},
                         "compared_on": len(common)})


@dataclass
class Prediction:
    name: str
    predicted: float
    low: float
    high: float
    prob_best: float
    points: int
    fit: CurveFit


@dataclass
class CurvePredictions:
    target: float
    level: float
    higher_is_better: bool
    extrapolator: Extrapolator
    predictions: list[Prediction]   # best first

    def as_dict(self) -> dict:
        ex = self.extrapolator
        return {"target_size": self.target, "level": self.level, "higher_is_better": self.higher_is_better,
                "method": {"law": ex.law, "window": "accept-then-stop" if ex.window == ACCEPT else ex.window,
                           "drift_per_doubling": ex.drift * LN2,
                           "gain": ex.gain, "residuals": len(ex.residuals), **ex.backtest},
                "predictions": [{"model": p.name, "predicted": p.predicted, "low": p.low, "high": p.high,
                                 "prob_best": p.prob_best, "points": p.points, "law": p.fit.law}
                                for p in self.predictions],
                "ranking": [p.name for p in self.predictions]}


MIN_RESIDUALS = 8
GROWTH = 1.25  # how an extrapolation's error grows with its distance (Extrapolator.spread)


def _to_loss(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ValueError("every metric must be a finite number")
    if higher_is_better:
        if np.any(values < 0) or np.any(values > 1):
            raise ValueError("a higher-is-better metric must lie in [0, 1] (its complement is fitted)")
        return np.maximum(1.0 - values, 1e-9)
    if np.any(values <= 0):
        raise ValueError("a lower-is-better metric must be positive (its logarithm is fitted)")
    return values


def _jackknife_sd(ex: Extrapolator, x: np.ndarray, y: np.ndarray, target: float) -> float:
    """The spread of the prediction over the fits that leave one point out (jackknife)."""
    if len(x) < 3:
        return abs(math.log(y[-1] / y[0])) or 0.1
    preds = np.array([ex.log_prediction(np.delete(x, j), np.delete(y, j), target)[0] for j in range(len(x))])
    return float(math.sqrt((len(x) - 1) / len(x) * np.sum((preds - preds.mean()) ** 2)))


def predict_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], target: float,
                   level: float = 0.9, higher_is_better: bool = False, samples: int = 4000, seed: int = 0,
                   laws: Sequence[str] = ("loglinear", "rectified"), window: int = ACCEPT,
                   calibrate: bool = True) -> CurvePredictions:
    """Each candidate's metric at `target` examples, its `level` interval and its probability of
    being best, from its (examples, metric) points. Candidates need two points of more than 0
    examples each."""
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level {level}: give a share between 0 and 1")
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target {target}: give a positive number of examples")
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (sizes, values) in curves.items():
        x, y = curve_points(sizes, values)
        if len(x) < 2:
            raise ValueError(f"{name}: {len(x)} point(s) above 0 examples; a curve needs 2")
        data[name] = (x, _to_loss(y, higher_is_better))
    if not data:
        raise ValueError("no candidates")
    ex = choose_extrapolator(data, laws, window, calibrate)
    rng = np.random.default_rng(seed)
    spread = ex.spread()
    draws, rows = [], []
    for name, (x, y) in data.items():
        mu, dist = ex.log_prediction(x, y, target)
        if spread is not None:
            sd, z, zc = spread
            n = len(z)
            q = min(1.0, (1 + level) / 2 * (n + 1) / n)
            s = sd(max(dist, 0.0))
            low, high = mu + s * np.quantile(z, 1 - q, method="lower"), mu + s * np.quantile(z, q, method="higher")
            draws.append(mu + s * rng.choice(zc, samples))
        else:
            growth = (np.maximum(np.array(ex.distances), LN2) / LN2) ** GROWTH
            resid = np.array(ex.residuals) / growth  # as if one doubling away
            scale = (max(dist, LN2) / LN2) ** GROWTH
            sd_ = (math.sqrt(np.mean(resid ** 2)) * scale if len(resid) >= 2 else _jackknife_sd(ex, x, y, target))
            df = max(len(resid) - 1, 1) if len(resid) >= 2 else max(len(x) - 2, 1)
            t = float(stats.t.ppf((1 + level) / 2, df))
            low, high = mu - t * sd_, mu + t * sd_
            draws.append(mu + sd_ * rng.standard_normal(samples))
        law = ex.law if len(x) >= MIN_POINTS.get(ex.law, 2) else "loglinear"
        rows.append((name, mu, low, high, len(x), fit_curve(x, y, law, ex.window)))
    draws = np.array(draws)
    best = draws.min(axis=0)
    leaders = draws == best
    prob = (leaders / leaders.sum(axis=0)).mean(axis=1)
    preds = []
    for (name, mu, low, high, n, fit), p in zip(rows, prob):
        vals = [math.exp(v) for v in (mu, low, high)]
        if higher_is_better:
            vals = [1.0 - vals[0], 1.0 - vals[2], 1.0 - vals[1]]
        preds.append(Prediction(name, vals[0], vals[1], vals[2], float(p), n, fit))
    preds.sort(key=lambda p: -p.predicted if higher_is_better else p.predicted)
    return CurvePredictions(float(target), level, higher_is_better, ex, preds)
