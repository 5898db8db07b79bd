"""Tasks: bundled ones by name, or a user's file with a declared format."""

from __future__ import annotations

from damoc.errors import DamocError
from damoc.tasks.base import Example, Task, continuation
from damoc.tasks.bundled import BUNDLED_TASKS, load_bundled_task
from damoc.tasks.user import DataSpec, load_user_task


def load_task(name: str | None = None, data: DataSpec | None = None) -> Task:
    if data is not None:
        return load_user_task(data)
    if name in BUNDLED_TASKS:
        return load_bundled_task(name)
    raise DamocError(f"unknown task {name!r}; bundled tasks are: {', '.join(BUNDLED_TASKS)} "
                     "(or give --data FILE --format FORMAT)")


__all__ = ["BUNDLED_TASKS", "DataSpec", "Example", "Task", "continuation", "load_task"]
