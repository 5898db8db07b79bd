"""Benchmark: does PASER's subset recover a pruned model better than simple choices?

Part `recover`: bundled SmolLM2-135M-Instruct pruned by 25% of its layers (similarity on 32
PubMedQA training prompts, merge none), then LoRA recovery (1 epoch, the step floor) on subsets of
the bundled multi-source pool (205 per source: 1,032 to select from after the 256-token limit and
100 held out) chosen by paser, random, ifd and length: at 10% with seeds 0, 1, 2 (the subset for
random and PASER's clustering, the training order for all), at 20% and on the whole pool with
seed 0; one learning rate for all. Each run scores the neutral metrics (held-out answer NLL
given the prompt, WikiText perplexity, zero-shot accuracy on the first 200 BoolQ and PIQA test
questions) and keeps them per item, so that rows pool their seeds and PASER's differences from
the others come with a paired bootstrap SE. The first run of each method in a scratch DAMOC_HOME
is its cold selection cost.

The parts `estimators` (cheaper JSD estimates), `scale` (S2RIC at 50,000 points) and `subsets`
(answer tokens per recorded run) measured once and retired; their results stay in bench/results/
and their script at commit 6f3a362 (`git show 6f3a362:bench/_paser_parts.py`).

Issue 30's options (the `recover` part): `--budget-tokens N` makes the default plan PASER's parts
one at a time against random and PASER at N answer tokens (3 seeds), `--targets self` trains every
row on the original model's own answers, `--targets distill` on the pool's answers and the original
model's next-token distributions, and a row spec may say the same per row:
METHOD[+self|+distill]:BUDGET[:SEED], BUDGET a share, 1.0 (the whole pool) or `Nt` (N answer tokens),
METHOD a recovery method or one of PASER's parts (VARIANTS). Such rows go to
bench/results/recover-methods.json (each row minus random at its budget: `versus_random`; the row
furthest below random on both per-token answer NLL and WikiText perplexity over >= 3 seeds: `best`), so
paser-recover.json keeps the design its page describes; `--results` names another file.

Writes bench/results/paser-recover.json and a plot; rows are added as they
finish, and a re-run skips finished rows. Parts `rebuild` and `table` run nothing: they aggregate,
plot and print from the result files (bench/_paser_report.py).

    DAMOC_HOME=<scratch, models linked> .venv/bin/python bench/paser.py --part recover [--rows paser:0.1:0 ...]
    DAMOC_HOME=<the same> .venv/bin/python bench/paser.py --part recover --budget-tokens 2300 [--targets self]
    .venv/bin/python bench/paser.py --part rebuild    # or --part table: from the result files only
    .venv/bin/python bench/paser.py --part table --results recover-methods
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _common import RESULTS, RUNS, envelope, locked, read_json, write_json_atomic
from _paser_report import (
    DEFAULT_LR,
    RECOVER,
    aggregate,
    best_versus_random,
    plot,
    rebuild,
    split_rate,
    table,
    versus_random,
)
from _paser_rows import VARIANTS, Row, default_plan, label_of, parse_row, results_file, run_record, slug

MODEL = "bundled:smollm2-135m-instruct"


def pruned_model(run_dir: Path, seed: int) -> Path:
    from damoc.layers import PruneConfig, prune_model, save_pruned
    from damoc.layers.calibration import calibration_texts
    from damoc.models import load_model, load_tokenizer

    out = run_dir / "pruned-smollm2-25"
    if not (out / "config.json").exists():
        tok, model = load_tokenizer(MODEL), load_model(MODEL).eval()
        result = prune_model(model, tok, calibration_texts("pubmedqa", n=32, seed=seed),
                             PruneConfig(max_fraction=0.25, seed=seed))
        save_pruned(model, tok, out, result, {"model": MODEL})
    return out


def recover_config(args: argparse.Namespace, pruned: Path, method: str, budget: float, seed: int,
                   row: Row | None = None):
    from damoc.finetune import FinetuneConfig
    from damoc.recovery.run import RecoverConfig

    row = row or Row(method, budget, seed)
    if row.tokens:
        size = {"budget_tokens": int(row.budget)}
    else:
        size = {"budget": row.budget if row.budget < 1 else 0.999999}  # "the whole pool" as a share
    return RecoverConfig(
        original=MODEL, pruned=str(pruned), method="paser" if row.method in VARIANTS else row.method,
        **VARIANTS.get(row.method, {}), **size, per_source=args.per_source, seed=row.seed,
        split_seed=args.seed, heldout=args.heldout, max_len=args.max_seq_len, eval_limit=args.eval_limit,
        eval_tasks=args.eval_tasks, train=True, jsd_prompt_tokens=args.jsd_prompt_tokens,
        jsd_sample=args.jsd_sample, targets=row.targets,
        self_max_new_tokens=args.self_max_new_tokens,
        finetune=FinetuneConfig(method="lora", max_seq_len=args.max_seq_len, batch_size=8, micro_batch_size=4,
                                learning_rate=args.lr, seed=row.seed))


def lost_to_length(args: argparse.Namespace) -> dict[str, int]:
    """How many samples each source loses to the --max-seq-len limit (before the held-out split)."""
    from collections import Counter

    from damoc.recovery.pool import load_pool, source_of
    from damoc.recovery.run import fitting

    pool = load_pool("bundled:mix", args.per_source, args.seed)
    kept = {e.id for e in fitting(pool, MODEL, args.max_seq_len)[0]}
    return dict(Counter(source_of(e) for e in pool if e.id not in kept))


def held_out_sources(args: argparse.Namespace, pruned: Path) -> list[str]:
    from damoc.recovery.pool import source_of
    from damoc.recovery.run import recovery_pool

    return [source_of(e) for e in recovery_pool(recover_config(args, pruned, "random", 0.1, args.seed))[1]]


def part_recover(args: argparse.Namespace) -> None:
    """One recovery run per (method, budget, seed), each written as it finishes (its per-item
    figures to results/<results file's name>/), then the rows and paired differences rebuilt from them all."""
    from damoc.recovery.run import run_recover

    plan = default_plan(args)
    if args.rows:
        plan = [parse_row(r, args.targets) for r in args.rows]
    results = results_file(args, plan)
    pruned = pruned_model(args.run_dir, args.seed)
    lost = lost_to_length(args)
    heldout_sources = held_out_sources(args, pruned)

    def written() -> dict:
        doc = read_json(results) if results.exists() else {}
        return doc if "runs" in doc else {"runs": []}  # an older file (other metrics) is replaced

    for row in plan:
        method, budget, seed = row.method, row.budget, row.seed
        label = label_of(method, budget, args, row)
        if (label, budget, seed) in {(r["method"], r["budget"], r["seed"]) for r in written()["runs"]}:
            continue
        print(f"== {label} {budget} seed {seed}", flush=True)
        home = os.environ.get("DAMOC_HOME", "")
        # a selection does not depend on the rate or the targets: one cold entry per method, under its
        # rate-free name
        selection = split_rate(label)[0].removesuffix(" (self targets)").removesuffix(" (distilled)")
        cold = bool(home) and selection not in written().get("cold_selection", {})
        s = run_recover(recover_config(args, pruned, method, budget, seed, row),
                        args.run_dir / slug(label, budget, seed), progress=True)
        cold = cold and s.get("jsd_cached") is not True  # a home kept from an earlier benchmark has the JSD
        rec = s["recovery"]
        name = slug(label, budget, seed) + ".json"
        items = {k: rec[k].pop("items") for k in ("recovered", "pruned", "original")}
        write_json_atomic(results.parent / results.stem / name,
                          {"method": label, "budget": budget, "seed": seed, **items})
        run = run_record(label, budget, seed, s, name, cold, results.stem)
        with locked(args.run_dir / f"{results.stem}.lock"):  # two lanes may finish at once
            doc = written()
            doc["runs"] = [r for r in doc["runs"] if (r["method"], r["budget"], r["seed"]) != (label, budget, seed)]
            doc["runs"].append(run)
            if cold:  # nothing was cached for this method: its selection's whole cost
                doc.setdefault("cold_selection", {})[selection] = {
                    "select_seconds": s["select_seconds"], "seconds_by_stage": s.get("seconds"), "run": name,
                    "load": run["load"], "train_seconds_same_run": rec["train_seconds"]}
            refs = {k: {m: rec[k][m] for m in ("answer_nll", "external_ppl", "external_ppl_se", "avg_accuracy",
                                                 "avg_accuracy_se", "accuracy", "ppl", "answer_nll_means")
                        if m in rec[k]} for k in ("pruned", "original")}
            doc.update({**refs, "pool_size": s["pool_size"], "heldout": s["heldout"],
                        "dropped_too_long": s["dropped_too_long"], "lost_to_length_by_source": lost,
                        "heldout_sources": heldout_sources, "pool_by_source": s["pool_by_source"],
                        **envelope(heldout_by_source=s["heldout_by_source"]),
                        "split_seed": args.seed, "eval_tasks": args.eval_tasks, "eval_limit": args.eval_limit,
                        "learning_rate": args.lr, "damoc_home": "scratch (cold)" if home else "default",
                        "config": {k: str(v) for k, v in vars(args).items()},
                        "command": "DAMOC_HOME=<scratch with the converted models> python bench/paser.py "
                                   f"--part recover --per-source {args.per_source} --max-seq-len {args.max_seq_len} "
                                   f"--eval-limit {args.eval_limit} --lr {args.lr:g}"
                                   + (f" --budget-tokens {args.budget_tokens}" if args.budget_tokens else "")
                                   + (f" --targets {args.targets}" if args.targets != "data" else "")
                                   + (f" --self-max-new-tokens {args.self_max_new_tokens}"
                                      if args.targets == "self" else "")
                                   + (" --rows METHOD[+self|+distill]:BUDGET:SEED (one per run)" if args.rows else "")})
            doc.update(aggregate(doc, results.parent / results.stem))
            if results != RECOVER:  # every row against random (the pool's answers) at its budget and rate
                doc["versus_random"] = versus_random(doc, results.parent / results.stem)
                doc["best"] = best_versus_random(doc)
            write_json_atomic(results, doc)
    plot(written(), results.with_suffix(".png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="recover", choices=["recover", "table", "rebuild"])
    ap.add_argument("--per-source", type=int, default=205, help="a pool of >= 1,000 after the length limit")
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--eval-limit", type=int, default=200, help="test questions per task")
    # PASER's paper scores commonsense zero-shot tasks; BoolQ and PIQA are the ones bundled. MedQA
    # sits at chance for the pruned 135M model (0.15 on 40 questions) at 8x PIQA's cost per question.
    ap.add_argument("--eval-tasks", nargs="+", default=["boolq", "piqa"])
    ap.add_argument("--jsd-prompt-tokens", type=int,
                    help="recover: PASER's JSD with the prompt cut to its last N tokens")
    ap.add_argument("--jsd-sample", type=float, help="recover: PASER's JSD on this share of each cluster")
    # 2e-4 (the LoRA default) barely moves the model in the few steps a 10% subset of a small pool
    # gives: one epoch on 48 samples left held-out perplexity within 1% of the pruned model's.
    ap.add_argument("--lr", type=float, default=DEFAULT_LR, help="another rate is its own row (the rate check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=RUNS / "bench-paser")
    ap.add_argument("--rows", nargs="*", metavar="METHOD[+self|+distill]:BUDGET[:SEED]",
                    help="only these rows, e.g. paser:0.1 random:1.0 paser-no-concept-graph:2300t:1 random+self:2300t "
                         "(BUDGET: a share, 1.0 for the whole pool, or Nt for N answer tokens; default: all)")
    ap.add_argument("--budget-tokens", type=int,
                    help="recover: the plan is random, PASER and PASER's parts at N answer tokens, seeds 0-2")
    ap.add_argument("--targets", choices=["data", "self", "distill"], default="data",
                    help="recover: train every row on the pool's answers, the original model's own, or the pool's "
                         "answers with the original model's distributions (distill)")
    ap.add_argument("--self-max-new-tokens", type=int, default=128,
                    help="recover: the longest answer the original model generates (--targets self)")
    ap.add_argument("--results", help="recover: the result file's name in bench/results (default: paser-recover, "
                                      "or recover-methods for rows at answer tokens, self targets or PASER's parts)")
    args = ap.parse_args()
    results = RESULTS / f"{args.results.removesuffix('.json')}.json" if args.results else RECOVER
    if args.part == "recover":
        part_recover(args)
    elif args.part == "rebuild":
        rebuild(args.run_dir, results)
    else:
        table(results)


if __name__ == "__main__":
    main()
