"""The typed results schema (issue 27): every results.json written before it loads through it and
renders (terminal, report.md, report.html) without a string-key lookup failing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from damoc.cli.printing import print_ranking, print_select
from damoc.report import select_html, select_report
from damoc.selection.results import SelectResults, load_results

OLD = sorted((Path(__file__).parent / "assets" / "results-2026-12-05").glob("*.json"))


def test_the_fixtures_are_there():
    assert {p.stem for p in OLD} == {"adaptive", "baseline", "halving", "validate"}


@pytest.mark.parametrize("path", OLD, ids=lambda p: p.stem)
def test_a_results_json_written_before_the_schema_loads_and_renders(path, capsys):
    res = load_results(path)
    raw = json.loads(path.read_text())
    assert [c.name for c in res.candidates] == [f"{c['model']} {c['method']}" for c in raw["candidates"]]
    assert res.model_dump(exclude_unset=True)["task"] == raw["task"]
    # nothing is lost on a round trip: unknown fields are kept
    assert set(raw) <= set(res.model_dump())
    if path.stem == "baseline":
        print_ranking(raw)
        assert "failed" in capsys.readouterr().out
        return
    text = select_report(raw)
    assert f"# damoc select: {raw['task']}" in text
    for c in raw["candidates"]:
        assert f"{c['model']} {c['method']}" in text
    print_select(raw, Path("run"))
    out = capsys.readouterr().out
    assert raw["verdict"]["recommended"] in out
    assert select_html(raw, text).startswith("<!DOCTYPE html>") or "<html" in select_html(raw, text)


def test_the_validation_fixture_reads_as_typed_fields():
    res = load_results(next(p for p in OLD if p.stem == "validate"))
    assert isinstance(res, SelectResults) and res.validation is not None
    assert res.validation.by_rank.chosen in {c.name for c in res.candidates}
    assert res.verdict is not None and res.verdict.recommended in {c.name for c in res.candidates}
    assert res.cost.train_flops > 0
