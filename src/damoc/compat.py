"""Backward compatibility in one place: what keeps the files older versions of damoc wrote working.
Nothing here changes what a new run writes; each item only lets a newer damoc read, resume or reuse
what an older one left. Dates are the commits that made the item necessary (0.1.0 is what landed up
to 2026-11-28, see CHANGELOG.md). Retire one only with a CHANGELOG line saying what is no longer read.

- `ADDED_LATER` and `drop_added_later` (used by runinfo.key_settings; the marked fields are in
  finetune/train.py and selection/config.py): a setting added after results were first cached is
  left out of the cache key while it is at its default, so a result cached before the setting
  existed (made, in effect, with that default) is found instead of trained again. Since 2026-11-27
  (0.1.0: the GPU-scale training settings, `--strategy`, the adaptive settings); every setting added
  since is marked.
- `drop_empty_options` (selection/candidate.py, `Candidate.stored`): a candidate without method
  options is stored, named and keyed as before options existed. Since 2026-12-06 (Unreleased: the
  fine-tuning method registry); every result of 0.1.0 keeps its key.
- `RECORDS_BEFORE_MARKER` and `model_folder_before_marker` (io.check_output_folder): a model folder
  that `damoc prune`, `damoc finetune` or a bundled model's conversion wrote before output folders
  carried the `.damoc-run.json` marker is still recognised as damoc's by the record it holds, so
  `--overwrite` may replace it. Since 2026-11-27 (0.1.0).
- `run_before_marker` (io.run_folder): a run folder written before the marker (it holds results,
  candidates or a data summary) is resumed instead of refused as a folder of the user's. Since
  2026-11-27 (0.1.0).
- `slug_before_hash` (`Candidate.legacy_slug`, read through selection/runner.py's jobs): candidate
  folders were named MODEL--METHOD before a hash of the candidate's identity was added (so that two
  specs that read alike never share one); results in the old folders are still read, and their
  cache key names the spec as written, so one is never taken for another candidate's. Since
  2026-11-27 (0.1.0).
- `graphcut_pool_as_ran` and `whole_data_unkeyed` (GraphCut's pool, written into every new config since
  2026-12-07, Unreleased): a stored config whose GraphCut options name no `pool_factor` was made while
  GraphCut embedded all the data, so `graphcut_pool_as_ran` writes `pool_factor: null` into it before it
  is read again (bench/cost_model.py, which re-prices the zoo's stored configs; needed once the default
  is a pool); and `pool_factor: null` is left out of cache keys (runinfo.key_settings,
  selection/data.py's data_key), so every result cached before the pool was written in keeps its key
  (but an explicit `pool_factor: 2.0` now keys as the int 2).
- `strategy_named` (selection/config.py and selection/pipeline.py): `halving: true`, the switch
  for successive halving before `--strategy` existed, still means `--strategy halving` in run
  files and configs. Since 2026-11-27 (0.1.0).
"""

from __future__ import annotations

import re
from pathlib import Path

ADDED_LATER = {"added_later": True}  # `Field(..., json_schema_extra=ADDED_LATER)` marks such a setting

RECORDS_BEFORE_MARKER = ("damoc-prune.json", "damoc-finetune.json", "damoc-model.json")


def drop_added_later(config, dumped: dict) -> None:
    """Remove from `dumped` (the pydantic `config` as JSON) every setting marked ADDED_LATER that is
    at its default, in nested configs too."""
    from pydantic import BaseModel

    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        if isinstance(value, BaseModel) and isinstance(dumped.get(name), dict):
            drop_added_later(value, dumped[name])
        elif (info.json_schema_extra or {}).get("added_later") and value == info.get_default(
                call_default_factory=True):
            dumped.pop(name, None)


def drop_empty_options(stored: dict) -> dict:
    """A candidate's stored dict without its `options` when it has none."""
    if not stored.get("options"):
        stored.pop("options", None)
    return stored


def model_folder_before_marker(folder: Path) -> bool:
    return any((folder / r).is_file() for r in RECORDS_BEFORE_MARKER)


def run_before_marker(out: Path) -> bool:
    return ((out / "results.json").is_file() or (out / "candidates").is_dir()
            or (out / "data" / "summary.json").is_file() or (out / "summary.json").is_file())


def slug_before_hash(model: str, method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model}--{method}").strip("_")


def graphcut_pool_as_ran(dumped: dict) -> dict:
    """A stored SelectConfig (as JSON) as it ran: GraphCut without a written pool read all the data."""
    f = dumped.get("filter")
    options = (f.get("options") or {}) if isinstance(f, dict) else {}
    if isinstance(f, dict) and f.get("method") == "graphcut" and "pool_factor" not in options:
        return {**dumped, "filter": {**f, "options": {**options, "pool_factor": None}}}
    return dumped


def whole_data_unkeyed(dumped_filter: dict | None) -> dict | None:
    """A dumped FilterSettings as a cache key hashes it: GraphCut over all the data (`pool_factor: null`) keyed
    as before the pool was written in."""
    if not dumped_filter or dumped_filter.get("method") != "graphcut":
        return dumped_filter
    options = dumped_filter.get("options") or {}
    if "pool_factor" in options and options["pool_factor"] is None:
        return {**dumped_filter, "options": {k: v for k, v in options.items() if k != "pool_factor"}}
    return dumped_filter


def strategy_named(halving: bool, strategy: str) -> str:
    """The strategy a config means: `halving: true` beside the default strategy is successive halving."""
    return "halving" if halving and strategy == "fixed" else strategy
