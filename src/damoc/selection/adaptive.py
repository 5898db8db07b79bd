"""Adaptive selection: every candidate on a ladder of growing prefixes of the selector's order,
its learning curve fitted and extrapolated to the whole training split, candidates dropped when
they can no longer be best, and the run stopped when one is confidently best (or the budget is
spent). Rungs are cached like any candidate run, so an interrupted run resumes at the next rung.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from damoc.io import read_jsonl
from damoc.selection.candidate import display_name, is_ok, rank
from damoc.selection.curves import predict_curves
from damoc.selection.launch import launch
from damoc.selection.racing import Rung, confident_pick, prob_best_at, rung_curves, to_drop


class AdaptiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rungs: list[float] = Field(default_factory=lambda: [0.01, 0.02, 0.04, 0.08, 0.16], min_length=3,
                               description="shares of the training split, one training run per candidate each")
    eval_questions: int = Field(100, ge=10, description="test questions each rung is scored on (bits per byte)")
    drop_below: float = Field(0.05, ge=0, lt=1, description="drop a candidate whose chance of being best falls "
                              "under this")
    confidence: float = Field(0.9, gt=0, le=1, description="stop when one candidate's chance of being best reaches "
                              "this")
    max_share: float = Field(0.2, gt=0, le=1, description="never train on more than this share of the training split")
    bootstrap: int = Field(200, ge=20, description="bootstrap samples for the chance of being best")
    # Three noisy points fitted by a three-parameter law left no room for doubt in the zoo (ASDiv:
    # "probability 1.00" for the truth's worst candidate at rung 3); from four rungs on, the
    # bootstrap also refits each curve without one of its rungs.
    min_rungs: int = Field(4, ge=3, description="rungs every candidate runs before any is dropped or picked")

    @model_validator(mode="after")
    def _enough_rungs(self) -> AdaptiveSettings:
        if self.min_rungs > len(self.rungs):
            raise ValueError(f"min_rungs {self.min_rungs} is more than the {len(self.rungs)} rungs given")
        return self


def rung_of(folder: Path, size: int) -> Rung | None:
    path = folder / "predictions.jsonl"
    if not path.exists():
        return None
    rows = read_jsonl(path)
    return Rung(size, np.array([r["answer_nll"] for r in rows], dtype=float),
                np.array([r["answer_bytes"] for r in rows], dtype=float))


def run_adaptive(config, task, data: dict, examples: list, train_size: int, jobs: Callable, out: Path,
                 notify: Callable[[str, dict], None], launch_settings, summarise: Callable) -> dict:
    """`examples`: the whole (compressed) training split in the selector's order; `jobs(candidates,
    train, folder, extra)` makes the candidate runs (scored on the evaluation subset)."""
    settings = config.adaptive
    survivors = list(config.candidates)
    curves: dict[str, list[Rung]] = {}
    runs, history, dropped, folders, stopped = [], [], {}, {}, "every rung was run"
    last: list[dict] = []
    for r, share in enumerate(sorted(settings.rungs), start=1):
        if share > settings.max_share + 1e-12:
            stopped = f"the budget: the next rung ({share:.0%}) is over --max-share {settings.max_share:.0%}"
            break
        n = max(1, math.ceil(share * len(examples)))
        folder = out / "adaptive" / f"rung-{r}"
        notify("stage", {"name": f"adaptive rung {r}: {len(survivors)} candidates on {n} examples",
                         "candidates": len(survivors)})
        extra = {"adaptive_examples": n, "eval_questions": settings.eval_questions}
        results = launch(jobs(survivors, examples[:n], folder, extra), launch_settings, notify)
        runs += results
        last = [dict(x) for x in results]
        for c, x in zip(survivors, results):
            folders[display_name(x)] = folder / c.slug
            rung = rung_of(folder / c.slug, n) if is_ok(x) else None
            if rung is not None:
                curves.setdefault(display_name(x), []).append(rung)
        alive = {k: v for k, v in curves.items() if k in {display_name(x) for x in results if is_ok(x)}}
        entry = {"rung": r, "share": share, "examples": n, "candidates": sorted(alive)}
        if len(alive) >= 2 and min(len(v) for v in alive.values()) >= settings.min_rungs:
            prob = prob_best_at(alive, train_size, samples=settings.bootstrap, seed=config.seed)
            entry["prob_best"] = prob
            for name in to_drop(prob, settings.drop_below):
                dropped[name] = {"rung": r, "prob_best": prob[name]}
            survivors = [c for c in survivors if c.name not in dropped]
            pick = confident_pick(prob, settings.confidence)
            history.append(entry)
            if pick is not None:
                stopped = f"{pick} reached probability {prob[pick]:.2f} of being best at full size"
                break
        else:
            history.append(entry)
        if len(survivors) <= 1:
            stopped = "one candidate left"
            break
    # The candidates with a curve (two rungs or more) through the predictor; one rung is its own prediction.
    fitted = {k: v for k, v in rung_curves(curves).items() if len(v[0]) >= 2}
    preds = {p.name: p for p in predict_curves(fitted, train_size).predictions} if fitted else {}
    predicted = {name: preds[name].predicted if name in preds else rungs[-1].bpb() for name, rungs in curves.items()}
    # Rank by the prediction at full size; the last rung's figures are kept as the metrics.
    final = rank("answer_bpb", [dict(x) for x in last])
    # (a candidate dropped at the last rung is among its results: it belongs with the dropped)
    ok = sorted([x for x in final if is_ok(x) and display_name(x) not in dropped],
                key=lambda x: predicted.get(display_name(x), math.inf))
    for i, x in enumerate(ok, start=1):
        x["rank"] = i
        x["predicted_answer_bpb_full"] = predicted.get(display_name(x))
    # Dropped candidates rank below the survivors, one dropped later above one dropped earlier.
    dropped_rows = sorted([d for d in _last_rows(runs) if display_name(d) in dropped],
                          key=lambda d: -dropped[display_name(d)]["rung"])
    for i, d in enumerate(dropped_rows, start=len(ok) + 1):
        d["rank"], d["dropped_at_rung"] = i, dropped[display_name(d)]["rung"]
    summary = summarise(config, task, data, ok + [x for x in final if not is_ok(x)] + dropped_rows, runs,
                        {k: v for k, v in folders.items() if k in {display_name(x) for x in ok}})
    warning = disagreement(summary["verdict"], [display_name(x) for x in ok])
    if warning:
        summary["warnings"].append(warning)
    summary["adaptive"] = {
        "train_size": train_size, "rungs": history, "dropped": dropped, "stopped": stopped,
        "fits": {name: {"law": p.fit.law, "params": p.fit.params, "loo_error": p.fit.loo_error,
                        "predicted_answer_bpb_full": p.predicted, "interval_90": [p.low, p.high],
                        "curve": [[x.size, x.bpb()] for x in curves[name]]} for name, p in preds.items()},
        "note": "ranked by the fitted curve's bits per byte at the whole training split; each rung scored on "
                f"the first {settings.eval_questions} test questions"}
    return summary


def disagreement(verdict: dict | None, ranking: list[str]) -> str | None:
    """A warning where the verdict's pick is not the ranking's first. Adaptive ranks by each learning curve
    extrapolated to the whole training split, but its verdict (tie set and pick) is measured on the last
    rung's answers: when the extrapolation reverses a measured lead, the two say different things, and the
    user should see both rather than one quietly overruling the other (the validation zoo's MedMCQA run
    ranked Gemma-3 DoRA first and recommended Gemma-3 full)."""
    if verdict is None or not ranking or ranking[0] in verdict["tie_set"]:  # a pick within a tie is the rule's
        return None
    return (f"the learning curves rank {ranking[0]} first at the whole training split, but the last rung's answers "
            f"put it outside the tie set and recommend {verdict['recommended']}: the extrapolation reverses what "
            "was measured, so treat both as uncertain")


def _last_rows(runs: list[dict]) -> list[dict]:
    """Each candidate's latest run (a dropped candidate's last rung)."""
    latest: dict[str, dict] = {}
    for x in runs:
        latest[display_name(x)] = dict(x)
    for x in latest.values():
        x.pop("rank", None)
    return list(latest.values())
