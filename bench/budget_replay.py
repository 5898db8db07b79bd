"""Benchmark, no training: what an evaluation budget (`--eval.budget B`: stop before a batch that would take the
compressed candidates' evaluation FLOPs past B x their training FLOPs) would have done to the cached runs of
damoc's defaults. Each run's decision is replayed from its stored predictions with bench/margin_replay.py's
replay, at the run's own margin, the budget priced as the library prices it (each candidate's first batch
cost per question). A cap only stops a run earlier, so every replay is exact: it never needs a question the
run did not score. No budget must reproduce every stored stop and pick.

Pre-registered (before any replay): B = 1.0 ("never spend more judging than training"); pass: every run >= 8x
cheaper with evaluation, the pick in the truth's tie set in at least as many runs as without the cap, and no
run's pick leaving it. B = 0.5 is replayed for information only.

    .venv/bin/python bench/budget_replay.py      # writes results/budget-replay.json (--run-dir: the zoo's)
"""

from __future__ import annotations

from pathlib import Path

from _common import RESULTS, envelope, read_json, write_json_atomic
from margin_replay import replay
from settle_replay import arguments, cached_runs, load

from damoc.selection.config import SelectConfig

BUDGETS = (0.0, 0.5, 1.0)
PRE_REGISTERED = 1.0


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


def main() -> None:
    args = arguments(__doc__, "budget-replay.json")
    rows = []
    for run in cached_runs(args.run_dir):
        task = run.parent.parent.name
        found = load(run)
        if found is None:
            continue
        res = found[0]
        zoo = read_json(RESULTS / f"zoo-{task}.json")
        row = next(r for r in zoo["rows"] if r["name"] == run.name)
        cost = per_question(run, res)
        missing = set(found[1]) - set(cost)
        if missing:
            raise SystemExit(f"{run}: no first-batch evaluation cost for {sorted(missing)}")
        margin = res["config"]["eval"]["margin"]
        stored = {"stopped": res["sequential"]["stopped"], "pick": row["chosen"], "in_tie_set": row["in_tie_set"],
                  "speedup_flops_with_evaluation": row["speedup_flops_with_evaluation"]}
        replays = [replay(found, row, zoo["truth"], task, margin, b, cost) for b in BUDGETS]
        free = replays[0]
        reproduced = (free["stopped"] == stored["stopped"] and free["pick"] == stored["pick"]
                      and abs(free["speedup_flops_with_evaluation"] / stored["speedup_flops_with_evaluation"] - 1)
                      < 0.01)
        rows.append({"task": task, "row": run.name, "stored": stored, "reproduced": reproduced, "replays": replays})
        for r in replays:
            print(task, run.name, r["budget"], f"{r['stopped']}; pick {r['pick']} (in tie set {r['in_tie_set']}); "
                  f"{r['speedup_flops_with_evaluation']:.1f}x with evaluation", flush=True)
    at = {b: [row["replays"][i] for row in rows] for i, b in enumerate(BUDGETS)}
    summary = {"runs": len(rows), "reproduced_without_budget": sum(r["reproduced"] for r in rows)}
    for b, rs in at.items():
        summary[f"budget_{b:g}"] = {
            "in_tie_set": sum(r["in_tie_set"] for r in rs),
            "at_least_8x": sum(r["speedup_flops_with_evaluation"] >= 8 for r in rs),
            "stopped_by_budget": sum(r["stopped"].startswith("the evaluation budget") for r in rs),
            "picks_changed": sum(r["pick"] != z["pick"] for r, z in zip(rs, at[0.0])),
            "picks_lost": [f"{row['task']} {row['row']}" for row, r, z in zip(rows, rs, at[0.0])
                           if z["in_tie_set"] and not r["in_tie_set"]],
            "short_of_8x": [f"{row['task']} {row['row']}: {r['speedup_flops_with_evaluation']:.2f}x"
                            for row, r in zip(rows, rs) if r["speedup_flops_with_evaluation"] < 8],
            "savings": [min(r["speedup_flops_with_evaluation"] for r in rs),
                        max(r["speedup_flops_with_evaluation"] for r in rs)]}
    chosen = summary[f"budget_{PRE_REGISTERED:g}"]
    summary["pre_registered"] = PRE_REGISTERED
    summary["pre_registered_pass"] = (summary["reproduced_without_budget"] == len(rows)
                                      and chosen["at_least_8x"] == len(rows) and not chosen["picks_lost"]
                                      and chosen["in_tie_set"] >= summary["budget_0"]["in_tie_set"])
    write_json_atomic(args.out, envelope(command="python bench/budget_replay.py", run_dir=str(args.run_dir),
                                         budgets=list(BUDGETS), summary=summary, rows=rows))
    print(summary)


if __name__ == "__main__":
    main()
