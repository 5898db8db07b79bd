"""Reliability v2 (issue 31): each case a probe broke, with the behaviour it must have now.

A broken model never wins; model specs and question lengths are checked before any work; a cached
result is keyed by the weights it came from; nothing is written through a link; `--overwrite`
needs a record of the content; the run lock is the kernel's; JSON is strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import small_config

from damoc.cli import main
from damoc.errors import DamocError
from damoc.io import LOCK, MARKER, claim_run_dir, run_folder, run_lock, write_json_atomic
from damoc.selection.config import FilterSettings
from damoc.selection.pipeline import run_select

SELECT = ["select", "--format", "classification", "--field", "context=passage", "--field", "label=y",
          "--no-compress", "--no-prune", "--filter.method", "random", "--max-seq-len", "96", "--test-limit", "4",
          "--batch-size", "4", "--micro-batch-size", "4", "--eval-batch-size", "4"]


def strict_json(path: Path):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def nan_model(good: str, root: Path) -> str:
    """A copy of a tiny model whose weights are all NaN: every output it gives is NaN."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    folder = root / "nan-model"
    shutil.copytree(good, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    return str(folder)


# ---------------------------------------------------------------- 1. NaN never wins


def test_a_model_with_nan_outputs_fails_and_is_never_recommended(models, cls_file, tmp_path):
    bad = nan_model(models[0], tmp_path)
    summary = run_select(small_config([bad, models[1]], cls_file), tmp_path / "run", progress=False)
    by_model = {c["model"]: c for c in summary["candidates"]}
    assert by_model[bad]["status"] == "failed" and "NaN" in by_model[bad]["error"]
    assert by_model[models[1]]["status"] == "ok" and by_model[models[1]]["rank"] == 1
    assert summary["verdict"]["recommended"] == f"{models[1]} lora"
    strict_json(tmp_path / "run" / "results.json")


def test_non_finite_settings_are_refused_at_the_edge(models, cls_file, tmp_path, capsys):
    for value in ("inf", "nan"):
        code = main([*SELECT, "--data", str(cls_file), "--models", models[0],
                     "--learning-rate", value, "--out", str(tmp_path / f"r-{value}")])
        assert code == 2 and not (tmp_path / f"r-{value}").exists()
        assert capsys.readouterr().err.strip().count("\n") == 0


# ---------------------------------------------------------------- 2. specs and lengths before work


@pytest.mark.parametrize("spec", ["bundled:nosuch", "./no-such-folder", "bareword", "NoSuchOrg/no-such-model"])
@pytest.mark.parametrize("command", ["select", "baseline"])
def test_an_unknown_model_is_exit_2_and_nothing_is_written(models, cls_file, tmp_path, capsys, monkeypatch, spec,
                                                             command):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    argv = [*SELECT, "--data", str(cls_file), "--models", models[0], spec, "--out", str(tmp_path / "run")]
    if command == "baseline":
        argv = [a for a in argv if a not in ("--no-compress", "--no-prune")]
        argv[0] = "baseline"
        argv = _drop_flag(argv, "--filter.method")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("damoc: error:") and spec.lstrip("./") in err[-1]
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "home" / "embeddings").exists()  # no data stage was run


def _drop_flag(argv: list[str], flag: str) -> list[str]:
    i = argv.index(flag)
    return argv[:i] + argv[i + 2:]


def test_a_question_longer_than_max_seq_len_is_exit_2_before_work(models, tmp_path, capsys):
    rows = [{"question": "word " * 80 if i == 3 else f"q{i}?", "passage": "p", "y": ["yes", "no"][i % 2]}
            for i in range(12)]
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = [*SELECT, "--data", str(data), "--models", models[0], "--out", str(tmp_path / "run")]
    argv[argv.index("--max-seq-len") + 1] = "32"
    assert main(argv) == 2
    assert "--max-seq-len 32" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 3. weights changed in place


def test_weights_changed_in_place_are_trained_again(models, cls_file, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(models[0], folder)
    config = small_config([str(folder)], cls_file)
    events: list[str] = []
    first = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert "start" in events
    events.clear()
    run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert "cached" in events and "start" not in events  # unchanged: reused
    shutil.copy(Path(models[1]) / "model.safetensors", folder / "model.safetensors")  # new weights, same path
    events.clear()
    again = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert "start" in events and "cached" not in events
    assert again["candidates"][0]["metrics"]["answer_bpb"] != first["candidates"][0]["metrics"]["answer_bpb"]


# ---------------------------------------------------------------- 4. no writes through links


def test_a_symlinked_subfolder_of_a_run_folder_is_refused_and_the_users_files_untouched(models, cls_file, tmp_path):
    config = small_config(models[:1], cls_file)
    run_select(config, tmp_path / "run", progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "examples.jsonl").write_text("my data\n")
    (mine / "summary.json").write_text('{"mine": true}')
    import shutil

    shutil.rmtree(tmp_path / "run" / "data")
    (tmp_path / "run" / "data").symlink_to(mine)
    with pytest.raises(DamocError, match="symbolic link"):
        run_select(config.model_copy(update={"seed": 5}), tmp_path / "run", progress=False)
    assert (mine / "examples.jsonl").read_text() == "my data\n"
    assert sorted(p.name for p in mine.iterdir()) == ["examples.jsonl", "summary.json"]


# ---------------------------------------------------------------- 5. --overwrite needs a record


def test_overwrite_needs_damocs_record_of_the_content(cls_file, tmp_path, capsys):
    out = tmp_path / "subset.jsonl"
    argv = ["filter", "--data", str(cls_file), "--format", "classification", "--field", "context=passage",
            "--field", "label=y", "--method", "random", "--rate", "0.5", "--out", str(out)]
    # A user's file with a summary beside it that damoc did not write
    out.write_text("user data\n")
    out.with_suffix(".summary.json").write_text('{"note": "mine"}')
    assert main([*argv, "--overwrite"]) == 2
    assert out.read_text() == "user data\n"
    capsys.readouterr()
    # damoc's own output is replaced...
    out.unlink()
    out.with_suffix(".summary.json").unlink()
    assert main(argv) == 0
    assert main([*argv, "--overwrite", "--seed", "1"]) == 0
    # ...until the user edits it: then it is theirs
    out.write_text(out.read_text() + '{"edited": true}\n')
    assert main([*argv, "--overwrite"]) == 2
    assert '"edited"' in out.read_text()


# ---------------------------------------------------------------- 9. DAMOC_HOME


def test_an_empty_damoc_home_is_the_default_not_the_current_folder(monkeypatch, tmp_path):
    from damoc.models import damoc_home

    monkeypatch.setenv("DAMOC_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert damoc_home() == tmp_path / "user" / ".cache" / "damoc"


def test_an_unwritable_damoc_home_is_one_warning_and_the_run_goes_on(models, cls_file, tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("DAMOC_HOME", "/dev/null/x")  # cannot be created
    config = small_config(models[:1], cls_file, filter=FilterSettings(method="graphcut", rate=0.5))
    summary = run_select(config, tmp_path / "run", progress=False)
    assert summary["candidates"][0]["status"] == "ok"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cannot write the cache" in line]
    assert warnings and "/dev/null/x" in warnings[0]


# ---------------------------------------------------------------- 10. results schema-checked on read


@pytest.mark.parametrize("bad", ["high", None, [1], True])
def test_a_result_with_a_wrong_typed_metric_is_moved_aside_and_recomputed(models, cls_file, tmp_path, capsys, bad):
    config = small_config(models[:1], cls_file)
    run_select(config, tmp_path / "run", progress=False)
    result = tmp_path / "run" / "candidates" / config.candidates[0].slug / "result.json"
    for path in (result, result.parent / "history" / json.loads(result.read_text())["key"] / "result.json"):
        record = json.loads(path.read_text())
        record["metrics"]["accuracy"] = bad
        path.write_text(json.dumps(record))
    summary = run_select(config, tmp_path / "run", progress=False)
    assert isinstance(summary["candidates"][0]["metrics"]["accuracy"], float)
    assert "moved to result.json.corrupt" in capsys.readouterr().err
    assert result.with_name("result.json.corrupt").exists()


# ---------------------------------------------------------------- 11. the run lock

HOLD = """
import sys, time
from damoc.io import run_folder
with run_folder(sys.argv[1], "select"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_refused_run_leaves_the_live_runs_folder_alone_and_a_dead_holder_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)  # a new folder, made and held by another process
    try:
        with pytest.raises(DamocError, match=f"PID {holder.pid}"), run_folder(out, "select"):
            pass
        assert (out / MARKER).exists() and (out / LOCK).exists()  # the refused run removed nothing
    finally:
        holder.kill()  # kill -9 leaves the file behind; the kernel has dropped the lock
        holder.wait()
    with run_lock(out):
        assert (out / LOCK).read_text() == str(os.getpid())


def test_a_lock_file_naming_a_live_unrelated_pid_is_taken_over(tmp_path):
    out = claim_run_dir(tmp_path / "run", "select")
    (out / LOCK).write_text("1")  # PID 1 is alive, but holds no lock: a reused PID, not a run
    with run_lock(out):
        pass


RACE = """
import sys, time
from damoc.io import run_folder
t = float(sys.argv[2])
time.sleep(max(0.0, t - time.time()))
try:
    with run_folder(sys.argv[1], "select"):
        time.sleep(1.5)
        print("ran")
except Exception as e:
    print("refused:", e)
"""


def test_simultaneous_starts_one_runs_and_the_other_is_told_a_run_is_live(tmp_path):
    out = tmp_path / "run"
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(out), str(start)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    said = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert said.count("ran") >= 1
    refused = [s for s in said if s != "ran"]
    assert all("another damoc run" in s for s in refused), said
    assert not any("did not write" in s for s in said)


# ---------------------------------------------------------------- 12. strict JSON


def test_json_is_strict_nan_becomes_null(tmp_path):
    path = write_json_atomic(tmp_path / "x.json", {"tau": float("nan"), "xs": [1.0, float("inf")], "ok": 0.5})
    assert strict_json(path) == {"tau": None, "xs": [1.0, None], "ok": 0.5}


# ---------------------------------------------------------------- 13. pickle refusal


def test_a_pickle_refused_under_allow_pickle_is_one_line(models, cls_file, tmp_path, capsys):
    import pickle
    import shutil

    evil = tmp_path / "evil"
    shutil.copytree(models[0], evil)
    (evil / "model.safetensors").unlink()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(evil / "pytorch_model.bin", "wb") as f:
        pickle.dump({"w": Payload()}, f)
    code = main(["evaluate", "--model", str(evil), "--data", str(cls_file), "--format", "classification", "--field",
                 "context=passage", "--field", "label=y", "--test-limit", "2", "--allow-pickle"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("damoc:")]
    assert code == 2 and len(err) == 1 and "never unpickles" in err[0]
    assert not marker.exists()


# ---------------------------------------------------------------- 14. minor


def test_a_local_load_error_does_not_blame_the_offline_hub(models, cls_file, tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    broken = tmp_path / "broken"
    shutil.copytree(models[0], broken)
    (broken / "config.json").write_text("{")
    code = main(["evaluate", "--model", str(broken), "--data", str(cls_file), "--format", "classification",
                 "--field", "context=passage", "--field", "label=y", "--test-limit", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot load model" in err and "offline" not in err


# ---------------------------------------------------------------- degenerate predictions, one verdict


def test_degenerate_predictions_are_flagged():
    from damoc.selection.confidence import degenerate

    def recs(preds, labels):
        return [{"id": str(i), "pred": p, "label": y} for i, (p, y) in enumerate(zip(preds, labels))]

    labels = [0, 1, 0, 1, 0, 0]
    found = degenerate({"one-class": recs([0] * 6, labels), "learned": recs(labels, labels),
                        "at-majority": recs([1, 1, 0, 0, 0, 1], labels)})
    assert set(found) == {"one-class", "at-majority"}
    assert "one answer" in found["one-class"] and "most common answer" in found["at-majority"]


def test_the_confidence_section_says_what_the_verdict_says():
    from damoc.report.markdown import select_report

    tied = {"tie_set": ["a lora", "b lora"], "tied": True, "recommended": "a lora", "rule": "cheapest"}
    summary = {"task": "t", "primary_metric": "accuracy", "candidates": [], "verdict": tied,
               "confidence": {"prob_best": {"a lora": 0.6, "b lora": 0.4}, "pairs": []},
               "warnings": ["a lora gives one answer"]}
    text = select_report(summary)
    assert "Tied: a lora, b lora" in text and "Cannot be told apart from the best: a lora, b lora" in text
    assert "none" not in text.split("Cannot be told apart")[1].splitlines()[0]
    assert "degenerate predictions" in text and "a lora gives one answer" in text


def test_recover_checks_its_models_and_pool_before_writing(models, tmp_path, capsys):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("")
    out = tmp_path / "rec"
    assert main(["recover", "--original", "bundled:nosuch", "--pruned", models[0], "--pool", str(pool),
                 "--out", str(out)]) == 2
    assert "unknown bundled model" in capsys.readouterr().err and not out.exists()
    argv = ["recover", "--original", models[0], "--pruned", models[1], "--pool", str(pool), "--out", str(out)]
    assert main(argv) == 2
    assert not out.exists()


def test_a_run_folder_name_too_long_names_out(models, cls_file, tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    assert main([*SELECT, "--data", str(cls_file), "--models", models[0], "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err
