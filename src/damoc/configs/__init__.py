"""Run files shipped with damoc (package data, so an installed wheel has them): the demo's and
each benchmark headline's settings, each opening with the command that runs it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from damoc.errors import DamocError


def shipped() -> dict[str, Path]:
    folder = resources.files(__name__)
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".yaml")}


def shipped_config(name: str) -> Path:
    configs = shipped()
    if name not in configs:
        raise DamocError(f"unknown shipped config {name!r}; available: {', '.join(configs)}")
    return configs[name]


def first_line(path: Path) -> str:
    """The command a run file opens with."""
    return path.read_text(encoding="utf-8").splitlines()[0].removeprefix("#").strip()
