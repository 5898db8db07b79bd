"""Machine and library versions, recorded with every result so figures can be compared."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata

from damoc.compat import drop_added_later, whole_data_unkeyed


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


def key_settings(config) -> dict:
    """A pydantic config as the JSON a cache key hashes (settings added later left out at their
    default: damoc.compat)."""
    out = config.model_dump(mode="json")
    drop_added_later(config, out)
    if "filter" in out:
        out["filter"] = whole_data_unkeyed(out["filter"])
    return out
