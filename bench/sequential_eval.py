"""Benchmark: sequential evaluation (issue 28). The zoo's headline row (damoc's defaults, the four
v1 candidates {SmolLM2, Gemma-3} x {LoRA, full}) run again with `eval.strategy sequential`, judged
against the same committed truth (bench/results/zoo-TASK.json's 4-candidate truth, under "v1") and compared with
the committed full-evaluation row: the pick, and the evaluation FLOPs, both estimated by the zoo's
rule from the questions each run scored (`_zoo_rows.eval_flops`). The zero-shot pass is off on both
sides (the committed row predates it).

    OMP_NUM_THREADS=1 .venv/bin/python bench/sequential_eval.py --task nq-open   # -> sequential-eval.json
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _common import RESULTS, RUNS, envelope, read_json, write_json_atomic
from _zoo_rows import cheap_ranks, eval_flops, judged
from _zoo_truth import MODELS, truth_config

from damoc.selection import Candidate
from damoc.selection.config import EvalSettings, SelectConfig
from damoc.selection.pipeline import run_select
from damoc.tasks import load_task

V1 = [Candidate(model=m, method=meth) for m in MODELS for meth in ("lora", "full")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--run-dir", default=str(RUNS / "sequential"))
    args = ap.parse_args()
    zoo = read_json(RESULTS / f"zoo-{args.task}.json")
    zoo = zoo.get("v1", zoo)  # the 4-candidate truth and rows, kept under "v1" since zoo v2
    truth, headline = zoo["truth"], next(r for r in zoo["rows"] if r["name"] == "headline")
    base = truth_config(args.task, 0).model_dump()
    config = SelectConfig(**{**base, "candidates": V1, "zero_shot": False,
                             "eval": EvalSettings(strategy="sequential")})
    start = time.perf_counter()
    summary = run_select(config, f"{args.run_dir}/{args.task}", progress=False)
    choice = load_task(args.task).is_choice
    damoc_eval, full_eval = eval_flops(config, summary, truth["metrics"])
    cost = summary["cost"]
    full_flops = sum(truth["train_flops"].values())
    paid = cost["train_flops"] + summary["data"].get("forward_flops", 0.0) + cost["prune_flops"]
    row = {"task": args.task, **judged(truth, cheap_ranks(summary), choice), "sequential": summary["sequential"],
           "eval_flops": damoc_eval, "truth_eval_flops": full_eval,
           "full_evaluation_row": {k: headline.get(k) for k in ("chosen", "in_tie_set", "eval_flops",
                                                                   "separated_pairs_agreement")},
           "eval_flops_saving": headline["eval_flops"] / damoc_eval if damoc_eval else None,
           "speedup_flops_with_evaluation": (full_flops + full_eval) / (paid + damoc_eval),
           "full_evaluation_speedup_flops_with_evaluation": headline.get("speedup_flops_with_evaluation"),
           "speedup_flops": full_flops / paid,
           "invocation_seconds": time.perf_counter() - start, "torch_threads": torch.get_num_threads(),
           "load_average": os.getloadavg()[0], "config": config.model_dump(mode="json")}
    path = RESULTS / "sequential-eval.json"
    current = read_json(path) if path.exists() else {}
    rows = [r for r in current.get("rows", []) if r["task"] != args.task] + [row]
    write_json_atomic(path, {**envelope(load=True, command=f"python bench/sequential_eval.py --task {args.task}"),
                             "rows": rows})
    print(f"{args.task}: chosen {row['chosen']} (in tie set {row['in_tie_set']}; full evaluation chose "
          f"{headline['chosen']}); questions {summary['sequential']['questions']}; evaluation FLOPs "
          f"{damoc_eval:.3g} vs {headline['eval_flops']:.3g}; whole cost {row['speedup_flops_with_evaluation']:.1f}x "
          f"vs {headline.get('speedup_flops_with_evaluation', 0):.1f}x")


if __name__ == "__main__":
    main()
