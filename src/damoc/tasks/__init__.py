"""Tasks: bundled ones by name, or a user's file with a declared format."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from damoc.errors import DamocError
from damoc.tasks.base import Example, Task, continuation
from damoc.tasks.bundled import BUNDLED_TASKS, load_bundled_task
from damoc.tasks.user import DataSpec, load_user_task


class TaskSource(BaseModel):
    """Where a run's examples come from: a bundled task by name, or the user's file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str | None = Field(None, description="bundled task name (see `damoc tasks list`)")
    data: DataSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TaskSource:
        if (self.task is None) == (self.data is None):
            raise ValueError("give exactly one of a bundled task (--task NAME) or your data "
                             "(--data FILE --format FORMAT)")
        return self

    def load(self) -> Task:
        return load_task(self.task, self.data)


def load_task(name: str | None = None, data: DataSpec | None = None) -> Task:
    if data is not None:
        return load_user_task(data)
    if name in BUNDLED_TASKS:
        return load_bundled_task(name)
    raise DamocError(f"unknown task {name!r}; bundled tasks are: {', '.join(BUNDLED_TASKS)} "
                     "(or give --data FILE --format FORMAT)")


__all__ = ["BUNDLED_TASKS", "DataSpec", "Example", "Task", "TaskSource", "continuation", "load_task"]
