"""Where candidates run: one after another in this process, or as Ray tasks on a cluster.

A candidate is a `Job`: its folder, the hash of what decides it, and a function that loads,
(prunes,) trains and evaluates it. The driver checks the cache, hands the rest to a
launcher, and writes every result itself, so the run folder looks the same whichever
launcher ran it and Ray workers need no shared file system. A failing candidate (a bad
model spec, an exception, a worker killed for memory) becomes a "failed" record and the
others go on.
"""

from __future__ import annotations

import gc
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from damoc.errors import DamocError
from damoc.io import read_json, read_jsonl, write_json_atomic, write_jsonl_atomic

Run = Callable[[], tuple[dict, list[dict]]]
Notify = Callable[[str, dict], None]


class LaunchSettings(BaseModel):
    """How candidates are run; none of it changes a candidate's figures, so none of it is hashed."""

    model_config = ConfigDict(extra="forbid")

    launcher: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description="Ray cluster address ('auto' to join a running one); "
                                "None starts a local cluster")
    cpus_per_candidate: float = Field(1.0, gt=0)
    gpus_per_candidate: float | None = Field(None, ge=0, description="default: 1 where CUDA is present, else 0")


@dataclass
class Job:
    candidate: object  # a Candidate; kept loose to avoid an import cycle with baseline
    folder: Path
    key: str
    run: Run


def cached(job: Job) -> dict | None:
    """The finished result on disk with this job's key, if any. Results of earlier settings are
    kept under `history/KEY/`, so switching a setting back reuses them instead of retraining."""
    for folder in (job.folder, job.folder / "history" / job.key):
        done = folder / "result.json"
        if done.exists():
            previous = read_json(done)
            if previous.get("key") == job.key and previous.get("status") == "ok":
                if folder != job.folder:  # the top level always holds the current settings' result
                    predictions = folder / "predictions.jsonl"
                    store(job, previous, read_jsonl(predictions) if predictions.exists() else None)
                return previous
    return None


def failed(job: Job, error: BaseException, trace: str = "") -> dict:
    first = str(error).splitlines()[0] if str(error) else ""
    return {"model": job.candidate.model, "method": job.candidate.method, "status": "failed",
            "error": f"{type(error).__name__}: {first}", "traceback": trace}


def execute(run: Run) -> tuple[dict | None, list[dict] | None, tuple[BaseException, str] | None]:
    """Run one candidate, catching what should fail it rather than the whole selection."""
    try:
        record, predictions = run()
        return record, predictions, None
    except (DamocError, RuntimeError, ValueError, OSError, MemoryError) as e:
        gc.collect()
        return None, None, (e, traceback.format_exc(limit=5))


def store(job: Job, record: dict, predictions: list[dict] | None) -> dict:
    record["key"] = job.key
    targets = [job.folder] + ([job.folder / "history" / job.key] if record["status"] == "ok" else [])
    for folder in targets:
        if predictions is not None:
            write_jsonl_atomic(folder / "predictions.jsonl", predictions)
        write_json_atomic(folder / "result.json", record)
    return record


def _finish(job: Job, outcome: tuple, notify: Notify) -> dict:
    record, predictions, error = outcome
    if error is not None:
        record = failed(job, *error)
    record = store(job, record, predictions)
    notify("done", record)
    return record


def _local(jobs: list[Job], settings: LaunchSettings, notify: Notify) -> list[dict]:
    out = []
    for job in jobs:
        notify("start", job.candidate.model_dump())
        out.append(_finish(job, execute(job.run), notify))
    return out


def _ray(jobs: list[Job], settings: LaunchSettings, notify: Notify) -> list[dict]:
    try:
        import ray
    except ImportError as e:
        raise DamocError("--launcher ray needs Ray: pip install 'damoc[ray]'") from e
    from damoc.hardware import default_device

    gpus = settings.gpus_per_candidate
    if gpus is None:
        gpus = 1.0 if default_device().type == "cuda" else 0.0
    started = not ray.is_initialized()
    if started:
        ray.init(address=settings.address, include_dashboard=False, log_to_driver=True)
    try:
        remote = ray.remote(num_cpus=settings.cpus_per_candidate, num_gpus=gpus, max_retries=0)(execute)
        # Each job's function travels by cloudpickle with its data; results come back to be written here.
        refs = {}
        for job in jobs:
            notify("start", job.candidate.model_dump())
            refs[remote.remote(job.run)] = job
        results: dict[int, dict] = {}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            job = refs[done[0]]
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as e:  # a worker that died (out of memory, killed)
                outcome = (None, None, (e, ""))
            results[id(job)] = _finish(job, outcome, notify)
        return [results[id(job)] for job in jobs]
    finally:
        if started:
            ray.shutdown()


LAUNCHERS: dict[str, Callable[[list[Job], LaunchSettings, Notify], list[dict]]] = {"local": _local, "ray": _ray}


def launch(jobs: list[Job], settings: LaunchSettings | None = None, notify: Notify | None = None) -> list[dict]:
    """Results for every job in order: cached ones read back, the rest run by the chosen launcher."""
    settings = settings or LaunchSettings()
    notify = notify or (lambda kind, info: None)
    results: list[dict | None] = []
    todo = []
    for job in jobs:
        hit = cached(job)
        if hit is not None:
            notify("cached", hit)
        else:
            todo.append(job)
        results.append(hit)
    ran = iter(LAUNCHERS[settings.launcher](todo, settings, notify) if todo else [])
    return [r if r is not None else next(ran) for r in results]
