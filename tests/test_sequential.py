"""Sequential evaluation's rule (issue 28), measured by simulation: its stated error rate (a candidate
as good as the leader is dropped in at most alpha of runs) holds, clearly worse candidates stop early,
and the per-question bits-per-byte scores average exactly to the bpb difference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from damoc.selection.sequential import decide, looks, per_question, z_for


def test_the_looks_double_up_to_the_total():
    assert looks(100, 1000) == [100, 200, 400, 800, 1000]
    assert looks(100, 100) == [100] and looks(100, 150) == [100, 150]
    assert z_for(0.05, 4, 5) > z_for(0.05, 1, 2) > 1.6


def simulate(p: dict[str, float], total: int, seed: int, shared: float = 0.0) -> dict[str, np.ndarray]:
    """Per-question correctness; `shared` mixes in a per-question difficulty every candidate feels."""
    rng = np.random.default_rng(seed)
    hard = rng.random(total)
    out = {}
    for name, acc in p.items():
        own = rng.random(total)
        u = shared * hard + (1 - shared) * own
        out[name] = (u < acc).astype(float)
    return out


@pytest.mark.parametrize("shared", [0.0, 0.6])
def test_a_candidate_as_good_as_the_leader_is_dropped_in_at_most_alpha_of_runs(shared):
    wrong, runs = 0, 400
    for seed in range(runs):
        scores = simulate({"a": 0.6, "b": 0.6, "c": 0.6, "d": 0.6}, 1000, seed, shared)
        result = decide(lambda name, n, s=scores: s[name][:n], list(scores), 1000, alpha=0.05)
        wrong += bool(result.dropped)
    rate = wrong / runs
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)  # the stated rate, within two binomial SE


def test_clearly_worse_candidates_stop_early_and_the_best_survives():
    seen, kept_best = [], 0
    for seed in range(100):
        scores = simulate({"best": 0.8, "w1": 0.5, "w2": 0.5, "w3": 0.5}, 1000, seed)
        result = decide(lambda name, n, s=scores: s[name][:n], list(scores), 1000)
        kept_best += "best" in result.survivors
        seen.append(sum(result.questions.values()))
    assert kept_best == 100
    assert np.mean(seen) < 0.4 * 4 * 1000  # most of the evaluation is saved


def test_a_tie_within_the_margin_stops_before_the_questions_run_out():
    scores = simulate({"a": 0.7, "b": 0.7}, 2000, 3, shared=0.9)
    result = decide(lambda name, n: scores[name][:n], ["a", "b"], 2000, margin=0.1)
    assert result.survivors == ["a", "b"] and "within the tie margin" in result.stopped
    assert result.questions["a"] < 2000


def _pick(scores: dict[str, np.ndarray], result, cost: dict[str, float]) -> str:
    """The verdict's rule on a run's survivors, on the questions they all saw."""
    from damoc.selection.sequential import cheapest_tied

    n = min(result.questions[a] for a in result.survivors)
    return cheapest_tied({a: scores[a][:n] for a in result.survivors}, cost)


@pytest.mark.parametrize("means", [{"a": 0.6, "b": 0.6, "c": 0.6, "d": 0.6},
                                   {"a": 0.62, "b": 0.6, "c": 0.58, "d": 0.56},
                                   {"a": 0.63, "b": 0.6, "c": 0.5, "d": 0.5}])
def test_a_settled_stop_changes_the_pick_in_about_gamma_of_runs_or_fewer(means):
    """The stated rate of `settle`: against the same run scoring every question the drop rule allows, the
    pick differs in at most gamma of runs (within two binomial SE), and fewer questions are scored."""
    cost = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.5}
    changed, saved, runs = 0, 0, 300
    for seed in range(runs):
        scores = simulate(means, 1000, seed, shared=0.3)
        full = decide(lambda name, n, s=scores: s[name][:n], list(scores), 1000)
        early = decide(lambda name, n, s=scores: s[name][:n], list(scores), 1000, settle=0.05, cost=cost)
        changed += _pick(scores, full, cost) != _pick(scores, early, cost)
        saved += sum(full.questions.values()) - sum(early.questions.values())
        assert set(early.dropped) <= set(full.dropped)  # settling never drops anyone
    assert changed / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
    assert saved > 0


def test_the_pick_settles_before_two_others_separate():
    """ASDiv's shape: the pick leads two candidates it is tied with, and a cheaper one is clearly behind but
    slow to drop; settling stops once that one cannot come back within two SE, before the drop rule would."""
    from damoc.selection.sequential import settled

    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 1000)
    scores = {"pick": base + 0.05 + rng.normal(0, 0.3, 1000), "tied": base + 0.04 + rng.normal(0, 0.3, 1000),
              "cheap": base - 0.02 + rng.normal(0, 0.3, 1000)}
    cost = {"pick": 2.0, "tied": 3.0, "cheap": 1.0}
    full = decide(lambda name, n: scores[name][:n], list(scores), 1000)
    early = decide(lambda name, n: scores[name][:n], list(scores), 1000, settle=0.05, cost=cost)
    assert "settled" in early.stopped and sum(early.questions.values()) < sum(full.questions.values())
    assert _pick(scores, early, cost) == _pick(scores, full, cost) == "pick"
    assert settled({k: v[:100] for k, v in scores.items()}, cost, 1000, 0.05) is None  # too early to tell


def test_a_margin_ends_the_race_between_two_near_identical_adapters():
    """ASDiv's long runs: the cheaper adapter trails its twin by a hair (0.001) at a tiny paired SE, so
    whether it ends within 2 SE of it, and becomes the pick, stays a coin toss to the last question. With
    a margin above that hair the pair ties whatever the SE, the pick is the cheaper twin, and the run
    settles at the first look, though a third candidate is still in the race (so not every pair is within
    the margin); without one it scores on. A candidate within the margin is never dropped."""
    from damoc.selection.sequential import cheapest_tied, settled, step

    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 1000)
    twin = base + rng.normal(0, 0.01, 1000)
    scores = {"dora": twin + 0.001, "lora": twin + rng.normal(0, 0.01, 1000),
              "other": base - 0.05 + rng.normal(0, 0.3, 1000)}
    cost = {"dora": 1.1, "lora": 1.0, "other": 2.0}
    first = {k: v[:100] for k, v in scores.items()}
    assert settled(first, cost, 1000, 0.05) is None
    assert cheapest_tied(first, cost, margin=0.01) == "lora"
    assert settled(first, cost, 1000, 0.05, margin=0.01) == "lora"
    plain = decide(lambda name, n: scores[name][:n], list(scores), 1000, settle=0.05, cost=cost)
    wide = decide(lambda name, n: scores[name][:n], list(scores), 1000, settle=0.05, cost=cost, margin=0.01)
    assert wide.stopped == "the pick is settled after 100 questions" and not wide.dropped
    assert max(plain.questions.values()) > 100
    # clearly behind by more SE than the drop rule asks, but within the margin: kept
    near = {"a": base[:400], "b": base[:400] - 0.005 + rng.normal(0, 0.001, 400)}
    assert step(near, 3.0, 0.0)[0] == {"b"} and step(near, 3.0, 0.01)[0] == set()


def test_an_evaluation_budget_stops_before_the_batch_that_would_pass_it():
    """Two candidates as good as each other: no rule can stop the run before the last question. With a
    budget of 1x their training FLOPs (2,000) at 1 and 2 FLOPs per question, 400 questions cost 1,200 and 800
    would cost 2,400: the run stops after 400. A dropped candidate's questions still count, at its drop."""
    from damoc.selection.sequential import budget_passed, budget_stop

    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 1000)
    scores = {"a": base + rng.normal(0, 0.5, 1000), "b": base + rng.normal(0, 0.5, 1000)}
    cost, per_question = {"a": 1000.0, "b": 1000.0}, {"a": 1.0, "b": 2.0}
    free = decide(lambda name, n: scores[name][:n], list(scores), 1000, cost=cost)
    capped = decide(lambda name, n: scores[name][:n], list(scores), 1000, cost=cost, budget=1.0,
                    eval_cost=per_question)
    assert free.stopped == "all 1000 questions used"
    assert capped.stopped == budget_stop(1.0, 400) and capped.questions == {"a": 400, "b": 400}
    assert capped.survivors == ["a", "b"]
    # a third, clearly worse and dearer to score, is dropped at 100: its 100 questions count, no more, so the
    # run stops after 800 (priced as if it went on, after 400; without it, never)
    third = {**scores, "c": base - 2 + rng.normal(0, 0.5, 1000)}
    dropping = decide(lambda name, n: third[name][:n], list(third), 1000, cost={**cost, "c": 1000.0}, budget=1.0,
                      eval_cost={**per_question, "c": 4.0})
    assert dropping.dropped == {"c": 100} and dropping.stopped == budget_stop(1.0, 800)
    assert not budget_passed({"a": 1.0, "b": 1.0}, {"a": 100, "b": 800}, 900.0, 1.0)
    assert budget_passed({"a": 1.0, "b": 1.0}, {"a": 100, "b": 1000}, 900.0, 1.0)
    with pytest.raises(ValueError, match="per question"):
        decide(lambda name, n: scores[name][:n], list(scores), 1000, cost=cost, budget=1.0)
    with pytest.raises(ValueError, match="no candidates"):
        decide(lambda name, n: scores[name][:n], [], 1000)


def test_the_verdict_ties_a_difference_within_the_margin_however_many_se_it_is():
    from damoc.report.text import verdict_sentence
    from damoc.selection.results import Verdict
    from damoc.selection.summary import verdict

    rng = np.random.default_rng(2)
    nll = 10 * np.log(2) * (1.0 + 0.3 * rng.standard_normal(400))
    preds = {"m dora": [{"id": str(i), "answer_nll": float(x), "answer_bytes": 10} for i, x in enumerate(nll)],
             "m lora": [{"id": str(i), "answer_nll": float(x) + 0.02, "answer_bytes": 10} for i, x in enumerate(nll)]}
    ok = [{"model": "m", "method": m, "train_flops": f, "metrics": {"answer_bpb": b}}
          for m, f, b in [("dora", 1.1, 1.0), ("lora", 1.0, 1.003)]]
    strict = verdict(ok, preds, choice=False, seed=0)
    assert strict["tie_set"] == ["m dora"] and strict["recommended"] == "m dora"  # 0.003 bpb, many SE
    loose = verdict(ok, preds, choice=False, seed=0, margin=0.01)
    assert loose["tie_set"] == ["m dora", "m lora"] and loose["recommended"] == "m lora"
    assert "within two paired standard errors or 0.01 of the best" in verdict_sentence(Verdict.model_validate(loose))


def test_per_question_bits_average_to_the_bits_per_byte_difference():
    rng = np.random.default_rng(0)
    nbytes = rng.integers(3, 40, 50)
    a = [{"answer_nll": x, "answer_bytes": b} for x, b in zip(rng.random(50) * 10, nbytes)]
    b = [{"answer_nll": x, "answer_bytes": n} for x, n in zip(rng.random(50) * 10, nbytes)]

    def bpb(recs):
        return sum(r["answer_nll"] for r in recs) / math.log(2) / sum(r["answer_bytes"] for r in recs)

    diff = (per_question(a, "answer_bpb") - per_question(b, "answer_bpb")).mean()
    assert diff == pytest.approx(bpb(b) - bpb(a))  # higher score = fewer bits


def tiny_select(tmp_path, cls_file, methods=("lora",), **settings):
    """Two tiny models (x `methods`) on a classification file, 15 test questions, batches of 4, 8 and 15;
    `settings` override the SelectConfig (eval settings included). Returns (model paths, config)."""
    from conftest import save_tiny

    from damoc.finetune import FinetuneConfig
    from damoc.selection.candidate import Candidate
    from damoc.selection.config import EvalSettings, FilterSettings, SelectConfig
    from damoc.tasks import DataSpec

    models = [str(save_tiny(tmp_path, "llama", seed=1)), str(save_tiny(tmp_path, "llama", seed=3))]
    config = SelectConfig(**{
        "data": DataSpec(path=cls_file, format="classification", fields={"context": "passage", "label": "y"},
                         test_fraction=0.5),
        "candidates": [Candidate(model=m, method=method) for m in models for method in methods],
        "finetune": FinetuneConfig(max_seq_len=96, batch_size=4, micro_batch_size=4, min_steps=2),
        "eval_batch_size": 4, "filter": FilterSettings(method="random", rate=0.5), "compress": None,
        "prune": None, "zero_shot": False, "eval": EvalSettings(strategy="sequential", first=4, growth=2.0),
        **settings})
    return models, config


def test_a_sequential_select_run_scores_only_what_it_needs_and_resumes(tmp_path, cls_file, capsys):
    """Two tiny models on a classification file, batches of 4, 8 and 12 test questions; the rule decides on
    the same questions for both; the trained models are kept for the later batches; a re-run trains nothing."""
    import json

    from damoc.selection.candidate import Candidate
    from damoc.selection.config import EvalSettings
    from damoc.selection.pipeline import run_select

    models, config = tiny_select(tmp_path, cls_file,  # settle off: the batches run
                                 eval=EvalSettings(strategy="sequential", first=4, growth=2.0, settle=0.0,
                                                   budget=0.0))
    import re

    from damoc.cli.printing import progress_printer

    events: list[str] = []
    printer = progress_printer(len(config.candidates))
    summary = run_select(config, tmp_path / "run", progress=False,
                         on_event=lambda k, i: (events.append(k), printer(k, i)))
    seq = summary["sequential"]
    assert seq["looks"] == [4, 8, 15] and events.count("start") >= 2
    # the terminal counts each batch's candidates afresh and says a later batch only evaluates
    err = capsys.readouterr().err
    counters = re.findall(r"^\[(\d+)/(\d+)\]", err, re.M)
    assert counters and all(int(a) <= int(b) for a, b in counters), err
    if max(seq["questions"].values()) > 4:
        assert "== sequential evaluation: test questions 5-8" in err and ": evaluating" in err
    assert all(n in seq["looks"] for n in seq["questions"].values())
    ranked = [c for c in summary["candidates"] if c["status"] == "ok"]
    assert sorted(c["rank"] for c in ranked) == [1, 2]
    for c in ranked:
        assert c["eval_examples"] == seq["questions"][f"{c['model']} {c['method']}"] and c["eval_flops"] > 0
        # the copies kept for the later batches are removed once the run has decided
        slug = Candidate(model=c["model"], method="lora").slug
        assert not (tmp_path / "run" / "candidates" / slug / "model").exists()
    assert summary["cost"]["training_runs"] == 2  # evaluation rounds are not training runs
    assert "## Sequential evaluation" in (tmp_path / "run" / "report.md").read_text()
    json.loads((tmp_path / "run" / "results.json").read_text())
    events.clear()
    again = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0 and again["sequential"]["questions"] == seq["questions"]
    # Other batch sizes need the removed models back: the survivors of the first batch are trained again
    # (counted as paid) and their copies removed afterwards.
    events.clear()
    wider = config.model_copy(update={"eval": EvalSettings(strategy="sequential", first=4, growth=3.0, settle=0.0,
                                                           budget=0.0)})
    third = run_select(wider, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    needed = sum(n >= 12 for n in third["sequential"]["questions"].values())
    assert third["sequential"]["looks"] == [4, 12, 15] and needed >= 1
    assert third["cost"]["training_runs"] == 2 + needed  # each batch's evaluation is a start event too
    # a batch that trained again also scored the first batch again: it says which questions, for pricing
    again_paid = [r for r in third["paid_runs"] if r.get("rescored")]
    assert len(again_paid) == needed and all(r["rescored"] == [0, 4] and r["eval_range"] == [4, 12]
                                             for r in again_paid)
    assert not list((tmp_path / "run" / "candidates").glob("*/model"))
    # that training's cost is stored with the batch it served: a re-run from the cache reports it too
    fourth = run_select(wider, tmp_path / "run", progress=False)
    assert fourth["cost"]["training_runs"] == third["cost"]["training_runs"]
    assert fourth["cost"]["train_flops"] == pytest.approx(third["cost"]["train_flops"])
    # the default also stops once the pick is settled, or before the evaluation budget is passed; the run and
    # its report say which rule stopped it
    default = config.model_copy(update={"eval": EvalSettings(strategy="sequential", first=4, growth=2.0)})
    fifth = run_select(default, tmp_path / "run", progress=False)["sequential"]
    assert fifth["settle"] == 0.05 and fifth["budget"] == 0.5
    assert re.match(r"(one candidate left|the pick is settled|the evaluation budget|all 15 questions used)",
                    fifth["stopped"])
    if not fifth["stopped"].startswith(("one", "all")):
        assert max(fifth["questions"].values()) < 15
    report = (tmp_path / "run" / "report.md").read_text()
    assert "predictive probability below 0.05" in report and "past 0.5x the candidates' training FLOPs" in report
    # the run and the replays' rule (sequential.decide) stop alike: a budget between what the batches up to 8
    # and to 15 questions cost stops after 8
    from damoc.selection.sequential import budget_stop, decide, per_question

    assert seq["stopped"] == "all 15 questions used"
    ok = {f"{c['model']} {c['method']}": c for c in ranked}
    slug = {c.name: c.slug for c in config.candidates}
    price = {n: json.loads((tmp_path / "run" / "candidates" / slug[n] / "result.json").read_text())["eval_flops"] / 4
             for n in ok}
    train = {n: c["train_flops"] for n, c in ok.items()}
    at = {k: sum(price[n] * min(q, k) for n, q in seq["questions"].items()) for k in (8, 15)}
    budget = (at[8] + at[15]) / 2 / sum(train.values())
    between = config.model_copy(update={"eval": EvalSettings(strategy="sequential", first=4, growth=2.0,
                                                             settle=0.0, budget=budget)})
    run = run_select(between, tmp_path / "run", progress=False)["sequential"]
    preds = {n: [json.loads(line) for line in (tmp_path / "run" / "sequential" / slug[n] / "predictions.jsonl")
                 .read_text().splitlines()] for n in ok}
    replayed = decide(lambda n, k: per_question(preds[n][:k], "accuracy"), list(ok), 15, first=4, cost=train,
                      budget=budget, eval_cost=price)
    assert run["stopped"] == replayed.stopped == budget_stop(budget, 8)
    assert run["questions"] == replayed.questions
    # a budget smaller than the first batch already cost: no later batch is scored, and the report says why
    capped = config.model_copy(update={"eval": EvalSettings(strategy="sequential", first=4, growth=2.0,
                                                            settle=0.0, budget=1e-6)})
    sixth = run_select(capped, tmp_path / "run", progress=False)["sequential"]
    assert max(seq["questions"].values()) > 4  # without the budget this data goes past the first batch
    assert sixth["stopped"] == "the evaluation budget (1e-06x the training FLOPs) would be passed by the next " \
                               "batch, after 4 questions" and max(sixth["questions"].values()) == 4
    assert "past 1e-06x the candidates' training FLOPs" in (tmp_path / "run" / "report.md").read_text()



@pytest.mark.parametrize(("means", "keep"), [({"a": 0.6, "b": 0.6, "c": 0.6, "d": 0.6}, 2),
                                             ({"a": 0.62, "b": 0.6, "c": 0.58, "d": 0.56}, 2),
                                             ({f"x{i}": 0.5 + 0.02 * i for i in range(8)}, 4)])
def test_a_halving_round_settles_its_better_half_as_scoring_everything_would(means, keep):
    """Successive halving's rule under sequential evaluation: the part a round keeps when it stops early
    differs from the part every question would keep in at most gamma of runs (two binomial SE)."""
    from damoc.selection.sequential import best_part, part_decided, part_settled

    changed, questions, runs = 0, [], 300
    for seed in range(runs):
        scores = simulate(means, 1000, seed, shared=0.3)
        plan = looks(100, 1000)
        z = z_for(0.05, len(plan), len(means))
        for n in plan:
            seen = {k: v[:n] for k, v in scores.items()}
            if part_decided(seen, keep, z) or (n < 1000 and part_settled(seen, 1000, keep, 0.05)):
                break
        changed += set(best_part(seen, keep)) != set(best_part(scores, keep))
        questions.append(n)
    assert changed / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
    assert np.mean(questions) < 1000  # it does stop early


def test_a_part_far_ahead_is_decided_and_one_level_with_the_rest_is_not():
    from damoc.selection.sequential import part_decided, part_settled

    scores = simulate({"a": 0.9, "b": 0.85, "c": 0.3, "d": 0.25}, 400, 0)
    assert part_decided(scores, 2, z_for(0.05, 4, 4)) and part_settled(scores, 1000, 2, 0.05)
    level = simulate({"a": 0.6, "b": 0.6, "c": 0.6, "d": 0.6}, 100, 1)
    assert not part_decided(level, 2, z_for(0.05, 4, 4)) and not part_settled(level, 1000, 2, 0.05)


def test_halving_rounds_score_only_until_their_better_half_is_decided(tmp_path, cls_file):
    """Four tiny candidates under successive halving with batches of 4, 8 and 15 test questions: each round
    scores its candidates on the same questions until its better half is decided, every batch it paid for
    is on record with its questions, the kept copies are removed, and a re-run trains nothing."""
    from damoc.layers import PruneConfig
    from damoc.selection.pipeline import run_select

    _, config = tiny_select(tmp_path, cls_file, ("lora", "full"), strategy="halving",
                            prune=PruneConfig(threshold=-1.0, max_fraction=0.25))
    events: list[str] = []
    summary = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    rounds = summary["halving"]["rounds"]
    assert [len(r["ranking"]) for r in rounds] == [4, 2] and summary["halving"]["evaluation"] == "sequential"
    assert all(r["questions"] in (4, 8, 15) and r["stopped"] for r in rounds), rounds
    assert max(r["questions"] for r in rounds) > 4, rounds  # the tiny models need more than one batch
    paid = summary["paid_runs"]
    assert summary["cost"]["training_runs"] == 6 and sum(p["eval_range"][0] == 0 for p in paid) == 6
    assert sum(p["eval_range"][1] - p["eval_range"][0] for p in paid) == sum(
        len(r["ranking"]) * r["questions"] for r in rounds)
    # a later batch scores the pruned model its training kept, and says so (its FLOPs are priced on it)
    assert {p["layers_after"] for p in paid} == {p["layers_after"] for p in paid if p["eval_range"][0] == 0} != {None}
    assert not list((tmp_path / "run" / "halving").glob("round-*/*/model"))
    ranked = sorted((c for c in summary["candidates"] if c["status"] == "ok"), key=lambda c: c["rank"])
    assert f"{ranked[0]['model']} {ranked[0]['method']}" == rounds[1]["kept"][0]
    events.clear()
    again = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("start") == 0 and again["halving"]["rounds"] == rounds


def test_a_candidate_whose_later_batch_fails_is_reported_failed(tmp_path, cls_file, monkeypatch):
    """A batch after the first that fails (a kept model unreadable, a device error) fails its candidate
    with the error, instead of leaving it ranked on fewer questions than the rest."""
    import damoc.selection.batched as batched
    from damoc.selection.config import EvalSettings
    from damoc.selection.pipeline import run_select

    models, config = tiny_select(tmp_path, cls_file,  # no drop, no settling, no budget: the second batch runs
                                 eval=EvalSettings(strategy="sequential", first=4, growth=2.0, alpha=1e-9, settle=0.0,
                                                   budget=0.0))
    real = batched.evaluate_kept

    def flaky(config, candidate, *args):
        if candidate.model == models[1]:
            raise RuntimeError("device lost")
        return real(config, candidate, *args)

    monkeypatch.setattr(batched, "evaluate_kept", flaky)
    summary = run_select(config, tmp_path / "run", progress=False)
    status = {c["model"]: c["status"] for c in summary["candidates"]}
    assert status == {models[0]: "ok", models[1]: "failed"}
    broken = next(c for c in summary["candidates"] if c["model"] == models[1])
    assert "device lost" in broken["error"] and "rank" not in broken


def test_the_pick_is_the_cheapest_within_two_paired_se_of_the_best():
    from damoc.selection.sequential import cheapest_tied

    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 400)
    scores = {"best": base + 0.10 + rng.normal(0, 0.5, 400), "near": base + 0.08 + rng.normal(0, 0.5, 400),
              "far": base - 0.5 + rng.normal(0, 0.5, 400)}
    cost = {"best": 3.0, "near": 2.0, "far": 1.0}
    assert cheapest_tied(scores, cost) == "near"  # within 2 SE of the best, and cheaper; "far" is not tied
    assert cheapest_tied(scores, {**cost, "near": 4.0}) == "best"
    assert cheapest_tied({"a": base, "b": base.copy()}, {"a": 1.0, "b": 1.0}) == "a"  # equal: the order given
