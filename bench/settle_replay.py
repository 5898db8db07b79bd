"""Diagnostic, no training: why sequential evaluation ran long. For each cached zoo run of damoc's defaults,
replay the settle rule (damoc.selection.sequential.settled) at every look from the run's stored predictions
and name the rivals that kept the pick from settling: for each, the paired difference to the pick and its
SE, the predictive probability that the pick ends outside the tie set against it (`p_pick_out`), and, for a
rival as cheap as the pick, that the rival ends inside it (`p_cheaper_in`). The run stops at the first look
where every probability is below `eval.settle`.

The figures come from the runs' folders (`--run-dir`, as `bench/zoo.py --part rows` left them), which a fresh
machine does not have; the result file keeps what the last replay found.

    .venv/bin/python bench/settle_replay.py      # writes results/settle-replay.json (--run-dir: the zoo's)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from _common import RESULTS, RUNS, envelope, read_json, write_json_atomic

from damoc.io import read_jsonl
from damoc.selection.candidate import display_name, is_ok
from damoc.selection.config import SelectConfig
from damoc.selection.sequential import cheapest_tied, ends_beyond, per_question


def load(run: Path) -> tuple[dict, dict[str, list[dict]], dict[str, float]] | None:
    """A cached run's results, each candidate's stored predictions (every question it was scored on, in
    order) and training FLOPs, by display name; None where the run has not finished or has no sequential
    record."""
    if not (run / "results.json").is_file():
        return None
    res = read_json(run / "results.json")
    if not res.get("sequential") or not (run / "sequential").is_dir():
        return None
    cost = {display_name(c): c["train_flops"] for c in res["candidates"] if is_ok(c)}
    records = {}
    for c in SelectConfig.model_validate(res["config"]).candidates:  # their folders, as the run named them
        if c.name in cost:
            folder = run / "sequential" / c.slug
            if not (folder / "predictions.jsonl").is_file():
                raise SystemExit(f"{run}: {c.name} finished but has no predictions in {folder}")
            records[c.name] = read_jsonl(folder / "predictions.jsonl")
    return res, records, cost


def replay(run: Path) -> dict | None:
    """One run's looks, replayed; None where the run has no sequential record or predictions."""
    found = load(run)
    if found is None:
        return None
    res, records, cost = found
    seq = res["sequential"]
    metric = "accuracy" if res["primary_metric"] == "accuracy" else "answer_bpb"
    scores = {n: per_question(r, metric) for n, r in records.items()}
    total, settle, looks = res["test_examples"], seq["settle"], []
    for n in seq["looks"]:
        alive = [a for a in scores if seq["questions"].get(a, 0) >= n and seq["dropped"].get(a, math.inf) > n]
        if len(alive) < 2 or n >= total:
            break
        s = {a: scores[a][:n] for a in alive}
        pick = cheapest_tied(s, cost)  # the verdict's tie line, 2 paired SE
        best = max(alive, key=lambda a: float(s[a].mean()))
        rivals = []
        for c in alive:
            if c == pick:
                continue
            d = s[c] - s[pick]
            out = ends_beyond(d, total)
            cheaper_in = 1 - ends_beyond(s[best] - s[c], total) if cost[c] <= cost[pick] else 0.0
            if max(out, cheaper_in) >= settle:
                rivals.append({"rival": short(c), "diff": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(n)),
                               "p_pick_out": out, "p_cheaper_in": cheaper_in,
                               "same_model": c.rsplit(" ", 1)[0] == pick.rsplit(" ", 1)[0]})
        looks.append({"questions": n, "alive": len(alive), "pick": short(pick), "blocking": rivals})
        if not rivals:
            break
    return {"metric": metric, "settle": settle, "stopped": seq["stopped"], "looks": looks}


def short(name: str) -> str:
    return name.removeprefix("bundled:")


def arguments(doc: str, out: str) -> argparse.Namespace:
    """The replays' command line: the zoo's run folder to read, the result file to write."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, default=RUNS / "zoo", help="where bench/zoo.py --part rows ran")
    ap.add_argument("--out", type=Path, default=RESULTS / out)
    return ap.parse_args()


def cached_runs(run_dir: Path) -> list[Path]:
    """The run folders of the defaults' zoo rows without an evaluation budget under `run_dir`: `headline` and
    `headline-seedN` while they ran without one, and their copies `no-budget`, `no-budget-seedN` once the
    budget became a default (the replays study sequential evaluation as it ran uncapped)."""
    runs = {}  # (task, run seed) -> its folder: a no-budget copy stands for its headline row
    for r in sorted([*run_dir.glob("*/rows/headline*"), *run_dir.glob("*/rows/no-budget*")]):
        config = read_json(r / "results.json")["config"] if (r / "results.json").is_file() else None
        if config and not config["eval"].get("budget"):
            runs[(r.parent.parent.name, config["seed"])] = r
    return sorted(runs.values())


def main() -> None:
    args = arguments(__doc__, "settle-replay.json")
    rows = []
    for run in cached_runs(args.run_dir):
        found = replay(run)
        if found:
            rows.append({"task": run.parent.parent.name, "row": run.name, **found})
    blocked = [look for r in rows for look in r["looks"] if look["blocking"]]
    same = [look for look in blocked if all(b["same_model"] for b in look["blocking"])]
    own = [abs(b["diff"]) for look in same for b in look["blocking"]]
    summary = {"runs": len(rows), "looks_blocked": len(blocked), "looks_blocked_only_by_the_picks_own_model": len(same),
               "median_abs_diff_of_those_blockers": float(np.median(own)) if own else None}
    write_json_atomic(args.out, envelope(command="python bench/settle_replay.py", run_dir=str(args.run_dir),
                                         summary=summary, rows=rows))
    for r in rows:
        print(r["task"], r["row"], r["stopped"])
        for look in r["looks"]:
            print(f"  {look['questions']:>4} questions, pick {look['pick']}: "
                  + ("; ".join(f"{b['rival']} {b['diff']:+.4f} +- {b['se']:.4f} (P out {b['p_pick_out']:.2f}, "
                               f"P cheaper in {b['p_cheaper_in']:.2f})" for b in look["blocking"]) or "settled"))
    print(summary)


if __name__ == "__main__":
    main()
