"""A user's inputs, checked at the edge: field mappings, nulls in Parquet, special and huge files,
non-finite and boolean numbers, names too long for the filesystem. Each refusal is one line, exit 2.

Unbounded inputs (/dev/zero, a FIFO, a huge sparse file) are read by a child process under an
address-space cap and a timeout: a regression fails the test instead of exhausting the machine."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from damoc.cli import main
from damoc.errors import DamocError
from damoc.tasks import DataSpec, load_task


def one_line_error(argv: list[str], capsys) -> str:
    """The CLI's refusal of argv: exit 2 and a single `damoc: error:` line (returned)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("damoc: error: ") and err.count("\n") == 1, err
    return err.strip()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------ (6) --field mappings


@pytest.fixture
def xy_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "xy.jsonl", [{"x": f"is {i} even?", "p": f"case {i}", "y": ["yes", "no"][i % 2]}
                                              for i in range(10)])


def test_two_fields_on_one_column_are_refused(xy_file, capsys):
    with pytest.raises(DamocError, match=r"context and label.*'y'"):
        load_task(data=DataSpec(path=xy_file, format="classification",
                                fields={"question": "x", "context": "y", "label": "y"}))
    err = one_line_error(["tasks", "show", "--data", str(xy_file), "--format", "classification",
                          "--field", "question=x", "--field", "context=y", "--field", "label=y"], capsys)
    assert "'y'" in err and "context" in err and "label" in err and "columns: p, x, y" in err


def test_a_mapping_onto_a_default_column_of_another_field_is_refused(tmp_path):
    # question keeps its default column "question"; mapping context onto it would show it twice.
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": f"q{i}", "label": "ab"[i % 2]} for i in range(6)])
    with pytest.raises(DamocError, match=r"context and question.*'question'"):
        load_task(data=DataSpec(path=path, format="classification", fields={"context": "question"}))


def test_a_mapping_to_a_missing_column_is_refused(xy_file, tmp_path, capsys):
    with pytest.raises(DamocError, match=r"context=nosuch.*no column 'nosuch'.*columns: p, x, y"):
        load_task(data=DataSpec(path=xy_file, format="classification",
                                fields={"question": "x", "label": "y", "context": "nosuch"}))
    err = one_line_error(["tasks", "show", "--data", str(xy_file), "--format", "classification",
                          "--field", "question=x", "--field", "label=y", "--field", "context=nosuch"], capsys)
    assert "nosuch" in err and "columns: p, x, y" in err
    # A separate test file must have the mapped columns too.
    test = write_jsonl(tmp_path / "test.jsonl", [{"x": "q", "y": "yes"}, {"x": "r", "y": "no"}])
    with pytest.raises(DamocError, match=r"test.jsonl.*context=p.*no column 'p'.*columns: x, y"):
        load_task(data=DataSpec(path=xy_file, format="classification", test_path=test,
                                fields={"question": "x", "label": "y", "context": "p"}))


def test_a_field_given_twice_is_refused(xy_file, capsys):
    err = one_line_error(["tasks", "show", "--data", str(xy_file), "--format", "classification",
                          "--field", "context=p", "--field", "context=x"], capsys)
    assert "--field context" in err and "twice" in err


def test_a_field_the_format_does_not_read_is_refused(xy_file):
    with pytest.raises(DamocError, match=r"options.*classification"):
        load_task(data=DataSpec(path=xy_file, format="classification",
                                fields={"question": "x", "label": "y", "options": "p"}))


def test_distinct_existing_mappings_still_load(xy_file):
    t = load_task(data=DataSpec(path=xy_file, format="classification",
                                fields={"question": "x", "context": "p", "label": "y"}))
    assert len(t.train) + len(t.test) == 10 and t.train[0].context.startswith("case")


# ------------------------------------------------------------------ (7) Parquet nulls


@pytest.mark.parametrize("null", [None, float("nan")])
@pytest.mark.parametrize("column", ["question", "label"])
def test_parquet_nulls_are_refused_like_jsonl_ones(tmp_path, null, column):
    import pandas as pd

    rows = [{"question": f"q{i}", "context": f"c{i}", "label": "ab"[i % 2]} for i in range(6)]
    rows[3][column] = null
    pq = tmp_path / "d.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    jl = write_jsonl(tmp_path / "d.jsonl", rows)  # JSON null, or NaN (which Python's json reads)
    with pytest.raises(DamocError) as from_jsonl:
        load_task(data=DataSpec(path=jl, format="classification"))
    with pytest.raises(DamocError) as from_parquet:
        load_task(data=DataSpec(path=pq, format="classification"))
    assert f"record 4 has no (or an empty) '{column}' field" in str(from_parquet.value)
    assert str(from_parquet.value).replace("d.parquet", "d.jsonl") == str(from_jsonl.value)


def test_parquet_null_answers_are_refused_and_null_contexts_are_empty(tmp_path):
    import pandas as pd

    rows = [{"question": f"q{i}", "context": None if i == 1 else f"c{i}", "answer": f"a{i}"} for i in range(6)]
    pq = tmp_path / "g.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    t = load_task(data=DataSpec(path=pq, format="generation", test_fraction=0.5))
    contexts = {e.id: e.context for e in t.train + t.test}
    assert contexts["g-1"] == "" and not any(re.search(r"\bnan\b", e.prompt, re.I) for e in t.train + t.test)
    rows[2]["answer"] = float("nan")
    pd.DataFrame(rows).to_parquet(pq)
    with pytest.raises(DamocError, match=r"record 3 has no \(or an empty\) 'answer' field"):
        load_task(data=DataSpec(path=pq, format="generation"))


def test_json_nan_is_refused_too(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"question": "a", "label": "x"}\n{"question": NaN, "label": "y"}\n')
    with pytest.raises(DamocError, match=r"record 2 has no \(or an empty\) 'question' field"):
        load_task(data=DataSpec(path=path, format="classification"))


def test_parquet_list_options_load(tmp_path):
    import pandas as pd

    rows = [{"question": f"q{i}", "options": ["red", "blue"], "answer": i % 2} for i in range(6)]
    pq = tmp_path / "mc.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    t = load_task(data=DataSpec(path=pq, format="multiple_choice", test_fraction=0.5))
    assert all(e.options == ("red", "blue") for e in t.train + t.test)


# ------------------------------------------------------------------ (8) regular files, bounded

# The child's address-space cap: the CLI with torch imported peaks near 0.9 GB of virtual memory on
# this machine (VmPeak); 2 GiB leaves room for that and stops an unbounded read long before the
# machine's memory.
CAP = 2 << 30

CHILD = textwrap.dedent("""
    import contextlib, io, json, sys
    from damoc.cli import main
    from damoc.errors import DamocError
    for case in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                if isinstance(case, list):
                    code = main(case)
                else:
                    exec(case, {})
                    code = 0
            except SystemExit as e:
                code = e.code
            except DamocError as e:
                code, _ = 2, print(f"damoc: error: {e}", file=sys.stderr)
            except Exception as e:  # MemoryError: the cap stopped an unbounded read
                code = type(e).__name__
        print(json.dumps({"case": case, "code": code, "err": err.getvalue()}), flush=True)
""")


def run_capped(cases: list, cwd: Path, timeout: float = 240) -> list[dict]:
    """Each case (argv for damoc, or Python code) in one child under CAP; its results, in order.
    A case that hangs leaves the child to the timeout: the cases after it are missing."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases)], cwd=cwd, env=env,
                              preexec_fn=cap, capture_output=True, text=True, timeout=timeout)
        stdout = done.stdout
    except subprocess.TimeoutExpired as e:
        stdout = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if len(results) < len(cases):
        pytest.fail(f"the child hung or died at case {cases[len(results)]!r} (past the {timeout:.0f} s timeout "
                    "or the address-space cap)")
    return results


def test_special_and_huge_inputs_are_refused_without_reading_them(tmp_path, cls_file):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as f:  # sparse: 3 GiB long, no disk used
        f.truncate(3 << 30)
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    fifo_yaml = tmp_path / "fifo.yaml"
    os.mkfifo(fifo_yaml)
    out = str(tmp_path / "out.jsonl")
    show = ["tasks", "show", "--format", "classification"]
    cases = [
        ([*show, "--data", "/dev/zero"], "--data /dev/zero: not a regular file"),
        ([*show, "--data", str(cls_file), "--test-data", "/dev/zero"], "--test-data /dev/zero: not a regular file"),
        (["filter", "--config", "/dev/zero", "--task", "boolq", "--out", out],
         "--config /dev/zero: not a regular file"),
        (["compress", "--examples", "/dev/zero", "--out", out], "--examples /dev/zero: not a regular file"),
        (["prune", "--model", "m", "--calibration", "/dev/zero", "--out", str(tmp_path / "p")],
         "--calibration /dev/zero: not a regular file"),
        ("from damoc.recovery.pool import load_pool; load_pool('/dev/zero')", "--pool /dev/zero: not a regular file"),
        ([*show, "--data", str(folder)], "is a folder"),
        ([*show, "--data", str(huge)], f"--data {huge}: is 3.2 GB, over the 2 GB limit for data files"),
        ([*show, "--data", str(fifo)], f"--data {fifo}: not a regular file (a FIFO)"),
        (["filter", "--config", str(fifo_yaml), "--task", "boolq", "--out", out],
         f"--config {fifo_yaml}: not a regular file (a FIFO)"),
    ]
    results = run_capped([argv for argv, _ in cases], tmp_path)
    for (_, message), r in zip(cases, results, strict=True):
        assert r["code"] == 2, r
        assert r["err"].startswith("damoc: error: ") and r["err"].count("\n") == 1, r
        assert message in r["err"], r
    assert not Path(out).exists() and not (tmp_path / "p").exists()


def test_check_input_file_limits_and_messages(tmp_path):
    from damoc.inputs import DATA_FILE_LIMIT, RUN_FILE_LIMIT, check_input_file, read_input_bytes

    small = tmp_path / "run.yaml"
    small.write_text("seed: 1\n")
    assert check_input_file(small, "--config", RUN_FILE_LIMIT) == small
    assert read_input_bytes(small, "--config", RUN_FILE_LIMIT) == b"seed: 1\n"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (RUN_FILE_LIMIT + 1))
    with pytest.raises(DamocError, match=r"^--config .*big.yaml: is 1,000,001 bytes, over the 1 MB limit for run"):
        check_input_file(big, "--config", RUN_FILE_LIMIT)
    with pytest.raises(DamocError, match=r"^--data .*nope.jsonl: no such file$"):
        check_input_file(tmp_path / "nope.jsonl", "--data", DATA_FILE_LIMIT)
    with pytest.raises(DamocError, match=r"^/dev/null: not a regular file \(a character device\)$"):
        check_input_file("/dev/null", "", DATA_FILE_LIMIT)
    link = tmp_path / "link.jsonl"
    link.symlink_to(small)  # a link to a regular file is that file
    assert check_input_file(link, "--data", DATA_FILE_LIMIT) == link


def test_a_run_file_over_its_limit_is_one_line(tmp_path, capsys):
    from damoc.inputs import RUN_FILE_LIMIT

    big = tmp_path / "big.yaml"
    big.write_text("seed: 1\n" + "#" * RUN_FILE_LIMIT)
    err = one_line_error(["filter", "--config", str(big), "--task", "boolq", "--out", str(tmp_path / "o.jsonl")],
                         capsys)
    assert "over the 1 MB limit for run files" in err


# ------------------------------------------------------------------ (12) estimate's numbers


def _estimate_config(model):
    from damoc.finetune import FinetuneConfig
    from damoc.selection.config import SelectConfig

    return SelectConfig(task="asdiv", candidates=[{"model": str(model), "method": "lora"}],
                        finetune=FinetuneConfig(max_seq_len=96, batch_size=4, micro_batch_size=2),
                        filter=None, compress=None, prune=None)


def _examples(n: int = 6):
    from damoc.tasks.base import render

    return [render("generation", id=str(i), question=f"what is {i}?", answer=f"it is {i}") for i in range(n)]


@pytest.mark.parametrize("throughput", [0.0, -1e12, float("nan"), float("inf")])
def test_estimate_refuses_a_throughput_that_is_not_a_positive_finite_number(tiny_llama, throughput):
    from damoc.selection.estimate import estimate

    with pytest.raises(DamocError, match=r"--throughput .*positive"):
        estimate(_estimate_config(tiny_llama), _examples(), throughput=throughput)


@pytest.mark.parametrize("n", [0, -5])
def test_estimate_refuses_a_count_below_one(tiny_llama, n):
    from damoc.selection.estimate import estimate

    with pytest.raises(DamocError, match=r"--examples"):
        estimate(_estimate_config(tiny_llama), _examples(), n_examples=n)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3"])
def test_cli_estimate_refuses_bad_throughput_in_one_line(tiny_llama, gen_file, capsys, value):
    err = one_line_error(["estimate", "--data", str(gen_file), "--format", "generation", "--models", str(tiny_llama),
                          "--no-compress", "--no-prune", "--no-filter", "--throughput", value, "--json"], capsys)
    assert "--throughput" in err


def test_cli_estimate_refuses_non_finite_settings(tiny_llama, gen_file, capsys):
    err = one_line_error(["estimate", "--data", str(gen_file), "--format", "generation", "--models", str(tiny_llama),
                          "--prune.scale", "inf", "--json"], capsys)
    assert "--prune.scale" in err and "finite" in err


def test_estimate_output_is_strict_json(tiny_llama, monkeypatch):
    import damoc.selection.estimate as est

    # Nothing to train on: the ratios' denominators are zero, which used to come out as bare Infinity.
    monkeypatch.setattr(est, "training_flops", lambda *a, **k: 0.0)
    out = est.estimate(_estimate_config(tiny_llama), _examples(), throughput=1e12)
    text = json.dumps(out, allow_nan=False)  # raises on NaN or Infinity
    assert json.loads(text)["speedup_flops_training_only"] is None


def test_print_estimate_shows_unknown_ratios(tiny_llama, monkeypatch, capsys):
    import damoc.selection.estimate as est
    from damoc.cli.printing import print_estimate

    monkeypatch.setattr(est, "training_flops", lambda *a, **k: 0.0)
    print_estimate(est.estimate(_estimate_config(tiny_llama), _examples()))
    assert "n/a" in capsys.readouterr().out


# ------------------------------------------------------------------ non-finite settings


def config_classes():
    from damoc.finetune import FinetuneConfig
    from damoc.layers import PruneConfig
    from damoc.recovery.run import RecoverConfig
    from damoc.selection.config import BaselineConfig, FilterSettings, SelectConfig
    from damoc.tokens import CompressConfig

    base = {"task": "boolq", "candidates": [{"model": "m", "method": "lora"}]}
    return [(FinetuneConfig, {}, "learning_rate"), (FinetuneConfig, {}, "epochs"),
            (FinetuneConfig, {}, "weight_decay"), (PruneConfig, {}, "scale"), (CompressConfig, {}, "ratio"),
            (RecoverConfig, {"original": "a", "pruned": "b"}, "budget"), (FilterSettings, {}, "rate"),
            (DataSpec, {"path": "d.jsonl", "format": "generation"}, "test_fraction"),
            (BaselineConfig, base, "finetune.learning_rate"), (SelectConfig, base, "prune.scale")]


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "nan"])
@pytest.mark.parametrize("i", range(10))
def test_every_config_refuses_non_finite_numbers(i, value):
    from pydantic import ValidationError

    model, required, field = config_classes()[i]
    raw = dict(required)
    *section, name = field.split(".")
    (raw.setdefault(section[0], {}) if section else raw)[name] = value
    with pytest.raises(ValidationError):
        model(**raw)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_finetune_refuses_a_non_finite_learning_rate_before_loading(tmp_path, capsys, value):
    err = one_line_error(["finetune", "--model", "no-such/model", "--task", "boolq", f"--learning-rate={value}"],
                         capsys)
    assert "learning-rate" in err or "learning_rate" in err


@pytest.mark.parametrize("flag", ["--adaptive.confidence", "--cpus-per-candidate", "--adaptive.rungs"])
def test_float_flags_of_every_section_refuse_non_finite(tmp_path, capsys, flag):
    err = one_line_error(["select", "--task", "boolq", "--models", "m", "--out", str(tmp_path / "r"), flag, "inf"],
                         capsys)
    assert flag in err and "finite" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("line,name", [("finetune: {learning_rate: .inf}", "finetune.learning_rate"),
                                       ("prune: {scale: .nan}", "prune.scale"),
                                       ("adaptive: {rungs: [0.01, .inf, 0.04, 0.08]}", "adaptive.rungs"),
                                       ("launch: {cpus_per_candidate: .inf}", "cpus_per_candidate"),
                                       ("launch: {gpus_per_candidate: inf}", "gpus_per_candidate")])
def test_run_file_infinities_are_refused(tmp_path, capsys, line, name):
    run = tmp_path / "run.yaml"
    run.write_text(f"task: boolq\ncandidates: [{{model: m, method: lora}}]\n{line}\n")
    err = one_line_error(["select", "--config", str(run), "--out", str(tmp_path / "r")], capsys)
    assert f"{name}: " in err and "finite" in err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ (14a) booleans are not numbers


@pytest.mark.parametrize("line,name", [("train_limit: true", "train_limit"), ("seed: false", "seed"),
                                       ("finetune: {epochs: true}", "finetune.epochs"),
                                       ("prune: {max_len: true}", "prune.max_len"),
                                       ("data: {path: d.jsonl, format: generation, seed: true}", "data.seed")])
def test_a_boolean_is_not_taken_for_a_number_in_a_run_file(tmp_path, capsys, line, name):
    run = tmp_path / "run.yaml"
    source = "" if line.startswith("data:") else "task: boolq\n"
    run.write_text(f"{source}candidates: [{{model: m, method: lora}}]\n{line}\n")
    err = one_line_error(["select", "--config", str(run), "--out", str(tmp_path / "r")], capsys)
    assert f"{name}: " in err and ("true" in err or "false" in err)
    assert not (tmp_path / "r").exists()


def test_booleans_and_numbers_that_belong_still_pass(tmp_path):
    import argparse

    from damoc.cli.options import config_from
    from damoc.selection.config import SelectConfig

    raw = {"task": "boolq", "candidates": [{"model": "m", "method": "lora"}], "train_limit": 5,
           "generation": False, "finetune": {"epochs": 2, "learning_rate": 1e-4}, "prune": {"iterative": True},
           "filter": {"method": "random", "options": {"draw": 1}}}
    config = config_from(argparse.Namespace(), SelectConfig, raw)
    assert config.train_limit == 5 and config.generation is False and config.prune.iterative is True
    assert config.filter.options == {"draw": 1}


# ------------------------------------------------------------------ (14b) names too long


def test_an_out_name_too_long_names_the_setting(tmp_path, cls_file, capsys):
    long = "x" * 300
    data = ["--data", str(cls_file), "--format", "classification"]
    cases = [["filter", *data, "--method", "random", "--out", str(tmp_path / f"{long}.jsonl")],
             ["compress", *data, "--out", str(tmp_path / f"{long}.jsonl")],
             ["finetune", "--model", "m", *data, "--out", str(tmp_path / long / "model")],
             ["prune", "--model", "m", *data, "--out", str(tmp_path / long)],
             ["recover", "--original", "a", "--pruned", "b", "--out", str(tmp_path / long)],
             ["tasks", "show", "--data", str(tmp_path / f"{long}.jsonl"), "--format", "classification"],
             ["filter", "--config", str(tmp_path / f"{long}.yaml"), "--task", "boolq", "--out",
              str(tmp_path / "o.jsonl")]]
    for argv in cases:
        flag = "--data" if argv[0] == "tasks" else "--config" if "--config" in argv else "--out"
        err = one_line_error(argv, capsys)
        assert err.startswith(f"damoc: error: {flag} ") and "too long" in err, err
    assert sorted(os.listdir(tmp_path)) == ["cls.jsonl"]


def test_an_out_name_that_fits_but_leaves_no_room_for_damocs_files_is_refused(tmp_path, cls_file, capsys):
    from damoc.inputs import name_max

    name = "y" * (name_max(tmp_path) - 5) + ".jsonl"  # fits, but its .summary.json and temporary names do not
    err = one_line_error(["filter", "--data", str(cls_file), "--format", "classification", "--method", "random",
                          "--out", str(tmp_path / name)], capsys)
    assert err.startswith("damoc: error: --out ") and "too long" in err
    assert sorted(os.listdir(tmp_path)) == ["cls.jsonl"]
