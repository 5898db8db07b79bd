"""`damoc select` and `damoc baseline`: rank candidates, by compressed or by full fine-tuning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damoc.cli.common import add_config_flag, add_task_flags, fail_if_none_ranked, interrupted, load_sections, run_file
from damoc.cli.options import Section, add_sections, config_from
from damoc.cli.printing import print_ranking, print_select, progress_printer
from damoc.finetune.methods import DEFAULT as DEFAULT_METHOD
from damoc.registry import LazyChoices

HELP = {"select": "DaMoC: rank candidates by training compressed versions on compressed data",
        "baseline": "fine-tune every candidate on the full data, evaluate, rank "
                    "(the ground truth; resumes when re-run)"}

# Set per candidate (--methods) or by the run: not flags of their own.
TRAINING_EXCLUDED = {"method", "method_options", "seed"}


def training_sections(model) -> list[Section]:
    """The run's top-level settings and its training settings (no prefix: the main section)."""
    from damoc.finetune import FinetuneConfig

    top = {"allow_pickle", "trust_remote_code", "dtype", "quantization", "task", "candidates"}
    return [Section(model, exclude=top | {"halving", "calibration_samples"}, title="run"),
            Section(FinetuneConfig, path="finetune", exclude=TRAINING_EXCLUDED, title="training"),
            *load_sections()]


def add_candidate_flags(p: argparse.ArgumentParser, base: bool = False) -> None:
    g = p.add_argument_group("candidates (each model with each method)")
    g.add_argument("--models", nargs="+", metavar="SPEC", help="bundled:NAME, a local folder or a hub id")
    g.add_argument("--methods", nargs="+", choices=LazyChoices("damoc.finetune.methods:METHODS"), default=None,
                   metavar="METHOD", help=f"%(choices)s (default {DEFAULT_METHOD})")
    if base:
        g.add_argument("--base", help="pre-trained weights of the models, for the sparse layer merge "
                                      "(one model family)")


def candidates(args: argparse.Namespace) -> dict:
    """The candidates the flags name, as run-file settings (flags win over the run file's)."""
    if not args.models:
        if args.methods:
            from damoc.errors import DamocError

            raise DamocError("--methods needs --models")
        return {}
    methods = args.methods or [DEFAULT_METHOD]
    base = getattr(args, "base", None)
    return {"candidates": [{"model": m, "method": meth, "base": base} for m in args.models for meth in methods]}


def select_sections(launch: bool = True) -> list[Section]:
    """The settings of a `select` run (shared with `damoc estimate`, which prices one)."""
    from damoc.layers import PruneConfig
    from damoc.selection.adaptive import AdaptiveSettings
    from damoc.selection.config import EvalSettings, FilterSettings, SelectConfig
    from damoc.selection.launch import LaunchSettings
    from damoc.tokens import CompressConfig

    return [
        *training_sections(SelectConfig),
        Section(SelectConfig, only={"halving", "calibration_samples"}, title="compression"),
        Section(FilterSettings, path="filter", prefix="filter.", optional=True, title="data filtering"),
        Section(CompressConfig, path="compress", prefix="compress.", optional=True, title="token compression"),
        Section(PruneConfig, path="prune", prefix="prune.", optional=True, title="layer pruning"),
        Section(EvalSettings, path="eval", prefix="eval.", title="evaluation of the compressed candidates"),
        Section(AdaptiveSettings, path="adaptive", prefix="adaptive.",
                title="adaptive selection (--strategy adaptive)"),
        *([Section(LaunchSettings, title="where candidates run (not part of the results: run file key `launch`)")]
          if launch else []),
    ]


def add_select(sub) -> None:
    p = sub.add_parser(
        "select", help=HELP["select"],
        description="Filters the training data (GraphCut 10%), compresses its contexts (ratio 0.5, rescaled "
                    "BERTScore >= 0.7, no LLM rewriting unless --compress.rewriter), prunes each candidate's most "
                    "redundant layers (similarity >= 0.85, at most 25%), trains each for one epoch (at least 25 "
                    "optimizer steps: with few examples the batch shrinks) and evaluates it on growing batches of "
                    "the test split until the pick is decided or evaluation would pass half the training's FLOPs "
                    "(--eval.*). When the leaders cannot be told apart it says so and recommends the cheapest of them. "
                    "Every stage is cached in --out: re-running resumes. --validate also runs full fine-tuning and "
                    "reports how well the rankings agree and the time saved. Settings: flags > --config RUN.yaml "
                    "(the fields of damoc.selection.config.SelectConfig) > defaults.")
    add_config_flag(p, "SelectConfig's fields")
    add_candidate_flags(p, base=True)
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--validate", action="store_true",
                   help="also fine-tune every candidate on the full data and compare the rankings")
    add_task_flags(p)
    add_sections(p, select_sections())
    p.set_defaults(func=cmd_select)


def select_config(args: argparse.Namespace):
    """SelectConfig and LaunchSettings: flags > run file > defaults."""
    from damoc.selection.config import SelectConfig
    from damoc.selection.launch import LaunchSettings

    raw = run_file(args)
    launch = raw.pop("launch", None) or {}
    return config_from(args, SelectConfig, raw, candidates(args)), config_from(args, LaunchSettings, launch)


def cmd_select(args: argparse.Namespace) -> None:
    from damoc.selection.pipeline import run_select

    config, launch = select_config(args)
    for line in config.unused_settings():
        print(f"damoc: note: {line}", file=sys.stderr)
    try:
        summary = run_select(config, args.out, progress=True, validate=args.validate,
                             on_event=progress_printer(len(config.candidates)), launch_settings=launch)
    except KeyboardInterrupt:
        raise interrupted(args.out) from None
    print_select(summary, args.out)
    fail_if_none_ranked(summary, args.out)


def add_baseline(sub) -> None:
    from damoc.selection.config import BaselineConfig

    p = sub.add_parser("baseline", help=HELP["baseline"],
                       description="Settings: flags > --config RUN.yaml (the fields of "
                                   "damoc.selection.config.BaselineConfig) > defaults.")
    add_config_flag(p, "BaselineConfig's fields")
    add_candidate_flags(p)
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/NAME")
    add_task_flags(p)
    add_sections(p, training_sections(BaselineConfig))
    p.set_defaults(func=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> None:
    from damoc.selection.baseline import run_baseline
    from damoc.selection.config import BaselineConfig

    config = config_from(args, BaselineConfig, run_file(args), candidates(args))
    try:
        summary = run_baseline(config, args.out, progress=True, on_event=progress_printer(len(config.candidates)))
    except KeyboardInterrupt:
        raise interrupted(args.out, "finished candidates") from None
    print_ranking(summary)
    print(f"\nresults: {Path(args.out) / 'results.json'}")
    fail_if_none_ranked(summary, args.out)
