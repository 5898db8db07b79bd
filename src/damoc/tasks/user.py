"""Tasks from a user's own file: a declared format and a mapping from our fields to theirs."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from damoc.errors import DamocError
from damoc.tasks.base import LETTERS, Example, Format, Task, render, split
from damoc.tasks.files import read_records

# Our field -> the default column name in the user's file.
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "classification": {"question": "question", "context": "context", "label": "label"},
    "multiple_choice": {"question": "question", "context": "context", "options": "options",
                        "label": "answer"},
    "generation": {"question": "question", "context": "context", "answer": "answer"},
    "instruction": {"instruction": "instruction", "context": "input", "answer": "output"},
}
REQUIRED = {"classification": ("question", "label"), "multiple_choice": ("question", "options", "label"),
            "generation": ("question", "answer"), "instruction": ("instruction", "answer")}


class DataSpec(BaseModel):
    """How to read a user's data file into a task."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    path: Path
    format: Format
    fields: dict[str, str] = Field(default_factory=dict, json_schema_extra={"flags_add": True},
                                   description="our field -> column in the file, e.g. label=y "
                                   "(a flag adds to a run file's mapping)")
    labels: list[str] | None = Field(None, description="classification answer options; "
                                     "default: the distinct labels in the data, sorted")
    test_path: Path | None = Field(None, description="a separate test file (default: split the data)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test share when the data is split")
    seed: int = 0

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        known = {"question", "context", "label", "options", "answer", "instruction"}
        bad = set(v) - known
        if bad:
            raise ValueError(f"unknown field(s) {sorted(bad)}; known: {sorted(known)}")
        return v


def load_user_task(spec: DataSpec) -> Task:
    records = read_records(spec.path, "--data")
    if not records:
        raise DamocError(f"{spec.path}: the data set is empty")
    test_records = read_records(spec.test_path, "--test-data") if spec.test_path else None
    if test_records is not None and not test_records:
        raise DamocError(f"{spec.test_path}: the test set is empty")
    fields = field_columns(spec, records, test_records)
    labels = spec.labels
    if spec.format == "classification" and labels is None:
        values = records + (test_records or [])
        labels = sorted({str(_get(r, fields["label"], spec.path, i)).strip() for i, r in enumerate(values)})
        if len(labels) < 2:
            raise DamocError(f"{spec.path}: a classification task needs at least two distinct labels")
    examples = [_to_example(r, i, spec, fields, labels, spec.path) for i, r in enumerate(records)]
    if test_records is not None:
        train = examples
        test = [_to_example(r, i, spec, fields, labels, spec.test_path)
                for i, r in enumerate(test_records)]
    else:
        train, test = split(examples, spec.test_fraction, seed=spec.seed)
    return Task(name=spec.path.stem, format=spec.format, train=train, test=test,
                description=f"user data from {spec.path}", source=str(spec.path),
                meta={"labels": labels} if labels else {})


def _columns(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(map(str, r)))
    return sorted(seen)


def _listed(columns: list[str], limit: int = 30) -> str:
    more = f" and {len(columns) - limit} more" if len(columns) > limit else ""
    return ", ".join(columns[:limit]) + more


def field_columns(spec: DataSpec, records: list[dict], test_records: list[dict] | None = None) -> dict[str, str]:
    """Our field -> the column it reads, checked against the files: every mapping the user gave
    is of a field the format reads and names a column the file has, and no column is read as two
    fields (an answer read as the context, too, would be in the prompt)."""
    defaults = DEFAULT_FIELDS[spec.format]
    for ours, theirs in spec.fields.items():
        if ours not in defaults:
            raise DamocError(f"--field {ours}={theirs}: a {spec.format} task reads no {ours} field; "
                             f"its fields: {', '.join(defaults)}")
    files = [(spec.path, records)] + ([(spec.test_path, test_records)] if test_records is not None else [])
    columns = {path: _columns(rows) for path, rows in files}
    for path, names in columns.items():
        for ours, theirs in spec.fields.items():
            if theirs not in names:
                raise DamocError(f"{path}: --field {ours}={theirs}: no column {theirs!r}; columns: {_listed(names)}")
    fields = {**defaults, **spec.fields}
    present = set(columns[spec.path])
    readers: dict[str, list[str]] = {}
    for ours, theirs in fields.items():  # a default column the file lacks is read by nothing
        if ours in spec.fields or theirs in present:
            readers.setdefault(theirs, []).append(ours)
    for theirs, ours in readers.items():
        if len(ours) > 1:
            how = "; ".join(f"{o}={theirs}" + ("" if o in spec.fields else " (its default)") for o in sorted(ours))
            raise DamocError(f"{spec.path}: {' and '.join(sorted(ours))} would both read column {theirs!r} "
                             f"({how}); give each its own with --field; columns: {_listed(columns[spec.path])}")
    return fields


def _missing(value) -> bool:
    """No value: absent, null, a NaN (JSON's NaN; pandas' null) or blank text."""
    return value is None or (isinstance(value, float) and math.isnan(value)) \
        or (isinstance(value, str) and not value.strip())


def _get(row: dict, column: str, path: Path | None, i: int, required: bool = True):
    value = row.get(column)
    if required and _missing(value):
        raise DamocError(f"{path}: record {i + 1} has no (or an empty) {column!r} field; "
                         f"present fields: {sorted(row)[:10]}; map yours with --field")
    return value


def _to_example(row: dict, i: int, spec: DataSpec, fields: dict[str, str],
                labels: list[str] | None, path: Path | None) -> Example:
    fmt = spec.format
    for name in REQUIRED[fmt]:
        _get(row, fields[name], path, i)
    context = row.get(fields.get("context", ""))
    context = "" if _missing(context) else str(context)
    eid = str(row.get("id", f"{spec.path.stem}-{i}"))
    if fmt == "instruction":
        return render(fmt, id=eid, instruction=str(row[fields["instruction"]]), context=context,
                      answer=str(row[fields["answer"]]))
    question = str(row[fields["question"]])
    if fmt == "generation":
        return render(fmt, id=eid, question=question, context=context,
                      answer=str(row[fields["answer"]]))
    if fmt == "classification":
        assert labels is not None
        value = str(row[fields["label"]]).strip()
        if value not in labels:
            raise DamocError(f"{path}: record {i + 1}: label {value!r} is not one of {labels}")
        return render(fmt, id=eid, question=question, context=context, options=labels,
                      label=labels.index(value))
    options = _options(row[fields["options"]], path, i)
    label = _mc_label(row[fields["label"]], options, path, i)
    return render(fmt, id=eid, question=question, context=context, options=options, label=label)


def _options(value, path: Path | None, i: int) -> list[str]:
    if isinstance(value, str):
        lines = [ln.strip() for ln in value.splitlines() if ln.strip()]
        value = [ln[3:] if len(ln) > 2 and ln[0] in LETTERS and ln[1:3] == ". " else ln for ln in lines]
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise DamocError(f"{path}: record {i + 1}: options must be a list of at least two answers "
                         "(or one per line)")
    return [str(v).strip() for v in value]


def _mc_label(value, options: list[str], path: Path | None, i: int) -> int:
    """Accept an index, a letter (A, 'C. text') or the option text itself."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(options):
            return value
    text = str(value).strip()
    if text in options:
        return options.index(text)
    letter = text.split(".")[0].strip().upper()
    if len(letter) == 1 and letter in LETTERS[: len(options)]:
        return LETTERS.index(letter)
    if text.isdigit() and int(text) < len(options):
        return int(text)
    raise DamocError(f"{path}: record {i + 1}: answer {text[:40]!r} is not one of the "
                     f"{len(options)} options (give an index, a letter or the option text)")
