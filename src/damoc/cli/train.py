"""`damoc evaluate` and `damoc finetune`: one model on one task."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from damoc.cli.common import add_config_flag, add_task_flags, load_sections, run_file
from damoc.cli.options import Section, add_sections, config_from
from damoc.finetune.methods import DEFAULT as DEFAULT_METHOD
from damoc.registry import LazyChoices


def _config(args: argparse.Namespace, method: str):
    """A one-candidate BaselineConfig: the task, limits, training and loading settings of the run."""
    from damoc.selection.config import BaselineConfig

    return config_from(args, BaselineConfig, run_file(args),
                       {"candidates": [{"model": args.model, "method": method}]})


def _sections(training: bool) -> list[Section]:
    from damoc.finetune import FinetuneConfig
    from damoc.selection.config import BaselineConfig

    top = {"test_limit", "eval_batch_size", "max_new_tokens", "generation"} | (
        {"train_limit", "seed"} if training else set())
    train = None if training else {"max_seq_len"}
    return [Section(BaselineConfig, only=top, title="run"),
            Section(FinetuneConfig, path="finetune", exclude={"method", "method_options", "seed"}, only=train,
                    title="training" if training else "length"),
            *load_sections()]


HELP = {"evaluate": "evaluate a model on a task's test split (no training)",
        "finetune": "fine-tune one model on a task, then evaluate it"}


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help=HELP["evaluate"])
    p.add_argument("--model", required=True, help="bundled:NAME, a local folder or a hub id")
    add_config_flag(p, "BaselineConfig's fields (task, limits, loading)")
    add_task_flags(p)
    add_sections(p, _sections(training=False))
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from damoc.evaluation import evaluate
    from damoc.models import load_model, load_tokenizer
    from damoc.selection.runner import load_options

    config = _config(args, "lora")
    task = config.load()
    opts = load_options(config)
    tok, model = load_tokenizer(args.model, opts), load_model(args.model, opts)
    test = task.test[: config.test_limit] if config.test_limit else task.test
    r = evaluate(model, tok, task, examples=test, max_len=config.finetune.max_seq_len,
                 batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                 generation=config.generation, progress=True)
    print(json.dumps({"model": args.model, "task": task.name, "n": r.n, "metrics": r.metrics,
                      "eval_seconds": r.seconds, "truncated": r.truncated}, indent=2))


def add_finetune(sub) -> None:
    p = sub.add_parser("finetune", help=HELP["finetune"])
    p.add_argument("--model", required=True, help="bundled:NAME, a local folder or a hub id")
    p.add_argument("--method", choices=LazyChoices("damoc.finetune.methods:METHODS"), default=DEFAULT_METHOD,
                   metavar="METHOD", help="%(choices)s (default %(default)s)")
    p.add_argument("--out", type=Path, help="save the fine-tuned model (safetensors) and stats in this new folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if damoc made it earlier (never a file or folder damoc did not write)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation on the test split")
    add_config_flag(p, "BaselineConfig's fields (task, limits, training, loading)")
    add_task_flags(p)
    add_sections(p, _sections(training=True))
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> None:
    from damoc.evaluation import evaluate
    from damoc.finetune import finetune
    from damoc.inputs import check_output_names
    from damoc.io import check_output_folder
    from damoc.models import load_model, load_tokenizer
    from damoc.selection.runner import load_options
    from damoc.tasks.sampling import sample_train

    if args.out:
        check_output_names(args.out)
        check_output_folder(args.out, args.overwrite)
    config = _config(args, args.method)
    task = config.load()
    train_config = config.finetune.model_copy(update={"method": args.method})
    train = sample_train(task.train, config.train_limit, config.seed)  # bad limits fail before loading
    opts = load_options(config)
    tok, model = load_tokenizer(args.model, opts), load_model(args.model, opts)
    model, stats = finetune(model, tok, train, train_config, progress=True)
    report = {"model": args.model, "task": task.name, "config": train_config.model_dump(mode="json"),
              "train": stats.to_dict()}
    if not args.no_eval:
        test = task.test[: config.test_limit] if config.test_limit else task.test
        r = evaluate(model, tok, task, examples=test, max_len=train_config.max_seq_len,
                     batch_size=config.eval_batch_size, max_new_tokens=config.max_new_tokens,
                     generation=config.generation, progress=True)
        report |= {"metrics": r.metrics, "eval_seconds": r.seconds}
    if args.out:
        from damoc.finetune.save import save_finetuned

        save_finetuned(model, tok, args.out, report, overwrite=args.overwrite)
        print(f"saved to {args.out}", file=sys.stderr)
    print(json.dumps(report, indent=2, default=str))
