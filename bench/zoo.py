"""Benchmark: a validation zoo with statistical power. Does `damoc select` pick what full
fine-tuning would, on tasks where the truth can decide?

Per task: the four bundled candidates {smollm2-135m-instruct, gemma3-270m} x {lora, full} are
fully fine-tuned for one epoch on 1,000 seeded training examples and evaluated on
min(test split, 1,000) test questions (the truth). Each truth row, with its per-question
predictions, is written to bench/results/zoo/TASK/ as it lands, so a stopped run keeps what it
finished and a later session (or another machine) goes on from there. The truth's summary
(metrics with SE, paired bootstrap P(best), the tie set: candidates within 2 paired SE of the
best) goes to bench/results/zoo-TASK.json; then each `select` setting is a row judged against it
(in the tie set, strict top-1, regret with its paired SE, agreement on the pairs the truth
separates, Kendall tau, Spearman rho, FLOP and wall speed-ups with every overhead counted).

    .venv/bin/python bench/zoo.py --task boolq --part pilot     # does fine-tuning move the models?
    .venv/bin/python bench/zoo.py --task boolq --part truth     # hours of CPU: run in the background
    .venv/bin/python bench/zoo.py --task boolq --part summary   # the truth's confidence, from the files
    .venv/bin/python bench/zoo.py --task boolq --part rows [--only headline ...]
    .venv/bin/python bench/zoo.py --task any --part table     # the README's table, from every zoo file
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from damoc.finetune import FinetuneConfig
from damoc.io import read_json, read_jsonl, write_json_atomic, write_jsonl_atomic
from damoc.runinfo import machine, versions
from damoc.selection import Candidate
from damoc.selection.baseline import run_baseline
from damoc.selection.candidate import is_ok
from damoc.selection.config import BaselineConfig
from damoc.tasks import load_task

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
MODELS = ["bundled:smollm2-135m-instruct", "bundled:gemma3-270m"]
# Zoo v2 (issue 25): every model with four fine-tuning methods, since no zero-shot score can rank the
# methods of one model. The truth has two training seeds per candidate (seed noise beside question noise).
METHODS = ("lora", "dora", "ia3", "full")
CANDIDATES = [Candidate(model=m, method=meth) for m in MODELS for meth in METHODS]
TRUTH_SEEDS = (0, 1)
# Tokens per example: as short as the task allows (contexts are cut from their end; the question
# and answer always survive). BoolQ passages are ~100-150 words.
MAX_SEQ_LEN = {"boolq": 160, "pubmedqa": 256, "nq-open": 96, "piqa": 192, "asdiv": 112, "siqa": 72}
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
    wanted = [c for c in CANDIDATES if not args.methods or c.method in args.methods]
    done = [c for c in wanted if (truth_dir(args.task) / f"{row_slug(c, args.seed)}.json").exists()]
    todo = [c for c in wanted if c not in done]
    if not todo:
        print(f"{args.task}: every truth row is in {truth_dir(args.task)}")
        return
    if done:  # committed rows count: another session or machine may have made them
        print(f"{args.task}: truth rows already committed for {', '.join(map(name, done))}")
        config = config.model_copy(update={"candidates": todo})
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
    return out


def mean_of_flops(by_seed: dict[int, dict], key: str) -> float:
    """One full fine-tuning's cost: the mean over the seeds run (the truth pays for one run each)."""
    return float(np.mean([r[key] for r in by_seed.values()]))


def part_summary(args) -> None:
    path = RESULTS / f"zoo-{args.task}.json"
    previous = read_json(path) if path.exists() else {}
    truth = truth_summary(args.task, args.seed)
    write_json_atomic(path, {**previous, "truth": truth, "machine": machine(), "versions": versions(),
                             "seed": args.seed, "command": f"python bench/zoo.py --task {args.task} --part truth"})
    print(json.dumps({k: truth.get(k) for k in ("candidates_done", "best", "tie_set", "confident", "prob_best")},
                     indent=1))
    if truth.get("complete"):
        plot(path)


def plot(path: Path) -> None:
    """Left: the truth per candidate with its SE (tie set in orange). Right: each row's FLOP saving,
    marked by whether its pick is in the truth's tie set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=110)
    plt.close(fig)


def part_table(args) -> None:
    """The README's cross-task table, printed from the committed zoo files (every task, every row)."""
    head = ("| task | row | strategy | chosen | in tie set | top-1 | regret ± SE | separated pairs same order | "
            "Kendall tau | FLOPs | FLOPs, training only | FLOPs with evaluation | data stage / training |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for path in sorted(RESULTS.glob("zoo-*.json")):
        if path.name.startswith("zoo-pilot-"):
            continue
        data = read_json(path)
        for r in data.get("rows", []):
            sep = f"{round(r['separated_pairs_agreement'] * r['separated_pairs'])}/{r['separated_pairs']}" \
                if r.get("separated_pairs") else "-"
            with_eval = r.get("speedup_flops_with_evaluation")
            def x(v, spec=".1f", unit="x"):
                return "-" if v is None else f"{v:{spec}}{unit}"
            print(f"| {r['task']} | {r['name']} | {r.get('strategy', 'fixed')} | {r['chosen']} | "
                  f"{'**yes**' if r['in_tie_set'] else 'no'} | {'yes' if r['top1'] else 'no'} | "
                  f"{r['regret']:.3f} ± {r['regret_se']:.3f} | {sep} | {x(r.get('kendall_tau'), '.2f', '')} | "
                  f"{x(r.get('speedup_flops'))} | {x(r.get('speedup_flops_training_only'))} | "
                  f"{x(with_eval)} | {x(r.get('data_stage_flops_share'), '.2f', '')} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--part", choices=["pilot", "truth", "summary", "rows", "table"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "zoo")
    ap.add_argument("--only", nargs="*", help="rows: only these settings")
    ap.add_argument("--methods", nargs="*", choices=METHODS, help="truth: only the candidates with these methods")
    args = ap.parse_args()
    {"pilot": part_pilot, "truth": part_truth, "summary": part_summary, "rows": part_rows,
     "table": part_table}[args.part](args)


def settings() -> list[tuple[str, dict]]:
    """(row name, SelectConfig overrides): the defaults first, then one lever at a time."""
    from damoc.selection.config import FilterSettings

    rows = [("headline", {}), ("zero-shot", {"strategy": "zero-shot"}), ("size", {}),
            ("subset", {"prune": None, "compress": None}),
            ("no-prune", {"prune": None}), ("halving", {"strategy": "halving"}),
            ("adaptive", {"strategy": "adaptive"}), ("no-compress", {"compress": None})]
    rows += [(f"{sel}-{rate:g}", {"filter": FilterSettings(method=sel, rate=rate)})
             for rate in (0.1, 0.05, 0.2) for sel in ("random", "graphcut", "perplexity")
             if (sel, rate) != ("graphcut", 0.1)]
    return rows


def cheap_ranks(summary: dict) -> dict[str, int]:
    """name -> rank (1 best). Adaptive selection drops candidates before the end: they rank below
    the survivors, a candidate dropped later above one dropped earlier."""
    ok = [c for c in summary["candidates"] if is_ok(c)]
    ranks = {f"{c['model'].removeprefix('bundled:')} {c['method']}": c["rank"] for c in ok if "rank" in c}
    if (summary.get("config") or {}).get("strategy") == "zero-shot":  # methods of one model tie
        order = summary["zero_shot"]["ranking_models"]
        return {n: 1 + order.index(c["model"]) for n, c in zip(ranks, ok)}
    dropped = (summary.get("adaptive") or {}).get("dropped", {})
    later_first = sorted(dropped, key=lambda n: -dropped[n]["rung"])
    for i, n in enumerate(later_first, start=len(ranks) + 1):
        ranks[n.removeprefix("bundled:")] = i
    return ranks


def judged(truth: dict, summary: dict, choice: bool) -> dict:
    """The library's judgement (tie set, top-1, regret and its SE, separated pairs) plus rank correlations."""
    from damoc.selection.validation import compare_rankings, judge

    cheap_rank = cheap_ranks(summary)
    ties = {"best": truth["best"], "tie_set": truth["tie_set"], "differences": truth["differences_to_best"],
            "pairs": truth["pairs"]}
    metric = "accuracy" if choice else "answer_bpb"
    true = {n: m[metric] for n, m in truth["metrics"].items()}
    truth_rank = {n: -i for i, n in enumerate(sorted(true, key=lambda n: -true[n] if choice else true[n]))}
    agreement = compare_rankings({n: -r for n, r in cheap_rank.items()}, truth_rank, higher_is_better=True)
    return {**judge(cheap_rank, ties, choice), "kendall_tau": agreement["kendall_tau"],
            "spearman_rho": agreement["spearman_rho"], "ranking": sorted(cheap_rank, key=cheap_rank.get),
            "compressed_verdict": summary.get("verdict")}


def eval_flops(config, summary: dict, truth_metrics: dict) -> tuple[float, float]:
    """Forward FLOPs of the evaluations: damoc's (every candidate run, each on its questions, pruned
    as it was) and the truth's (every candidate on the whole test split). Estimated from the
    test questions' token lengths (damoc.selection.estimate), since runs record no eval tokens."""
    from damoc.selection.estimate import lengths, shape, tokenizer_for

    test = load_task(config.task).test[: config.test_limit]
    per: dict[str, list[int]] = {}

    def tokens(model: str, n: int) -> float:
        if model not in per:
            tok, _ = tokenizer_for(model)
            per[model] = [x.trained(config.finetune.max_seq_len) for x in lengths(tok, test)]
        return float(sum(per[model][:n]))

    damoc = 0.0
    for c in summary.get("paid_runs") or [c for c in summary["candidates"] if is_ok(c)]:
        s = shape(c["model"])
        removed = s.layers - (c.get("layers_after") or c.get("prune", {}).get("layers_after") or s.layers)
        damoc += 2.0 * (s.matmul - removed * s.per_layer) * tokens(c["model"], c.get("eval_examples", len(test)))
    full = sum(2.0 * shape(f"bundled:{n.split()[0]}").matmul * tokens(f"bundled:{n.split()[0]}", len(test))
               for n in truth_metrics)
    return damoc, full


def fit_accuracy(truth: dict, summary: dict) -> dict | None:
    """Adaptive only: each candidate's predicted full-size bits per byte against the truth's."""
    fits = (summary.get("adaptive") or {}).get("fits")
    if not fits:
        return None
    out = {}
    for n, f in fits.items():
        name_ = n.removeprefix("bundled:")
        true = truth["metrics"][name_]["answer_bpb"]
        out[name_] = {"predicted": f["predicted_answer_bpb_full"], "truth": true, "law": f["law"],
                      "relative_error": f["predicted_answer_bpb_full"] / true - 1, "loo_error": f["loo_error"]}
    return out


def part_rows(args) -> None:
    from damoc.selection.config import SelectConfig
    from damoc.selection.pipeline import run_select

    path = RESULTS / f"zoo-{args.task}.json"
    truth = truth_summary(args.task, args.seed)
    if not truth.get("complete"):
        raise SystemExit(f"{args.task}: the truth is not complete ({truth.get('candidates_done')}); run --part truth")
    base = truth_config(args.task, args.seed)
    choice = load_task(args.task).is_choice
    full_flops, full_seconds = sum(truth["train_flops"].values()), sum(truth["train_seconds"].values())
    for row_name, overrides in settings():
        if args.only and row_name not in args.only:
            continue
        if row_name == "size":
            save_row(args, path, truth, size_row(args.task, truth, choice))
            continue
        config = SelectConfig(**{**base.model_dump(), **overrides})
        start = time.perf_counter()
        summary = run_select(config, args.run_dir / args.task / "rows" / row_name, progress=False)
        cost = summary["cost"]
        overhead = summary["data"].get("forward_flops", 0.0) + cost["prune_flops"]
        paid = cost["train_flops"] + overhead + cost.get("zero_shot_eval_flops", 0.0) * (config.strategy != "zero-shot")
        cheap_seconds = summary["seconds"]["data_stage"] + cost["train_seconds"] + cost["prune_seconds"]
        damoc_eval, full_eval = eval_flops(config, summary, truth["metrics"])
        row = {"name": row_name, "task": args.task, **judged(truth, summary, choice),
               "speedup_flops": ratio(full_flops, paid),
               "speedup_flops_with_evaluation":
                   (full_flops + full_eval) / (cost["train_flops"] + overhead + damoc_eval),
               "eval_flops": damoc_eval, "truth_eval_flops": full_eval,
               "speedup_flops_training_only": ratio(full_flops, cost["train_flops"]),
               "data_stage_flops_share": ratio(overhead, cost["train_flops"]),
               "speedup_wall": ratio(full_seconds, cheap_seconds),
               "speedup_wall_note": "truth seconds were measured at another time, under another load",
               "train_examples": summary["train_examples"], "input_examples": summary["data"].get("input_examples"),
               "steps": {f"{c['model'].removeprefix('bundled:')} {c['method']}": c["train"]["steps"]
                         for c in summary["candidates"] if is_ok(c)},
               "batch_size": {f"{c['model'].removeprefix('bundled:')} {c['method']}": c["train"]["batch_size"]
                              for c in summary["candidates"] if is_ok(c)},
               "metrics": {f"{c['model'].removeprefix('bundled:')} {c['method']}": c["metrics"]
                           for c in summary["candidates"] if is_ok(c)},
               "data": summary["data"], "invocation_seconds": time.perf_counter() - start,
               "adaptive": summary.get("adaptive"), "fit_accuracy": fit_accuracy(truth, summary),
               "strategy": config.strategy,
               "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
               "overrides": {k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in overrides.items()},
               "config": config.model_dump(mode="json")}
        save_row(args, path, truth, row)


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def save_row(args, path: Path, truth: dict, row: dict) -> None:
    current = read_json(path) if path.exists() else {}
    rows = [r for r in current.get("rows", []) if r["name"] != row["name"]] + [row]
    write_json_atomic(path, {**current, "truth": truth, "rows": rows, "machine": machine(),
                             "versions": versions(), "seed": args.seed,
                             "command": f"python bench/zoo.py --task {args.task} --part rows"})
    plot(path)
    print(f"{row['name']}: chosen {row['chosen']} (in tie set {row['in_tie_set']}, top-1 {row['top1']}), "
          f"regret {row['regret']:.4f} +- {row['regret_se']:.4f}", flush=True)


def size_row(task: str, truth: dict, choice: bool) -> dict:
    """The free guess "the bigger model", its methods in the registry's default order: no run at all."""
    from damoc.finetune.methods import ORDER
    from damoc.selection.estimate import shape
    from damoc.selection.validation import judge

    def key(n: str) -> tuple:
        model, method = n.rsplit(" ", 1)
        return (-shape(f"bundled:{model}").matmul, ORDER.index(method))

    order = sorted(truth["metrics"], key=key)
    ranks = {n: i for i, n in enumerate(order, start=1)}
    ties = {"best": truth["best"], "tie_set": truth["tie_set"], "differences": truth["differences_to_best"],
            "pairs": truth["pairs"]}
    return {"name": "size", "task": task, **judge(ranks, ties, choice), "ranking": order, "strategy": "size",
            "speedup_flops": None, "note": "no training and no evaluation: ranked by matmul parameters"}


if __name__ == "__main__":
    main()
