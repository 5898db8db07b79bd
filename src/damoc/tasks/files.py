"""Read records from JSONL, JSON, CSV or Parquet, with errors that name the file and line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from damoc.errors import DamocError
from damoc.inputs import DATA_FILE_LIMIT, check_input_file, read_input_bytes

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def read_records(path: str | Path, what: str = "") -> list[dict]:
    """The file's records; `what` names the setting that gave the file (e.g. "--data") in errors.
    The file must be a regular one within DATA_FILE_LIMIT (damoc.inputs): read with a bound."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        check_input_file(path, what, DATA_FILE_LIMIT)  # a missing file is said before its type
        raise DamocError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    data = read_input_bytes(path, what, DATA_FILE_LIMIT)
    if suffix == ".parquet":
        return _read_table(path, "parquet", data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DamocError(f"{path}: not UTF-8 text (byte {e.start}); convert it to UTF-8") from e
    del data  # the text alone from here on
    if "\x00" in text:
        raise DamocError(f"{path}: looks binary (NUL bytes); expected UTF-8 text")
    if suffix == ".jsonl":
        return _parse_jsonl(path, text)
    if suffix == ".json":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            raise DamocError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e
        if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
            parsed = parsed["data"]
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise DamocError(f"{path}: expected a JSON list of objects (or {{\"data\": [...]}})")
        return parsed
    return _read_table(path, "csv", text)


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


def _read_table(path: Path, kind: str, data: bytes | str) -> list[dict]:
    import io

    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(data)) if kind == "parquet" else pd.read_csv(
            io.StringIO(data), dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises many types for unreadable files
        raise DamocError(f"{path}: cannot read as {kind}: {str(e).splitlines()[0]}") from e
    return [{k: _cell(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _cell(value):
    """A Parquet cell as JSON would give it: a null (None, NaN, NA) is None, a list column's
    array a list. (A CSV's empty cell stays "", which the task refuses where a value is needed.)"""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        return [_cell(v) for v in value.tolist()]
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
