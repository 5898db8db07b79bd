"""The `damoc` command: parses arguments, calls the library, prints; and turns errors into exit codes
(main). One module per group of commands (COMMANDS); each adds its parsers (`add_*`) and runs them
(`cmd_*`). The settings' flags are generated from the pydantic configs (options.py); printing.py
says what commands print."""

from __future__ import annotations

import argparse
import errno
import sys

from damoc.errors import EXIT_USAGE, DamocError

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                 errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


# (command, module, adder), in the order `damoc --help` lists them.
COMMANDS = [("models", "catalog", "add_models"), ("tasks", "catalog", "add_tasks"), ("configs", "demo", "add_configs"),
            ("evaluate", "train", "add_evaluate"), ("finetune", "train", "add_finetune"),
            ("filter", "data", "add_filter"), ("compress", "data", "add_compress"), ("prune", "prune", "add_prune"),
            ("select", "runs", "add_select"), ("estimate", "estimate", "add_estimate"),
            ("recover", "recover", "add_recover"), ("demo", "demo", "add_demo"),
            ("baseline", "runs", "add_baseline"), ("predict", "predict", "add_predict")]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's flags, or (`command` given) only that command's: the others get their help
    line alone, since their flags come from configs whose modules import torch."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="damoc",
        description="Choose which LLM (and fine-tuning method) to fine-tune for a domain task. "
                    "Models are bundled:NAME, a local Hugging Face folder, or a hub id.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name, adder in COMMANDS:
        module = importlib.import_module(f"damoc.cli.{module_name}")
        if command is None or command == name:
            getattr(module, adder)(sub)
        else:
            sub.add_parser(name, help=module.HELP[name])
    return parser


def _command(argv: list[str]) -> str:
    """The command argv names (its first word), or "" when it names none yet (`damoc --help`)."""
    names = {name for name, _, _ in COMMANDS}
    return next((a for a in argv if not a.startswith("-")), "") if argv and argv[0] in names else ""


def _flag_of(name: str) -> str:
    """The flag that gives a top-level setting: its name, unless its field says otherwise (`flag`)."""
    from damoc.selection.config import SelectConfig

    field = SelectConfig.model_fields.get(name)
    extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, dict) else {}
    return extra.get("flag") or "--" + name.replace("_", "-")


def _validation_message(err: dict) -> str:
    """One pydantic error as a line; a missing setting names the flag that gives it. A rule over several settings
    (no one field to name) is the settings'; pydantic's "Value error, " before our own words is dropped."""
    where = ".".join(map(str, err["loc"])) or "settings"
    if err["type"] == "missing" and all(isinstance(x, str) for x in err["loc"]):
        flag = _flag_of(where)
        return f"{where}: required: give {flag} (or set it in a --config file)"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(_command(argv)).parse_args(argv)
        args.func(args)
    except DamocError as e:
        print(f"damoc: error: {e}", file=sys.stderr)
        return e.exit_code
    except ValidationError as e:
        msgs = "; ".join(_validation_message(err) for err in e.errors())
        print(f"damoc: error: {msgs}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only folder: one line naming the path, not a traceback
        if e.errno not in _WRITE_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"damoc: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
