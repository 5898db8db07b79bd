"""`damoc predict`: each model's metric at a larger training size, from small-run results in a CSV.

The file is either wide, like the AtS benchmark's: one row per model, its name in the first
column, one column per example count (`0`, `200`, `400`, ...), optionally `size` and `family`;
or long: the columns `model`, `examples`, `metric` (in any order, other columns ignored; repeated
points, e.g. seeds, are averaged). The predictor is `damoc.selection.curves.predict_curves`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from damoc.errors import DamocError

LONG = ("model", "examples", "metric")
WIDE_EXTRA = {"size", "family"}


class PredictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    curves: Path = Field(description="CSV of small-run results: wide (a row per model, a column per example "
                                     "count) or long (model,examples,metric)")
    budget: float = Field(gt=0, allow_inf_nan=False,
                          description="use only the points with at most this many training examples")
    target_size: float = Field(gt=0, allow_inf_nan=False,
                               description="predict each model's metric at this many training examples")
    higher_is_better: bool = Field(False, description="the metric is a score in [0, 1] (accuracy, F1), higher "
                                                      "better; by default lower is better (a loss)")
    level: float = Field(0.9, gt=0, lt=1, description="coverage of the prediction intervals")


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DamocError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise DamocError(f"{where}: {text!r}: give a finite number of at least 0")
    return value


def read_curves(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """{model: (example counts, metrics)} from a wide or long CSV; DamocError on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise DamocError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DamocError(f"{path}: not a CSV file ({e})") from None
    if len(rows) < 2:
        raise DamocError(f"{path}: no rows under a header; expected a CSV of model,examples,metric or a row per model")
    head = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in head]
    curves: dict[str, dict[float, list[float]]] = {}
    if all(c in lower for c in LONG):
        col = {c: lower.index(c) for c in LONG}
        for n, row in enumerate(rows[1:], start=2):
            if len(row) < len(head):
                raise DamocError(f"{path}: line {n} has {len(row)} fields, the header {len(head)}")
            size = _number(row[col["examples"]].strip(), f"{path}: line {n}, examples")
            value = _number(row[col["metric"]].strip(), f"{path}: line {n}, metric")
            curves.setdefault(row[col["model"]].strip(), {}).setdefault(size, []).append(value)
    else:
        sizes = {}
        for i, h in enumerate(head[1:], start=1):
            if h.lower() in WIDE_EXTRA:
                continue
            try:
                sizes[i] = _number(h, f"{path}: column {h!r}")
            except DamocError:
                raise DamocError(f"{path}: column {h!r} is neither an example count nor size/family; expected a "
                                 "header of model,examples,metric (long) or a model column followed by example "
                                 "counts (wide)") from None
        if not sizes:
            raise DamocError(f"{path}: no column of example counts; expected model,examples,metric (long) or a "
                             "model column followed by example counts (wide)")
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != len(head):
                raise DamocError(f"{path}: line {n} has {len(row)} fields, the header {len(head)}")
            points = curves.setdefault(row[0].strip(), {})
            for i, size in sizes.items():
                if row[i].strip():  # an empty cell is a run not made
                    points.setdefault(size, []).append(_number(row[i].strip(), f"{path}: line {n}, column {head[i]!r}"))
    return {name: (list(points), [sum(v) / len(v) for v in points.values()]) for name, points in curves.items()}


def run_predict(config: PredictConfig) -> dict:
    """The predictions for the file's models (the JSON `damoc predict --json` prints)."""
    from damoc.selection.curves import predict_curves

    curves = read_curves(config.curves)
    kept, left_out = {}, []
    for name, (sizes, values) in curves.items():
        points = [(s, v) for s, v in zip(sizes, values) if s <= config.budget]
        usable = sum(1 for s, _ in points if s > 0)
        if usable >= 2:
            kept[name] = ([s for s, _ in points], [v for _, v in points])
        else:
            left_out.append({"model": name, "points": usable,
                             "why": f"{usable} point(s) above 0 examples within the budget; a curve needs 2"})
    if not kept:
        raise DamocError(f"{config.curves}: no model has 2 points above 0 and at most {config.budget:g} examples "
                         "(--budget); nothing to fit")
    if config.higher_is_better:
        bad = [n for n, (_, v) in kept.items() if any(x > 1 for x in v)]
        if bad:
            raise DamocError(f"{config.curves}: --higher-is-better takes a metric in [0, 1] (its complement is "
                             f"fitted); {bad[0]} has a value above 1")
    else:
        bad = [n for n, (s, v) in kept.items() if any(x <= 0 for x, size in zip(v, s) if size > 0)]
        if bad:
            raise DamocError(f"{config.curves}: {bad[0]} has a metric of 0; a loss must be positive (its "
                             "logarithm is fitted), or give --higher-is-better for a score")
    result = predict_curves(kept, config.target_size, level=config.level,
                            higher_is_better=config.higher_is_better).as_dict()
    for p in result["predictions"]:
        p["points"] = len(kept[p["model"]][0])
    return {**result, "budget": config.budget, "curves": str(config.curves), "left_out": left_out}
