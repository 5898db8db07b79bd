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


RECOVER = sorted((Path(__file__).parent / "assets" / "recover-2026-12-06").glob("*.json"))


@pytest.mark.parametrize("path", RECOVER, ids=lambda p: p.stem)
def test_a_recover_summary_written_before_its_schema_loads_and_renders(path):
    """Two real summaries (items trimmed): PASER's clusters with degradations never measured (null), and a
    distilled random recovery. Both render; what was not measured reads n/a, never nan or a crash."""
    from damoc.recovery.results import RecoverSummary
    from damoc.report.recovery import recover_html, recover_report, trained_on

    raw = json.loads(path.read_text())
    s = RecoverSummary.model_validate(raw)
    assert set(raw) <= set(s.model_dump())
    text = recover_report(raw)
    assert text.startswith(f"# damoc recover: {raw['method']}")
    assert f"| recovered | {raw['recovery']['recovered']['external_ppl']:.2f}" in text
    if path.stem == "paser-clusters-only":
        assert raw["jsd_mean_pool"] is None and "pool n/a, selected n/a" in text and "nan" not in text
        assert trained_on(raw) == "the pool's answers"
    else:
        assert "clusters:" not in text
        assert trained_on(raw).startswith("the pool's answers and the original model's next-token distributions "
                                          "(KL weight 0.5")
    assert "<html" in recover_html(raw, text)
    if path.stem == "paser-clusters-only":  # as a run renders it, before NaN is written as null
        fresh = {**raw, "jsd_mean_pool": float("nan"), "jsd_mean_selected": float("nan"),
                 "cluster_degradation": [float("nan")] * len(raw["cluster_sizes"])}
        assert "nan" not in recover_report(fresh) and "pool n/a, selected n/a" in recover_report(fresh)
