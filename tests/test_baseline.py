import json

import pytest

from damoc.cli import main
from damoc.errors import DamocError
from damoc.finetune import FinetuneConfig
from damoc.selection import BaselineConfig, Candidate, rank, run_baseline
from damoc.tasks import DataSpec


def config(models, data_file, **kw):
    return BaselineConfig(
        data=DataSpec(path=data_file, format="classification", fields={"context": "passage", "label": "y"}),
        candidates=[Candidate(model=str(m), method=meth) for m in models for meth in ("lora", "full")],
        finetune=FinetuneConfig(max_seq_len=64, batch_size=4, micro_batch_size=2), **kw)


def test_baseline_ranks_resumes_and_survives_a_failing_candidate(tmp_path, tiny_llama, tiny_gemma, cls_file):
    cfg = config([tiny_llama, tiny_gemma], cls_file)
    import shutil

    broken = tmp_path / "missing-model"  # its weights file is gone: found before work, fails when it loads
    shutil.copytree(tiny_llama, broken)
    (broken / "model.safetensors").unlink()
    cfg.candidates.append(Candidate(model=str(broken), method="lora"))
    events = []
    summary = run_baseline(cfg, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 5
    ok = [c for c in summary["candidates"] if c["status"] == "ok"]
    failed = [c for c in summary["candidates"] if c["status"] == "failed"]
    assert len(ok) == 4 and len(failed) == 1 and "missing-model" in failed[0]["model"]
    assert [c["rank"] for c in ok] == [1, 2, 3, 4]
    accs = [c["metrics"]["accuracy"] for c in ok]
    assert accs == sorted(accs, reverse=True)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["task"] == "cls" and len(on_disk["candidates"]) == 5
    assert all(c["train_tokens"] > 0 and c["eval_seconds"] > 0 for c in ok)

    # Same command again: finished candidates are reused, only the failed one is retried.
    events.clear()
    again = run_baseline(cfg, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("cached") == 4 and events.count("start") == 1
    assert [c["metrics"] for c in again["candidates"][:4]] == [c["metrics"] for c in ok]

    # Changing a setting invalidates the cache for every candidate.
    events.clear()
    changed = config([tiny_llama], cls_file, test_limit=3)
    run_baseline(changed, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 2

    # So does editing the data file in place: same path, other bytes.
    events.clear()
    cls_file.write_text(cls_file.read_text().replace("shows sign", "shows the sign"))
    run_baseline(changed, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 2


def test_rank_breaks_accuracy_ties_by_bits_per_byte():
    rows = [{"model": m, "status": "ok", "metrics": {"accuracy": 0.5, "answer_bpb": b}}
            for m, b in [("a", 0.9), ("b", 0.4), ("c", 0.7)]]
    assert [r["model"] for r in rank("accuracy", rows)] == ["b", "c", "a"]


def test_duplicate_candidates_and_oversized_train_limit_are_refused(tmp_path, tiny_llama, cls_file):
    with pytest.raises(ValueError, match="duplicate"):
        BaselineConfig(task="pubmedqa", candidates=[Candidate(model="x", method="lora")] * 2)
    cfg = config([tiny_llama], cls_file, train_limit=10_000)
    with pytest.raises(DamocError, match="larger than the training split"):
        run_baseline(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "results.json").exists()


def test_cli_baseline_end_to_end(tmp_path, tiny_llama, cls_file, capsys):
    out = tmp_path / "cli-run"
    code = main(["baseline", "--models", str(tiny_llama), "--methods", "lora", "full",
                 "--data", str(cls_file), "--format", "classification", "--field", "context=passage",
                 "--field", "label=y", "--max-seq-len", "64", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "lora" in printed and "full" in printed
    summary = json.loads((out / "results.json").read_text())
    assert {c["method"] for c in summary["candidates"]} == {"lora", "full"}


@pytest.mark.parametrize("argv,message", [
    (["baseline", "--models", "no_such_thing", "--task", "pubmedqa", "--out", "{tmp}/r", "--train-limit", "2"],
     "unknown model spec"),
    (["tasks", "show", "--data", "{tmp}/missing.jsonl", "--format", "generation"], "no such file"),
    (["tasks", "show", "--data", "{tmp}/bad.jsonl", "--format", "generation"], "bad.jsonl:2"),
    (["tasks", "show", "nope"], "unknown task 'nope'"),
    (["evaluate", "--model", "not a model", "--task", "pubmedqa"], "unknown model spec"),
    (["tasks", "show", "--data", "{tmp}/bad.jsonl", "--format", "generation", "--field", "oops"],
     "OURS=THEIRS"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "bad.jsonl").write_text('{"question": "a", "answer": "b"}\n{oops\n')
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("damoc: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # checked before any work: nothing written


def test_interrupt_keeps_finished_candidates(tmp_path, tiny_llama, cls_file, monkeypatch):
    import damoc.selection.runner as B

    cfg = config([tiny_llama], cls_file)  # two candidates: lora, full
    real = B.run_candidate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(B, "run_candidate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [c["method"] for c in summary["candidates"]] == ["lora"]
    assert not list((tmp_path / "run").rglob("*.tmp"))
    monkeypatch.setattr(B, "run_candidate", real)
    events = []
    run_baseline(cfg, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("cached") == 1 and events.count("start") == 1


def test_summary_reports_the_majority_answer_floor(tmp_path, tiny_llama, cls_file):
    summary = run_baseline(config([tiny_llama], cls_file, test_limit=5), tmp_path / "r", progress=False)
    answers = summary["test_answers"]
    assert sum(answers.values()) == 5
    assert summary["majority_accuracy"] == max(answers.values()) / 5
