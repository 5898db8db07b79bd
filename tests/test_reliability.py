"""Reliability: a user's files are never deleted, damaged caches heal, every candidate failure
stays that candidate's, exit codes tell the truth, one writer per run folder."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import save_tiny, small_config

from damoc.cli import main
from damoc.errors import DamocError
from damoc.io import MARKER, atomic_dir, claim_run_dir
from damoc.selection.candidate import Candidate
from damoc.selection.pipeline import run_select
from damoc.tasks import DataSpec

FIELDS = {"context": "passage", "label": "y"}


def _user_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "results.csv").write_text("a,b\n1,2\n")
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- 1. never delete a user's files


def test_prune_and_finetune_refuse_a_folder_damoc_did_not_make(tiny_llama, cls_file, tmp_path, capsys):
    precious = tmp_path / "precious"
    before = _user_files(precious)
    common = ["--data", str(cls_file), "--format", "classification", "--field", "context=passage",
              "--field", "label=y"]
    for argv in (["prune", "--model", str(tiny_llama), "--calibration", str(cls_file), "--out", str(precious)],
                 ["prune", "--model", str(tiny_llama), "--calibration", str(cls_file), "--out", str(precious),
                  "--overwrite"],
                 ["finetune", "--model", str(tiny_llama), *common, "--out", str(precious), "--overwrite",
                  "--max-seq-len", "96", "--train-limit", "4", "--no-eval"]):
        assert main(argv) == 2
        assert _files(precious) == before
        assert capsys.readouterr().err.count("\n") == 1  # one line
    # `.` and its parents are never replaced, even with --overwrite and a marker.
    (precious / MARKER).write_text("{}")
    cwd = os.getcwd()
    os.chdir(precious / "sub")
    try:
        for out in (".", ".."):
            assert main(["prune", "--model", str(tiny_llama), "--calibration", str(cls_file), "--out", out,
                         "--overwrite"]) == 2
    finally:
        os.chdir(cwd)
    assert "thesis.tex" in _files(precious)


def test_prune_overwrite_replaces_only_its_own_folder(cls_file, tmp_path):
    model = save_tiny(tmp_path / "m", "llama", layers=4)
    out = tmp_path / "pruned"
    argv = ["prune", "--model", str(model), "--calibration", str(cls_file), "--threshold", "-1",
            "--max-fraction", "0.5", "--out", str(out)]
    assert main(argv) == 0 and (out / MARKER).exists() and (out / "config.json").exists()
    assert main(argv) == 2  # exists: refused without --overwrite
    assert main([*argv, "--overwrite"]) == 0 and (out / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cls.jsonl", "m", "pruned"]  # no scratch left


def test_atomic_dir_never_removes_an_unmarked_target(tmp_path):
    target = tmp_path / "model"
    before = _user_files(target)
    with pytest.raises(DamocError), atomic_dir(target, "prune", overwrite=True) as work:
        (work / "x").write_text("new")
    assert _files(target) == before


def test_filter_and_compress_outputs(cls_file, tmp_path, capsys):
    common = ["--data", str(cls_file), "--format", "classification", "--field", "context=passage",
              "--field", "label=y"]
    folder = tmp_path / "existing"
    folder.mkdir()
    assert main(["filter", *common, "--method", "random", "--rate", "0.5", "--out", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    mine = tmp_path / "mine.jsonl"
    mine.write_text("my own data\n")
    assert main(["filter", *common, "--method", "random", "--rate", "0.5", "--out", str(mine)]) == 2
    assert main(["filter", *common, "--method", "random", "--rate", "0.5", "--out", str(mine), "--overwrite"]) == 2
    assert mine.read_text() == "my own data\n"  # no summary beside it: not damoc's
    out = tmp_path / "subset.jsonl"
    assert main(["filter", *common, "--method", "random", "--rate", "0.5", "--out", str(out)]) == 0
    assert main(["filter", *common, "--method", "random", "--rate", "0.5", "--out", str(out)]) == 2
    assert main(["filter", *common, "--method", "random", "--rate", "0.25", "--out", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 6


def test_run_folders_refuse_foreign_files_and_files(models, cls_file, tmp_path, capsys):
    precious = tmp_path / "precious"
    before = _user_files(precious)
    with pytest.raises(DamocError, match="did not write"):
        run_select(small_config(models, cls_file), precious, progress=False)
    assert _files(precious) == before
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = ["select", "--models", models[0], "--data", str(cls_file), "--format", "classification",
            "--field", "context=passage", "--field", "label=y", "--no-compress", "--no-prune",
            "--filter.method", "random", "--out"]
    assert main([*argv, str(afile)]) == 2 and afile.read_text() == "x"
    assert main([*argv, str(afile / "below")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # A folder one command made is not taken over by another.
    claim_run_dir(tmp_path / "rec", "recover")
    with pytest.raises(DamocError, match="damoc recover"):
        claim_run_dir(tmp_path / "rec", "select")


# ---------------------------------------------------------------- 2. caches that heal

DAMAGE = {"half": lambda b: b[: len(b) // 2], "random": lambda b: bytes(random.Random(0).randbytes(len(b) or 8)),
          "wrong-type": lambda b: b"[]"}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_caches_are_moved_aside_and_healed(models, cls_file, tmp_path, how, capsys):
    config = small_config(models, cls_file)
    run = tmp_path / "run"
    first = run_select(config, run, progress=False)
    slug = config.candidates[0].slug
    for rel in ("data/summary.json", "data/examples.jsonl", f"candidates/{slug}/result.json"):
        path = run / rel
        path.write_bytes(DAMAGE[how](path.read_bytes()))
    events = []
    again = run_select(config, run, progress=False, on_event=lambda k, i: events.append((k, i.get("model"))))
    # The damaged result was restored from history/ (nothing retrained); the data stage was redone.
    assert ("start", models[0]) not in events
    assert [c["metrics"] for c in again["candidates"]] == [c["metrics"] for c in first["candidates"]]
    assert (run / "data" / "summary.json.corrupt").exists()
    assert "damaged" in capsys.readouterr().err
    # The history copy damaged too: recomputed, not a crash.
    for p in [run / "candidates" / slug / "result.json",
              *(run / "candidates" / slug / "history").glob("*/result.json")]:
        p.write_bytes(b"{")
    events.clear()
    third = run_select(config, run, progress=False, on_event=lambda k, i: events.append((k, i.get("model"))))
    assert ("start", models[0]) in events and all(c["status"] == "ok" for c in third["candidates"])


def test_damaged_embedding_cache_is_recomputed(tmp_path, monkeypatch):
    from damoc.filtering import embeddings

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    texts = ["a cat sat", "a dog ran", "stocks fell"]
    first, _ = embeddings.embed_with_cost(texts)
    [array] = (tmp_path / "home" / "embeddings").glob("*[!t].npy")
    array.write_bytes(array.read_bytes()[:40])
    again, _ = embeddings.embed_with_cost(texts)
    assert (again == first).all()
    assert list((tmp_path / "home" / "embeddings").glob("*.corrupt"))


def test_embedder_refuses_pickle_weights(tmp_path):
    from damoc.filtering.embeddings import load_embedder

    folder = tmp_path / "pickled-embedder"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(DamocError, match="safetensors only"):
        load_embedder(str(folder))


# ---------------------------------------------------------------- 3. candidate identity


def test_specs_that_read_alike_get_their_own_folders(tmp_path):
    a, b = tmp_path / "models" / "tiny_safe", tmp_path / "models" / "tiny+safe"
    for f in (a, b):
        f.mkdir(parents=True)
    ca, cb = Candidate(model=str(a), method="lora"), Candidate(model=str(b), method="lora")
    assert ca.legacy_slug == cb.legacy_slug and ca.slug != cb.slug


def test_the_same_model_named_two_ways_is_one_candidate(tmp_path, monkeypatch, cls_file):
    from damoc.selection.config import BaselineConfig

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    cache = tmp_path / "home" / "models" / "smollm2-135m-instruct"
    cache.mkdir(parents=True)
    spec_a, spec_b = "bundled:smollm2-135m-instruct", str(cache)
    assert Candidate(model=spec_a, method="lora").identity == Candidate(model=spec_b, method="lora").identity
    assert Candidate(model=spec_a, method="lora").slug[-8:] == Candidate(model=spec_b, method="lora").slug[-8:]
    with pytest.raises(ValueError, match="same model"):
        BaselineConfig(data=DataSpec(path=cls_file, format="classification", fields=FIELDS),
                       candidates=[Candidate(model=spec_a, method="lora"), Candidate(model=spec_b, method="lora")])
    # A bundled model's folder name does not depend on where DAMOC_HOME is.
    slug = Candidate(model=spec_a, method="lora").slug
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "elsewhere"))
    assert Candidate(model=spec_a, method="lora").slug == slug
    assert slug.startswith("bundled_smollm2-135m-instruct--lora-")


def test_results_in_old_folder_names_are_still_read(models, cls_file, tmp_path):
    config = small_config(models, cls_file)
    run = tmp_path / "run"
    first = run_select(config, run, progress=False)
    for c in config.candidates:  # as an earlier damoc laid them out
        os.replace(run / "candidates" / c.slug, run / "candidates" / c.legacy_slug)
    events = []
    again = run_select(config, run, progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0
    assert [c["metrics"] for c in again["candidates"]] == [c["metrics"] for c in first["candidates"]]


# ---------------------------------------------------------------- 4. every failure isolated


def _broken_models(good: str, root: Path) -> dict[str, str]:
    import shutil

    out = {}
    half = root / "half-weights"
    shutil.copytree(good, half)
    weights = half / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out["half-weights"] = str(half)
    badtok = root / "bad-tokenizer"
    shutil.copytree(good, badtok)
    cfg = json.loads((badtok / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = "not a number"
    cfg["add_bos_token"] = {"nested": ["wrong", "type"]}
    cfg["tokenizer_class"] = 42
    (badtok / "tokenizer_config.json").write_text(json.dumps(cfg))
    out["bad-tokenizer"] = str(badtok)
    return out


def test_every_candidate_failure_is_isolated(models, cls_file, tmp_path):
    broken = _broken_models(models[0], tmp_path)
    specs = [broken["half-weights"], broken["bad-tokenizer"], models[1]]
    config = small_config(models, cls_file, candidates=[Candidate(model=m, method="lora") for m in specs])
    summary = run_select(config, tmp_path / "run", progress=False)
    status = {c["model"]: c["status"] for c in summary["candidates"]}
    assert status[models[1]] == "ok"
    assert [status[broken[k]] for k in ("half-weights", "bad-tokenizer")] == ["failed"] * 2
    failed = Candidate(model=broken["half-weights"], method="lora")
    assert (tmp_path / "run" / "candidates" / failed.slug / "error.log").exists()


def test_a_write_error_fails_one_candidate_and_leaves_no_orphan(models, cls_file, tmp_path, monkeypatch):
    from damoc.selection import launch

    real = launch.write_text_atomic
    first = Candidate(model=models[0], method="lora").slug

    def flaky(path, text):
        if first in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(launch, "write_text_atomic", flaky)
    summary = run_select(small_config(models, cls_file), tmp_path / "run", progress=False)
    by_model = {c["model"]: c for c in summary["candidates"]}
    assert by_model[models[1]]["status"] == "ok"
    assert by_model[models[0]]["status"] == "failed" and "No space left" in by_model[models[0]]["error"]
    assert not (tmp_path / "run" / "candidates" / first / "predictions.jsonl").exists()


# ---------------------------------------------------------------- 5. exit codes and one-line messages


def test_exit_codes(cls_file, tmp_path, capsys):
    argv = ["select", "--data", str(cls_file), "--format", "classification", "--field", "context=passage",
            "--field", "label=y", "--no-compress", "--no-prune", "--filter.method", "random", "--max-seq-len", "96",
            "--test-limit", "4"]
    assert main([*argv, "--models", "bundled:nosuch", "--out", str(tmp_path / "r1")]) == 2  # checked before work
    assert "unknown bundled model" in capsys.readouterr().err and not (tmp_path / "r1").exists()
    assert main([*argv, "--models", "bundled:nosuch", "--filter.rate", "7", "--out", str(tmp_path / "r2")]) == 2


def test_disk_full_is_one_line(models, cls_file, tmp_path, monkeypatch, capsys):
    from damoc import io

    real = io.write_text_atomic

    def full(path, text):
        if Path(path).name == "results.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(io, "write_text_atomic", full)
    argv = ["select", "--models", models[0], "--data", str(cls_file), "--format", "classification", "--field",
            "context=passage", "--field", "label=y", "--no-compress", "--no-prune", "--filter.method", "random",
            "--max-seq-len", "96", "--test-limit", "4", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("damoc: error: ") and "No space left on device" in err[-1]
    assert "results.json" in err[-1]


def test_small_tmpfs(models, cls_file, tmp_path, capsys):
    """A real full disk where this machine lets the test mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        argv = ["select", "--models", models[0], "--data", str(cls_file), "--format", "classification",
                "--field", "context=passage", "--field", "label=y", "--no-compress", "--no-prune",
                "--filter.method", "random", "--max-seq-len", "96", "--test-limit", "4", "--out", str(mount / "run")]
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2, 3) and "Traceback" not in err
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_run_file_refusals_are_one_line(tmp_path, capsys):
    dup = tmp_path / "dup.yaml"
    dup.write_text("task: boolq\nseed: 1\ncandidates: []\nseed: 2\n")
    evil = tmp_path / "evil.yaml"
    evil.write_text("task: !!python/object/apply:os.system ['echo hacked']\n")
    for path, needle in ((dup, "duplicate key 'seed'"), (evil, "python/object")):
        assert main(["select", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.strip().count("\n") == 0


def test_remote_code_refusal_points_at_the_flag(tiny_llama, tmp_path):
    import shutil

    from damoc.models import load_model

    folder = tmp_path / "custom"
    shutil.copytree(tiny_llama, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "mysterious"
    cfg["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_x.py").write_text("raise SystemExit('remote code ran')\n")
    (folder / "configuration_x.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(DamocError, match="--trust-remote-code"):
        load_model(str(folder))


# ---------------------------------------------------------------- 6. locks, leftovers, kill -9


def test_prepare_leftovers_are_cleaned_and_never_listed(tmp_path, monkeypatch):
    from damoc.models.bundled import remove_leftovers
    from damoc.models.catalog import list_models

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path))
    models = tmp_path / "models"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".gemma3-270m.{dead.pid}.abcd", f".gemma3-270m.{dead.pid}.gguf.x1", "tmpq1w2e3"):
        (models / name).mkdir(parents=True)
    (models / f".gemma3-270m.{os.getpid()}.live").mkdir()
    listed = {r["spec"] for r in list_models()}
    assert not any("tmpq1w2e3" in s or ".gemma3" in s for s in listed)
    remove_leftovers(models)
    assert sorted(p.name for p in models.iterdir()) == sorted([f".gemma3-270m.{os.getpid()}.live", "tmpq1w2e3"])


KILL_SCRIPT = """
import sys
from damoc.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_anywhere_then_resume_matches_an_uninterrupted_run(models, cls_file, tmp_path, seed):
    argv = ["select", "--models", *models, "--methods", "lora", "--data", str(cls_file), "--format",
            "classification", "--field", "context=passage", "--field", "label=y", "--no-compress", "--no-prune",
            "--filter.method", "random", "--filter.rate", "0.5", "--max-seq-len", "96", "--test-limit", "4",
            "--batch-size", "4", "--micro-batch-size", "4", "--eval-batch-size", "4"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DAMOC_HOME": str(tmp_path / "home")}
    clean = tmp_path / "clean"
    done = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *argv, "--out", str(clean)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *argv, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(seed).uniform(3.0, 14.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run([sys.executable, "-c", KILL_SCRIPT, *argv, "--out", str(killed)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]

    def figures(folder: Path) -> list:
        res = json.loads((folder / "results.json").read_text())
        return [(c["model"], c["metrics"]["accuracy"], round(c["metrics"]["answer_bpb"], 5))
                for c in res["candidates"]]

    assert figures(killed) == figures(clean)
