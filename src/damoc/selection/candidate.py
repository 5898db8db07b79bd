"""A candidate (a model and a fine-tuning method), its cache key, its result and the ranking.

Shared by the baseline, the DaMoC pipeline and the launchers; a result is stored as the JSON
dict `results.json` and `result.json` hold, and read through `CandidateResult`, which types
what code reads (status, metrics, rank, the display name) and keeps every other field as written.
"""

from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from damoc.compat import drop_empty_options, slug_before_hash
from damoc.evaluation.metrics import higher_is_better
from damoc.runinfo import key_settings, stable_hash, weight_files
from damoc.tasks.base import SPLIT_VERSION


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    method: str = Field(json_schema_extra={"registry": "damoc.finetune.methods:METHODS"})
    options: dict = Field(default_factory=dict, description="the method's own options, e.g. {r: 8} for lora")
    base: str | None = Field(None, description="pre-trained weights of the model, for the sparse layer merge")

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        from damoc.finetune.methods import METHODS

        return METHODS.check(name)

    @model_validator(mode="after")
    def _options_fit(self) -> Candidate:
        from damoc.finetune.methods import get_method

        get_method(self.method).parse(self.options)
        return self

    @property
    def identity(self) -> tuple:
        """What the candidate is, whatever the spelling: two candidates with one identity are one."""
        ident = (model_identity(self.model), self.method, model_identity(self.base) if self.base else None)
        return (*ident, stable_hash(self.options)) if self.options else ident

    def label(self) -> dict:
        """The fields a result names its candidate by: model, method, and options where there are any."""
        return {"model": self.model, "method": self.method, **({"options": self.options} if self.options else {})}

    def stored(self) -> dict:
        """How results name it: model and method, and its options where it has any (older results, made
        before options existed, keep their names and cache keys: damoc.compat)."""
        return drop_empty_options(self.model_dump())

    @property
    def name(self) -> str:
        """How reports and rankings name it."""
        return display_name(self.stored())

    @property
    def slug(self) -> str:
        """Its folder name: readable, plus a short hash of its identity, so two specs that read alike
        (`models/a_b`, `models/a+b`) never share a folder."""
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.model}--{self.method}").strip("_")[-60:]
        return f"{readable}-{stable_hash(list(self.identity))[:8]}"

    @property
    def legacy_slug(self) -> str:
        """The folder name before the hash was added, where old results are still read (damoc.compat)."""
        return slug_before_hash(self.model, self.method)


def model_identity(spec: str) -> str:
    """A spec normalised: a local folder by its resolved path (or, for a bundled model's cache
    folder, its bundled: name, so the name does not depend on DAMOC_HOME); anything else as written.
    Resolving never converts a bundled model."""
    from damoc.models.bundled import BUNDLED, BUNDLED_PREFIX, damoc_home

    spec = spec.strip()
    if spec.startswith(BUNDLED_PREFIX):
        return spec
    path = Path(spec).expanduser()
    if not path.exists():
        return spec.rstrip("/")
    path = path.resolve()
    models = (damoc_home() / "models").expanduser().resolve()
    if path.parent == models and path.name in BUNDLED:
        return BUNDLED_PREFIX + path.name
    return str(path)


@lru_cache(maxsize=32)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def data_fingerprint(config: BaseModel) -> dict | None:
    """Digests of the user's data files, so that a file edited in place (same path) is not
    mistaken for the one a cached result was made from. Bundled tasks are pinned by version."""
    if config.data is None:
        return None
    out = {}
    for name, path in (("train", config.data.path), ("test", config.data.test_path)):
        if path is not None and Path(path).is_file():
            st = Path(path).stat()
            out[name] = _file_digest(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    return out


def candidate_key(config: BaseModel, candidate: Candidate) -> str:
    """`config`: a BaselineConfig or SelectConfig (typed loosely: config.py imports this module)."""
    # The strategy decides which data a round or rung gets, which the caller adds to the key; not the
    # run itself.
    settings = key_settings(config)
    for name in ("candidates", "halving", "strategy", "adaptive", "zero_shot", "eval"):
        settings.pop(name, None)
    parts = {"candidate": candidate.stored(), "settings": settings, "split": SPLIT_VERSION}
    if config.data is not None:
        parts["data_files"] = data_fingerprint(config)
    # A local folder's weights by name, size and time (bundled models are pinned by their package;
    # hub ids by the hub): a folder whose weights changed in place is trained again, not reused.
    weights = {role: weight_files(spec) for role, spec in (("model", candidate.model), ("base", candidate.base))
               if spec and not spec.startswith("bundled:") and weight_files(spec)}
    if weights:
        parts["weights"] = weights
    return stable_hash(parts)


OK = "ok"  # a stored result's status when the candidate finished; anything else failed


class CandidateResult(BaseModel):
    """A candidate's outcome, read from its stored dict (older files included: extra fields kept)."""

    model_config = ConfigDict(extra="allow")

    model: str
    method: str
    options: dict = Field(default_factory=dict)
    status: Literal["ok", "failed"]
    metrics: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = None
    rank: int | None = None

    @classmethod
    def of(cls, stored: dict) -> CandidateResult:
        return cls.model_validate(stored)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def name(self) -> str:
        return display_name({"model": self.model, "method": self.method, "options": self.options})

    def extra(self, key: str, default: Any = None) -> Any:
        """A field typed nowhere (timings, pruning, training stats), as it was stored."""
        return (self.model_extra or {}).get(key, default)


def results_of(summary: dict) -> list[CandidateResult]:
    """Every candidate of a run summary (`results.json`), ranked ones first."""
    return [CandidateResult.of(r) for r in summary["candidates"]]


def ranked(summary: dict) -> list[CandidateResult]:
    """The candidates that finished, best first."""
    return [r for r in results_of(summary) if r.ok]


def bad_metrics(metrics: object) -> str | None:
    """What is wrong with a result's metrics, or None: each must be a finite number (a standard
    error may be missing). A NaN score would sort first and be recommended; a string crashes the
    ranking."""
    if not isinstance(metrics, dict) or not metrics:
        return "no metrics in a finished result"
    for name, value in metrics.items():
        if value is None and str(name).endswith("_se"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"metric {name} is {value!r}, not a number"
        if not math.isfinite(value):
            return f"metric {name} is {value}"
    return None


def is_ok(stored: dict) -> bool:
    """Whether a stored result (a results.json entry, a result.json, a launcher event) finished."""
    return stored.get("status") == OK


def display_name(stored: dict) -> str:
    """`MODEL METHOD`, and `[k=v,...]` after the method where the candidate has options."""
    options = stored.get("options") or {}
    extra = "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]" if options else ""
    return f"{stored['model']} {stored['method']}{extra}"


def rank(task_metric: str, results: list[dict]) -> list[dict]:
    """Best first: by the primary metric, ties broken by answer bits per byte (lower wins)."""
    ok = [r for r in results if is_ok(r)]
    failed = [r for r in results if not is_ok(r)]
    sign = -1.0 if higher_is_better(task_metric) else 1.0
    ok.sort(key=lambda r: (sign * r["metrics"][task_metric], r["metrics"]["answer_bpb"]))
    for i, r in enumerate(ok, start=1):
        r["rank"] = i
    return ok + failed
