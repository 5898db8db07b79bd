"""bench/paser.py's rows: the plan (which method, budget and seed run; issue 30's row specs), each
row's name and folder, its line in the result file, and which result file it goes to.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from _common import RESULTS
from _paser_report import DEFAULT_LR

METHODS = ("paser", "random", "ifd", "length")
# PASER's parts one at a time (issue 30): the paser method with RecoverConfig's part settings.
VARIANTS = {
    "paser-clusters-only": {"cluster_budget": "size", "within_cluster": "random", "concept_graph": False},
    "paser-degradation-budget-only": {"within_cluster": "random", "concept_graph": False},
    "paser-no-concept-graph": {"concept_graph": False},
}
PARTS_PLAN = ("random", "paser", *VARIANTS)


@dataclass(frozen=True)
class Row:
    """One recovery run: `budget` a share (1.0: the whole pool) or, with `tokens`, answer tokens."""

    method: str
    budget: float
    seed: int = 0
    tokens: bool = False
    targets: str = "data"  # RecoverConfig.targets: data, self or distill

    @property
    def extended(self) -> bool:
        """A row of issue 30's design (recover-methods.json), not of paser-recover.json's."""
        return self.tokens or self.targets != "data" or self.method in VARIANTS


TARGET_SUFFIXES = {"+self": "self", "+distill": "distill"}
TARGET_LABELS = {"data": "", "self": " (self targets)", "distill": " (distilled)"}


def parse_row(spec: str, targets: str) -> Row:
    """METHOD[+self|+distill]:BUDGET[:SEED]; BUDGET a share, 1.0 or Nt (N answer tokens)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise SystemExit(f"--rows {spec}: write METHOD[+self|+distill]:BUDGET[:SEED]")
    method, budget = parts[0], parts[1]
    method, plus, suffix = method.partition("+")
    if plus and plus + suffix not in TARGET_SUFFIXES:
        raise SystemExit(f"--rows {spec}: unknown targets +{suffix}; known: {', '.join(TARGET_SUFFIXES)}")
    own = TARGET_SUFFIXES.get(plus + suffix)
    if method not in (*METHODS, *VARIANTS):
        raise SystemExit(f"--rows {spec}: unknown method {method!r}; known: {', '.join((*METHODS, *VARIANTS))}")
    tokens = budget.endswith("t")
    value = float(budget.removesuffix("t"))
    if value <= 0 or (tokens and value != int(value)) or (not tokens and value > 1):
        raise SystemExit(f"--rows {spec}: the budget is a share in (0, 1], 1.0 or N answer tokens (e.g. 2300t)")
    return Row(method, value, int(parts[2]) if len(parts) == 3 else 0, tokens, own or targets)


def default_plan(args: argparse.Namespace) -> list[Row]:
    """10% with three seeds first (the paired comparison), then 20% and the whole pool with one;
    ordered so that a stopped run has whole seeds. With --budget-tokens: random, PASER and PASER's
    parts at that many answer tokens, three seeds."""
    own = args.targets
    if args.budget_tokens:
        return [Row(m, float(args.budget_tokens), seed, True, own) for seed in (0, 1, 2) for m in PARTS_PLAN]
    plan = [Row(m, 0.1, seed, targets=own) for seed in (0, 1, 2) for m in METHODS]
    return plan + [Row(m, 0.2, 0, targets=own) for m in METHODS] + [Row("random", 1.0, 0, targets=own)]


def label_of(method: str, budget: float, args: argparse.Namespace, row: Row | None = None) -> str:
    """A row's name: PASER with a cheaper degradation estimate says which; so do self targets and
    another rate (last). A budget in answer tokens is in the row's `budget` and `budget_by`."""
    rate = f" (lr {args.lr:g})" if args.lr != DEFAULT_LR else ""
    own = TARGET_LABELS[row.targets] if row is not None else ""
    if budget == 1.0 and not (row is not None and row.tokens):
        return "whole pool" + own + rate
    cheaper = ([f"last {args.jsd_prompt_tokens} prompt tokens"] if args.jsd_prompt_tokens else []) + (
        [f"{args.jsd_sample:g} of each cluster"] if args.jsd_sample else [])
    paser = method == "paser" or method in VARIANTS
    return (f"{method} ({', '.join(cheaper)})" if paser and cheaper else method) + own + rate


def slug(label: str, budget: float, seed: int) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in f"{label}-{budget}-seed{seed}")


def run_record(label: str, budget: float, seed: int, s: dict, name: str, cold: bool,
               items_dir: str = "paser-recover") -> dict:
    """One recovery run's line in paser-recover.json (or the --results file), from `run_recover`'s summary."""
    rec = s["recovery"]["recovered"]
    extra = {}
    if "budget_by" in s:  # the fields of issue 30's recovery (answer tokens, self targets, per-sample NLL)
        means = rec["answer_nll_means"]
        extra = {"budget_by": s["budget_by"], "answer_tokens": s["answer_tokens"], "targets": s["targets"],
                 "trained": s["trained"], "trained_answer_tokens": s["trained_answer_tokens"],
                 "self_targets": s.get("self_targets"), "parts": s.get("parts"),
                 **{k: s["recovery"].get(k) for k in ("distill_weight", "teacher_flops")},
                 "answer_nll_sample": means["per_sample"]["nll"], "answer_nll_sample_se": means["per_sample"]["nll_se"]}
    return {"method": label, "budget": budget, "seed": seed, "items": f"{items_dir}/{name}",
            "selected": s["selected"], **extra, "answer_nll": rec["answer_nll"]["all"]["nll"],
            "answer_nll_se": rec["answer_nll"]["all"]["nll_se"],
            "answer_nll_by_source": {k: v["nll"] for k, v in rec["answer_nll"].items() if k != "all"},
            **{k: rec[k] for k in ("external_ppl", "external_ppl_se", "avg_accuracy", "avg_accuracy_se", "accuracy")},
            "heldout_ppl_whole_samples": rec["ppl"], "select_seconds": s["select_seconds"], "select_cold": cold,
            "seconds_by_stage": s.get("seconds"), "train_seconds": s["recovery"]["train_seconds"],
            **{k: s.get(k) for k in ("jsd_cached", "clusters", "graph_components", "rejected_by_concept_graph",
                                     "taken_despite_concept_graph", "share_rejected_by_concept_graph")},
            "selected_by_source": s["selected_by_source"], "load": os.getloadavg()}


def results_file(args: argparse.Namespace, plan: list[Row]) -> Path:
    """paser-recover.json for its own design; recover-methods.json once a row is issue 30's."""
    if args.results:
        return RESULTS / f"{args.results.removesuffix('.json')}.json"
    extended = [r for r in plan if r.extended]
    if extended and len(extended) < len(plan):
        raise SystemExit("--rows mixes paser-recover.json's rows with rows at answer tokens, self targets or PASER's "
                         "parts (recover-methods.json): run them apart, or name one --results file")
    return RESULTS / ("recover-methods.json" if extended else "paser-recover.json")
