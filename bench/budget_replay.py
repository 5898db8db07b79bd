"""Benchmark, no training: what an evaluation budget (`--eval.budget B`: stop before a batch that would take the
compressed candidates' evaluation FLOPs past B x their training FLOPs) would have done to the cached runs of
damoc's defaults. Each run's decision is replayed from its stored predictions with bench/margin_replay.py's
replay, at the run's own margin, the budget priced as the library prices it (each candidate's first batch
cost per question). A cap only stops a run earlier, so every replay is exact: it never needs a question the
run did not score. No budget must reproduce every stored stop and pick.

Pre-registered, twice. First (before any replay): B = 1.0 ("never spend more judging than training") on the 24
runs of run seeds 0-5; pass: every run >= 8x cheaper with evaluation, the pick in the truth's tie set in at least
as many runs as without the cap, and no run's pick leaving it. It missed by one run (7.97x), while B = 0.5,
replayed beside it for information, passed; so B = 0.5 was then tested on runs it had not seen (before they
ran): the defaults at run seeds 6 and 7 on every task, each >= 8x at B = 0.5 and no pick leaving the tie set.

    .venv/bin/python bench/budget_replay.py      # writes results/budget-replay.json (--run-dir: the zoo's)
"""

from __future__ import annotations

from pathlib import Path

from _common import envelope, read_json, write_json_atomic
from margin_replay import replay, stored_runs
from settle_replay import arguments

from damoc.selection.config import SelectConfig

BUDGETS = (0.0, 0.5, 1.0)
# (budget, the run seeds it was tested on): see the docstring
PRE_REGISTERED = ((1.0, (0, 1, 2, 3, 4, 5)), (0.5, (6, 7)))


def per_question(run: Path, res: dict) -> dict[str, float]:
    """Each finished candidate's evaluation FLOPs per question on its first batch (its training run's
    record), as `--eval.budget` prices the plan."""
    first = res["sequential"]["looks"][0]
    out = {}
    for c in SelectConfig.model_validate(res["config"]).candidates:
        record = run / "candidates" / c.slug / "result.json"
        if record.is_file():
            flops = read_json(record).get("eval_flops")
            if flops:
                out[c.name] = flops / first
    return out


def tally(rows: list[dict], i: int) -> dict:
    """The runs' replays at BUDGETS[i], beside the same runs without a budget (BUDGETS[0])."""
    rs, free = [row["replays"][i] for row in rows], [row["replays"][0] for row in rows]
    name = [f"{row['task']} {row['row']}" for row in rows]
    return {"in_tie_set": sum(r["in_tie_set"] for r in rs),
            "at_least_8x": sum(r["speedup_flops_with_evaluation"] >= 8 for r in rs),
            "stopped_by_budget": sum(r["stopped"].startswith("the evaluation budget") for r in rs),
            "picks_changed": sum(r["pick"] != z["pick"] for r, z in zip(rs, free)),
            "picks_lost": [n for n, r, z in zip(name, rs, free) if z["in_tie_set"] and not r["in_tie_set"]],
            "short_of_8x": [f"{n}: {r['speedup_flops_with_evaluation']:.2f}x" for n, r in zip(name, rs)
                            if r["speedup_flops_with_evaluation"] < 8],
            "savings": [min((r["speedup_flops_with_evaluation"] for r in rs), default=None),
                        max((r["speedup_flops_with_evaluation"] for r in rs), default=None)]}


def main() -> None:
    args = arguments(__doc__, "budget-replay.json")
    rows = []
    for run, task, found, zoo, row in stored_runs(args.run_dir):
        res = found[0]
        cost = per_question(run, res)
        missing = set(found[1]) - set(cost)
        if missing:
            raise SystemExit(f"{run}: no first-batch evaluation cost for {sorted(missing)}")
        margin = res["config"]["eval"]["margin"]
        stored = {"stopped": res["sequential"]["stopped"], "pick": row["chosen"], "in_tie_set": row["in_tie_set"],
                  "speedup_flops_with_evaluation": row["speedup_flops_with_evaluation"]}
        replays = [replay(found, row, zoo["truth"], task, margin, b, cost) for b in BUDGETS]
        if any("needs_more" in r for r in replays):  # a cap only stops earlier: a replay that asks more is wrong
            raise SystemExit(f"{run}: {[r['needs_more'] for r in replays if 'needs_more' in r]}")
        free = replays[0]
        reproduced = (free["stopped"] == stored["stopped"] and free["pick"] == stored["pick"]
                      and abs(free["speedup_flops_with_evaluation"] / stored["speedup_flops_with_evaluation"] - 1)
                      < 0.01)
        rows.append({"task": task, "row": run.name, "seed": res["config"]["seed"], "stored": stored,
                     "reproduced": reproduced, "replays": replays})
        for r in replays:
            print(task, run.name, r["budget"], f"{r['stopped']}; pick {r['pick']} (in tie set {r['in_tie_set']}); "
                  f"{r['speedup_flops_with_evaluation']:.1f}x with evaluation", flush=True)
    summary = {"runs": len(rows), "reproduced_without_budget": sum(r["reproduced"] for r in rows),
               **{f"budget_{b:g}": tally(rows, i) for i, b in enumerate(BUDGETS)}, "pre_registered": []}
    for budget, seeds in PRE_REGISTERED:
        mine = [r for r in rows if r["seed"] in seeds]
        got, tasks = tally(mine, BUDGETS.index(budget)), len({r["task"] for r in rows})
        other = ([f"{r['task']} {r['row']}: not reproduced" for r in mine if not r["reproduced"]]
                 + (["fewer picks in the tie set"] if got["in_tie_set"] < tally(mine, 0)["in_tie_set"] else []))
        summary["pre_registered"].append({
            "budget": budget, "seeds": list(seeds), "tasks": tasks, "runs": len(mine), **got, "other_failures": other,
            "pass": len(mine) == len(seeds) * tasks and got["at_least_8x"] == len(mine) and not got["picks_lost"]
            and not other})
    write_json_atomic(args.out, envelope(command="python bench/budget_replay.py", run_dir=str(args.run_dir),
                                         budgets=list(BUDGETS), summary=summary, rows=rows))
    print(summary)


if __name__ == "__main__":
    main()
