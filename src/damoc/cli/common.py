"""What several commands share: the task flags, `--config`, the tables they print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damoc.cli.options import DEST, Section, config_from, value
from damoc.errors import AllCandidatesFailed, DamocError


class _Fields(argparse.Action):
    """--field OURS=THEIRS, repeatable, into data.fields."""

    def __call__(self, parser, namespace, value, option_string=None):
        ours, sep, theirs = value.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise DamocError(f"--field {value!r}: write it as OURS=THEIRS, e.g. label=y")
        mapping = dict(getattr(namespace, self.dest, None) or {})
        ours, theirs = ours.strip(), theirs.strip()
        if ours in mapping:  # the last would silently win
            raise DamocError(f"--field {ours} is given twice ({ours}={mapping[ours]}, then {ours}={theirs}); "
                             "give each field once")
        setattr(namespace, self.dest, {**mapping, ours: theirs})


def add_task_flags(p: argparse.ArgumentParser) -> None:
    """--task NAME, or --data FILE with its format: the fields of TaskSource and DataSpec, under the
    names users know (`--data` is data.path, `--test-data` data.test_path)."""
    from damoc.tasks import DataSpec, TaskSource
    from damoc.tasks.base import Format

    g = p.add_argument_group("task (a bundled name, or your own file)")
    fields = DataSpec.model_fields
    g.add_argument("--task", dest=DEST + "task", default=argparse.SUPPRESS, metavar="NAME",
                   help=TaskSource.model_fields["task"].description)
    g.add_argument("--data", dest=DEST + "data.path", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                   help="your data: .jsonl, .json, .csv or .parquet")
    g.add_argument("--format", dest=DEST + "data.format", choices=Format.__args__, default=argparse.SUPPRESS,
                   help="the format of --data")
    g.add_argument("--field", dest=DEST + "data.fields", action=_Fields, default=argparse.SUPPRESS,
                   metavar="OURS=THEIRS", help="map a field to a column of --data, e.g. --field label=y "
                   "(repeatable); ours: question, context, label, options, answer, instruction")
    g.add_argument("--labels", dest=DEST + "data.labels", type=lambda s: [x.strip() for x in s.split(",")],
                   default=argparse.SUPPRESS, metavar="A,B,...",
                   help=fields["labels"].description + " (comma-separated)")
    g.add_argument("--test-data", dest=DEST + "data.test_path", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                   help=fields["test_path"].description)
    g.add_argument("--test-fraction", dest=DEST + "data.test_fraction", type=float, default=argparse.SUPPRESS,
                   metavar="SHARE",
                   help=f"{fields['test_fraction'].description} (default {fields['test_fraction'].default})")


def task_source(args: argparse.Namespace):
    """The task the flags name (for commands whose config holds no task)."""
    from damoc.tasks import TaskSource

    return config_from(args, TaskSource)


def add_config_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", type=Path, metavar="RUN.yaml",
                   help=f"a YAML run file holding {what}; flags given beside it win over its values")


def run_file(args: argparse.Namespace) -> dict:
    if getattr(args, "config", None) is None:
        return {}
    from damoc.runfile import read_run_file

    return read_run_file(args.config)


LOAD_FIELDS = ("allow_pickle", "trust_remote_code", "dtype", "quantization")


def load_sections() -> list[Section]:
    from damoc.selection.config import BaselineConfig

    return [Section(BaselineConfig, only=set(LOAD_FIELDS), title="loading models")]


def load_options_from_flags(args: argparse.Namespace):
    """LoadOptions from the loading flags alone (commands whose config holds none)."""
    from damoc.models import LoadOptions
    from damoc.selection.config import BaselineConfig

    return LoadOptions(**{k: value(args, BaselineConfig, k) for k in LOAD_FIELDS})


def interrupted(out: Path, what: str = "finished stages") -> SystemExit:
    print(f"\ninterrupted: {what} are kept in {out}; run the same command again to resume", file=sys.stderr)
    return SystemExit(130)


def fail_if_none_ranked(summary: dict, out: Path) -> None:
    from damoc.selection.candidate import ranked

    if not ranked(summary):
        raise AllCandidatesFailed(f"every candidate failed (errors above and in {Path(out) / 'results.json'}); "
                                  "nothing was ranked")
