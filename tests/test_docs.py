"""The docs: generated pages up to date with the parser, the configs and bench/results/; the site
builds with `mkdocs build --strict`; the README stays short and its quickstart parses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = ".venv/bin/python tools/make_docs.py (or make docs)"


@pytest.fixture(scope="module")
def make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "tools" / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(make_docs):
    return make_docs.generated()


def test_generated_pages_are_up_to_date(generated):
    """CLI and configuration references (from the parser and the pydantic fields), the benchmark pages,
    bench/README.md and the README's results table (from bench/results/*.json): regenerated in memory,
    they must equal the committed files."""
    stale = [str(p.relative_to(ROOT)) for p, text in generated.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"stale generated docs: {', '.join(stale)}; regenerate with {REGENERATE}"


def test_the_method_gap_study_is_up_to_date_with_the_zoo_files(monkeypatch):
    """bench/results/method-gap.json is derived from the zoo's files alone: when a zoo row lands it must be
    made again, or the zoo page would print figures the rows no longer give."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("method_gap", ROOT / "bench" / "method_gap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stored = json.loads((ROOT / "bench" / "results" / "method-gap.json").read_text())
    fresh = json.loads(json.dumps(module.study()))
    assert {k: stored[k] for k in fresh} == fresh, "stale: run .venv/bin/python bench/method_gap.py"


def test_every_page_of_the_nav_exists():
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert len(nav) >= 8
    missing = [p for p in nav if not (ROOT / "docs" / p).exists()]
    assert not missing, missing


@pytest.mark.parametrize("command", [[], ["select"]])
def test_cli_reference_holds_the_help_damoc_prints(command, generated):
    """What `damoc [COMMAND] --help` prints, at the reference's width, is in docs/reference/cli.md."""
    env = {**os.environ, "COLUMNS": "100"}
    main = "import sys; from damoc.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", main, *command, "--help"], capture_output=True, text=True, env=env,
                         check=True).stdout
    cli = generated[ROOT / "docs" / "reference" / "cli.md"]
    assert out.rstrip() in cli, f"docs/reference/cli.md differs from `damoc {' '.join(command)} --help`"


def test_config_reference_names_every_flag_of_select(generated):
    from damoc.cli import build_parser

    parser = dict(_subcommands(build_parser("select")))["select"]
    config = generated[ROOT / "docs" / "reference" / "config.md"]
    flags = [a.option_strings[0] for a in parser._actions if a.dest.startswith("config:") and a.option_strings]
    missing = [f for f in flags if f"`{f}`" not in config]
    assert not missing, f"flags missing from docs/reference/config.md: {missing}"


def _subcommands(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.items()
    return []


def test_readme_is_short_and_names_the_set_up_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make test" in text and "make demo" in text
    assert "<!-- generated:zoo -->" in text


def test_readme_quickstart_parses():
    """The README's first `damoc select --data` block is a command the parser and SelectConfig accept."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "select" in b and "--data" in b)
    command = shlex.split(" ".join(ln for ln in block.replace("\\\n", " ").splitlines() if not ln.startswith("#")))
    argv = command[command.index("select"):]
    from damoc.cli import build_parser
    from damoc.cli.runs import select_config

    args = build_parser("select").parse_args(argv)
    config, _ = select_config(args)
    assert config.data is not None and len(config.candidates) >= 2


def test_mkdocs_build_strict(tmp_path, generated):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[docs]'); the dev extras have them")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_a_lever_row_is_set_beside_the_defaults_it_ran_under(make_docs, monkeypatch):
    """A zoo row is compared with the defaults as they stood when it ran (`no-budget`: before the evaluation
    budget; `graphcut-all`: before GraphCut's pool), at its own run seed, with only its own lever moved."""
    def row(budget: float | None, pool: float | None = None, moved: tuple = (), method: str = "graphcut") -> dict:
        ev = {} if budget is None else {"budget": budget}
        options = {} if pool is None else {"pool_factor": pool}
        return {"config": {"eval": ev, "filter": {"method": method, "options": options}},
                "overrides": dict.fromkeys(moved)}

    monkeypatch.setattr(make_docs, "default_pool", lambda: 2)  # as once GraphCut's 2x pool is the default
    budget, pool = make_docs.default_budget(), make_docs.default_pool()
    assert budget > 0  # the comparisons below only mean something while the budget is a default
    base = make_docs._baseline_row
    assert base("subset", row(None, moved=("prune", "compress"))) == "no-budget"  # ran before both
    assert base("graphcut-0.05-seed1", row(0.0, moved=("filter", "seed"))) == "no-budget-seed1"
    assert base("random-0.1", row(budget, moved=("filter",), method="random")) == "headline"
    assert base("graphcut-pool3", row(budget, 3, moved=("filter",))) == "headline"
    assert base("margin-0.01-seed2", row(0.0, moved=("eval", "seed"))) == "no-budget-seed2"
    assert base("no-budget-seed3", row(0.0, moved=("eval", "seed"))) == "graphcut-all-seed3"
    assert base("graphcut-all-seed3", row(budget, moved=("filter", "seed"))) == "headline-seed3"
    assert base("no-prune", row(budget, moved=("prune",))) == "graphcut-all"  # ran between the two changes
    assert base("no-prune", row(budget, pool, moved=("prune",))) == "headline"
    assert base("headline-seed2", row(budget, pool, moved=("seed",))) == "headline"
    # while GraphCut reads all the data by default, there is no `graphcut-all` family
    monkeypatch.setattr(make_docs, "default_pool", lambda: None)
    assert base("no-budget-seed3", row(0.0, moved=("eval", "seed"))) == "headline-seed3"
    assert base("graphcut-pool2", row(budget, 2, moved=("filter",))) == "headline"
    assert base("subset", row(None, moved=("prune", "compress"))) == "no-budget"
    with pytest.raises(ValueError, match="no kept defaults"):  # at a pool no kept defaults ran with, unmoved
        base("no-prune", row(budget, 3, moved=("prune",)))


def test_a_lever_at_another_run_seed_says_both(make_docs):
    assert make_docs.lever("graphcut-pool2-seed3") == (f"{make_docs.LEVERS['graphcut-pool2']}, at run seed 3 "
                                                       "(beside the defaults at that seed)")
    assert make_docs.lever("random-0.05") == "random filter at rate 0.05"
    assert make_docs.lever("random-0.1-seed4") == ("random filter at rate 0.1, at run seed 4 (beside the defaults "
                                                   "at that seed)")
    assert make_docs.lever("graphcut-0.05-seed1") == make_docs.LEVERS["graphcut-0.05-seed1"]
    assert make_docs.lever("no-budget-seed2") == "`--eval.budget 0` (no cap) at run seed 2"
