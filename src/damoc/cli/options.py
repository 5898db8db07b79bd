"""Flags generated from the pydantic configs: a setting, its default, bounds and help live in one
place (the config's field), so the command line, run files and the library agree.

A generated flag has no default of its own (argparse.SUPPRESS): `config_from` starts from the run
file (or nothing), writes the flags actually given over it and validates: flags > run file >
defaults. Flag names follow field names (`max_seq_len` -> `--max-seq-len`); a section's fields
carry its prefix where two sections share a name (`--prune.threshold`). jsonargparse,
pydantic-settings and tyro were tried first (see docs/architecture.md). A field's type becomes
argparse keywords in flagtypes.py.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from damoc.cli.flagtypes import flag_kind, is_union
from damoc.runfile import check_numbers

DEST = "config:"  # every generated flag's dest starts so, followed by the field's dotted path


@dataclass
class Section:
    """The fields of `model`, found at `path` in the command's config ("" for the top level), as
    flags named `--{prefix}{field-name}`; `optional` adds `--no-{path}` (the section off)."""

    model: type[BaseModel]
    path: str = ""
    prefix: str = ""
    exclude: set[str] = field(default_factory=set)
    only: set[str] | None = None
    title: str | None = None
    optional: bool = False


def flag_name(section: Section, name: str) -> str:
    return "--" + section.prefix + name.replace("_", "-")


def add_sections(parser: argparse.ArgumentParser, sections: list[Section]) -> None:
    for section in sections:
        group = parser.add_argument_group(section.title) if section.title else parser
        if section.optional:
            group.add_argument(f"--no-{section.path}", dest=DEST + section.path, action="store_const", const=None,
                               default=argparse.SUPPRESS, help=f"turn the {section.path} stage off")
        for name, info in section.model.model_fields.items():
            if name in section.exclude or (section.only is not None and name not in section.only) \
                    or _is_section(info.annotation):
                continue
            dest = DEST + ".".join(p for p in (section.path, name) if p)
            kind = flag_kind(info, flag_name(section, name))
            if kind.get("action") is None:
                kind.setdefault("metavar", name.upper())
            group.add_argument(flag_name(section, name), dest=dest, default=argparse.SUPPRESS,
                               help=_help(info), **kind)


def config_from(args: argparse.Namespace, model: type[BaseModel], base: dict | None = None,
                extra: dict | None = None):
    """The config: `base` (a run file's mapping, or {}), then `extra` (compound settings the
    command built from its own flags), then every generated flag given for one of the model's
    fields (a command may also carry flags of another config, e.g. the task's); validated once."""
    raw: dict = dict(base or {})
    for path, value in (extra or {}).items():
        _put(raw, path.split("."), value, model)
    for dest, value in sorted(vars(args).items()):
        path = dest[len(DEST):].split(".") if dest.startswith(DEST) else None
        if path and path[0] in model.model_fields:
            _put(raw, path, value, model)
    check_numbers(raw, model)
    return model(**raw)


def given(args: argparse.Namespace, path: str) -> bool:
    return hasattr(args, DEST + path)


def value(args: argparse.Namespace, model: type[BaseModel], name: str):
    """A top-level field's flag value, or the model's default where the flag was not given."""
    if given(args, name):
        return getattr(args, DEST + name)
    return model.model_fields[name].get_default(call_default_factory=True)


def _put(raw: dict, keys: list[str], value: Any, model: type[BaseModel]) -> None:
    for key in keys[:-1]:
        if not isinstance(raw.get(key), dict):  # a section turned off in the run file comes back on
            raw[key] = {}
        raw = raw[key]
    old = raw.get(keys[-1])
    # a mapping flag replaces the run file's mapping (a selector's options: another method's would not
    # fit) unless its field's json_schema_extra says "flags_add" (--field names one column of data.fields)
    merge = isinstance(old, dict) and isinstance(value, dict) and _flags_add(model, keys)
    raw[keys[-1]] = {**old, **value} if merge else value


def _flags_add(model: type[BaseModel], keys: list[str]) -> bool:
    info = None
    for key in keys:
        if model is None or key not in model.model_fields:
            return False
        info = model.model_fields[key]
        model = _section_model(info.annotation)
    extra = info.json_schema_extra if info is not None else None
    return isinstance(extra, dict) and bool(extra.get("flags_add"))


def _section_model(annotation: Any) -> type[BaseModel] | None:
    options = [a for a in (get_args(annotation) if is_union(annotation) else [annotation]) if a is not type(None)]
    return next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _is_section(annotation: Any) -> bool:
    options = [a for a in (get_args(annotation) if is_union(annotation) else [annotation]) if a is not type(None)]
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in options) or any(
        get_origin(a) is list and get_args(a) and isinstance(get_args(a)[0], type)
        and issubclass(get_args(a)[0], BaseModel) for a in options)


def _help(info) -> str:
    text = info.description or ""
    default = info.get_default(call_default_factory=True)
    if "default" in text:
        pass  # the description says it
    elif default is not None and not isinstance(default, bool | dict | list):
        text += f" (default {default})"
    elif default is None:
        text += " (default: none)"
    return text.strip().replace("%", "%%")
