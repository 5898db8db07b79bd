"""A config field's type as argparse keywords: choices from a registry or a Literal, switches,
lists, KEY=VALUE mappings, and numbers that must be finite (`inf` and `nan` parse as floats, and
pydantic's `gt=0` lets inf through), each refusal one line naming the flag."""

from __future__ import annotations

import argparse
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from damoc.errors import DamocError
from damoc.registry import LazyChoices


def is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (typing.Union, types.UnionType)


def flag_kind(info, flag: str = "") -> dict:
    """argparse keywords for a field's type: choices, a converter, a switch, a list or a mapping.
    A number must be finite: `inf` and `nan` parse as floats, and `gt=0` lets inf through."""
    annotation = info.annotation
    optional = is_union(annotation) and type(None) in get_args(annotation)
    options = [a for a in (get_args(annotation) if is_union(annotation) else [annotation]) if a is not type(None)]
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
