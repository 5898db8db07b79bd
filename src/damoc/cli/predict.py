"""`damoc predict`: each model's metric at a larger training size, from small-run results you
already have (a CSV), with an interval and its probability of being best."""

from __future__ import annotations

import argparse

from damoc.cli.options import Section, add_sections, config_from

HELP = {"predict": "predict each model's metric at a larger training size from learning curves in a CSV"}


def add_predict(sub) -> None:
    from damoc.selection.predict import PredictConfig

    p = sub.add_parser(
        "predict", help=HELP["predict"],
        description="Fits each model's learning curve to its (examples, metric) points with at most --budget "
                    "examples and predicts its metric at --target-size examples, with an interval and its "
                    "probability of being best there (the predictor of `select --strategy adaptive`). --curves "
                    "is a CSV: wide (a row per model, its name first, then a column per example count such as "
                    "0,200,400,...; optional size and family columns) or long (model,examples,metric). Lower is "
                    "better unless --higher-is-better.")
    add_sections(p, [Section(PredictConfig)])
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> None:
    from damoc.selection.predict import PredictConfig, run_predict

    config = config_from(args, PredictConfig)
    result = run_predict(config)
    if args.json:
        from damoc.io import json_text

        print(json_text(result))
        return
    from damoc.cli.printing import table

    pct = round(100 * result["level"])
    better = "higher" if result["higher_is_better"] else "lower"
    print(f"predicted at {result['target_size']:g} examples from the points with at most {result['budget']:g} "
          f"({better} is better; {pct}% intervals)")
    table(["rank", "model", "predicted", f"{pct}% interval", "P(best)", "points", "law"],
          [{"rank": i, "model": p["model"], "predicted": f"{p['predicted']:.4g}",
            f"{pct}% interval": f"{p['low']:.4g} .. {p['high']:.4g}", "P(best)": f"{p['prob_best']:.2f}",
            "points": p["points"], "law": p["law"]} for i, p in enumerate(result["predictions"], start=1)])
    print("ranking: " + " > ".join(result["ranking"]))
    m = result["method"]
    print(f"extrapolation: {m['law']} (chosen by backtests on {m['pairs']} cut curves; gain {m['gain']:.2f}, "
          f"drift {m['drift_per_doubling']:+.3f} log-units per doubling)")
    for x in result["left_out"]:
        print(f"left out: {x['model']} ({x['why']})")
