"""Machine and library versions, recorded with every result so figures can be compared."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata


def machine() -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return info


def versions() -> dict:
    out = {}
    for pkg in ("damoc", "torch", "transformers", "peft", "accelerate", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def weight_files(folder: str | os.PathLike) -> list[tuple[str, int, int]]:
    """A model folder's weight files by name, size and modification time: what caches of anything a
    model computed are keyed by, so that weights replaced in place (a folder re-pruned or re-trained
    under the same path) are never taken for the old ones. Empty for anything that is not a folder."""
    from pathlib import Path

    path = Path(folder).expanduser()
    if not path.is_dir():
        return []
    files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def stable_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# Marks a setting added after results were first cached (`Field(..., json_schema_extra=ADDED_LATER)`):
# `key_settings` leaves it out while it is at its default, so a result cached before the setting
# existed (made, in effect, with that default) is still found.
ADDED_LATER = {"added_later": True}


def key_settings(config) -> dict:
    """A pydantic config as the JSON a cache key hashes."""
    from pydantic import BaseModel

    out = config.model_dump(mode="json")

    def drop(model: BaseModel, dumped: dict) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel) and isinstance(dumped.get(name), dict):
                drop(value, dumped[name])
            elif (info.json_schema_extra or {}).get("added_later") and value == info.get_default(
                    call_default_factory=True):
                dumped.pop(name, None)

    drop(config, out)
    return out
