"""Benchmark: does damoc's learning-curve predictor pick the model to fine-tune on the AtS paper's
scaling-law benchmark, against AtS's published figures and the paper's baselines?

The benchmark (Lin et al., ICML 2024, "Selecting Large Language Model to Fine-tune via Rectified
Scaling Law"; ../shared/data/scaling-law/, Apache-2.0) holds the test loss of 30 models fine-tuned
on 0, 200, 400, ..., 1,638,400 examples of FLAN and Gigaword. The paper's protocol: a selector
sees the columns up to a budget (1/8 ... 1/512 of 1,638,400 examples; the 0 column is the
zero-shot loss) and ranks the models by their loss at 1,638,400. Selectors: damoc
(`damoc.selection.curves.predict_curves`, its 90% intervals included); ZeroShot (the loss at 0),
ModelSize (bigger is better), SubTuning (the loss at the budget); AtS, our reading of the paper's
Accept-then-Stop (a line on log-log axes through the in-budget points, accepted from the budget
down while each lies within 5 standard deviations of the line through those above it, at least
3); and rectified-fit, the paper's rectified law L(D) = B / (D_l + D^beta) + E fitted to every
in-budget point by `damoc.selection.laws.fit_curve`. Metrics per set, budget and selector:
PearCorr (Pearson between the selector's score and the full-size loss; ModelSize's score is log
size, as in the paper), RelAcc ((worst - chosen) / (worst - best) of the full-size loss), top-1,
top-3 (the true best among the selector's first three), Kendall's tau (the selector's ranking
against the true one), the median relative error of a predicted full-size loss and the coverage
of damoc's 90% intervals; with the paper's published figures beside them.

No tuning on the answer: damoc's settings are chosen by `--part design`, which replays the
protocol on the columns up to 204,800 examples alone (the largest budget; the loader drops the
three larger columns before anything sees them), with 204,800, 102,400 and 51,200 examples as
pseudo full sizes; the variant with the highest mean PearCorr + RelAcc there (ties within 0.005
to the lower median error) is the library's default. `--part run` then measures every selector
once on the real protocol.

    .venv/bin/python bench/scaling_law.py --part design   # -> results/scaling-law-design.json
    .venv/bin/python bench/scaling_law.py --part run      # -> results/scaling-law.json and scaling-law.png
    .venv/bin/python bench/scaling_law.py --part table    # the docs' section, from the JSON
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from damoc.io import read_json, write_json_atomic
from damoc.selection.curves import predict_curves
from damoc.selection.laws import fit_curve

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "scaling-law"
RESULTS = ROOT / "bench" / "results"
OUT, DESIGN_OUT = RESULTS / "scaling-law.json", RESULTS / "scaling-law-design.json"
SETS = ("flan", "gigaword")
FULL = 1_638_400
RATIOS = (8, 16, 32, 64, 128, 256, 512)
LEVEL = 0.9
DESIGN_CAP = FULL // 8                  # the design study never reads a column above the largest budget
DESIGN_TARGETS = (204_800, 102_400, 51_200)
DESIGN_MIN_BUDGET = 800                 # AtS needs three points above 0 examples
SELECTORS = ("damoc", "ats", "rectified-fit", "subtuning", "zeroshot", "modelsize")

# The paper's Table 1 as ../shared/data/README.md quotes it, in fractions: PearCorr, RelAcc per budget.
PUBLISHED = {
    "flan": {"ats": {"pearcorr": [.909, .731, .655, .611, .522, .505, .456],
                     "relacc": [.936, .932, .932, .932, .853, .932, .932]},
             "zeroshot": {"pearcorr": [-.107] * 7, "relacc": [.853] * 7},
             "subtuning": {"pearcorr": [.609, .465, .364, .290, .246, .209, .164],
                           "relacc": [.932, .932, .932, .932, .596, .596, .596]},
             "modelsize": {"pearcorr": [-.209] * 7, "relacc": [.596] * 7}},
    "gigaword": {"ats": {"pearcorr": [.989, .976, .969, .920, .911, .891, .910],
                         "relacc": [1.0, .914, .943, 1.0, .943, .943, .914]},
                 "zeroshot": {"pearcorr": [-.492] * 7, "relacc": [.713] * 7},
                 "subtuning": {"pearcorr": [.932, .893, .854, .809, .762, .699, .648],
                               "relacc": [.876, .876, .876, .713, .713, .713, .713]},
                 "modelsize": {"pearcorr": [-.244] * 7, "relacc": [.713] * 7}},
}

# damoc's variants for the design study (keyword arguments of predict_curves).
VARIANTS = {
    "loglinear+rectified by backtest, last 3, calibrated": {},
    "loglinear, last 2, calibrated": {"laws": ("loglinear",), "window": 2},
    "loglinear, last 3, calibrated": {"laws": ("loglinear",)},
    "loglinear, last 4, calibrated": {"laws": ("loglinear",), "window": 4},
    "loglinear, last 5, calibrated": {"laws": ("loglinear",), "window": 5},
    "loglinear, every point, calibrated": {"laws": ("loglinear",), "window": 99},
    "loglinear, last 3, uncalibrated": {"laws": ("loglinear",), "calibrate": False},
    "rectified, every point, calibrated": {"laws": ("rectified",)},
}
LIBRARY_DEFAULT = "loglinear+rectified by backtest, last 3, calibrated"


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
    it (at least `k`); the line through the accepted points, extrapolated."""
    keep = sizes > 0
    lx, ly = np.log(sizes[keep]), np.log(loss[keep])
    n = len(lx)
    m = min(k, n)
    while m < n:
        slope, icept = np.polyfit(lx[n - m:], ly[n - m:], 1)
        sd = np.std(ly[n - m:] - (slope * lx[n - m:] + icept))
        if abs(ly[n - m - 1] - (slope * lx[n - m - 1] + icept)) > delta * max(sd, 1e-12):
            break
        m += 1
    slope, icept = np.polyfit(lx[n - m:], ly[n - m:], 1)
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


# ---- parts -----------------------------------------------------------------------------------------

def part_design(args) -> None:
    """damoc's variants (and the other selectors, for reference) on pseudo full sizes inside the
    largest budget: what chooses the library's default."""
    started = time.time()
    rows = []
    for name in SETS:
        data = load(name, cap=DESIGN_CAP)
        assert data["sizes"].max() <= DESIGN_CAP
        for target in DESIGN_TARGETS:
            truth = data["loss"][:, list(data["sizes"]).index(target)]
            for ratio in RATIOS:
                budget = target / ratio
                if budget < DESIGN_MIN_BUDGET:
                    continue
                for label, kw in VARIANTS.items():
                    sel = select(data, budget, target, **kw)
                    rows.append({"dataset": name, "target": target, "budget": f"1/{ratio}", "selector": label,
                                 **measure(sel["damoc"], truth)})
                    if label == LIBRARY_DEFAULT:
                        rows += [{"dataset": name, "target": target, "budget": f"1/{ratio}", "selector": s,
                                  **measure(sel[s], truth)} for s in SELECTORS[1:] if s in sel]
                print(name, target, f"1/{ratio}", flush=True)
    summary = {}
    for label in list(VARIANTS) + list(SELECTORS[1:]):
        mine = [r for r in rows if r["selector"] == label]
        if not mine:
            continue
        mean = {m: float(np.mean([r[m] for r in mine if r[m] is not None]))
                for m in ("pearcorr", "relacc", "top1", "kendall_tau", "median_rel_error", "coverage")
                if any(r[m] is not None for r in mine)}
        cov8 = [r["coverage"] for r in mine if r["budget"] == "1/8" and r["coverage"] is not None]
        summary[label] = {**mean, "score": mean["pearcorr"] + mean["relacc"], "tasks": len(mine),
                          "coverage_at_1/8": float(np.mean(cov8)) if cov8 else None}
    growth = growth_study(rows_out := [])
    rows += rows_out
    top = max(summary[v]["score"] for v in VARIANTS)
    tied = [v for v in VARIANTS if summary[v]["score"] >= top - 0.005]
    winner = min(tied, key=lambda v: summary[v]["median_rel_error"])
    write_json_atomic(DESIGN_OUT, {
        "command": "python bench/scaling_law.py --part design",
        "protocol": f"columns up to {DESIGN_CAP} examples only; pseudo full sizes {list(DESIGN_TARGETS)}; budgets "
                    f"1/8..1/512 of each with at least {DESIGN_MIN_BUDGET} examples",
        "rule": "highest mean PearCorr + RelAcc over the pseudo tasks of both sets; variants within 0.005 of it "
                "go to the lower mean median relative error",
        "winner": winner, "tied": tied, "library_default": LIBRARY_DEFAULT, "summary": summary,
        "interval_growth": growth, "rows": rows,
        "seconds": time.time() - started, "load_average": os.getloadavg()})
    print(f"winner: {winner} (tied: {tied}); interval growth: {growth}")
    for label, s in sorted(summary.items(), key=lambda kv: -kv[1]["score"]):
        print(f"{label:55s} pear {s['pearcorr']:.3f} relacc {s['relacc']:.3f} med.err "
              f"{s.get('median_rel_error', float('nan')):.4f} cov@1/8 {s['coverage_at_1/8']}")


GROWTHS = (1.0, 1.25, 1.5)


def growth_study(rows: list) -> dict:
    """How the interval's width grows with the distance (curves.GROWTH): the library default's
    coverage on the same pseudo tasks for each exponent; the rule picks the one closest to the
    nominal level over every task among those holding at least 85% of the models at 1/8 on both sets."""
    from damoc.selection import curves

    kept = curves.GROWTH
    try:
        for g in GROWTHS:
            curves.GROWTH = g
            for name in SETS:
                data = load(name, cap=DESIGN_CAP)
                for target in DESIGN_TARGETS:
                    truth = data["loss"][:, list(data["sizes"]).index(target)]
                    for ratio in RATIOS:
                        if target / ratio >= DESIGN_MIN_BUDGET:
                            sel = select(data, target / ratio, target, only_damoc=True)
                            rows.append({"dataset": name, "target": target, "budget": f"1/{ratio}",
                                         "selector": f"damoc, interval growth {g}", **measure(sel["damoc"], truth)})
    finally:
        curves.GROWTH = kept
    out = {}
    for g in GROWTHS:
        mine = [r for r in rows if r["selector"] == f"damoc, interval growth {g}"]
        out[str(g)] = {"coverage": float(np.mean([r["coverage"] for r in mine])),
                       **{f"coverage_at_1/8 {name}": float(np.mean([r["coverage"] for r in mine if r["budget"] == "1/8"
                                                                     and r["dataset"] == name])) for name in SETS}}
    ok = [g for g, v in out.items() if all(v[f"coverage_at_1/8 {name}"] >= 0.85 for name in SETS)]
    chosen = (min(ok, key=lambda g: abs(out[g]["coverage"] - LEVEL)) if ok else
              max(out, key=lambda g: min(out[g][f"coverage_at_1/8 {name}"] for name in SETS)))
    return {"by_growth": out, "chosen": float(chosen), "library": kept, "library_is_chosen": float(chosen) == kept}


def part_run(args) -> None:
    from damoc.runinfo import machine, versions

    design = read_json(DESIGN_OUT) if DESIGN_OUT.exists() else None
    started = time.time()
    rows, methods = [], {}
    for name in SETS:
        data = load(name)
        truth = data["loss"][:, list(data["sizes"]).index(FULL)]
        for ratio in RATIOS:
            sel = select(data, FULL / ratio, FULL)
            methods[f"{name} 1/{ratio}"] = sel["damoc"]["method"]
            rows += [{"dataset": name, "budget": f"1/{ratio}", "selector": s, **measure(sel[s], truth)}
                     for s in SELECTORS if s in sel]
            print(name, f"1/{ratio}", flush=True)
    result = {
        "command": "python bench/scaling_law.py --part run",
        "machine": machine(), "versions": versions(), "seconds": time.time() - started,
        "config": {"full_size": FULL, "budgets": [f"1/{r}" for r in RATIOS], "level": LEVEL, "sets": list(SETS),
                   "data": "../shared/data/scaling-law/{flan,gigaword}.csv (AtS paper, Apache-2.0)",
                   "damoc": "predict_curves at its defaults (laws loglinear and rectified chosen by backtest, "
                            "window 3, calibrated)", "ats": "k=3, delta=5 (the paper's defaults)"},
        "choices": choices(design),
        "damoc_method": methods,
        "rows": rows,
        "published": {name: {sel: {m: dict(zip([f"1/{r}" for r in RATIOS], v)) for m, v in figs.items()}
                             for sel, figs in by.items()} for name, by in PUBLISHED.items()},
        "targets": targets(rows),
        "baselines_against_published": replication(rows),
    }
    write_json_atomic(OUT, result)
    plot(result)
    print(table(result))


def choices(design: dict | None) -> dict:
    return {
        "design_study": None if design is None else {
            "winner": design["winner"], "library_default": design["library_default"],
            "library_default_is_winner": design["winner"] == design["library_default"],
            "rule": design["rule"], "protocol": design["protocol"],
            "summary": {k: {m: v[m] for m in ("pearcorr", "relacc", "median_rel_error", "coverage_at_1/8")
                            if m in v} for k, v in design["summary"].items()}},
        "interval_growth": None if design is None else design.get("interval_growth"),
        "kept": [
            "Which law extrapolates is chosen per call by backtests on the in-budget points (each curve cut "
            "one doubling or more before its last point, extrapolated to it): the straight log-log line "
            "(the power phase AtS extrapolates) or the rectified law, whichever has the smaller median error "
            "per unit of distance on the cuts both can make; on these sets the line wins at every budget.",
            "The line goes through each model's last 3 in-budget points (AtS's minimum; the design study "
            "compared 2, 3, 4, 5 and every point: 3 and 4 tie, 3 has the lower median error).",
            "Calibration across the candidates from the same backtests: realised change = drift * distance + "
            "gain * predicted change (gain clipped to [0, 1.5]); the drift is shared, so it moves no ranking.",
            "The interval: the residuals of the most recent backtests (cut one doubling before the last "
            "point), scaled to the target as (distance in doublings)^1.25, quantiles at a conformal level; "
            "the exponent chosen by the design study's interval_growth rule (1 = a fixed slope error, 1.5 = a "
            "slope that wanders). P(best) draws from the same residuals, centred within each cut.",
            "The zero-shot column is left out of every curve fit (FLAN's zero-shot losses reach 29 for models "
            "whose loss after 200 examples is 4).",
            "The rectified law is fitted by a grid over beta and D_l (B and E in closed form), refined with a "
            "Huber loss on log loss, instead of scipy's curve_fit from one start.",
        ],
        "dropped": [
            "Scratch study on the same pseudo tasks (columns up to 204,800; not kept in this script), mean "
            "PearCorr / RelAcc over both sets, against 0.940 / 0.976 for a line through the last 3 points: "
            "free rectified-law fits from 12 starts 0.718 / 0.813; the rectified law with E = 0 0.702 / 0.806; a "
            "quadratic in log-log through the last 5 or 6 points 0.754-0.767 / 0.819-0.829; the rectified law "
            "with one beta shared by all models 0.890 / 0.973. Their extrapolations bend wrongly far more often "
            "than a straight line.",
            "Choosing the line's window per call by backtest (2-6 points or all): 0.934 / 0.974; Huber or "
            "recency-weighted line fits: 0.937-0.942 / 0.971-0.976. No better than a fixed 3.",
            "A per-model curvature feature in the calibration: 0.945 / 0.982 against 0.943 / 0.980 without, "
            "not worth a third coefficient from 30 models.",
            "A shared quadratic drift (the bend of FLAN's steepening curves): FLAN's truths at pseudo 1/8 "
            "still fell below the interval for 30-40% of the models, and it pushed Gigaword's at 1/32 above it.",
            "The first interval: every backtest's residual, sd(d)^2 = s0^2 + (s1 d)^2 (and with a d^3 term): "
            "coverage 0.69-0.70 over the pseudo tasks, 0.61 on FLAN at 1/8 (the curves steepen more late "
            "than early, which the older, longer cuts do not show).",
        ],
    }


def targets(rows: list[dict]) -> dict:
    out = {"pearcorr_and_relacc_at_least_ats_published": {}, "coverage_at_1/8_at_least_0.85": {}}
    for name in SETS:
        for i, ratio in enumerate(RATIOS):
            r = next(x for x in rows if x["dataset"] == name and x["budget"] == f"1/{ratio}"
                     and x["selector"] == "damoc")
            pub = PUBLISHED[name]["ats"]
            # compared as published: in % with one decimal
            out["pearcorr_and_relacc_at_least_ats_published"][f"{name} 1/{ratio}"] = {
                m: round(100 * r[m], 1) >= round(100 * pub[m][i], 1) for m in ("pearcorr", "relacc")}
        r = next(x for x in rows if x["dataset"] == name and x["budget"] == "1/8" and x["selector"] == "damoc")
        out["coverage_at_1/8_at_least_0.85"][name] = r["coverage"] >= 0.85
    return out


def replication(rows: list[dict]) -> dict:
    """The paper's baselines need no fitting: ours should reproduce its published figures, which checks
    that the protocol (columns, budgets, metrics) is the paper's."""
    out = {}
    for name in SETS:
        for sel, figs in PUBLISHED[name].items():
            for metric, values in figs.items():
                ours = [next(r[metric] for r in rows if r["dataset"] == name and r["budget"] == f"1/{k}"
                             and r["selector"] == sel) for k in RATIOS]
                out[f"{name} {sel} {metric}"] = {"max_abs_difference": float(np.max(np.abs(np.subtract(ours, values)))),
                                                 "ours": ours}
    return out


def plot(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    xs = np.arange(len(RATIOS))
    for col, name in enumerate(SETS):
        for row, metric in enumerate(("pearcorr", "relacc")):
            ax = axes[row, col]
            for sel in SELECTORS:
                ys = [next((r[metric] for r in result["rows"] if r["dataset"] == name and r["budget"] == f"1/{k}"
                            and r["selector"] == sel), np.nan) for k in RATIOS]
                ax.plot(xs, ys, "o-" if sel == "damoc" else ".-", lw=2.2 if sel == "damoc" else 1, label=sel)
            ax.plot(xs, PUBLISHED[name]["ats"][metric], "k--", lw=1.5, label="AtS (published)")
            ax.set_title(f"{name}: {'PearCorr' if metric == 'pearcorr' else 'RelAcc'}")
            ax.set_xticks(xs, [f"1/{k}" for k in RATIOS])
            ax.axhline(0, color="grey", lw=0.5)
            if row == 1:
                ax.set_xlabel("data budget (share of 1,638,400 examples)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, OUT.with_suffix(".png"))


def table(result: dict) -> str:
    """The docs' section on `damoc predict` and this benchmark, from the JSON."""
    def get(name, budget, sel, metric):
        r = next((x for x in result["rows"] if x["dataset"] == name and x["budget"] == budget
                  and x["selector"] == sel), None)
        v = None if r is None else r[metric]
        return "-" if v is None else f"{100 * v:.1f}"

    lines = [
        "## Predicting from learning curves: `damoc predict`", "",
        "Given small-run results you already have (your own sweeps, an experiment tracker's export), "
        "`damoc predict` fits each model's learning curve and predicts its metric at a larger training "
        "size, with an interval and the probability that the model is the best there:", "",
        "    damoc predict --curves runs.csv --budget 204800 --target-size 1638400 [--json] [--higher-is-better]", "",
        "`runs.csv` is wide (one row per model: the name first, then one column per example count, "
        "optionally `size` and `family`) or long (`model,examples,metric`). Only the points with at most "
        "`--budget` examples are used; lower is better unless `--higher-is-better` (then the metric must "
        "lie in [0, 1]). `--json` prints `{\"predictions\": [{\"model\", \"predicted\", \"low\", \"high\", "
        "\"prob_best\"}], ...}`. `select --strategy adaptive` uses the same predictor.", "",
        "How it predicts: each curve's last three points are extrapolated as a straight line on log-log "
        "axes (the power phase of the rectified scaling law) unless backtests on the points themselves "
        "favour the rectified law; the same backtests calibrate the extrapolation across models and give "
        "the interval.", "",
        "### Measured on the AtS benchmark", "",
        "The benchmark of Lin et al. (ICML 2024): 30 models fine-tuned on up to 1,638,400 examples of FLAN "
        "and Gigaword; a selector sees the losses up to a budget and ranks the models by their loss at "
        "1,638,400 (`bench/scaling_law.py`). PearCorr and RelAcc in %; AtS as published in the paper; "
        "coverage: the share of models whose full-size loss lies in damoc's 90% interval.", "",
        "| set | budget | damoc PearCorr | AtS PearCorr (published) | AtS PearCorr (ours) | SubTuning PearCorr | "
        "damoc RelAcc | AtS RelAcc (published) | damoc top-1 | damoc Kendall tau | damoc median rel. error | "
        "coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in SETS:
        for i, ratio in enumerate(RATIOS):
            b = f"1/{ratio}"
            pub = PUBLISHED[name]["ats"]
            lines.append(f"| {name} | {b} | {get(name, b, 'damoc', 'pearcorr')} | {100 * pub['pearcorr'][i]:.1f} | "
                         f"{get(name, b, 'ats', 'pearcorr')} | "
                         f"{get(name, b, 'subtuning', 'pearcorr')} | {get(name, b, 'damoc', 'relacc')} | "
                         f"{100 * pub['relacc'][i]:.1f} | {get(name, b, 'damoc', 'top1')} | "
                         f"{get(name, b, 'damoc', 'kendall_tau')} | {get(name, b, 'damoc', 'median_rel_error')} | "
                         f"{get(name, b, 'damoc', 'coverage')} |")
    met = result["targets"]["pearcorr_and_relacc_at_least_ats_published"]
    missed = [k for k, v in met.items() if not (v["pearcorr"] and v["relacc"])]
    cover = result["targets"]["coverage_at_1/8_at_least_0.85"]
    lines += ["", "Targets: damoc at or above AtS's published PearCorr and RelAcc at "
              + ("every budget of both sets" if not missed else
                 f"{len(met) - len(missed)} of {len(met)} (set, budget) pairs; missed: " + ", ".join(missed))
              + ". 90% intervals covering at least 85% of the models at 1/8: "
              + ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in cover.items()) + ".", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["design", "run", "table", "plot"], default="run")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA}: the benchmark's data is not here (../shared/data/scaling-law)")
    if args.part == "design":
        part_design(args)
    elif args.part == "run":
        part_run(args)
    elif args.part == "plot":
        plot(read_json(OUT))
    else:
        print(table(read_json(OUT)))


if __name__ == "__main__":
    main()
