"""bench/scaling_law.py's protocol: the AtS benchmark's data (../shared/data/scaling-law), its
budgets, the selectors and their metrics.
"""

from __future__ import annotations

import csv
import math

import numpy as np
from _common import RESULTS, ROOT

from damoc.selection.curves import predict_curves
from damoc.selection.laws import accepted_window, fit_curve

DATA = ROOT.parent.parent / "shared" / "data" / "scaling-law"
OUT, DESIGN_OUT = RESULTS / "scaling-law.json", RESULTS / "scaling-law-design.json"
SETS = ("flan", "gigaword")
FULL = 1_638_400
RATIOS = (8, 16, 32, 64, 128, 256, 512)
LEVEL = 0.9
SELECTORS = ("damoc", "ats", "rectified-fit", "subtuning", "zeroshot", "modelsize")


def load(name: str, cap: int | None = None) -> dict:
    """One set: model names, example counts (columns up to `cap`), losses, sizes."""
    with open(DATA / f"{name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    cols = [i for i, h in enumerate(head) if h.isdigit() and (cap is None or int(h) <= cap)]
    return {"names": [r[0] for r in rows[1:]], "sizes": np.array([int(head[i]) for i in cols], float),
            "loss": np.array([[float(r[i]) for i in cols] for r in rows[1:]]),
            "params": np.array([float(r[head.index("size")]) for r in rows[1:]])}


# ---- selectors: each gives a score (lower = better except ModelSize), an order, maybe a prediction

def ats(sizes: np.ndarray, loss: np.ndarray, target: float, k: int = 3, delta: float = 5.0) -> float:
    """Accept-then-Stop, our reading of the paper: from the budget down, accept each earlier point
    while it lies within `delta` standard deviations of the log-log line through the points above
    it (at least `k`: damoc.selection.laws.accepted_window); the line through the accepted points,
    extrapolated."""
    keep = sizes > 0
    lx, ly = np.log(sizes[keep]), np.log(loss[keep])
    m = accepted_window(lx, ly, k, delta)
    slope, icept = np.polyfit(lx[-m:], ly[-m:], 1)
    return float(np.exp(slope * math.log(target) + icept))


def select(data: dict, budget: float, target: float, only_damoc: bool = False, **damoc_kw) -> dict[str, dict]:
    """Every selector's output (or damoc's alone) on the columns up to `budget`."""
    seen = data["sizes"] <= budget
    sizes, loss, names = data["sizes"][seen], data["loss"][:, seen], data["names"]
    out = {}
    pred = predict_curves({n: (sizes, row) for n, row in zip(names, loss)}, target, level=LEVEL, **damoc_kw)
    by = {p.name: p for p in pred.predictions}
    out["damoc"] = {"score": np.array([by[n].predicted for n in names]),
                    "low": np.array([by[n].low for n in names]), "high": np.array([by[n].high for n in names]),
                    "method": {k: v for k, v in pred.as_dict()["method"].items()}}
    out["damoc"]["predicted"] = out["damoc"]["score"]
    if only_damoc:
        return out
    out["ats"] = {"score": np.array([ats(sizes, row, target) for row in loss])}
    out["ats"]["predicted"] = out["ats"]["score"]
    out["rectified-fit"] = {"score": np.array([fit_curve(sizes, row, law="rectified").predict(target) for row in loss])}
    out["rectified-fit"]["predicted"] = out["rectified-fit"]["score"]
    out["subtuning"] = {"score": loss[:, -1]}
    if 0 in sizes:
        out["zeroshot"] = {"score": loss[:, list(sizes).index(0)]}
    out["modelsize"] = {"score": np.log(data["params"]), "order_key": -data["params"]}
    return out


def measure(sel: dict, truth: np.ndarray) -> dict:
    from scipy.stats import kendalltau, pearsonr

    score = sel["score"]
    key = sel.get("order_key", score)      # ascending: the selector's first choice first
    order = np.argsort(key, kind="stable")
    best, worst = truth.min(), truth.max()
    row = {"pearcorr": float(pearsonr(score, truth)[0]),
           "relacc": float((worst - truth[order[0]]) / (worst - best)),
           "top1": float(order[0] == truth.argmin()), "top3": float(truth.argmin() in order[:3]),
           "kendall_tau": float(kendalltau(key, truth)[0]), "median_rel_error": None, "coverage": None}
    if "predicted" in sel:
        row["median_rel_error"] = float(np.median(np.abs(sel["predicted"] - truth) / truth))
    if "low" in sel:
        row["coverage"] = float(np.mean((sel["low"] <= truth) & (truth <= sel["high"])))
    return row
