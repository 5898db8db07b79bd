import numpy as np
import pytest

from damoc.errors import DamocError
from damoc.filtering import SELECTORS, filter_examples, get_selector, resolve_budget
from damoc.filtering.graphcut import facility_location_greedy, graphcut_greedy, graphcut_objective, normalise
from damoc.filtering.run import read_selection, write_selection
from damoc.tasks.base import render


def brute_force_greedy(e, budget, lam):
    chosen = []
    for _ in range(budget):
        best, best_j = -np.inf, None
        for j in range(len(e)):
            if j in chosen:
                continue
            g = graphcut_objective(e, chosen + [j], lam, "cosine") - graphcut_objective(e, chosen, lam, "cosine")
            if g > best + 1e-9:
                best, best_j = g, j
        chosen.append(best_j)
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.25, 0.45])
def test_graphcut_equals_brute_force_greedy(seed, lam):
    e = normalise(np.random.default_rng(seed).normal(size=(40, 8)))
    assert graphcut_greedy(e, 12, lam) == brute_force_greedy(e, 12, lam)


@pytest.mark.parametrize("pool", [2, 5, 17])
def test_graphcut_blocks_with_a_small_pool_stay_exact(pool):
    # Clustered data, so that the picks lean one way and blocks end often.
    rng = np.random.default_rng(pool)
    centres = rng.normal(size=(3, 10))
    e = normalise(centres[rng.integers(0, 3, 90)] + 0.6 * rng.normal(size=(90, 10)))
    assert graphcut_greedy(e, 25, 0.4, pool=pool) == brute_force_greedy(e, 25, 0.4)


def test_graphcut_stays_exact_after_the_picks_overshoot_the_query(monkeypatch):
    # Late in a long selection the query S - 2 lam T is small and a block's picks can carry it
    # past zero (c < 0); the outside bound must still hold there (dropping its sideways term,
    # as the relaxed mode does, changes the picks here).
    import damoc.filtering.graphcut as gc

    e = normalise(np.random.default_rng(8).normal(size=(400, 8)))
    overshoots = []
    bound = gc._outside_bound

    def watched(g_out, g_min, q_norm, q_hat, drift, lam, exact=True):
        overshoots.append(1.0 - 2 * lam * float(drift @ q_hat) / q_norm < 0)
        return bound(g_out, g_min, q_norm, q_hat, drift, lam, exact)

    monkeypatch.setattr(gc, "_outside_bound", watched)
    query, reference = e.sum(axis=0), []
    for _ in range(300):  # plain greedy on the gains e . (S - 2 lam T)
        gains = e @ query
        gains[reference] = -np.inf
        reference.append(int(np.argmax(gains)))
        query = query - 2 * 0.4 * e[reference[-1]]
    assert graphcut_greedy(e, 300, 0.4, pool=8, exact=True) == reference
    assert any(overshoots)


@pytest.mark.parametrize("scale", [1e-2, 1.0, 1e6])
def test_half_precision_screen_stays_within_its_slack(scale):
    from damoc.filtering.graphcut import _Screen

    rng = np.random.default_rng(5)
    e = normalise(rng.normal(size=(5000, 384)) + 0.3)  # leaning one way, as real embeddings do
    q = rng.normal(size=384) * scale + e.sum(axis=0) * scale  # |q| past float16's range at 1e6
    gains, slack = _Screen(e)(q)
    assert np.isfinite(gains).all()
    assert np.abs(gains - e.astype(np.float64) @ q).max() <= slack


def test_relaxed_graphcut_stays_close_to_exact_greedy():
    e = normalise(np.random.default_rng(6).normal(size=(6000, 32)))
    exact = graphcut_objective(e, graphcut_greedy(e, 600, 0.4, pool=512, exact=True), 0.4, "cosine")
    relaxed = graphcut_objective(e, graphcut_greedy(e, 600, 0.4, pool=512, exact=False), 0.4, "cosine")
    assert abs(exact - relaxed) / exact < 1e-3


def test_graphcut_objective_never_decreases_along_the_greedy_path():
    e = normalise(np.random.default_rng(3).normal(size=(200, 16)))
    chosen = graphcut_greedy(e, 60, 0.4)
    values = [graphcut_objective(e, chosen[:k], 0.4) for k in range(len(chosen) + 1)]
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:]))


def test_graphcut_objective_by_sums_equals_the_dense_formula():
    e = normalise(np.random.default_rng(4).normal(size=(30, 5)))
    x = [1, 4, 7, 20]
    for kernel, s in [("cosine", e @ e.T), ("shifted", 0.5 * (1 + e @ e.T))]:
        dense = s[:, x].sum() - 0.3 * s[np.ix_(x, x)].sum()
        assert graphcut_objective(e, x, 0.3, kernel) == pytest.approx(dense, rel=1e-5)


def test_facility_location_equals_brute_force_greedy():
    e = normalise(np.random.default_rng(5).normal(size=(30, 6)))
    sim = 0.5 * (1 + e @ e.T)
    chosen = []
    for _ in range(8):
        cur = sim[:, chosen].max(axis=1) if chosen else np.zeros(len(e))
        gains = [-np.inf if j in chosen else np.maximum(sim[:, j] - cur, 0).sum() for j in range(len(e))]
        chosen.append(int(np.argmax(gains)))
    assert facility_location_greedy(e, 8) == chosen


def examples(n=40):
    topics = ["fever and cough", "stock market returns", "contract law clause", "football match"]
    return [render("classification", id=f"x{i}", question=f"question {i} about {topics[i % 4]}?",
                   context=f"a passage on {topics[i % 4]} number {i}", options=["yes", "no"], label=i % 2)
            for i in range(n)]


def test_budget_rules():
    assert resolve_budget(100, rate=0.1) == 10
    assert resolve_budget(7, rate=0.1) == 1
    for bad in (0, 1.5, -0.1):
        with pytest.raises(DamocError, match="outside"):
            resolve_budget(100, rate=bad)
    with pytest.raises(DamocError, match="larger than the data"):
        resolve_budget(10, budget=11)
    with pytest.raises(DamocError, match="exactly one"):
        resolve_budget(10)
    with pytest.raises(DamocError, match="whole number"):
        resolve_budget(10, budget=2.5)


def test_budget_rounds_down_for_recovery():
    """`damoc recover` takes PASER's floor(share x pool): 10% of 1,032 is 103 there, 104 for a filter."""
    assert resolve_budget(1032, rate=0.1, round_down=True) == 103
    assert resolve_budget(1032, rate=0.1) == 104
    assert resolve_budget(1032, rate=0.999999, round_down=True) == 1031
    with pytest.raises(DamocError, match="selects nothing"):
        resolve_budget(5, rate=0.1, round_down=True)
    assert resolve_budget(5, rate=0.1) == 1


def test_random_is_seeded_and_distinct():
    exs = examples()
    a, _ = filter_examples(exs, "random", rate=0.25, seed=1)
    b, _ = filter_examples(exs, "random", rate=0.25, seed=1)
    c, _ = filter_examples(exs, "random", rate=0.25, seed=2)
    assert [e.id for e in a] == [e.id for e in b] != [e.id for e in c]
    assert len({e.id for e in a}) == 10
    # another draw under the same seed: a different sample, itself repeatable; draw 0 is the default's
    d, _ = filter_examples(exs, "random", rate=0.25, seed=1, draw=1)
    assert [e.id for e in d] != [e.id for e in a] and len({e.id for e in d}) == 10
    assert [e.id for e in filter_examples(exs, "random", rate=0.25, seed=1, draw=1)[0]] == [e.id for e in d]
    assert [e.id for e in filter_examples(exs, "random", rate=0.25, seed=1, draw=0)[0]] == [e.id for e in a]
    with pytest.raises(Exception, match="draw"):
        filter_examples(exs, "random", rate=0.25, draw=-1)


def test_selection_file_round_trips(tmp_path):
    exs = examples(8)
    kept, summary = filter_examples(exs, "random", budget=3)
    path = write_selection(kept, summary, tmp_path / "sel.jsonl")
    assert read_selection(path) == kept
    assert (tmp_path / "sel.summary.json").exists()


def test_unknown_selector_is_a_clear_error():
    with pytest.raises(DamocError, match="unknown selector 'nope'"):
        get_selector("nope")
    assert {"random", "graphcut", "facility-location", "perplexity", "ifd", "hybrid"} <= set(SELECTORS)


@pytest.mark.parametrize("method", ["perplexity", "ifd", "random"])
def test_scored_selectors_return_distinct_ids_deterministically(method, tiny_llama):
    exs = examples(24)
    opts = {} if method == "random" else {"scorer": str(tiny_llama)}
    a, summary = filter_examples(exs, method, budget=6, seed=3, **opts)
    b, _ = filter_examples(exs, method, budget=6, seed=3, **opts)
    assert len({e.id for e in a}) == 6 and [e.id for e in a] == [e.id for e in b]
    assert summary["selected"] == 6


def test_perplexity_keeps_the_lowest_and_ifd_the_highest_below_one(tiny_llama):
    from damoc.filtering.selectors import IFDSelector, answer_perplexities

    exs = examples(24)
    cond, alone, flops = answer_perplexities(exs, str(tiny_llama))
    assert flops > 0
    kept = get_selector("perplexity", scorer=str(tiny_llama)).select(exs, 5)
    assert sorted(cond[kept]) == sorted(np.sort(cond)[:5])
    ifd = IFDSelector(str(tiny_llama)).scores(exs)
    chosen = get_selector("ifd", scorer=str(tiny_llama)).select(exs, 5)
    # Those below 1 come first, highest first; then the rest, lowest first.
    order = sorted(range(len(ifd)), key=lambda i: (ifd[i] >= 1, -ifd[i] if ifd[i] < 1 else ifd[i]))
    assert list(chosen) == order[:5]


def test_answer_perplexities_are_cached_with_their_flops(tiny_llama, tmp_path, monkeypatch):
    """A rerun over the same pool does not load the scorer again and still counts what the first
    run paid; another pool or re-saved weights score afresh."""
    import os
    import shutil

    import damoc.models
    from damoc.filtering.selectors import answer_perplexities

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    scorer = shutil.copytree(tiny_llama, tmp_path / "scorer")  # its weights get touched below
    exs = examples(12)
    first = answer_perplexities(exs, str(scorer))
    assert len(list((tmp_path / "home" / "answer-ppl").glob("*.json"))) == 1

    def no_model(*a, **k):
        raise AssertionError("the scorer was loaded for a cached pool")

    with monkeypatch.context() as m:
        m.setattr(damoc.models, "load_model", no_model)
        again = answer_perplexities(exs, str(scorer))
        assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1]) and again[2] == first[2] > 0
        with pytest.raises(AssertionError, match="scorer was loaded"):
            answer_perplexities(exs[:11], str(scorer))
        with pytest.raises(AssertionError, match="scorer was loaded"):
            answer_perplexities(exs, str(scorer), cache=False)
    weights = next(scorer.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # re-saved
    answer_perplexities(exs, str(scorer))
    assert len(list((tmp_path / "home" / "answer-ppl").glob("*.json"))) == 2


@pytest.mark.slow
@pytest.mark.parametrize("method", ["graphcut", "facility-location", "hybrid"])
def test_embedding_selectors_on_the_bundled_minilm(method, tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path))
    exs = examples(40)
    # every selector over all the data, so that the choice is the method's alone (GraphCut can choose within a
    # seeded random pool: tests/test_estimate.py)
    opts = {"scorer": str(tiny_llama)} if method == "hybrid" else {"pool_factor": None} if method == "graphcut" else {}
    a, _ = filter_examples(exs, method, budget=8, **opts)
    b, _ = filter_examples(exs, method, budget=8, seed=9, **opts)
    assert len({e.id for e in a}) == 8 and [e.id for e in a] == [e.id for e in b]
    if method == "graphcut":  # four topics: a representative 8 covers all of them
        topics = {e.context.split(" number")[0] for e in a}
        assert len(topics) == 4


@pytest.mark.slow
def test_embeddings_are_cached_by_content(tmp_path, monkeypatch):
    import sentence_transformers

    from damoc.filtering.embeddings import embed, embed_with_cost

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path))
    first, cost = embed_with_cost(["a text", "another text"])
    assert first.shape == (2, 384) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    # [CLS] a text [SEP] + [CLS] another text [SEP]: 8 tokens; MiniLM-L6 has 6 x (4 + 2 x 4) x 384^2 matmul
    # weights in its layers and one 384^2 pooler (applied to one token per text: a slight overcount).
    assert cost["tokens"] == 8 and cost["forward_flops"] == 2 * (6 * 12 + 1) * 384 * 384 * 8

    def refuse(*a, **k):
        raise AssertionError("embedded again")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refuse)
    assert np.array_equal(embed(["a text", "another text"]), first)
    assert embed_with_cost(["a text", "another text"])[1] == cost  # a reused embedding still counts


def test_cli_filter_writes_selection_and_refuses_bad_rates(tmp_path, cls_file, capsys):
    from damoc.cli import main

    out = tmp_path / "sel.jsonl"
    args = ["filter", "--data", str(cls_file), "--format", "classification", "--field", "context=passage",
            "--field", "label=y", "--method", "random", "--out", str(out)]
    assert main(args + ["--rate", "0.25"]) == 0
    assert len(read_selection(out)) == 6  # 25% of the 24 training examples
    assert main(args + ["--budget", "999", "--overwrite"]) == 2
    assert "larger than the data" in capsys.readouterr().err
    assert len(read_selection(out)) == 6  # the earlier output is untouched


def test_hybrid_refuses_graphcut_settings_as_graphcut_does():
    """A pool below the budget would leave GraphCut short of examples; lam from 0.5 loses its guarantee."""
    with pytest.raises(DamocError, match="hybrid.*pool_factor must be at least 1"):
        filter_examples(examples(8), "hybrid", budget=4, pool_factor=0.5)
    with pytest.raises(DamocError, match="hybrid.*lam must be in"):
        filter_examples(examples(8), "hybrid", budget=4, lam=0.6)
    with pytest.raises(DamocError, match="hybrid.*pool_factor must be a number"):  # its pool is IFD's: no "all"
        filter_examples(examples(8), "hybrid", budget=4, pool_factor=None)
