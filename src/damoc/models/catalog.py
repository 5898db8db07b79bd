"""What `damoc models list` shows: the bundled models and what is already in the cache."""

from __future__ import annotations

from pathlib import Path

from damoc.models.bundled import BUNDLED, BUNDLED_PREFIX, cache_dir_for, damoc_home, is_prepared


def list_models() -> list[dict[str, str]]:
    rows = []
    for name, m in BUNDLED.items():
        rows.append({
            "spec": BUNDLED_PREFIX + name,
            "description": m.description,
            "licence": m.licence,
            "status": "prepared" if is_prepared(name) else "not prepared",
            "folder": str(cache_dir_for(name)) if is_prepared(name) else "",
        })
    models_dir = damoc_home() / "models"
    if models_dir.is_dir():
        for folder in sorted(Path(models_dir).iterdir()):
            if (folder.name in BUNDLED or folder.name.startswith(".") or not folder.is_dir()
                    or not (folder / "config.json").is_file()):  # only complete models
                continue
            rows.append({"spec": str(folder), "description": "cached folder", "licence": "",
                         "status": "prepared", "folder": str(folder)})
    return rows
