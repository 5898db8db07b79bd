"""Flags generated from the pydantic configs: a setting, its default, bounds and help live in one
place (the config's field), so the command line, run files and the library agree.

A generated flag has no default of its own (argparse.SUPPRESS): `config_from` starts from the run
file (or nothing), writes the flags actually given over it and validates: flags > run file >
defaults. Flag names follow field names (`max_seq_len` -> `--max-seq-len`); a section's fields
carry its prefix where two sections share a name (`--prune.threshold`). jsonargparse,
pydantic-settings and tyro were tried first (see the README's architecture notes).
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from damoc.errors import DamocError
from damoc.registry import LazyChoices
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
            kind = _kind(info, flag_name(section, name))
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
        _put(raw, path.split("."), value)
    for dest, value in sorted(vars(args).items()):
        path = dest[len(DEST):].split(".") if dest.startswith(DEST) else None
        if path and path[0] in model.model_fields:
            _put(raw, path, value)
    check_numbers(raw, model)
    return model(**raw)


def given(args: argparse.Namespace, path: str) -> bool:
    return hasattr(args, DEST + path)


def value(args: argparse.Namespace, model: type[BaseModel], name: str):
    """A top-level field's flag value, or the model's default where the flag was not given."""
    if given(args, name):
        return getattr(args, DEST + name)
    return model.model_fields[name].get_default(call_default_factory=True)


def _put(raw: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(raw.get(key), dict):  # a section turned off in the run file comes back on
            raw[key] = {}
        raw = raw[key]
    raw[keys[-1]] = value


def _is_section(annotation: Any) -> bool:
    options = [a for a in (get_args(annotation) if _is_union(annotation) else [annotation]) if a is not type(None)]
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in options) or any(
        get_origin(a) is list and get_args(a) and isinstance(get_args(a)[0], type)
        and issubclass(get_args(a)[0], BaseModel) for a in options)


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (typing.Union, types.UnionType)


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


def _kind(info, flag: str = "") -> dict:
    """argparse keywords for a field's type: choices, a converter, a switch, a list or a mapping.
    A number must be finite: `inf` and `nan` parse as floats, and `gt=0` lets inf through."""
    annotation = info.annotation
    optional = _is_union(annotation) and type(None) in get_args(annotation)
    options = [a for a in (get_args(annotation) if _is_union(annotation) else [annotation]) if a is not type(None)]
    registry = (info.json_schema_extra or {}).get("registry")
    if registry:
        return {"choices": LazyChoices(registry), "metavar": "NAME"}
    if options == [bool]:
        return {"action": argparse.BooleanOptionalAction}
    if len(options) == 1 and get_origin(options[0]) is Literal:
        choices = list(get_args(options[0]))
        return {"choices": choices + (["none"] if optional else []),
                "type": _none_or(str) if optional else str, "metavar": "{" + ",".join(map(str, choices)) + "}"}
    if options == [dict]:
        return {"action": _KeyValue, "metavar": "KEY=VALUE"}
    if len(options) == 1 and get_origin(options[0]) is list:
        item = get_args(options[0])[0] if get_args(options[0]) else str
        return {"nargs": "+", "type": _finite(flag) if item is float else item}
    if len(options) == 1 and get_origin(options[0]) is dict:
        return {"action": _KeyValue, "metavar": "KEY=VALUE"}
    if len(options) == 1 and options[0] in (int, float, str, Path):
        convert = _finite(flag) if options[0] is float else options[0]
        return {"type": _none_or(convert) if optional else convert}
    if set(options) == {int, str}:
        return {"type": _number_or_text}
    raise TypeError(f"no flag for a field of type {annotation!r}")  # caught by the test of every command


def _none_or(convert):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else convert(text)
    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _finite(flag: str):
    """A float flag's converter: a one-line refusal (naming the flag) of inf, nan and non-numbers."""
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise DamocError(f"{flag} {text!r}: not a number") from None
        if not math.isfinite(number):
            raise DamocError(f"{flag} {text}: give a finite number")
        return number
    parse.__name__ = "float"
    return parse


def _number_or_text(value: str):
    """An int, a finite float, or the text as given (`inf`, `nan` stay text: no setting takes them)."""
    for cast in (int, float):
        try:
            number = cast(value)
        except ValueError:
            continue
        if isinstance(number, int) or math.isfinite(number):
            return number
    return value


class _KeyValue(argparse.Action):
    """KEY=VALUE, repeatable, into a mapping (numbers parsed as numbers)."""

    def __call__(self, parser, namespace, value, option_string=None):
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise DamocError(f"{option_string} {value!r}: write it as KEY=VALUE")
        mapping = dict(getattr(namespace, self.dest, None) or {})
        mapping[key.strip()] = _number_or_text(text.strip())
        setattr(namespace, self.dest, mapping)
