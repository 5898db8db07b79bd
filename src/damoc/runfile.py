"""Run files (`--config RUN.yaml`): safe YAML, duplicate keys refused, every refusal one line.

`yaml.safe_load` already refuses `!!python/...` tags, but it lets a repeated key silently win
(a typo'd second `rate:` would change a run without a word) and its messages span lines.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from damoc.errors import DamocError


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
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe loader)
    except (OSError, UnicodeDecodeError) as e:
        raise DamocError(f"{path}: cannot read the run file ({type(e).__name__}: {e})") from None
    except yaml.YAMLError as e:
        raise DamocError(f"{path}: not a valid run file ({_one_line(e)})") from None
    if not isinstance(raw, dict):
        raise DamocError(f"{path}: the run file must be a mapping of settings")
    return raw
