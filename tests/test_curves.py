"""Learning-curve fits and the racing rules of adaptive selection (issue 16's building blocks)."""

import numpy as np
import pytest

from damoc.selection.curves import choose_extrapolator, predict_curves
from damoc.selection.laws import fit_curve, rectified_law
from damoc.selection.racing import Rung, confident_pick, prob_best_at, to_drop

SIZES = [10, 20, 40, 80, 160, 320]


def test_the_fit_recovers_a_synthetic_rectified_law_curve():
    truth = dict(b=6.0, d_l=30.0, beta=0.7, e=0.6)
    values = [rectified_law(d, **truth) for d in SIZES]
    fit = fit_curve(SIZES, values)
    assert fit.law == "rectified"
    # Extrapolated to ten times the last rung, the fit stays within 2% of the law.
    assert fit.predict(3200) == pytest.approx(rectified_law(3200, **truth), rel=0.02)
    assert fit.params["e"] == pytest.approx(truth["e"], abs=0.1)
    assert fit.loo_error is not None and fit.loo_error < 0.02


def test_too_few_rungs_fall_back_to_a_power_law_and_say_so():
    fit = fit_curve([10, 20, 40], [2.0, 1.6, 1.35])
    assert fit.law == "power" and fit.predict(80) < 1.35 and fit.loo_error is None
    assert fit_curve([10, 20], [2.0, 1.6]).law == "flat"


def test_the_loglinear_law_is_a_line_through_the_last_points_only():
    """The power phase: an early point off the line (the pre-power phase) does not move it."""
    sizes = [10, 20, 40, 80, 160]
    values = [9.0] + [5.0 * d ** -0.2 for d in sizes[1:]]
    fit = fit_curve(sizes, values, law="loglinear", window=3)
    assert fit.law == "loglinear" and fit.params["beta"] == pytest.approx(0.2)
    assert fit.predict(10_000) == pytest.approx(5.0 * 10_000 ** -0.2)
    assert fit_curve([0, 10, 20], [30.0, 2.0, 1.8], law="loglinear").predict(20) == pytest.approx(1.8)  # 0 left out


def test_accept_then_stop_takes_the_power_phase_and_keeps_old_points_after_a_jump():
    """AtS's window: every point of a straight log-log line; not the flat pre-power phase before it;
    and behind a last point that jumped, more points than the fixed three, so the jump is diluted."""
    from damoc.selection.laws import ACCEPT, accepted_window

    sizes = np.array([200.0 * 2 ** k for k in range(8)])
    line = 5.0 * sizes ** -0.2
    assert accepted_window(np.log(sizes), np.log(line)) == 8
    bent = line.copy()
    bent[:2] = 4.0  # the pre-power phase: far above the line
    assert accepted_window(np.log(sizes), np.log(bent)) == 6
    jumped = line * np.exp(np.random.default_rng(0).normal(0, 0.01, 8))
    jumped[-1] *= 0.85
    w = accepted_window(np.log(sizes), np.log(jumped))
    assert w > 3
    accepted = fit_curve(sizes, jumped, law="loglinear", window=ACCEPT)
    assert accepted.params == fit_curve(sizes, jumped, law="loglinear", window=w).params
    last3 = fit_curve(sizes, jumped, law="loglinear", window=3)
    assert accepted.predict(1e6) > last3.predict(1e6)  # the jump extrapolated less


def curves_of(fn, n=12, sizes=tuple(100 * 2 ** k for k in range(10)), seed=0):
    rng = np.random.default_rng(seed)
    return {f"m{i}": (list(sizes), [fn(d, rng_i) for d in sizes])
            for i, rng_i in enumerate(rng.uniform(0, 1, (n, 3)))}


def test_backtests_choose_the_rectified_law_for_curves_that_follow_it_and_the_line_for_noisy_ones():
    bent = curves_of(lambda d, u: rectified_law(d, b=5 + 50 * u[0], d_l=2 + 40 * u[1], beta=0.4 + 0.4 * u[2], e=0.8))
    assert choose_extrapolator({k: (np.array(x, float), np.array(y)) for k, (x, y) in bent.items()}).law == "rectified"
    rng = np.random.default_rng(1)
    noisy = curves_of(lambda d, u: (3 + 3 * u[0]) * d ** -(0.03 + 0.1 * u[1]) * np.exp(rng.normal(0, 0.01)))
    ex = choose_extrapolator({k: (np.array(x, float), np.array(y)) for k, (x, y) in noisy.items()})
    assert ex.law == "loglinear" and ex.backtest["compared_on"] > 0


def test_calibration_learns_a_bend_every_curve_shares():
    """log L = a - s ln D - c (ln D)^2: every curve steepens alike, which a line through the last
    points misses; the backtests' drift puts it back, for every candidate."""
    def steepening(d, u):
        x = np.log(d)
        return float(np.exp(1.5 + u[0] - (0.02 + 0.05 * u[1]) * x - 0.004 * x ** 2))

    curves = curves_of(steepening)
    target = 100 * 2 ** 12
    truth = {n: steepening(target, u) for n, u in zip(curves, np.random.default_rng(0).uniform(0, 1, (12, 3)))}
    fixed = predict_curves(curves, target, laws=("loglinear",))
    plain = predict_curves(curves, target, laws=("loglinear",), calibrate=False)
    err = {name: np.median([abs(p.predicted / truth[p.name] - 1) for p in o.predictions])
           for name, o in (("fixed", fixed), ("plain", plain))}
    assert fixed.extrapolator.drift < 0 and plain.extrapolator.drift == 0
    assert err["fixed"] < err["plain"] / 2
    assert [p.name for p in fixed.predictions] == sorted(truth, key=truth.get)


def rung(size, level, n=60, seed=0):
    rng = np.random.default_rng(seed + size)
    nbytes = rng.integers(5, 15, n).astype(float)
    nll = nbytes * np.log(2) * (level + rng.normal(0, 0.05, n))
    return Rung(size, nll, nbytes)


def test_racing_drops_a_candidate_that_cannot_be_best_and_the_stop_rule_fires():
    curves = {"good": [rung(d, 2.0 / d ** 0.3 + 0.5) for d in SIZES],
              "bad": [rung(d, 2.0 / d ** 0.3 + 1.5, seed=1) for d in SIZES]}
    prob = prob_best_at(curves, full_size=1000, samples=50)
    assert prob["good"] == 1.0 and prob["bad"] == 0.0
    assert to_drop(prob, below=0.05) == ["bad"]
    assert confident_pick(prob, level=0.9) == "good"


def test_a_prediction_that_hangs_on_one_rung_is_not_called_certain():
    """The zoo's failure (ASDiv): a jumpy curve whose last rung falls steeply extrapolates far below a
    smooth one. Resampling questions alone calls it best with certainty; refitting without one rung
    at a time shows how much the extrapolation hangs on that last point."""
    sizes = [10, 20, 40, 80]
    curves = {"jumpy": [rung(d, v) for d, v in zip(sizes, [1.04, 1.12, 1.01, 0.90])],
              "smooth": [rung(d, v, seed=1) for d, v in zip(sizes, [1.00, 0.97, 0.95, 0.94])]}
    questions_only = prob_best_at(curves, full_size=1000, samples=200, rung_dropout=False)
    assert confident_pick(questions_only, level=0.9) == "jumpy"
    both = prob_best_at(curves, full_size=1000, samples=200)
    assert 0.1 < both["smooth"] < 0.5 and confident_pick(both, level=0.9) is None
    assert to_drop(both, below=0.05) == []


def test_close_candidates_are_neither_dropped_nor_picked():
    prob = {"a": 0.55, "b": 0.45}
    assert to_drop(prob, below=0.05) == [] and confident_pick(prob, level=0.9) is None
    assert to_drop({"a": 0.0, "b": 0.0}, below=0.05) == []  # never every candidate


def two_tiny_adaptive(tmp_path, gen_file, drop_below: float):
    """Two tiny models on a generation file, adaptive rungs of 20%..100%, confidence 1.0."""
    from conftest import save_tiny

    from damoc.finetune import FinetuneConfig
    from damoc.selection.adaptive import AdaptiveSettings
    from damoc.selection.candidate import Candidate
    from damoc.selection.config import SelectConfig
    from damoc.tasks import DataSpec

    models = [str(save_tiny(tmp_path, "llama", seed=1)), str(save_tiny(tmp_path, "gemma3", seed=2))]
    return models, SelectConfig(
        data=DataSpec(path=gen_file, format="generation", test_fraction=0.5),
        candidates=[Candidate(model=m, method="lora") for m in models],
        finetune=FinetuneConfig(max_seq_len=48, batch_size=2, micro_batch_size=2, min_steps=2),
        compress=None, prune=None, generation=False, strategy="adaptive", zero_shot=False,
        adaptive=AdaptiveSettings(rungs=[0.2, 0.4, 0.6, 0.8, 1.0], eval_questions=10, max_share=1.0,
                                  confidence=1.0, drop_below=drop_below, bootstrap=20))


def test_an_adaptive_select_run_stops_when_confident_ranks_by_the_prediction_and_resumes(tmp_path, gen_file):
    """Two tiny models on a generation file, rungs of 2, 4, 6, ... examples: interrupted before the
    third rung, the run resumes without retraining a finished rung, decides nothing before four
    rungs, stops as soon as one candidate is certain to be best, and ranks by the prediction."""

    from damoc.selection.pipeline import run_select

    models, config = two_tiny_adaptive(tmp_path, gen_file, drop_below=0.0)
    events = []

    def interrupt_before_rung_three(kind, info):
        events.append(kind)
        if kind == "stage" and info.get("name", "").startswith("adaptive rung 3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_select(config, tmp_path / "run", progress=False, on_event=interrupt_before_rung_three)
    assert events.count("start") == 4  # two rungs of two candidates trained
    events.clear()
    summary = run_select(config, tmp_path / "run", progress=False, on_event=lambda k, i: events.append(k))
    assert events.count("cached") == 4  # nothing finished is trained again
    adaptive = summary["adaptive"]
    probs = adaptive["rungs"][-1]["prob_best"]
    # The two tiny models' curves are far apart: at the fourth rung (the first that may decide) one is
    # best in every bootstrap sample, the stop rule fires at confidence 1.0 and rung 5 is never paid for.
    assert "prob_best" not in adaptive["rungs"][2]
    assert sorted(probs.values()) == [0.0, 1.0] and "reached probability 1.00" in adaptive["stopped"]
    assert [r["examples"] for r in adaptive["rungs"]] == [2, 4, 6, 8] and events.count("start") == 4
    assert adaptive["train_size"] == 10 and set(adaptive["fits"]) == {f"{m} lora" for m in models}
    assert all(len(f["curve"]) == 4 and f["law"] in ("rectified", "power", "loglinear", "flat")
               for f in adaptive["fits"].values())
    ranked = sorted((r for r in summary["candidates"] if r.get("rank")), key=lambda r: r["rank"])
    assert [r["predicted_answer_bpb_full"] for r in ranked] == sorted(r["predicted_answer_bpb_full"] for r in ranked)
    assert max(probs, key=probs.get) == f"{ranked[0]['model']} {ranked[0]['method']}"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Adaptive selection" in report and "reached probability 1.00" in report
    assert "Learning curves and their fits" in (tmp_path / "run" / "report.html").read_text()
    # `damoc estimate` prices the rungs this run paid for at least, and all five at most
    from damoc.selection.estimate import estimate
    from damoc.selection.runner import select_examples
    from damoc.tasks import load_task

    train, test = select_examples(load_task(config.task, config.data), config, quiet=True)
    e = estimate(config, train, test=test)
    assert [(k["candidates"], k["examples"]) for k in e["rounds"]["rounds"]] == [(2, n) for n in (2, 4, 6, 8, 10)]
    assert e["rounds"]["train_flops_low"] == pytest.approx(summary["cost"]["train_flops"], rel=0.1)
    assert e["damoc_train_flops"] == e["rounds"]["train_flops_high"] > 1.3 * e["rounds"]["train_flops_low"]
    assert e["damoc_eval_flops"] / 10 == pytest.approx(summary["cost"]["eval_flops"] / 8, rel=1e-6)  # per scoring


def test_a_candidate_raced_out_is_ranked_last_and_reported(tmp_path, gen_file):
    """A run that drops a candidate finishes (its report included) and ranks the dropped one last."""

    from damoc.selection.pipeline import run_select

    models, config = two_tiny_adaptive(tmp_path, gen_file, drop_below=0.5)
    summary = run_select(config, tmp_path / "run", progress=False)
    dropped = summary["adaptive"]["dropped"]
    assert len(dropped) == 1 and len(summary["candidates"]) == 2  # each candidate once
    loser = next(r for r in summary["candidates"] if f"{r['model']} {r['method']}" in dropped)
    assert loser["rank"] == 2 and loser["dropped_at_rung"] == 4
    assert "dropped" in (tmp_path / "run" / "report.md").read_text()


def test_min_rungs_cannot_exceed_the_ladder():
    from pydantic import ValidationError

    from damoc.selection.adaptive import AdaptiveSettings

    assert AdaptiveSettings().min_rungs == 4
    with pytest.raises(ValidationError, match="min_rungs 4 is more than the 3 rungs"):
        AdaptiveSettings(rungs=[0.01, 0.02, 0.04])
    assert AdaptiveSettings(rungs=[0.01, 0.02, 0.04], min_rungs=3).min_rungs == 3


def test_adaptive_warns_when_its_extrapolated_first_is_outside_its_measured_tie_set():
    """The zoo's MedMCQA adaptive run: the curves ranked Gemma-3 DoRA first, the last rung's answers had
    Gemma-3 full alone in the tie set. A pick within a tie (the cheapest of it) is the rule, not a warning."""
    from damoc.selection.adaptive import disagreement

    ranking = ["g dora", "g lora", "g full"]
    alone = {"tie_set": ["g full"], "tied": False, "recommended": "g full"}
    line = disagreement(alone, ranking)
    assert line is not None and "g dora first" in line and "recommend g full" in line
    tied = {"tie_set": ["g full", "g dora"], "tied": True, "recommended": "g full"}
    assert disagreement(tied, ranking) is None
    assert disagreement({"tie_set": ["g dora"], "tied": False, "recommended": "g dora"}, ranking) is None
    assert disagreement(None, ranking) is None
