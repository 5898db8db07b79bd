"""The DaMoC pipeline end to end on tiny models: runs, caches, validates, refuses bad run files."""

from __future__ import annotations

import json

import pytest
from conftest import save_tiny

from damoc.cli import main
from damoc.finetune import FinetuneConfig
from damoc.layers import PruneConfig
from damoc.selection.candidate import Candidate
from damoc.selection.config import FilterSettings, SelectConfig
from damoc.selection.pipeline import run_select
from damoc.tasks import DataSpec
from damoc.tokens import CompressConfig


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("select-models")
    return [str(save_tiny(root, "llama", seed=1, layers=4)), str(save_tiny(root, "gemma3", seed=2, layers=4))]


def config_for(models, cls_file) -> SelectConfig:
    return SelectConfig(
        data=DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"}),
        candidates=[Candidate(model=models[0], method="lora"), Candidate(model=models[1], method="full")],
        finetune=FinetuneConfig(max_seq_len=64, batch_size=4, micro_batch_size=4),
        test_limit=6, eval_batch_size=4,
        filter=FilterSettings(method="graphcut", rate=0.5),
        compress=CompressConfig(ratio=0.5, threshold=0.0, scorer=models[0], rewriter=None, max_tries=0),
        prune=PruneConfig(threshold=-1.0, max_fraction=0.25),
    )


def test_select_runs_caches_and_validates(models, cls_file, tmp_path):
    config = config_for(models, cls_file)
    events = []
    summary = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert [r["status"] for r in summary["candidates"]] == ["ok", "ok"]
    assert sorted(r["rank"] for r in summary["candidates"]) == [1, 2]
    for r in summary["candidates"]:
        assert r["prune"]["layers_before"] == 4 and r["prune"]["layers_after"] == 3
        assert r["eval_examples"] == 6
    data = summary["data"]
    assert data["input_examples"] == 24 and data["output_examples"] == 12  # 30 rows, 20% test, then 50%
    assert 0 < data["compress"]["context_token_ratio"] < 1
    assert data["forward_flops"] > data["filter"]["forward_flops"] > 0  # embeddings and compression counted
    assert events.count("start") == 2
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["ranking_bpb"] and saved["confidence"]["prob_best"]
    assert saved["verdict"]["recommended"] in saved["verdict"]["tie_set"]
    assert "Recommended" in (tmp_path / "run" / "report.md").read_text()

    # The same command again trains nothing and gives the same figures.
    events.clear()
    again = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0 and events.count("cached") == 2
    assert [r["metrics"] for r in again["candidates"]] == [r["metrics"] for r in summary["candidates"]]

    # Changing only the pruning redoes the candidates, not the data stage.
    changed = config.model_copy(update={"prune": PruneConfig(threshold=-1.0, max_fraction=0.0)})
    events.clear()
    third = run_select(changed, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 2 and third["data"]["seconds"] == summary["data"]["seconds"]

    # Switching the pruning back reuses the first results (kept under history/), trains nothing.
    events.clear()
    back = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0 and [r["metrics"] for r in back["candidates"]] == [
        r["metrics"] for r in summary["candidates"]]

    # Validation: the full fine-tuning baseline in OUT/full and the agreement figures.
    events.clear()
    val = run_select(changed, tmp_path / "run", progress=False, validate=True,
                     on_event=lambda k, i: events.append(k))["validation"]
    assert events.count("start") == 2  # the two full fine-tunings; the compressed ones are cached
    assert -1.0 <= val["by_rank"]["kendall_tau"] <= 1.0 and val["regret"] >= 0
    assert val["speedup_wall"] > 0 and val["speedup_flops_training_only"] > 1  # half the data
    assert 0 < val["speedup_flops"] < val["speedup_flops_training_only"]  # overheads counted
    # the whole bill: both routes' evaluations (damoc's zero-shot pass included), from what each run recorded
    summary_now = json.loads((tmp_path / "run" / "results.json").read_text())
    full_now = json.loads((tmp_path / "run" / "full" / "results.json").read_text())
    cost = summary_now["cost"]
    full_train = sum(c["train_flops"] for c in full_now["candidates"])
    full_eval = sum(c["eval_flops"] for c in full_now["candidates"])
    paid = cost["train_flops"] + summary_now["data"].get("forward_flops", 0.0) + cost["prune_flops"]
    assert cost["eval_flops"] > 0 and full_eval > 0 and cost["zero_shot_eval_flops"] > 0
    assert val["speedup_flops_with_evaluation"] == pytest.approx(
        (full_train + full_eval) / (paid + cost["eval_flops"] + cost["zero_shot_eval_flops"]))
    assert (tmp_path / "run" / "full" / "results.json").exists()
    judged = val["judged"]
    # the pick judged is what the run recommends (the cheapest of its tie set), not always its ranking's first
    assert judged["chosen"] == val["pick"] == summary_now["verdict"]["recommended"] and judged["regret_se"] >= 0
    assert judged["in_tie_set"] == (judged["chosen"] in val["truth_tie_set"])
    assert sum(val["full_confidence"]["prob_best"].values()) == pytest.approx(1.0)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Validation against full fine-tuning" in report
    assert all(r["model"] in report for r in summary["candidates"])
    page = (tmp_path / "run" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # metric, time, layer similarity, compression
    assert "Validation against full fine-tuning" in page


def test_cli_select_prints_the_ranking(models, cls_file, tmp_path, capsys):
    args = ["select", "--models", models[0], "--data", str(cls_file), "--format", "classification",
            "--field", "context=passage", "--field", "label=y", "--no-compress", "--filter.rate", "0.5",
            "--prune.max-fraction", "0.25", "--prune.threshold", "-1", "--test-limit", "4", "--max-seq-len", "64",
            "--out", str(tmp_path / "cli")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ranked by accuracy" in out and models[0] in out
    assert (tmp_path / "cli" / "report.md").exists()


def test_select_run_file_is_validated(models, cls_file, tmp_path, capsys):
    run = tmp_path / "run.yaml"
    run.write_text(f"task: pubmedqa\ncandidates:\n  - model: {models[0]}\n    method: lora\nfilter:\n  rate: 0.1\n"
                   "  colour: blue\n")
    assert main(["select", "--config", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "filter.colour" in err and not (tmp_path / "o").exists()
    run.write_text(f"task: pubmedqa\ncandidates:\n  - {{model: {models[0]}, method: lora}}\n"
                   f"  - {{model: {models[0]}, method: lora}}\n")
    assert main(["select", "--config", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "duplicate" in capsys.readouterr().err
    run.write_text("- just\n- a list\n")
    assert main(["select", "--config", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "mapping" in capsys.readouterr().err


def test_select_resumes_after_an_interruption_between_candidates(models, cls_file, tmp_path):
    config = config_for(models, cls_file)

    def stop_after_first(kind, info):
        if kind == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_select(config, tmp_path / "run", progress=False, on_event=stop_after_first)
    first = tmp_path / "run" / "candidates" / config.candidates[0].slug / "result.json"
    assert json.loads(first.read_text())["status"] == "ok"
    assert not (tmp_path / "run" / "candidates" / config.candidates[1].slug).exists()
    assert not (tmp_path / "run" / "results.json").exists()

    events = []
    summary = run_select(config, tmp_path / "run", progress=False,
                         on_event=lambda k, i: events.append((k, i.get("model"))))
    assert ("cached", models[0]) in events and ("start", models[1]) in events
    assert [k for k, _ in events].count("start") == 1
    assert [r["status"] for r in summary["candidates"]] == ["ok", "ok"]


def test_a_failing_candidate_is_reported_and_the_others_ranked(models, cls_file, tmp_path):
    import shutil

    broken = tmp_path / "broken-model"  # found before any work, fails only when its weights load
    shutil.copytree(models[0], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    config = config_for(models, cls_file).model_copy(update={
        "candidates": [Candidate(model=models[0], method="lora"), Candidate(model=str(broken), method="lora")]})
    summary = run_select(config, tmp_path / "run", progress=False)
    assert [r["status"] for r in summary["candidates"]] == ["ok", "failed"]
    assert summary["candidates"][0]["rank"] == 1 and "Safetensor" in summary["candidates"][1]["error"]
    assert "| failed |" in (tmp_path / "run" / "report.md").read_text()


def test_halving_keeps_the_better_half_on_twice_the_data(models, cls_file, tmp_path):
    from damoc.selection.strategies.halving import halving_shares

    assert halving_shares(4) == [0.25, 0.5] and halving_shares(3) == [1 / 3, 2 / 3]
    assert halving_shares(2) == [0.5] and halving_shares(1) == [1.0]
    config = config_for(models, cls_file).model_copy(update={
        "candidates": [Candidate(model=m, method=meth) for m in models for meth in ("lora", "full")],
        "halving": True})
    events = []
    summary = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    rounds = summary["halving"]["rounds"]
    assert [(len(r["ranking"]), r["examples"], len(r["kept"])) for r in rounds] == [(4, 3, 2), (2, 6, 1)]
    assert rounds[1]["ranking"] == rounds[0]["kept"] or sorted(rounds[1]["ranking"]) == sorted(rounds[0]["kept"])
    names = [f"{r['model']} {r['method']}" for r in summary["candidates"]]
    assert names[0] == rounds[1]["kept"][0] and set(names[:2]) == set(rounds[0]["kept"])
    assert [r["rank"] for r in summary["candidates"]] == [1, 2, 3, 4]
    assert summary["cost"]["training_runs"] == 6 and events.count("start") == 6
    # Every round's runs are cached: the same command again trains nothing.
    events.clear()
    run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0 and events.count("cached") == 6
    assert "Successive halving" in (tmp_path / "run" / "report.md").read_text()


def test_ray_launcher_gives_the_local_launchers_results(models, cls_file, tmp_path):
    import ray

    from damoc.selection.launch import LaunchSettings

    config = config_for(models, cls_file)
    local = run_select(config, tmp_path / "local", progress=False)
    ray.init(num_cpus=2, include_dashboard=False)  # a real local cluster: two workers in parallel
    try:
        events = []
        remote = run_select(config, tmp_path / "ray", progress=False, on_event=lambda k, i: events.append(k),
                            launch_settings=LaunchSettings(launcher="ray"))
    finally:
        ray.shutdown()
    assert events.count("start") == 2 and events.count("done") == 2
    assert [(r["model"], r["rank"]) for r in remote["candidates"]] == [(r["model"], r["rank"])
                                                                       for r in local["candidates"]]
    for a, b in zip(local["candidates"], remote["candidates"]):
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
        # A Ray worker computes with one thread (num_cpus=1), this process with two: float sums
        # are ordered differently, so bits per byte agree to about 1e-4, not to the last bit.
        assert a["metrics"]["answer_bpb"] == pytest.approx(b["metrics"]["answer_bpb"], rel=1e-3)
        assert (tmp_path / "ray" / "candidates" / Candidate(model=b["model"], method=b["method"]).slug
                / "predictions.jsonl").exists()


def test_tied_leaders_are_named_and_the_cheaper_recommended():
    from damoc.report.markdown import verdict_lines
    from damoc.selection.summary import verdict

    def recs(correct):
        return [{"id": str(i), "label": 1, "pred": 1 if c else 0, "answer_nll": 1.0, "answer_bytes": 4}
                for i, c in enumerate(correct)]

    ok = [{"model": "big", "method": "full", "train_flops": 9e12, "metrics": {"answer_bpb": 0.5}},
          {"model": "small", "method": "lora", "train_flops": 1e12, "metrics": {"answer_bpb": 0.6}},
          {"model": "bad", "method": "lora", "train_flops": 1e11, "metrics": {"answer_bpb": 0.9}}]
    preds = {"big full": recs([1] * 150 + [0] * 50), "small lora": recs([1] * 149 + [0] * 51),
             "bad lora": recs([1] * 60 + [0] * 140)}
    v = verdict(ok, preds, choice=True, seed=0)
    assert v["tied"] and v["tie_set"] == ["big full", "small lora"] and v["recommended"] == "small lora"
    assert v["best_by_metric"] == "big full"
    from damoc.selection.results import Verdict

    text = "\n".join(verdict_lines(Verdict.model_validate(v)))
    assert "Tied: big full, small lora" in text and "Recommended: small lora, the cheapest" in text
    clear = verdict(ok[:1] + ok[2:], {"big full": preds["big full"], "bad lora": preds["bad lora"]}, True, 0)
    assert not clear["tied"] and clear["recommended"] == "big full"


def test_label_problems_are_said_once_even_with_validation(models, cls_file, tmp_path, capsys):
    import json as _json

    one_class = tmp_path / "test-yes.jsonl"
    one_class.write_text("".join(_json.dumps({"question": f"q{i}?", "passage": "sign yes " * 3, "y": "yes"}) + "\n"
                                 for i in range(6)))
    config = config_for(models, cls_file).model_copy(update={
        "data": DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"},
                         test_path=one_class, labels=["maybe", "no", "yes"]),
        "compress": None, "prune": None, "candidates": [Candidate(model=models[0], method="lora")]})
    run_select(config, tmp_path / "run", progress=False, validate=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("damoc: warning:")]
    assert warnings and len(warnings) == len(set(warnings))  # each said once, not again by the validation


def test_methods_of_one_model_share_one_prune_plan(models, cls_file, tmp_path, monkeypatch):
    """The layers a prune removes do not depend on the fine-tuning method: the second candidate of a
    model replays the first one's plan, and the run's cost counts that similarity pass once."""
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    config = config_for(models, cls_file).model_copy(update={
        "candidates": [Candidate(model=models[0], method="lora"), Candidate(model=models[0], method="full")],
        "filter": None, "compress": None, "zero_shot": False})
    summary = run_select(config, tmp_path / "run", progress=False)
    lora, full = sorted(summary["candidates"], key=lambda r: r["method"] != "lora")
    assert lora["prune"]["plan"] == full["prune"]["plan"] and lora["prune"]["removed"] == full["prune"]["removed"]
    assert sorted([lora["prune"]["plan_reused"], full["prune"]["plan_reused"]]) == [False, True]
    one_pass = lora["prune"]["forward_flops"]
    assert one_pass > 0 and full["prune"]["forward_flops"] == one_pass
    assert summary["cost"]["prune_flops"] == pytest.approx(one_pass)
    # other texts are another plan: a change of data measures again
    other = config.model_copy(update={"train_limit": 8})
    again = run_select(other, tmp_path / "run2", progress=False)
    assert len({r["prune"]["plan"] for r in again["candidates"]} | {lora["prune"]["plan"]}) == 2
    assert sorted(r["prune"]["plan_reused"] for r in again["candidates"]) == [False, True]


def test_prune_flops_count_every_measured_pass_and_each_replayed_plan_once():
    from damoc.selection.summary import prune_flops

    def run(plan, reused, flops=10.0):
        return {"prune": {"plan": plan, "plan_reused": reused, "forward_flops": flops}}

    assert prune_flops([run("a", False), run("a", True), run("a", True)]) == 10.0  # one pass, replayed twice
    assert prune_flops([run("a", False), run("a", False)]) == 20.0  # two parallel candidates both measured
    assert prune_flops([run("a", True), run("a", True), run("b", True, 5.0)]) == 15.0  # plans from an earlier run
    assert prune_flops([{"prune": {"forward_flops": 3.0}}, {"prune": {"forward_flops": 3.0}}, {}]) == 6.0  # older runs
