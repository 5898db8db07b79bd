"""Read records from JSONL, JSON, CSV or Parquet, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

from damoc.errors import DamocError

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def read_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise DamocError(f"{path}: no such file")
    if path.is_dir():
        raise DamocError(f"{path}: is a folder; give a .jsonl, .json, .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_table(path, "parquet")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DamocError(f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from e
    if "\x00" in text:
        raise DamocError(f"{path}: looks binary (NUL bytes); expected UTF-8 text")
    if suffix == ".jsonl":
        return _parse_jsonl(path, text)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DamocError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DamocError(f"{path}: expected a JSON list of objects (or {{\"data\": [...]}})")
        return data
    if suffix == ".csv":
        return _read_table(path, "csv")
    raise DamocError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")


def _parse_jsonl(path: Path, text: str) -> list[dict]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DamocError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from e
        if not isinstance(row, dict):
            raise DamocError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _read_table(path: Path, kind: str) -> list[dict]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, dtype=str,
                                                                           keep_default_na=False)
    except Exception as e:  # pandas raises many types for unreadable files
        raise DamocError(f"{path}: cannot read as {kind}: {str(e).splitlines()[0]}") from e
    return frame.to_dict(orient="records")
