"""bench/scaling_law.py's reading side: the choices the design study made (kept and dropped), the
targets, the paper's baselines reproduced, the plot and the docs' section, from the results alone.
"""

from __future__ import annotations

import numpy as np
from _common import RESULTS, pyplot, save_figure
from _scaling_protocol import OUT, RATIOS, SELECTORS, SETS

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
            "The line goes through the in-budget points AtS's accept-then-stop takes for each model (from the "
            "last 3, each earlier point while it lies within 5 residual spreads of the line through the later "
            "ones: the paper's k and delta); the design study compares it with the last 2, 3, 4, 5 and every "
            "point (design_study.summary). Until 2026-12 the line went through the last 3.",
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
    plt = pyplot()
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_figure(fig, OUT.with_suffix(".png"))
