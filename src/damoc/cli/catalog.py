"""`damoc models ...` and `damoc tasks ...`: what is bundled, and what a run would use."""

from __future__ import annotations

import argparse
import json

from damoc.cli.common import add_task_flags, task_source
from damoc.cli.options import DEST, Section, add_sections, value
from damoc.cli.printing import table

HELP = {"models": "bundled and cached models", "tasks": "bundled tasks"}


def add_models(sub) -> None:
    models = sub.add_parser("models", help=HELP["models"]).add_subparsers(dest="sub", required=True)
    p = models.add_parser("list", help="show bundled models and what is prepared in the cache")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("prepare", help="convert a bundled model once (GGUF to safetensors); print its folder")
    p.add_argument("spec", help="e.g. bundled:smollm2-135m-instruct")
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(func=cmd_models_prepare)


def cmd_models_list(args: argparse.Namespace) -> None:
    from damoc.models.catalog import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table(["spec", "status", "licence", "description"], rows)


def cmd_models_prepare(args: argparse.Namespace) -> None:
    from damoc.models import resolve_spec
    from damoc.models.bundled import BUNDLED_PREFIX, prepare_bundled

    print(prepare_bundled(args.spec, force=args.force) if args.spec.startswith(BUNDLED_PREFIX)
          else resolve_spec(args.spec))


def add_tasks(sub) -> None:
    from damoc.selection.config import BaselineConfig

    tasks = sub.add_parser("tasks", help=HELP["tasks"]).add_subparsers(dest="sub", required=True)
    p = tasks.add_parser("list", help="bundled tasks with their sizes and metric")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_list)
    p = tasks.add_parser("show", help="a task's size, split, answer counts and an example prompt; with "
                                      "--train-limit/--test-limit, what a run with them would use")
    p.add_argument("name", nargs="?", help="bundled task name")
    add_task_flags(p)
    add_sections(p, [Section(BaselineConfig, only={"train_limit", "test_limit", "seed"}, title="as a run would")])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_show)


def cmd_tasks_list(args: argparse.Namespace) -> None:
    from damoc.tasks import BUNDLED_TASKS, load_task

    rows = [load_task(name).summary() for name in BUNDLED_TASKS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table(["name", "format", "train", "test", "metric", "description"], rows)


def cmd_tasks_show(args: argparse.Namespace) -> None:
    from damoc.selection.config import BaselineConfig
    from damoc.tasks import continuation
    from damoc.tasks.base import label_counts, label_warnings
    from damoc.tasks.sampling import sample_train

    if args.name and not hasattr(args, DEST + "data.path"):
        setattr(args, DEST + "task", args.name)
    task = task_source(args).load()
    info = task.summary()
    train_limit, test_limit = value(args, BaselineConfig, "train_limit"), value(args, BaselineConfig, "test_limit")
    # What a run with these limits would use: the seeded training sample, the test split's first N.
    train = sample_train(task.train, train_limit, value(args, BaselineConfig, "seed"))
    test = task.test[:test_limit] if test_limit else task.test
    if train_limit or test_limit:
        info |= {"train_used": len(train), "test_used": len(test)}
        if task.is_choice:
            info |= {"train_used_labels": label_counts(train, task.format),
                     "test_used_labels": label_counts(test, task.format)}
    info["label_warnings"] = label_warnings(train, test, task.format)
    ex = task.train[0]
    info["example_prompt"] = ex.prompt
    info["example_answer"] = continuation(ex)
    if ex.options:
        info["options"] = list(ex.options)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for k in ("name", "format", "train", "test", "train_used", "test_used", "train_labels", "test_labels",
              "train_used_labels", "test_used_labels", "metric", "description", "source", "licence"):
        if k in info:
            print(f"{k:>17}: {info[k]}")
    for line in info["label_warnings"]:
        print(f"          warning: {line}")
    print(f"\n--- example prompt (train[0]) ---\n{ex.prompt}\n--- answer ---\n{continuation(ex)!r}")
    if ex.options:
        print(f"--- options ---\n{list(ex.options)}")
