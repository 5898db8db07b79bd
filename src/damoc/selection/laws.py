"""Learning-curve laws: a candidate's loss against its training-set size, and their fits.

In loss terms (lower is better; curves.py turns a higher-is-better metric in [0, 1] into its
complement first):

- rectified (Lin et al. 2024, "Selecting Large Language Model to Fine-tune via Rectified Scaling
  Law"): L(D) = B / (D_l + D^beta) + E. D_l, the "pre-learned data size", bends the small-data
  end of the curve (the "pre-power phase") so that rankings can cross as D grows.
- power: B * D^-beta + E, the rectified law without D_l (for three or four points).
- loglinear: log L = log B - beta * log D through the last few points: the "power phase" alone,
  a straight line on log-log axes, which is what the paper's AtS selector extrapolates. How many
  points: a fixed `window`, or (window ACCEPT) the paper's accept-then-stop rule, which walks back
  from the last point and takes each earlier one while it lies on the line through the points
  after it (`accepted_window`): a curve whose last points jumped keeps its older points too.

Sizes of 0 (zero-shot scores) are left out of every fit: a fine-tuned curve does not pass
through them (FLAN's t5-v1_1-base scores 28.8 before fine-tuning and 4.0 after 200 examples).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_POINTS = {"rectified": 5, "power": 3, "loglinear": 2}
ACCEPT = 0  # a loglinear window chosen per curve by accept-then-stop (accepted_window)


def rectified_law(d, b: float, d_l: float, beta: float, e: float):
    return b / (d_l + np.power(d, beta)) + e


def power_law(d, b: float, beta: float, e: float):
    return b * np.power(d, -beta) + e


def loglinear_law(d, b: float, beta: float):
    return b * np.power(d, -beta)


@dataclass
class CurveFit:
    law: str                      # "rectified", "power", "loglinear" or "flat" (too few usable points)
    params: dict[str, float]
    loo_error: float | None = None  # |prediction - value| / value at the last point, fitted without it

    def predict(self, d: float) -> float:
        p = self.params
        if self.law == "rectified":
            return float(rectified_law(d, p["b"], p["d_l"], p["beta"], p["e"]))
        if self.law == "power":
            return float(power_law(d, p["b"], p["beta"], p["e"]))
        if self.law == "loglinear":
            return float(loglinear_law(d, p["b"], p["beta"]))
        return p["e"]


def _grid_fit(x: np.ndarray, y: np.ndarray, rectified: bool) -> dict[str, float] | None:
    """The law by a grid over its exponent (and D_l), B and E solved in closed form at each grid
    point (weighted least squares, weights 1/y^2: relative errors), then refined from the best grid
    point by a Huber loss on the log of the loss, as the paper fits it. No local minima to start
    from: the grid sees the whole range."""
    from scipy.optimize import least_squares

    lx, w = np.log(x), 1.0 / y ** 2
    sw, sy = w.sum(), (w * y).sum()
    best, best_sse = None, np.inf
    for beta in np.geomspace(0.05, 2.0, 40):
        log_dl = np.linspace(-3.0, beta * lx.max() + 3.0, 48) if rectified else np.array([-np.inf])
        g = 1.0 / (np.exp(log_dl)[:, None] + np.exp(beta * lx)[None, :])
        sg, sgg, sgy = (w * g).sum(1), (w * g * g).sum(1), (w * g * y).sum(1)
        det = sgg * sw - sg ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            b = (sgy * sw - sg * sy) / det
            e = (sy - b * sg) / sw
            through_zero = ~(e >= 0) | ~(det > 0)        # E < 0 is not a loss floor: fit B alone
            b = np.where(through_zero, sgy / sgg, b)
            e = np.clip(np.where(through_zero, 0.0, e), 0.0, y.min())
            sse = np.where(b > 0, (w * (y[None, :] - b[:, None] * g - e[:, None]) ** 2).sum(1), np.inf)
        j = int(np.argmin(sse))
        if sse[j] < best_sse:
            best_sse, best = sse[j], (b[j], log_dl[j], beta, e[j])
    if best is None:
        return None
    b, log_dl, beta, e = best
    floor = math.log(1e-6 * y.min())
    start = np.array([math.log(b), log_dl, beta, max(math.log(e) if e > 0 else floor, floor)])
    ly = np.log(y)

    def residuals(q):
        dl = q[1] if rectified else -np.inf
        return np.logaddexp(q[0] - np.logaddexp(dl, q[2] * lx), q[3]) - ly

    lo = [-np.inf, -10.0, 0.01, floor - 1]
    hi = [np.inf, 4.0 * lx.max() + 10.0, 3.0, math.log(y.min())]
    start = np.clip(start, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    q = start
    try:
        r = least_squares(residuals, start, bounds=(lo, hi), loss="huber", f_scale=0.01, max_nfev=200)
        if np.sum(r.fun ** 2) <= np.sum(residuals(start) ** 2):
            q = r.x
    except ValueError:
        pass
    params = {"b": float(math.exp(q[0])), "beta": float(q[2]), "e": float(math.exp(q[3]))}
    return {**params, "d_l": float(math.exp(q[1]))} if rectified else params


def fit_law(x: np.ndarray, y: np.ndarray, law: str, window: int) -> CurveFit:
    """The law through sorted points of more than 0 examples (`law` as fit_curve takes it)."""
    if law == "auto":
        law = "rectified" if len(x) >= 5 else "power"
    if law in ("rectified", "power") and len(x) < MIN_POINTS[law]:
        law = "power" if len(x) >= 3 else "flat"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if law in ("rectified", "power"):
            params = _grid_fit(x, y, law == "rectified")
            if params is not None:
                return CurveFit(law, params)
            law = "loglinear"
        if law == "loglinear" and len(x) >= 2:
            w = accepted_window(np.log(x), np.log(y)) if window == ACCEPT else window
            lx, ly = np.log(x[-w:]), np.log(y[-w:])
            slope, intercept = np.polyfit(lx, ly, 1)
            return CurveFit("loglinear", {"b": float(math.exp(intercept)), "beta": float(-slope)})
    return CurveFit("flat", {"e": float(y[-1])})


def accepted_window(lx: np.ndarray, ly: np.ndarray, k: int = 3, delta: float = 5.0) -> int:
    """How many of the last points lie on one line in log-log, by AtS's accept-then-stop (Lin et al.
    2024, with its k = 3 and delta = 5): start from the last k points; take the next earlier point
    while its distance from their line is within delta times the line's residual spread."""
    n = len(lx)
    m = min(k, n)
    while m < n:
        slope, icept = np.polyfit(lx[n - m:], ly[n - m:], 1)
        spread = np.std(ly[n - m:] - (slope * lx[n - m:] + icept))
        if abs(ly[n - m - 1] - (slope * lx[n - m - 1] + icept)) > delta * max(spread, 1e-12):
            break
        m += 1
    return m


def curve_points(sizes: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points as arrays sorted by size, sizes of 0 left out."""
    x, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    keep = x > 0
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def fit_curve(sizes: Sequence[float], values: Sequence[float], law: str = "auto", window: int = 3) -> CurveFit:
    """The curve through (size, loss) points (sizes of 0 left out), with its leave-last-point-out
    error. `law`: "auto" (rectified from five points, power from three, else flat), "rectified",
    "power" (each falling back as "auto" does when the points are too few) or "loglinear" (a line
    on log-log axes through the last `window` points, or the points accept-then-stop takes: ACCEPT)."""
    x, y = curve_points(sizes, values)
    fit = fit_law(x, y, law, window)
    if len(x) >= 4 and fit.law != "flat":
        held = fit_law(x[:-1], y[:-1], law, window)
        fit.loo_error = abs(held.predict(x[-1]) - y[-1]) / abs(y[-1]) if y[-1] else None
    return fit
