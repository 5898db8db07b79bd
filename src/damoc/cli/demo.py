"""`damoc demo` (select --validate on the shipped demo config) and `damoc configs`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damoc.registry import LazyChoices

DEMO = "demo"
HELP = {"demo": "select --validate on NQ-open with the 4 bundled candidates (about 20 minutes on 2 CPU cores)",
        "configs": "run files shipped with damoc (--config)"}


def add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help=HELP["demo"],
        description="Runs `damoc select --config demo.yaml --validate` (the shipped run file: `damoc configs show "
                    "demo`): the bundled NQ-open task (short open-domain questions, ranked by answer bits per "
                    "byte) with {smollm2-135m-instruct, gemma3-270m} x {lora, full}; the compressed ranking with "
                    "its tie set and recommendation, full fine-tuning of every candidate on the sampled training "
                    "questions, and how well the two agree (is the pick in full fine-tuning's tie set?). Prints "
                    "the command it runs; re-running resumes.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default %(default)s)")
    p.add_argument("--train-limit", type=int, help="training questions (default: the run file's)")
    p.add_argument("--test-limit", type=int, help="test questions (default: the run file's)")
    p.add_argument("--launcher", choices=LazyChoices("damoc.selection.launch:LAUNCHERS"), metavar="LAUNCHER",
                   help="%(choices)s (default: select's)")
    p.set_defaults(func=cmd_demo)


def demo_run_file() -> Path:
    from damoc.configs import shipped_config

    return shipped_config(DEMO)


def cmd_demo(args: argparse.Namespace) -> None:
    from damoc.cli import build_parser
    from damoc.inputs import check_output_names

    check_output_names(args.out)
    argv = ["select", "--config", str(demo_run_file()), "--validate", "--out", str(args.out)]
    for flag, value in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit),
                        ("--launcher", args.launcher)):
        if value is not None:
            argv += [flag, str(value)]
    print("damoc " + " ".join(argv), file=sys.stderr)
    select = build_parser().parse_args(argv)
    select.func(select)


def add_configs(sub) -> None:
    configs = sub.add_parser("configs", help=HELP["configs"]).add_subparsers(
        dest="sub", required=True)
    p = configs.add_parser("list", help="each shipped run file with the command that runs it")
    p.set_defaults(func=cmd_configs_list)
    p = configs.add_parser("show", help="print a shipped run file (copy it to change it)")
    p.add_argument("name")
    p.set_defaults(func=cmd_configs_show)


def cmd_configs_list(args: argparse.Namespace) -> None:
    from damoc.configs import first_line, shipped

    for name, path in shipped().items():
        print(f"{name:<24} {first_line(path)}\n{'':<24} {path}")


def cmd_configs_show(args: argparse.Namespace) -> None:
    from damoc.configs import shipped_config

    print(shipped_config(args.name).read_text(encoding="utf-8"), end="")
