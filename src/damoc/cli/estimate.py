"""`damoc estimate`: what a `select` run and the full fine-tuning it replaces would cost, priced
from the candidates' configs and the data's token lengths (no weights loaded)."""

from __future__ import annotations

import argparse

from damoc.cli.common import add_config_flag, add_task_flags, run_file
from damoc.cli.options import add_sections, config_from
from damoc.cli.printing import print_estimate
from damoc.cli.runs import add_candidate_flags, candidates, select_sections

HELP = {"estimate": "predict what `select` and full fine-tuning of every candidate would cost (FLOPs, hours), "
                    "without running either"}


def add_estimate(sub) -> None:
    p = sub.add_parser(
        "estimate", help=HELP["estimate"],
        description="Prices a `select` run and the full fine-tuning it replaces, from the candidates' configs (a "
                    "local folder, a bundled model, or damoc's catalog of hub models: 7-9B Llama, Mistral, Qwen, "
                    "Gemma, Yi, InternLM, DeepSeek) and the training data's token lengths; loads no weights. "
                    "Takes the same settings as `select` (flags > --config RUN.yaml > defaults). What is only "
                    "known after running is predicted from the settings: the filter keeps --filter.rate of "
                    "examples of average length, compression keeps --compress.ratio of each context, pruning "
                    "removes its cap of --prune.max-fraction of the layers.")
    add_config_flag(p, "SelectConfig's fields")
    add_candidate_flags(p, base=True)
    add_task_flags(p)
    p.add_argument("--examples", type=int, metavar="N",
                   help="price N training examples of the same lengths as the data's (default: the data's own "
                        "count, or --train-limit)")
    p.add_argument("--throughput", type=float, metavar="FLOP/S",
                   help="training FLOP/s your device achieves (e.g. `train_flops / train_seconds` of an earlier "
                        "run's results.json), to print hours beside FLOPs")
    p.add_argument("--json", action="store_true", help="print the estimate as JSON")
    add_sections(p, select_sections(launch=False))
    p.set_defaults(func=cmd_estimate)


def cmd_estimate(args: argparse.Namespace) -> None:
    from damoc.errors import DamocError
    from damoc.selection.config import SelectConfig
    from damoc.selection.estimate import estimate
    from damoc.selection.runner import select_examples
    from damoc.tasks import load_task

    config = config_from(args, SelectConfig, run_file(args), candidates(args))
    if args.examples is not None and args.examples < 1:
        raise DamocError(f"--examples {args.examples}: give a count of at least 1")
    task = load_task(config.task, config.data)
    train, test = select_examples(task, config, quiet=True)
    result = estimate(config, train, args.examples, args.throughput, test=test)
    if args.json:
        from damoc.io import json_text

        print(json_text(result))
    else:
        print_estimate(result)
