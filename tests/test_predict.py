"""`damoc predict` and the predictor behind it (damoc.selection.curves.predict_curves): known laws
recovered, intervals that hold the truth, P(best) that sums to one, both CSV layouts, strict JSON
and one line with exit status 2 for every bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from damoc.cli import main
from damoc.selection.curves import predict_curves
from damoc.selection.laws import rectified_law

SIZES = [100 * 2 ** k for k in range(8)]  # 100 .. 12,800
LAWS = {"steep": dict(b=40.0, d_l=20.0, beta=0.6, e=0.9), "flat": dict(b=3.0, d_l=2.0, beta=0.3, e=1.0),
        "late": dict(b=900.0, d_l=400.0, beta=0.8, e=0.7), "mid": dict(b=12.0, d_l=5.0, beta=0.45, e=0.95),
        "low": dict(b=6.0, d_l=6.0, beta=0.5, e=0.8)}


def test_the_predictor_recovers_known_rectified_laws_and_ranks_by_them():
    rng = np.random.default_rng(0)  # 0.1% measurement noise
    curves = {n: (SIZES, [rectified_law(d, **p) * math.exp(rng.normal(0, 1e-3)) for d in SIZES])
              for n, p in LAWS.items()}
    target = 102_400  # three doublings past the last point
    out = predict_curves(curves, target)
    assert out.extrapolator.law == "rectified"  # the backtests prefer the law the points follow
    truth = {n: rectified_law(target, **p) for n, p in LAWS.items()}
    for p in out.predictions:
        assert p.predicted == pytest.approx(truth[p.name], rel=0.02)
        assert p.low <= truth[p.name] <= p.high
        assert p.fit.law == "rectified" and p.points == len(SIZES)
    assert [p.name for p in out.predictions] == sorted(truth, key=truth.get)
    assert sum(p.prob_best for p in out.predictions) == pytest.approx(1.0)
    assert max(out.predictions, key=lambda p: p.prob_best).name == min(truth, key=truth.get)


def noisy_power_curves(n_models=30, seed=0, noise=0.01):
    """Power laws L = a * D^-s with 1% noise: the truth at any size is known."""
    rng = np.random.default_rng(seed)
    laws = {f"m{i}": (float(rng.uniform(3, 6)), float(rng.uniform(0.03, 0.12))) for i in range(n_models)}
    curves = {n: (SIZES, [a * d ** -s * math.exp(rng.normal(0, noise)) for d in SIZES]) for n, (a, s) in laws.items()}
    return laws, curves


def test_intervals_hold_the_truth_for_most_noisy_curves_and_widen_with_distance():
    """90% intervals, one and six doublings past the last point, on three draws of 30 noisy curves."""
    inside = {25_600: [], 819_200: []}
    for seed in range(3):
        laws, curves = noisy_power_curves(seed=seed)
        near, far = predict_curves(curves, 25_600), predict_curves(curves, 819_200)
        for out in (near, far):
            truth = {n: a * out.target ** -s for n, (a, s) in laws.items()}
            inside[out.target].append(np.mean([p.low <= truth[p.name] <= p.high for p in out.predictions]))
            assert np.median([abs(p.predicted / truth[p.name] - 1) for p in out.predictions]) < 0.05
            assert sum(p.prob_best for p in out.predictions) == pytest.approx(1.0)
        width = {o.target: np.median([math.log(p.high / p.low) for p in o.predictions]) for o in (near, far)}
        assert width[819_200] > 1.5 * width[25_600]
    assert min(inside[25_600] + inside[819_200]) >= 0.75, inside
    assert np.mean(inside[25_600] + inside[819_200]) >= 0.85, inside


def test_a_higher_is_better_score_is_predicted_through_its_complement():
    sizes = [50, 100, 200, 400, 800]
    curves = {"good": (sizes, [1 - 0.5 * d ** -0.3 for d in sizes]),
              "poor": (sizes, [1 - 0.8 * d ** -0.2 for d in sizes])}
    out = predict_curves(curves, 6400, higher_is_better=True)
    assert [p.name for p in out.predictions] == ["good", "poor"]
    for p in out.predictions:
        assert curves[p.name][1][-1] < p.predicted < 1 and p.low <= p.predicted <= p.high
    assert out.predictions[0].prob_best > 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict_curves({"a": ([1, 2], [0.5, 1.5])}, 10, higher_is_better=True)


# ---- the command ----------------------------------------------------------------------------------

BENCH_HEAD = "config name,0,200,400,800,1600,3200,size,family\n"


def wide_file(tmp_path, rows: dict[str, list[float]], name="curves.csv"):
    text = BENCH_HEAD + "".join(f"{m},{','.join(map(str, v))},{1e8 * (i + 1):.0f},fam\n"
                                for i, (m, v) in enumerate(rows.items()))
    path = tmp_path / name
    path.write_text(text)
    return path


ROWS = {"org/alpha-1B": [4.1, 3.0, 2.8, 2.6, 2.4, 2.2], "org/beta-7B": [3.0, 2.6, 2.5, 2.4, 2.3, 2.2],
        "gamma": [9.5, 3.4, 3.0, 2.7, 2.4, 2.1]}


def run_json(capsys, *argv) -> dict:
    assert main(["predict", *argv, "--json"]) == 0
    text = capsys.readouterr().out

    def no_constants(c):
        raise AssertionError(f"not strict JSON: {c}")
    return json.loads(text, parse_constant=no_constants)


def test_a_wide_file_uses_only_the_points_within_the_budget(tmp_path, capsys):
    full = run_json(capsys, "--curves", str(wide_file(tmp_path, ROWS)), "--budget", "1600", "--target-size", "1e6")
    # The 3,200 column is past the budget: changing it changes nothing.
    moved = {m: v[:-1] + [0.01] for m, v in ROWS.items()}
    cut = run_json(capsys, "--curves", str(wide_file(tmp_path, moved, "moved.csv")), "--budget", "1600",
                   "--target-size", "1e6")
    assert [p["predicted"] for p in full["predictions"]] == [p["predicted"] for p in cut["predictions"]]
    assert {p["model"] for p in full["predictions"]} == set(ROWS) and full["ranking"][0] == "gamma"
    for p in full["predictions"]:
        assert set(p) >= {"model", "predicted", "low", "high", "prob_best"}
        assert p["low"] <= p["predicted"] <= p["high"] and p["points"] == 5  # 0 is a point, not fitted
    assert sum(p["prob_best"] for p in full["predictions"]) == pytest.approx(1.0)
    assert full["budget"] == 1600 and full["target_size"] == 1e6


def test_the_long_layout_gives_the_wide_layouts_predictions(tmp_path, capsys):
    wide = run_json(capsys, "--curves", str(wide_file(tmp_path, ROWS)), "--budget", "3200", "--target-size", "51200")
    sizes = [0, 200, 400, 800, 1600, 3200]
    long = tmp_path / "long.csv"
    long.write_text("examples,model,metric,seed\n" + "".join(f"{s},{m},{v},0\n" for m, vals in ROWS.items()
                                                             for s, v in zip(sizes, vals)))
    out = run_json(capsys, "--curves", str(long), "--budget", "3200", "--target-size", "51200")
    assert out["predictions"] == wide["predictions"]


def test_the_table_names_the_ranking_and_the_models_left_out(tmp_path, capsys):
    rows = {**ROWS, "late-starter": [5.0, "", "", "", "", 2.0]}
    assert main(["predict", "--curves", str(wide_file(tmp_path, rows)), "--budget", "3200",
                 "--target-size", "1e5"]) == 0
    out = capsys.readouterr().out
    assert "ranking: gamma > " in out and "P(best)" in out and "90% interval" in out
    assert "left out: late-starter (1 point(s) above 0 examples" in out


@pytest.mark.parametrize("case, argv_extra, content", [
    ("missing", [], None),
    ("binary", [], b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa"),
    ("non-numeric", [], BENCH_HEAD + "a,4,3,2.5,two,2,1.9,1,x\n"),
    ("unknown column", [], "model,first,second\na,1,2\n"),
    ("header only", [], BENCH_HEAD),
    ("nan", [], BENCH_HEAD + "a,4,3,2.5,nan,2,1.9,1,x\n"),
    ("infinite", [], "model,examples,metric\na,100,inf\na,200,1\n"),
    ("negative", [], "model,examples,metric\na,100,-1\na,200,1\n"),
    ("negative size", [], "model,examples,metric\na,-100,2\na,200,1\n"),
    ("short row", [], BENCH_HEAD + "a,4,3\n"),
    ("nothing under the budget", ["--budget", "100"], BENCH_HEAD + "a,4,3,2.5,2.2,2,1.9,1,x\n"),
    ("zero loss", [], "model,examples,metric\na,100,0\na,200,1\n"),
    ("score above 1", ["--higher-is-better"], "model,examples,metric\na,100,0.5\na,200,1.2\n"),
    ("budget 0", ["--budget", "0"], "model,examples,metric\na,100,2\na,200,1\n"),
    ("negative target", ["--target-size", "-5"], "model,examples,metric\na,100,2\na,200,1\n"),
    ("budget nan", ["--budget", "nan"], "model,examples,metric\na,100,2\na,200,1\n"),
])
def test_every_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, case, argv_extra, content):
    path = tmp_path / "curves.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    argv = ["predict", "--curves", str(path), "--budget", "5000", "--target-size", "1e5", *argv_extra]
    assert main(argv) == 2, case
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("damoc: error: "), (case, captured.err)
    assert captured.out == ""


def test_the_command_runs_as_installed_and_help_imports_no_torch(tmp_path):
    code = ("import sys\nfrom damoc.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "predict" in out and out.strip().endswith("False")
    path = wide_file(tmp_path, ROWS)
    damoc = Path(sys.executable).parent / "damoc"  # the installed entry point
    done = subprocess.run([str(damoc), "predict", "--curves", str(path), "--budget", "3200",
                           "--target-size", "1e5", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranking"][0] == "gamma"
