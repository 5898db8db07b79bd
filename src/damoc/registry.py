"""Methods registered by name: one small class for every kind (selectors, merges, recovery
methods, launchers, metrics), so a name is spelled once, where the method is defined, and every
"unknown X" error reads the same and lists what is available.

Configs validate names against a registry before any model loads (`Registry.check` as a
pydantic validator), and the CLI takes its choices from `Registry.names()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from damoc.errors import DamocError

T = TypeVar("T")


class UnknownName(DamocError, ValueError):
    """A ValueError too, so that a pydantic validator calling `check` reports it under the
    setting's name (e.g. "prune.merge: unknown merge 'x'; available: ...")."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: `@SELECTORS.register("graphcut", description=...)`."""
        def wrap(obj: T) -> T:
            self.add(name, obj, **info)
            return obj
        return wrap

    def add(self, name: str, obj: T, **info: Any) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._info[name] = info

    def check(self, name: str) -> str:
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return name

    def get(self, name: str) -> T:
        return self._items[self.check(name)]

    __getitem__ = get

    def info(self, name: str) -> dict[str, Any]:
        return self._info[self.check(name)]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


class LazyChoices:
    """A registry's names as argparse `choices`, imported only when argparse needs them (to check
    a value given or to print help): the modules that define methods import torch, and `damoc
    --help` should not wait for it."""

    def __init__(self, where: str) -> None:
        self.where = where  # "package.module:NAME", a Registry or a Literal alias

    def _names(self) -> list[str]:
        import importlib
        from typing import get_args

        module, _, name = self.where.partition(":")
        found = getattr(importlib.import_module(module), name)
        return found.names() if isinstance(found, Registry) else list(get_args(found))  # a Literal

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())
