"""Benchmark: a validation zoo with statistical power. Does `damoc select` pick what full
fine-tuning would, on tasks where the truth can decide, and does it beat the free guesses?

Per task (zoo v2): eight candidates, both bundled models x {lora, dora, ia3, full}, each fine-tuned
for one epoch on 1,000 seeded training examples with two training seeds and evaluated on
min(test split, 1,000) test questions (the truth). Each truth row, with its per-question
predictions, is written to bench/results/zoo/TASK/ as it lands, so a stopped run keeps what it
finished and a later session goes on from there. The truth's summary (seed-averaged metrics, the tie
set with question noise and seed noise reported apart) goes to bench/results/zoo-TASK.json; then each
`select` setting is a row judged against it (in the tie set, top-1, regret with its paired SE,
agreement on the separated pairs and on the method pairs, Kendall tau, FLOP speed-ups with every
overhead counted, and with evaluation). Rows keep their ranks: `--part rejudge` judges them again
when more truth seeds land. The v1 zoo (four candidates, one seed) is kept under "v1" in each file.

    .venv/bin/python bench/zoo.py --task boolq --part pilot     # does fine-tuning move the models?
    .venv/bin/python bench/zoo.py --task boolq --part truth     # hours of CPU: run in the background
    .venv/bin/python bench/zoo.py --task boolq --part summary   # the truth's confidence, from the files
    .venv/bin/python bench/zoo.py --task boolq --part rows [--only headline ...]
    .venv/bin/python bench/zoo.py --task boolq --part rejudge   # rows against the truth as it stands
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import RESULTS, RUNS, read_json
from _zoo_rows import part_rejudge, part_rows
from _zoo_truth import METHODS, MODELS, part_pilot, part_summary, part_truth


def summary_and_rejudge(args) -> None:
    """The truth's summary, then its rows judged against it (a row is never left judged by an older truth)."""
    part_summary(args)
    path = RESULTS / f"zoo-{args.task}.json"
    if path.exists() and read_json(path).get("rows"):
        part_rejudge(args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--part", choices=["pilot", "truth", "summary", "rows", "rejudge"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=RUNS / "zoo")
    ap.add_argument("--only", nargs="*", help="rows: only these settings")
    ap.add_argument("--methods", nargs="*", choices=METHODS, help="truth: only the candidates with these methods")
    ap.add_argument("--models", nargs="*", choices=[m.removeprefix("bundled:") for m in MODELS],
                    help="truth: only the candidates of these models")
    args = ap.parse_args()
    {"pilot": part_pilot, "truth": part_truth, "summary": summary_and_rejudge, "rows": part_rows,
     "rejudge": part_rejudge}[args.part](args)


if __name__ == "__main__":
    main()
