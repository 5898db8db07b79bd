"""report.html opened in a real browser (headless Chromium): it renders its tables and plots, and
the browser reports no error. Needs Debian's `chromium` (apt-get install chromium) and the
`playwright` package, which drives the installed browser (nothing is downloaded). Without a
browser the test skips with its reason, except where DAMOC_REQUIRE_BROWSER=1 (CI) makes that a
failure."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import save_tiny

from damoc.finetune import FinetuneConfig
from damoc.layers import PruneConfig
from damoc.selection.candidate import Candidate
from damoc.selection.config import FilterSettings, SelectConfig
from damoc.selection.pipeline import run_select
from damoc.tasks import DataSpec


def browser() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                 None)
    missing = "no Chromium installed (apt-get install chromium)" if found is None else None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install playwright)"
    if missing:
        if os.environ.get("DAMOC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DAMOC_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    return found


def test_select_report_renders_tables_and_plots_in_chromium(tmp_path, cls_file):
    executable = browser()
    models = [str(save_tiny(tmp_path, "llama", seed=1, layers=4)), str(save_tiny(tmp_path, "gemma3", seed=2, layers=4))]
    config = SelectConfig(
        data=DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"}),
        candidates=[Candidate(model=models[0], method="lora"), Candidate(model=models[1], method="full")],
        finetune=FinetuneConfig(max_seq_len=64, batch_size=4, micro_batch_size=4), test_limit=6,
        filter=FilterSettings(method="random", rate=0.5), compress=None,
        prune=PruneConfig(threshold=-1.0, max_fraction=0.25))
    run_select(config, tmp_path / "run", progress=False)
    page_file = tmp_path / "run" / "report.html"

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1100, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        ranking = page.evaluate("""() => [...document.querySelectorAll('table')].map(t =>
            [...t.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.textContent.trim())))""")
        images = page.evaluate("""() => [...document.images].map(i =>
            ({alt: i.alt, ok: i.complete && i.naturalWidth > 100 && i.naturalHeight > 100}))""")
        headings = page.evaluate("() => [...document.querySelectorAll('h1, h2')].map(h => h.textContent)")
        text = page.inner_text("body")
        shot = page.screenshot(full_page=True)
        chromium.close()
    assert not errors
    header, *rows = ranking[0]
    assert header[:2] == ["rank", "candidate"] and len(rows) == 2  # the ranking is a real table, one row each
    assert {r[1] for r in rows} == {f"{models[0]} lora", f"{models[1]} full"}
    assert len(images) == 3 and all(i["ok"] for i in images)  # metric, time per stage, layer similarity
    assert headings[0].startswith("damoc select") and "Metric per candidate (bars: one standard error)" in headings
    assert "| rank |" not in text  # no Markdown left unrendered
    assert len(shot) > 50_000  # a full page with three plots, not a blank one
