"""The validation zoo's truth (bench/zoo.py): the candidates and their settings, full fine-tuning
of every candidate (--part truth), the pilot, the truth's summary and the plot."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import BUNDLED, RESULTS, locked, pyplot, read_json, save_figure, write_json_atomic

from damoc.finetune import FinetuneConfig
from damoc.io import read_jsonl, write_jsonl_atomic
from damoc.runinfo import machine, versions
from damoc.selection import Candidate
from damoc.selection.baseline import run_baseline
from damoc.selection.candidate import is_ok
from damoc.selection.config import BaselineConfig
from damoc.tasks import load_task

MODELS = BUNDLED
# Zoo v2 (issue 25): every model with four fine-tuning methods, since no zero-shot score can rank the
# methods of one model. The truth has two training seeds per candidate (seed noise beside question noise).
METHODS = ("lora", "dora", "ia3", "full")
CANDIDATES = [Candidate(model=m, method=meth) for m in MODELS for meth in METHODS]
TRUTH_SEEDS = (0, 1)
# Tokens per example: as short as the task allows (contexts are cut from their end; the question
# and answer always survive). BoolQ passages are ~100-150 words.
MAX_SEQ_LEN = {"boolq": 160, "pubmedqa": 256, "nq-open": 96, "piqa": 192, "asdiv": 112, "siqa": 72,
               "medmcqa": 192}  # medmcqa: 11 of 4,071 questions with their answers pass 128 tokens, none 192
TRAIN, TEST_MAX, TEST_MIN = 1000, 1000, 300


def name(c: Candidate) -> str:
    return f"{c.model.removeprefix('bundled:')} {c.method}"


def truth_config(task: str, seed: int) -> BaselineConfig:
    t = load_task(task)
    n_test = min(len(t.test), TEST_MAX)
    if n_test < TEST_MIN:
        raise SystemExit(f"{task}: {n_test} test questions, fewer than the {TEST_MIN} a powered truth needs")
    return BaselineConfig(task=task, candidates=CANDIDATES, train_limit=min(TRAIN, len(t.train)), test_limit=n_test,
                          finetune=FinetuneConfig(max_seq_len=MAX_SEQ_LEN.get(task, 256), batch_size=8,
                                                  micro_batch_size=4, seed=seed), seed=seed,
                          # Generation tasks are ranked by bits per byte: ROUGE-L's generation is skipped.
                          # (Choice tasks never generate; their flag stays at its default, keeping their keys.)
                          generation=t.is_choice)


def truth_dir(task: str) -> Path:
    return RESULTS / "zoo" / task


def row_slug(c: Candidate, seed: int = 0) -> str:
    """A truth row's file name: seed 0 keeps the name it had before seeds (those rows stay valid)."""
    return name(c).replace(" ", "--") + (f"--seed{seed}" if seed else "")


def part_truth(args) -> None:
    """Full fine-tuning of every candidate; each finished one copied into bench/results at once."""
    config = truth_config(args.task, args.seed)
    wanted = [c for c in CANDIDATES if (not args.methods or c.method in args.methods)
              and (not args.models or c.model.removeprefix("bundled:") in args.models)]
    done = [c for c in wanted if (truth_dir(args.task) / f"{row_slug(c, args.seed)}.json").exists()]
    todo = [c for c in wanted if c not in done]
    if not todo:
        print(f"{args.task}: every truth row is in {truth_dir(args.task)}")
        return
    if done:  # committed rows count: another session or machine may have made them
        print(f"{args.task}: truth rows already committed for {', '.join(map(name, done))}")
    config = config.model_copy(update={"candidates": todo})
    run_dir = args.run_dir / args.task / ("full" if args.seed == 0 else f"full-seed{args.seed}")

    def on_event(kind: str, info: dict) -> None:
        print(kind, info.get("model"), info.get("method"), info.get("status", ""), flush=True)
        if kind in ("done", "cached") and is_ok(info):
            c = next(c for c in CANDIDATES if (c.model, c.method) == (info["model"], info["method"]))
            folder = run_dir / "candidates" / c.slug
            slug = row_slug(c, args.seed)
            keep = {k: info.get(k) for k in ("model", "method", "metrics", "train_seconds", "train_tokens",
                                             "tokens_per_second", "train_flops", "train", "eval_seconds",
                                             "eval_examples", "load_seconds")}
            keep |= {"torch_threads": torch.get_num_threads(), "load_average_at_end": os.getloadavg()[0],
                     "config": config.model_dump(mode="json", exclude={"candidates"}),
                     "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
            write_json_atomic(truth_dir(args.task) / f"{slug}.json", keep)
            write_jsonl_atomic(truth_dir(args.task) / f"{slug}.predictions.jsonl",
                               ({k: r[k] for k in ("id", "label", "pred", "answer_nll", "answer_bytes") if k in r}
                                for r in read_jsonl(folder / "predictions.jsonl")))

    run_baseline(config, run_dir, progress=False, on_event=on_event)


PILOT_TRAIN, PILOT_TEST = 300, 300


def part_pilot(args) -> None:
    """Does one epoch on a few hundred examples move these small models off their priors? Zero-shot
    vs LoRA-fine-tuned on PILOT_TRAIN examples, same PILOT_TEST questions; one row per model, written
    as it lands to bench/results/zoo-pilot-TASK.json."""
    from damoc.evaluation import evaluate
    from damoc.models.loading import load_model, load_tokenizer
    from damoc.selection.runner import load_options, select_examples

    base = truth_config(args.task, args.seed)
    config = base.model_copy(update={"train_limit": PILOT_TRAIN, "test_limit": PILOT_TEST,
                                     "candidates": [c for c in CANDIDATES if c.method == "lora"]})
    t = load_task(args.task)
    _, test = select_examples(t, config, quiet=True)
    path = RESULTS / f"zoo-pilot-{args.task}.json"
    out = read_json(path) if path.exists() else {}
    out |= {"task": args.task, "train_examples": PILOT_TRAIN, "test_examples": len(test),
            "max_seq_len": config.finetune.max_seq_len, "seed": args.seed, "machine": machine(),
            "versions": versions(), "command": f"python bench/zoo.py --task {args.task} --part pilot"}
    if t.is_choice:
        out["majority_accuracy"] = max(sum(e.label == k for e in test) for k in set(e.label for e in test)) / len(test)
    rows = out.setdefault("rows", {})
    for model in MODELS:
        key = model.removeprefix("bundled:")
        if "fine_tuned" in rows.get(key, {}):
            continue
        tok, m = load_tokenizer(model, load_options(config)), load_model(model, load_options(config))
        zero = evaluate(m, tok, t, examples=test, max_len=config.finetune.max_seq_len,
                        batch_size=config.eval_batch_size, generation=False, seed=args.seed)
        del m
        result = run_baseline(config.model_copy(update={"candidates": [Candidate(model=model, method="lora")]}),
                              args.run_dir / args.task / "pilot", progress=False)
        ft = next(r for r in result["candidates"] if is_ok(r))
        rows[key] = {"zero_shot": zero.metrics, "fine_tuned": ft["metrics"], "train_seconds": ft["train_seconds"],
                     "steps": ft["train"]["steps"], "torch_threads": torch.get_num_threads(),
                     "load_average": os.getloadavg()[0]}
        write_json_atomic(path, out)
        print(key, {k: round(v, 4) for k, v in zero.metrics.items() if not k.endswith("_se")}, "->",
              {k: round(v, 4) for k, v in ft["metrics"].items() if not k.endswith("_se")}, flush=True)


def load_truth(task: str) -> tuple[dict[str, dict[int, dict]], dict[str, dict[int, list[dict]]]]:
    """Every committed truth row: candidate name -> seed -> row (and its per-question predictions)."""
    rows: dict[str, dict[int, dict]] = {}
    preds: dict[str, dict[int, list[dict]]] = {}
    for c in CANDIDATES:
        for seed in TRUTH_SEEDS:
            path = truth_dir(task) / f"{row_slug(c, seed)}.json"
            if path.exists():
                rows.setdefault(name(c), {})[seed] = read_json(path)
                preds.setdefault(name(c), {})[seed] = read_jsonl(path.with_suffix(".predictions.jsonl"))
    return rows, preds


def truth_summary(task: str, seed: int = 0) -> dict:
    """The truth over every candidate and seed committed: seed-averaged metrics, the tie set with
    question noise and seed noise reported apart (confidence.tie_set_over_seeds)."""
    from damoc.selection.confidence import tie_set_over_seeds

    rows, preds = load_truth(task)
    t = load_task(task)
    done = {n: sorted(r) for n, r in rows.items()}
    out = {"task": task, "candidates_done": sorted(rows), "seeds_done": done,
           "complete": all(len(done.get(name(c), [])) == len(TRUTH_SEEDS) for c in CANDIDATES)}
    if not rows:
        return out
    any_row = next(iter(next(iter(rows.values())).values()))

    def mean_of(n: str, key: str) -> float:
        return float(np.mean([r["metrics"][key] for r in rows[n].values()]))

    out |= {"train_examples": any_row["config"]["train_limit"], "test_examples": any_row["config"]["test_limit"],
            "max_seq_len": any_row["config"]["finetune"]["max_seq_len"], "seeds": list(TRUTH_SEEDS),
            "metrics": {n: {k: mean_of(n, k) for k in next(iter(r.values()))["metrics"]} for n, r in rows.items()},
            "metrics_by_seed": {n: {s: r[s]["metrics"] for s in r} for n, r in rows.items()},
            "train_flops": {n: mean_of_flops(r, "train_flops") for n, r in rows.items()},
            "train_seconds": {n: mean_of_flops(r, "train_seconds") for n, r in rows.items()}}
    if t.is_choice:
        labels = [r["label"] for r in next(iter(next(iter(preds.values())).values()))]
        out["majority_accuracy"] = float(np.bincount(labels).max() / len(labels))
    if len(preds) >= 2:
        ties = tie_set_over_seeds({n: list(p.values()) for n, p in preds.items()}, choice=t.is_choice, seed=seed)
        out |= {"best": ties["best"], "tie_set": ties["tie_set"], "confident": len(ties["tie_set"]) == 1,
                "differences_to_best": ties["differences"], "pairs": ties["pairs"],
                "order_by_bpb": sorted(rows, key=lambda n: out["metrics"][n]["answer_bpb"])}
    out["replication"] = replication(rows, preds, t.is_choice, seed)
    return out


def replication(rows: dict, preds: dict, choice: bool, seed: int = 0) -> dict | None:
    """How well one full fine-tuning run orders the pairs another seed's run separates (on question noise,
    the judge's rule), both ways round, over the candidates with both seeds: the most any cheaper route
    can be asked for, since the truth itself replicates no better."""
    from damoc.selection.confidence import tie_set_over_seeds
    from damoc.selection.validation import judge

    both = sorted(n for n in preds if set(preds[n]) >= set(TRUTH_SEEDS[:2]))
    if len(both) < 2:
        return None
    key = "accuracy" if choice else "answer_bpb"
    ways = []
    for ref, other in (TRUTH_SEEDS[:2], TRUTH_SEEDS[1::-1]):
        ties = tie_set_over_seeds({n: [preds[n][ref]] for n in both}, choice=choice, seed=seed)
        value = {n: rows[n][other]["metrics"][key] for n in both}
        order = sorted(both, key=lambda n: -value[n] if choice else value[n])
        j = judge({n: i for i, n in enumerate(order, start=1)},
                  {k: ties[k] for k in ("best", "tie_set", "pairs")} | {"differences": ties["differences"]}, choice)
        ways.append({"separated_by_seed": ref, "ranked_by_seed": other, **{k: j[k] for k in (
            "separated_pairs", "separated_pairs_agreement", "method_pairs", "method_pairs_agreement")}})
    pairs = sum(w["separated_pairs"] for w in ways)
    methods = sum(w["method_pairs"] for w in ways)
    return {"candidates": both, "ways": ways, "separated_pairs": pairs,
            "separated_pairs_right": sum(w["separated_pairs"] * (w["separated_pairs_agreement"] or 0) for w in ways),
            "method_pairs": methods,
            "method_pairs_right": sum(w["method_pairs"] * (w["method_pairs_agreement"] or 0) for w in ways)}


def mean_of_flops(by_seed: dict[int, dict], key: str) -> float:
    """One full fine-tuning's cost: the mean over the seeds run (the truth pays for one run each)."""
    return float(np.mean([r[key] for r in by_seed.values()]))


def lock_for(args, path: Path) -> Path:
    """The lock every job that rewrites zoo-TASK.json takes (rows, rejudging, the truth's summary)."""
    return args.run_dir / f"{path.stem}.lock"


def part_summary(args) -> None:
    path = RESULTS / f"zoo-{args.task}.json"
    truth = truth_summary(args.task, args.seed)
    with locked(lock_for(args, path)):
        previous = read_json(path) if path.exists() else {}
        write_json_atomic(path, {**previous, "truth": truth, "machine": machine(), "versions": versions(),
                                 "seed": args.seed, "command": f"python bench/zoo.py --task {args.task} --part truth"})
    print(json.dumps({k: truth.get(k) for k in ("candidates_done", "best", "tie_set", "confident", "prob_best")},
                     indent=1))
    if truth.get("complete"):
        plot(path)


def plot(path: Path) -> None:
    """Left: the truth per candidate with its SE (tie set in orange). Right: each row's FLOP saving,
    marked by whether its pick is in the truth's tie set."""
    plt = pyplot()
    data = read_json(path)
    truth, rows = data["truth"], data.get("rows", [])
    metric = "accuracy" if "majority_accuracy" in truth else "answer_bpb"
    names = sorted(truth["metrics"], key=lambda n: truth["metrics"][n][metric], reverse=metric == "accuracy")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    vals = [truth["metrics"][n][metric] for n in names]
    errs = [truth["metrics"][n][f"{metric}_se"] for n in names]
    colours = ["tab:orange" if n in truth.get("tie_set", []) else "tab:blue" for n in names]
    axes[0].bar([n.replace(" ", "\n") for n in names], vals, yerr=errs, capsize=4, color=colours)
    if "majority_accuracy" in truth:
        axes[0].axhline(truth["majority_accuracy"], color="k", ls="--", lw=1, label="always the commonest answer")
        axes[0].legend(fontsize=8)
    axes[0].set_title(f"truth: full fine-tuning, {truth['train_examples']} train / {truth['test_examples']} test\n"
                      f"{metric} (orange: tie set, within 2 paired SE of the best)", fontsize=9)
    for r in [r for r in rows if r.get("speedup_flops")]:
        axes[1].scatter(r["speedup_flops"], 1 if r["in_tie_set"] else 0, s=60,
                        color="tab:green" if r["in_tie_set"] else "tab:red")
        axes[1].annotate(r["name"], (r["speedup_flops"], 1 if r["in_tie_set"] else 0), fontsize=7,
                         rotation=30, xytext=(3, 5), textcoords="offset points")
    axes[1].set_yticks([0, 1], ["pick outside\nthe tie set", "pick in\nthe tie set"])
    axes[1].set_ylim(-0.5, 1.8)
    axes[1].set_xlabel("FLOP saving vs full fine-tuning (every overhead counted)")
    axes[1].set_title("damoc select rows", fontsize=9)
    fig.suptitle(f"validation zoo: {truth['task']}")
    save_figure(fig, path.with_suffix(".png"))
