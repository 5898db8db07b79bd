"""Run files (`--config RUN.yaml`): safe YAML, duplicate keys refused, every refusal one line.

`yaml.safe_load` already refuses `!!python/...` tags, but it lets a repeated key silently win
(a typo'd second `rate:` would change a run without a word) and its messages span lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from damoc.errors import DamocError
from damoc.inputs import RUN_FILE_LIMIT, read_input_bytes


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _one_line(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return f"{where}{' '.join(str(problem).split())}"


def read_run_file(path: Path) -> dict:
    """The settings mapping of a run file, or a one-line DamocError."""
    try:
        text = read_input_bytes(path, "--config", RUN_FILE_LIMIT).decode("utf-8")
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (safe loader)
    except (OSError, UnicodeDecodeError) as e:
        raise DamocError(f"{path}: cannot read the run file ({type(e).__name__}: {e})") from None
    except yaml.YAMLError as e:
        raise DamocError(f"{path}: not a valid run file ({_one_line(e)})") from None
    if not isinstance(raw, dict):
        raise DamocError(f"{path}: the run file must be a mapping of settings")
    return raw


def _options(annotation) -> tuple:
    return get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)


def _numeric(annotation) -> bool:
    """Whether a field takes a number (int or float, perhaps beside None or text) and not a switch."""
    options = _options(annotation)
    return bool({int, float} & set(options)) and bool not in options


def _numbers_list(annotation) -> bool:
    """Whether a field takes a list of numbers (e.g. adaptive.rungs)."""
    return any(get_origin(a) is list and get_args(a) and _numeric(get_args(a)[0]) for a in _options(annotation))


def _not_finite(value) -> bool:
    """inf, -inf or nan, as a float or as text that pydantic would read as one."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


def _sections(annotation) -> list[type[BaseModel]]:
    """The config classes a field holds: a section (perhaps optional) or a list of them."""
    out = []
    for a in _options(annotation):
        if get_origin(a) is list and get_args(a):
            a = get_args(a)[0]
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
    return out


def check_numbers(raw: dict, model: type[BaseModel], where: str = "") -> None:
    """A one-line DamocError where a number setting holds true or false (pydantic would take
    `train_limit: true` as 1) or a non-finite number (`.inf`, `.nan`: `gt=0` lets inf through).
    Walks the sections (and lists of them) of `model`; the configs refuse inf and nan themselves
    too (allow_inf_nan=False), this covers every config alike, with one message."""
    for name, value in raw.items():
        info = model.model_fields.get(name) if isinstance(name, str) else None
        if info is None:
            continue  # an unknown setting: the config's own validation names it
        path = f"{where}{name}"
        if isinstance(value, bool) and _numeric(info.annotation):
            raise DamocError(f"{path}: {str(value).lower()} is not a number; give a number "
                             "(true and false are for switches)")
        numbers = [value] if _numeric(info.annotation) else \
            value if isinstance(value, list) and _numbers_list(info.annotation) else []
        bad = next((v for v in numbers if isinstance(v, bool) or _not_finite(v)), None)
        if bad is not None:
            raise DamocError(f"{path}: {str(bad).lower()} is not a finite number; give one")
        for section in _sections(info.annotation):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    at = f"{path}.{i}." if isinstance(value, list) else f"{path}."
                    check_numbers(item, section, at)
