"""What a `select` run concludes from its candidates' results: the ranking with its confidence, the
verdict (honest about ties), the cost, warnings, and the comparison with full fine-tuning
(`--validate`). Strategies hand their results here; nothing here trains or evaluates."""

from __future__ import annotations

from pathlib import Path

from damoc.evaluation.metrics import higher_is_better
from damoc.io import read_jsonl
from damoc.runinfo import machine, versions
from damoc.selection.candidate import display_name as _name
from damoc.selection.candidate import is_ok
from damoc.selection.config import SelectConfig
from damoc.tasks import Task


def predictions(folders: dict[str, Path]) -> dict[str, list[dict]]:
    return {name: read_jsonl(folder / "predictions.jsonl") for name, folder in folders.items()
            if (folder / "predictions.jsonl").exists()}


def summarise(config: SelectConfig, task: Task, data: dict, ranked: list[dict], runs: list[dict],
              folders: dict[str, Path], dropped: dict[str, list[dict]] | None = None) -> dict:
    """`ranked`: the final order (ranks set); `runs`: every training run paid for (several per
    candidate under successive halving), for the cost; `folders`: where ranked candidates'
    predictions are, for the bootstrap; `dropped`: the predictions of candidates sequential evaluation
    dropped early (on the first questions only), which the bootstrap leaves out but the verdict's
    lighter-method line may need."""
    from damoc.selection.confidence import degenerate, paired_bootstrap

    ok = [r for r in ranked if is_ok(r)]
    by_bpb = sorted(ok, key=lambda r: r["metrics"]["answer_bpb"])
    preds = predictions({k: v for k, v in folders.items() if k in {_name(r) for r in ok}})
    confidence = paired_bootstrap(preds, seed=config.seed) if len(preds) >= 2 and task.is_choice else None
    verdict_ = verdict(ok, preds, task.is_choice, config.seed, boot=confidence, dropped=dropped,
                       margin=config.eval.margin)
    warnings = [f"{name} {why}: it has not learned the task at this budget, so its rank says little"
                for name, why in degenerate(preds).items()]
    paid = [r for r in runs if is_ok(r)]
    cost = {"train_seconds": sum(r["train_seconds"] for r in paid),
            "train_flops": sum(r["train_flops"] for r in paid),
            "prune_seconds": sum(r.get("prune", {}).get("seconds", 0.0) for r in paid),
            "prune_flops": prune_flops(paid),
            "eval_seconds": sum(r.get("eval_seconds", 0.0) for r in paid),
            "load_seconds": sum(r.get("load_seconds", 0.0) for r in paid),
            "training_runs": sum(not r.get("evaluation_only") for r in paid),
            # scoring FLOPs as evaluate() counts its tokens (None where a run predates the count)
            "eval_flops": _sum_known(r.get("eval_flops") for r in paid)}
    return {
        "task": task.name, "primary_metric": task.primary_metric,
        "data": {k: v for k, v in data.items() if k != "key"},
        "candidates": [{k: v for k, v in r.items() if k != "traceback"} for r in ranked],
        "ranking_bpb": [_name(r) for r in by_bpb],
        "confidence": confidence,
        "verdict": verdict_,
        "warnings": warnings,
        "cost": cost,
        # Every run paid for (several per candidate under halving or adaptive), for costing them.
        "paid_runs": [{"model": r["model"], "method": r["method"],
                       **({"options": r["options"]} if r.get("options") else {}),
                       "examples": r.get("train", {}).get("examples"),
                       "eval_examples": r.get("eval_examples"), "train_flops": r["train_flops"],
                       **({"eval_range": r["eval_range"]} if r.get("eval_range") else {}),
                       **({"rescored": r["rescored"]} if r.get("rescored") else {}),
                       "layers_after": r.get("prune", {}).get("layers_after") or r.get("layers_after")} for r in paid],
        "seconds": {"data_stage": sum(data.get("seconds", {}).values()),
                    "candidates": cost["load_seconds"] + cost["prune_seconds"] + cost["train_seconds"]
                    + cost["eval_seconds"]},
        "config": config.model_dump(mode="json"), "machine": machine(), "versions": versions(),
    }


TIE_RULE = ("when the compressed ranking cannot tell its leaders apart (within 2 paired standard errors of the "
            "best on the primary metric), recommend the cheapest of them to fine-tune: the fewest training FLOPs in "
            "this run (smaller model; LoRA before full), then the better bits per byte")


def verdict(ok: list[dict], preds: dict[str, list[dict]], choice: bool, seed: int,
            boot: dict | None = None, dropped: dict[str, list[dict]] | None = None,
            margin: float = 0.0) -> dict | None:
    """The pick, honest about ties: the compressed ranking's own tie set, and a documented rule
    for choosing within it instead of a silent coin toss. `dropped`: predictions of candidates dropped
    before the end (sequential evaluation), for the lighter-method line only. `margin` (`eval.margin`):
    a difference this small ties too, however many SE it is."""
    from damoc.selection.confidence import tie_set

    if not ok:
        return None
    by_name = {_name(r): r for r in ok}
    if len(preds) < 2:
        out = {"tie_set": [_name(ok[0])], "tied": False, "recommended": _name(ok[0]), "rule": TIE_RULE}
        pairs = []
    else:
        ties = tie_set(preds, choice=choice, seed=seed, boot=boot, margin=margin)
        members = [n for n in ties["tie_set"] if n in by_name]
        recommended = min(members, key=lambda n: (by_name[n]["train_flops"], by_name[n]["metrics"]["answer_bpb"]))
        out = {"tie_set": members, "tied": len(members) > 1, "recommended": recommended,
               "best_by_metric": ties["best"], "differences_to_best": ties["differences"],
               "rule": TIE_RULE + (f"; a difference of at most {margin:g} counts as within" if margin else ""),
               **({"margin": margin} if margin else {})}
        pairs = ties["pairs"]
    alternative = lighter_method(out["recommended"], by_name, pairs, choice)
    if alternative is None and dropped:  # its rivals were dropped before the end
        alternative = lighter_on_shared_questions(out["recommended"], ok, {**dropped, **preds}, choice, seed)
    return {**out, "lighter_method": alternative} if alternative else out


def lighter_method(recommended: str, by_name: dict[str, dict], pairs: list[dict], choice: bool) -> dict | None:
    """When the pick is a full fine-tune: the same model's best other method and how far from the pick it
    is (positive: behind), on the same questions. A full fine-tune's lead over the PEFT methods on the
    compressed data is the call the validation zoo found least reliable: its picks outside the truth's tie
    set were all full fine-tunes, and on one task a full fine-tune led DoRA on 100 examples and trailed it
    on 1,000. The lighter method is far cheaper to train and to serve: the user should see the gap that
    full fine-tuning is being chosen for."""
    pick = by_name[recommended]
    if pick["method"] != "full":
        return None
    paired = {p["b"] if p["a"] == recommended else p["a"]: p for p in pairs if recommended in (p["a"], p["b"])}
    rivals = [n for n, r in by_name.items() if r["model"] == pick["model"] and r["method"] != "full" and n in paired]
    if not rivals:  # none scored on the pick's questions
        return None

    def order(n: str) -> tuple[float, float]:  # best first: the primary metric, then bits per byte
        m = by_name[n]["metrics"]
        return (-m["accuracy"], m["answer_bpb"]) if choice else (m["answer_bpb"], 0.0)

    best = min(rivals, key=order)
    key = "accuracy" if choice else "bpb"
    p = paired[best]
    diff = p[f"{key}_diff"] if p["a"] == recommended else -p[f"{key}_diff"]  # pick minus rival
    return {"candidate": best, "metric": "accuracy" if choice else "answer_bpb",
            "diff": diff if choice else -diff, "se": p[f"{key}_diff_se"]}


def lighter_on_shared_questions(recommended: str, ok: list[dict], records: dict[str, list[dict]], choice: bool,
                                seed: int) -> dict | None:
    """`lighter_method` where the rivals were scored on fewer questions than the pick: sequential evaluation
    drops the clearly worse early, so the verdict (over the survivors) can hold no rival of a full fine-tune
    pick. Each gap is then measured on the questions both answered (the first ones, the order being seeded
    and the same for every candidate), and says how many."""
    from damoc.selection.confidence import paired_bootstrap

    by_name = {_name(r): r for r in ok}
    pick = by_name.get(recommended)
    if pick is None or pick["method"] != "full" or recommended not in records:
        return None
    pairs, shared = [], {}
    for n, r in by_name.items():
        if r["model"] == pick["model"] and r["method"] != "full" and records.get(n):
            shared[n] = min(len(records[n]), len(records[recommended]))
            if shared[n] >= 2:
                pairs += paired_bootstrap({recommended: records[recommended][: shared[n]], n: records[n][: shared[n]]},
                                          seed=seed)["pairs"]
    alt = lighter_method(recommended, by_name, pairs, choice)
    return {**alt, "questions": shared[alt["candidate"]]} if alt else None


def validation(task: Task, damoc: dict, full: dict) -> dict:
    """Agreement with the full fine-tuning ranking, and what the compressed route saved."""
    from damoc.selection.validation import compare_rankings

    def scores(summary: dict, key: str) -> dict[str, float]:
        return {_name(r): r["metrics"][key] for r in summary["candidates"]
                if is_ok(r)}

    primary = task.primary_metric
    higher = higher_is_better(primary)

    def ranked_scores(summary: dict) -> dict[str, float]:
        ok = [r for r in summary["candidates"] if is_ok(r)]
        return {_name(r): -r["rank"] for r in ok}  # ties broken by bits per byte

    out = {"by_rank": compare_rankings(ranked_scores(damoc), ranked_scores(full), higher_is_better=True),
           "by_primary_metric": compare_rankings(scores(damoc, primary), scores(full, primary), higher),
           "by_bpb": compare_rankings(scores(damoc, "answer_bpb"), scores(full, "answer_bpb"), False)}
    true = scores(full, primary)
    # the pick is the verdict's recommendation (the cheapest of its tie set), not always the ranking's first
    pick = (damoc.get("verdict") or {}).get("recommended")
    chosen = out["pick"] = pick if pick in true else out["by_rank"]["chosen"]
    best = max(true.values()) if higher else min(true.values())
    out["regret"] = abs(best - true[chosen])
    full_ok = [r for r in full["candidates"] if is_ok(r)]
    cost = damoc["cost"]
    full_train = sum(r["train_seconds"] for r in full_ok)
    damoc_train = damoc["seconds"]["data_stage"] + cost["train_seconds"] + cost["prune_seconds"]
    out["speedup_wall"] = full_train / damoc_train if damoc_train else None
    out["speedup_wall_note"] = ("full fine-tuning seconds / (data filtering + compression + pruning + "
                                "compressed training seconds); evaluation, the same on both sides, left out")
    full_flops = sum(r["train_flops"] for r in full_ok)
    damoc_flops = cost["train_flops"]
    overhead_flops = damoc["data"].get("forward_flops", 0.0) + cost["prune_flops"]
    out["speedup_flops_training_only"] = full_flops / damoc_flops if damoc_flops else None
    out["speedup_flops"] = full_flops / (damoc_flops + overhead_flops) if damoc_flops else None
    # The whole bill: both routes' evaluations (damoc's pruned candidates and its zero-shot pass)
    full_eval = _sum_known(r.get("eval_flops") for r in full_ok)
    damoc_eval = cost.get("eval_flops")
    if full_eval is not None and damoc_eval is not None and damoc_flops:
        damoc_eval += cost.get("zero_shot_eval_flops") or 0.0
        out["speedup_flops_with_evaluation"] = ((full_flops + full_eval)
                                                / (damoc_flops + overhead_flops + damoc_eval))
    out["speedup_flops_note"] = ("full fine-tuning FLOPs / (compressed training + the filter's embedding or "
                                 "scoring passes + token scoring, BERTScore and rewriting + layer-similarity "
                                 "passes, each forward pass 2 x matmul parameters x tokens)")
    return out


def add_zero_shot(summary: dict, zero: dict, ranked: list[dict] | None) -> None:
    """The zero-shot pass (selection/zero_shot.py) into a run's summary: its ranking, where the run's
    ranking disagrees with it (`ranked`: the run's candidates; None for the zero-shot strategy itself),
    and its cost, counted in the run's."""
    from damoc.selection.zero_shot import disagreements

    section = {k: zero[k] for k in ("note", "ranking_models", "metrics", "failed", "cost")}
    if ranked is not None:
        section["comparison"] = disagreements(zero, ranked)
    summary["zero_shot"] = section
    summary["cost"].update({"zero_shot_eval_seconds": zero["cost"]["eval_seconds"],
                            "zero_shot_eval_flops": zero["cost"]["eval_flops"]})


def add_validation(summary: dict, config: SelectConfig, task: Task, full: dict, full_folder: Path) -> None:
    """`--validate`: the run's ranking against full fine-tuning's (`full`, in `full_folder`): agreement,
    the truth's tie set, the pick judged against it, and what the compressed route saved."""
    from damoc.selection.confidence import tie_set
    from damoc.selection.validation import judge

    both = {_name(r) for r in summary["candidates"] if is_ok(r)} & {_name(r) for r in full["candidates"] if is_ok(r)}
    if len(both) < 2:  # nothing to compare: say so rather than fail the run after all that work
        summary["validation_skipped"] = (f"{len(both)} candidate(s) finished on both routes; comparing rankings "
                                         "needs two (see each candidate's error)")
        return
    summary["validation"] = validation(task, summary, full)
    slugs = {c.name: c.slug for c in config.candidates}
    preds = predictions({_name(r): full_folder / "candidates" / slugs[_name(r)]
                         for r in full["candidates"] if is_ok(r)})
    if len(preds) >= 2:
        truth = tie_set(preds, choice=task.is_choice, seed=config.seed)
        summary["validation"]["full_confidence"] = {k: truth[k] for k in ("prob_best", "pairs", "samples")
                                                    if k in truth}
        summary["validation"]["truth_tie_set"] = truth["tie_set"]
        cheap = {_name(r): r["rank"] for r in summary["candidates"] if is_ok(r) and _name(r) in preds}
        if cheap:
            pick = summary["validation"]["pick"]
            summary["validation"]["judged"] = judge(cheap, truth, task.is_choice, pick if pick in cheap else None)


def _sum_known(values) -> float | None:
    """The sum, or None when any value is missing (a figure older runs did not record)."""
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


def prune_flops(runs: list[dict]) -> float:
    """The similarity passes' FLOPs: every pass a run measured, and once each plan it only replayed (a
    plan cached by an earlier run keeps what it cost). The candidates of one model share a plan
    (runner.pruner); runs from before plans were shared count each."""
    measured: set[str] = set()
    replayed: dict[str, float] = {}
    total = 0.0
    for r in runs:
        p = r.get("prune") or {}
        if "plan" not in p or not p.get("plan_reused"):
            total += p.get("forward_flops", 0.0)
            measured.add(p.get("plan", ""))
        else:
            replayed.setdefault(p["plan"], p.get("forward_flops", 0.0))
    return total + sum(f for plan, f in replayed.items() if plan not in measured)
