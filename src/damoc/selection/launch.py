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
import hashlib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from damoc.errors import DamocError
from damoc.io import jsonl_text, quarantine, read_json_checked, write_json_atomic, write_text_atomic
from damoc.registry import Registry
from damoc.selection.candidate import Candidate, bad_metrics, is_ok

Run = Callable[[], tuple[dict, list[dict]]]
Notify = Callable[[str, dict], None]


class LaunchSettings(BaseModel):
    """How candidates are run; none of it changes a candidate's figures, so none of it is hashed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    launcher: str = Field("local", json_schema_extra={"registry": "damoc.selection.launch:LAUNCHERS"},
                          description="local: one candidate after another here; ray: each a Ray task, in parallel "
                          "across the cluster (pip install 'damoc[ray]'); the run folder is the same")
    ray_address: str | None = Field(None, description="join this Ray cluster ('auto': the running one); "
                                    "none starts a local one")
    cpus_per_candidate: float = Field(1.0, gt=0, description="Ray CPUs per candidate")
    gpus_per_candidate: float | None = Field(None, ge=0, description="Ray GPUs per candidate "
                                             "(default: 1 where CUDA is present, else 0)")

    @field_validator("launcher")
    @classmethod
    def _known_launcher(cls, name: str) -> str:
        return LAUNCHERS.check(name)


@dataclass
class Job:
    candidate: Candidate
    folder: Path
    key: str
    run: Run
    legacy: list[Path] = field(default_factory=list)  # older folder names whose results still count


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_result(folder: Path, key: str) -> tuple[dict, list[dict] | None] | None:
    """A finished result with this key and its predictions, checked: a damaged file is moved aside
    (and the next copy tried); predictions that belong to another result (a crash between the two
    renames of `store`) do not count."""
    record = read_json_checked(folder / "result.json",
                               lambda d: isinstance(d, dict) and isinstance(d.get("key"), str) and "status" in d)
    if record is None or record["key"] != key or not is_ok(record):
        return None
    problem = bad_metrics(record.get("metrics"))
    if problem:
        quarantine(folder / "result.json", problem)
        return None
    path = folder / "predictions.jsonl"
    if not path.exists():
        return (None if record.get("predictions_sha256") else (record, None))
    try:
        text = path.read_text(encoding="utf-8")
        if record.get("predictions_sha256") not in (None, _digest(text)):
            return None
        predictions = [json.loads(line) for line in text.splitlines() if line.strip()]
        if not all(isinstance(p, dict) for p in predictions):
            raise ValueError("a line is not an object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        quarantine(path, f"{type(e).__name__}")
        return None
    return record, predictions


def cached(job: Job) -> dict | None:
    """The finished result on disk with this job's key, if any. Results of earlier settings are
    kept under `history/KEY/`, so switching a setting back reuses them instead of retraining."""
    places = [job.folder, job.folder / "history" / job.key]
    for old in job.legacy:
        places += [old, old / "history" / job.key]
    for folder in places:
        found = _read_result(folder, job.key)
        if found is not None:
            record, predictions = found
            if folder != job.folder:  # the top level always holds the current settings' result
                store(job, record, predictions)
            return record
    return None


def failed(job: Job, error: BaseException, trace: str = "") -> dict:
    first = str(error).splitlines()[0] if str(error) else ""
    return {**job.candidate.label(), "status": "failed",
            "error": f"{type(error).__name__}: {first}", "traceback": trace}


def execute(run: Run) -> tuple[dict | None, list[dict] | None, tuple[BaseException, str] | None]:
    """Run one candidate. Any error (a bad model file, a tokenizer of the wrong type, a pickle that
    refuses to load, out of memory) fails this candidate only; Ctrl-C still stops the whole run."""
    try:
        record, predictions = run()
        return record, predictions, None
    except Exception as e:  # noqa: BLE001 - isolating every candidate failure is the point
        gc.collect()
        return None, None, (e, traceback.format_exc())


def store(job: Job, record: dict, predictions: list[dict] | None) -> dict:
    """Write a result with its predictions. The predictions go first and the result names their
    digest, so a result is only ever read with the predictions it was made with."""
    record["key"] = job.key
    text = jsonl_text(predictions) if predictions is not None else None
    if text is not None:
        record["predictions_sha256"] = _digest(text)
    targets = [job.folder] + ([job.folder / "history" / job.key] if is_ok(record) else [])
    for folder in targets:
        if text is not None:
            write_text_atomic(folder / "predictions.jsonl", text)
        write_json_atomic(folder / "result.json", record)
    return record


def _finish(job: Job, outcome: tuple, notify: Notify) -> dict:
    record, predictions, error = outcome
    if error is None and bad_metrics(record.get("metrics")):  # NaN outputs, a diverged run: never ranked
        error = (FloatingPointError(f"{bad_metrics(record.get('metrics'))}: the model's outputs are NaN or "
                                    "infinite (diverged training, broken weights); not ranked"), "")
        predictions = None
    if error is not None:
        record = failed(job, *error)
        _log_error(job, error[1])
    try:
        record = store(job, record, predictions)
    except OSError as e:  # a full disk or a folder that became read-only: this candidate fails
        where = e.filename or job.folder
        record = failed(job, OSError(f"cannot store the result in {where}: {e.strerror or e}"))
    notify("done", record)
    return record


def _log_error(job: Job, trace: str) -> None:
    if not trace:
        return
    try:
        write_text_atomic(job.folder / "error.log", trace)
    except OSError:
        pass


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
        ray.init(address=settings.ray_address, include_dashboard=False, log_to_driver=True)
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


LAUNCHERS: Registry[Callable[[list[Job], LaunchSettings, Notify], list[dict]]] = Registry("launcher")
LAUNCHERS.add("local", _local, description="one candidate after another, in this process")
LAUNCHERS.add("ray", _ray, description="each candidate a Ray task, in parallel across the cluster")


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
    ran = iter(LAUNCHERS.get(settings.launcher)(todo, settings, notify) if todo else [])
    return [r if r is not None else next(ran) for r in results]
