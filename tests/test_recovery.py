"""PASER's parts: budget shares, concept graph, JSD between original and pruned models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import build_model, build_tokenizer

from damoc.errors import DamocError
from damoc.recovery import ConceptGraph, allocate_budget, extract_concepts, sample_jsd


def test_budget_is_proportional_capped_and_fully_placed():
    assert allocate_budget(10, [1, 1], [100, 100]) == [5, 5]
    assert allocate_budget(12, [3, 1], [100, 100]) == [9, 3]
    # The first cluster can take only 2: the rest goes to the others, in proportion.
    assert allocate_budget(12, [10, 1, 1], [2, 100, 100]) == [2, 5, 5]
    # Flooring leaves samples over: they are placed, not lost (PASER's rule would give [3, 3, 3]).
    alloc = allocate_budget(10, [1, 1, 1], [10, 10, 10])
    assert sum(alloc) == 10 and sorted(alloc) == [3, 3, 4]
    # All clusters full: the budget equals the pool.
    assert allocate_budget(6, [0.5, 0.1, 0.0], [1, 2, 3]) == [1, 2, 3]
    # Zero degradation gets nothing while others have room.
    assert allocate_budget(4, [1.0, 0.0], [10, 10]) == [4, 0]


@pytest.mark.parametrize("seed", range(20))
def test_budget_invariants_on_random_cases(seed):
    import random

    rng = random.Random(seed)
    k = rng.randint(1, 8)
    sizes = [rng.randint(0, 30) for _ in range(k)]
    if sum(sizes) == 0:
        sizes[0] = 1
    scores = [rng.choice([0.0, rng.random()]) for _ in range(k)]
    budget = rng.randint(1, sum(sizes))
    alloc = allocate_budget(budget, scores, sizes)
    assert sum(alloc) == budget and all(0 <= a <= n for a, n in zip(alloc, sizes))


def test_budget_refuses_bad_input():
    with pytest.raises(DamocError, match="at least 1"):
        allocate_budget(0, [1], [5])
    with pytest.raises(DamocError, match="larger than the pool"):
        allocate_budget(6, [1], [5])
    with pytest.raises(DamocError, match="non-negative"):
        allocate_budget(2, [-1, 1], [5, 5])


def test_concepts_are_key_phrases_without_stop_words():
    text = "Explain how insulin resistance causes type diabetes. Insulin resistance is common in obesity."
    concepts = extract_concepts(text, top_k=3)
    assert concepts[0] == "insulin resistance causes"
    assert all(w not in {"how", "is", "in"} for c in concepts for w in c.split())
    assert extract_concepts("the of and") == []


def test_concept_graph_accepts_and_rejects_the_hand_made_cases():
    g = ConceptGraph()
    assert g.offer(["insulin", "diabetes"])  # new concepts: accepted, linked
    assert g.offer(["insulin", "diabetes", "obesity"])  # known pair is linked; obesity new
    assert g.offer(["tax", "dividend"])
    # insulin and tax are both known and never seen together: rejected, graph unchanged.
    assert g.conflicts(["insulin", "tax", "novel"]) == [("insulin", "tax")]
    assert not g.offer(["insulin", "tax", "novel"])
    assert "novel" not in g.nodes
    # One known concept with new ones is fine.
    assert g.offer(["tax", "capital gains"])
    assert frozenset(("tax", "capital gains")) in g.edges


@pytest.fixture(scope="module")
def pair():
    tok = build_tokenizer()
    a = build_model("llama", len(tok), layers=2, seed=0).eval()
    b = build_model("llama", len(tok), layers=2, seed=1).eval()
    texts = ["Context: the patient has a fever. Answer: yes", "Instruction: summarise the input.",
             "Financial question: should I save?"]
    ids = [tok(t)["input_ids"] for t in texts]
    return tok, a, b, ids


def test_jsd_is_zero_for_identical_models_symmetric_and_bounded(pair):
    tok, a, b, ids = pair
    same = sample_jsd(a, a, ids, tok.pad_token_id)
    assert max(same) < 1e-6
    ab, ba = sample_jsd(a, b, ids, tok.pad_token_id), sample_jsd(b, a, ids, tok.pad_token_id)
    assert ab == pytest.approx(ba, abs=1e-6)
    assert all(0 < x <= math.log(2) for x in ab)


def test_jsd_is_a_mean_over_positions_and_batch_invariant(pair):
    tok, a, b, ids = pair
    batched = sample_jsd(a, b, ids, tok.pad_token_id, batch_size=3)
    single = sample_jsd(a, b, ids, tok.pad_token_id, batch_size=1)
    assert batched == pytest.approx(single, abs=1e-6)
    # Direct computation for the first sample.
    x = torch.tensor([ids[0]])
    p = torch.softmax(a(input_ids=x).logits[0, :-1], -1)
    q = torch.softmax(b(input_ids=x).logits[0, :-1], -1)
    m = (p + q) / 2
    direct = (0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)).mean()
    assert single[0] == pytest.approx(direct.item(), rel=1e-4)


def test_jsd_refuses_another_vocabulary(pair):
    tok, a, _, ids = pair
    other = build_model("llama", len(tok) + 10, layers=2).eval()
    with pytest.raises(DamocError, match="vocabulary"):
        sample_jsd(a, other, ids, tok.pad_token_id)


def blobs(groups: int, per: int, dim: int = 16, spread: float = 0.05, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, dim))
    x = np.vstack([c + spread * np.linalg.norm(c) * rng.standard_normal((per, dim)) for c in centres])
    return x, np.repeat(np.arange(groups), per)


def same_partition(a, b) -> bool:
    return len({(x, y) for x, y in zip(a, b)}) == len(set(a)) == len(set(b))


def test_clustering_separates_well_separated_groups():
    from damoc.recovery.cluster import cluster

    x, truth = blobs(4, 40)
    fixed = cluster(x, k=4)
    assert fixed.k == 4 and same_partition(fixed.labels, truth)
    auto = cluster(x, k="auto", max_k=8)
    assert auto.k == 4 and same_partition(auto.labels, truth)
    assert set(auto.errors) == set(range(1, 9))
    for groups, seed in [(2, 5), (3, 1), (6, 2), (8, 3)]:
        x, truth = blobs(groups, 30, seed=seed)
        found = cluster(x, k="auto", max_k=12)
        assert found.k == groups and same_partition(found.labels, truth)


def test_clustering_refuses_bad_k():
    from damoc.recovery.cluster import cluster

    x, _ = blobs(2, 5)
    with pytest.raises(DamocError, match="between 1 and the pool size"):
        cluster(x, k=11)
    with pytest.raises(DamocError, match="at least 3"):
        cluster(x[:2], k=1)


TOPICS = {
    "medicine": ("Explain how {x} affects blood pressure in adults.", ["insulin", "salt", "caffeine", "aspirin"]),
    "finance": ("Should I invest in {x} for retirement savings?", ["bonds", "index funds", "gold", "real estate"]),
    "law": ("Is a verbal {x} legally binding in court?", ["contract", "promise", "lease", "agreement"]),
    "cooking": ("How long should I bake {x} in the oven?", ["bread", "salmon", "potatoes", "cookies"]),
}


@pytest.fixture(scope="module")
def recovery_setup(tmp_path_factory):
    """An original tiny model, its pruned copy (a real `damoc prune` folder) and an Alpaca pool."""
    import json

    from conftest import save_tiny
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from damoc.layers import PruneConfig, prune_model, save_pruned

    root = tmp_path_factory.mktemp("recover")
    original = save_tiny(root, "llama", seed=3, layers=4)
    model, tok = AutoModelForCausalLM.from_pretrained(original).eval(), AutoTokenizer.from_pretrained(original)
    result = prune_model(model, tok, ["some calibration text about a patient"], PruneConfig(threshold=-1.0))
    pruned = save_pruned(model, tok, root / "pruned", result, {})
    rows = [{"instruction": template.format(x=x) + f" Case {i}.", "input": "", "output": f"It depends on {x} {i}."}
            for template, xs in TOPICS.values() for x in xs for i in range(3)]
    pool = root / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(original), str(pruned), pool, len(rows)


@pytest.mark.parametrize("method", ["paser", "random", "length", "ifd"])
def test_recover_command_writes_the_subset_summary_and_report(recovery_setup, tmp_path, method, capsys):
    import json

    from damoc.cli import main

    original, pruned, pool, n = recovery_setup
    out = tmp_path / method
    assert main(["recover", "--original", original, "--pruned", pruned, "--pool", str(pool), "--budget", "0.25",
                 "--method", method, "--clusters", "4", "--heldout", "4", "--out", str(out)]) == 0
    n -= 4  # held out for perplexity, never selected
    rows = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    assert len(rows) == n // 4 and len({r["id"] for r in rows}) == len(rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selected"] == len(rows) and summary["pool_size"] == n
    assert (out / "report.html").exists() and (out / "report.md").exists()
    if method == "paser":
        assert summary["clusters"] == 4 and sum(summary["cluster_budget"]) == n // 4
        assert all(0 < r["jsd"] <= math.log(2) and r["cluster"] in range(4) for r in rows)
        assert summary["rejected_by_concept_graph"] >= 0 and 0 <= summary["share_rejected_by_concept_graph"] <= 1
        assert summary["graph_components"] >= 1 and -1 <= summary["adjusted_rand_vs_sources"] <= 1
        assert "Map of the clusters" in (out / "report.html").read_text()
        assert summary["jsd_cached"] is False and summary["forward_flops"] > 0
        # Another budget on the same pool and models reads the JSD from the cache.
        assert main(["recover", "--original", original, "--pruned", pruned, "--pool", str(pool), "--budget", "0.5",
                     "--method", "paser", "--clusters", "4", "--heldout", "4", "--out", str(tmp_path / "again")]) == 0
        again = json.loads((tmp_path / "again" / "summary.json").read_text())
        assert again["jsd_cached"] is True and again["jsd_mean_pool"] == summary["jsd_mean_pool"]
    if method == "length":
        everyone = sorted((len(f"It depends on {x} {i}.") for _, xs in TOPICS.values() for x in xs
                           for i in range(3)), reverse=True)
        assert sorted((len(r["answer"]) for r in rows), reverse=True)[0] == everyone[0]


def test_recover_refuses_bad_input_and_writes_nothing(recovery_setup, tmp_path, capsys):
    from damoc.cli import main

    original, pruned, pool, n = recovery_setup
    base = ["recover", "--original", original, "--pool", str(pool), "--heldout", "4", "--method", "paser",
            "--out", str(tmp_path / "o")]
    assert main(base + ["--pruned", pruned, "--budget", "0"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(base + ["--pruned", pruned, "--budget", str(n - 3)]) == 2
    assert "larger than the data" in capsys.readouterr().err
    assert main(base + ["--pruned", pruned, "--clusters", str(n + 5)]) == 2
    assert "between 1 and the pool size" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["recover", "--original", original, "--pruned", pruned, "--pool", str(empty),
                 "--out", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(base + ["--pruned", pruned, "--heldout", str(n)]) == 2
    assert "leaves nothing" in capsys.readouterr().err
    # A "pruned" model whose tokenizer has one more token is not the original's.
    import shutil

    from transformers import AutoTokenizer

    other = tmp_path / "other"
    shutil.copytree(pruned, other)
    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["zzz-new-token"])
    tok.save_pretrained(other)
    assert main(["recover", "--original", original, "--pruned", str(other), "--pool", str(pool), "--heldout", "4",
                 "--method", "paser", "--out", str(tmp_path / "o")]) == 2
    assert "tokenizer" in capsys.readouterr().err
    # the default distillation compares the two models' distributions too: refused before any work
    assert main(["recover", "--original", original, "--pruned", str(other), "--pool", str(pool), "--heldout", "4",
                 "--train", "--out", str(tmp_path / "o")]) == 2
    assert "tokenizers differ" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_recover_train_recovers_and_compares_with_both_references(recovery_setup, tmp_path, capsys):
    import json

    from transformers import AutoTokenizer

    from damoc.cli import main
    from damoc.tasks import load_task

    original, pruned, pool, n = recovery_setup
    # --max-seq-len bounds training only: a MedQA test question longer than it is still evaluated.
    tok = AutoTokenizer.from_pretrained(original)
    assert max(len(tok(e.prefix + e.suffix).input_ids) for e in load_task("medqa").test[:4]) > 256
    out = tmp_path / "train"
    assert main(["recover", "--original", original, "--pruned", pruned, "--pool", str(pool), "--budget", "16",
                 "--clusters", "4", "--heldout", "6", "--train", "--eval-tasks", "boolq", "medqa",
                 "--eval-limit", "4", "--max-len", "256", "--finetune.max-seq-len", "256",
                 "--finetune.learning-rate", "1e-2", "--out", str(out)]) == 0
    rec = json.loads((out / "summary.json").read_text())["recovery"]
    for name in ("original", "pruned", "recovered"):
        r = rec[name]
        assert math.isfinite(r["ppl"]) and set(r["accuracy"]) == {"boolq", "medqa"}
        # The neutral metrics, each with its SE: external text, held-out answers given the prompt.
        assert r["external_ppl"] > 1 and r["external_ppl_se"] > 0
        assert r["answer_nll"]["all"]["n"] == 6 and r["answer_nll"]["all"]["nll_se"] > 0
        assert sum(v["n"] for k, v in r["answer_nll"].items() if k != "all") == 6
        # ... and as means over samples and over sources, every sample (or source) alike
        means = r["answer_nll_means"]
        assert means["per_sample"]["n"] == 6 and means["per_sample"]["nll_se"] > 0
        assert means["sources_mean"]["nll"] == pytest.approx(
            np.mean([v["nll"] for k, v in r["answer_nll"].items() if k != "all"]))
        assert r["avg_accuracy_se"] > 0 and set(r["accuracy_se"]) == {"boolq", "medqa"}
        # Per item, for paired comparisons between methods: one figure per sample, sentence, question.
        items = r["items"]
        assert len(items["answer"]["nll"]) == len(items["answer"]["tokens"]) == 6
        assert len(items["external"]["nll"]) == len(items["external"]["tokens"]) > 100
        assert {k: len(v) for k, v in items["correct"].items()} == {"boolq": 4, "medqa": 4}
        assert sum(items["correct"]["boolq"]) / 4 == pytest.approx(r["accuracy"]["boolq"])
    # A real LoRA update on the subset moves held-out perplexity off the unrecovered model's.
    assert rec["recovered"]["ppl"] != pytest.approx(rec["pruned"]["ppl"], rel=1e-6)
    assert rec["recovered"]["answer_nll"]["all"]["nll"] != pytest.approx(rec["pruned"]["answer_nll"]["all"]["nll"])
    assert rec["original"]["ppl"] != pytest.approx(rec["pruned"]["ppl"], rel=1e-6)
    assert rec["train_seconds"] > 0 and rec["train"]["train_tokens"] > 0
    assert "Recovery (LoRA on the subset)" in (out / "report.md").read_text()
    assert "recovered: external perplexity" in capsys.readouterr().out


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_matmul_params_from_the_config_match_the_model(arch, tmp_path):
    from conftest import save_tiny
    from transformers import AutoModelForCausalLM

    from damoc.flops import matmul_params, matmul_params_of

    folder = save_tiny(tmp_path, arch, layers=3)
    assert matmul_params_of(str(folder)) == matmul_params(AutoModelForCausalLM.from_pretrained(folder))


def test_auto_k_finds_the_knee_of_a_smooth_error_curve():
    from damoc.recovery.cluster import elbow

    # Steep, even drops up to K = 6, then almost flat: the knee is 6, though the single largest
    # drop (tied from K = 2 on) would say 2.
    errors = {k: 20.0 - 2.0 * (k - 1) if k <= 6 else 10.0 - 0.1 * (k - 6) for k in range(1, 21)}
    assert elbow(errors) == 6
    assert elbow({1: 5.0, 2: 1.0}) == 2 and elbow({1: 1.0}) == 1 and elbow({1: 2.0, 2: 2.0, 3: 2.0}) == 1


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_jsd_over_the_response_averages_only_the_positions_that_predict_it(pair, arch):
    """Only the answer's predictions count: position t predicts token t + 1, so a response from
    token s on is predicted by positions s - 1 .. n - 2 (and the head runs on those alone)."""
    tok, a, b, ids = pair
    if arch != "llama":
        a, b = (build_model(arch, len(tok), layers=2, seed=s).eval() for s in (0, 1))
    starts = [len(x) - 3 - i for i, x in enumerate(ids)]  # each sample's last few tokens are its "response"
    response = sample_jsd(a, b, ids, tok.pad_token_id, batch_size=3, response_starts=starts)
    every = sample_jsd(a, b, ids, tok.pad_token_id, batch_size=3)
    for i, x in enumerate(ids):
        t = torch.tensor([x])
        p = torch.softmax(a(input_ids=t).logits[0, :-1], -1)
        q = torch.softmax(b(input_ids=t).logits[0, :-1], -1)
        m = (p + q) / 2
        per_pos = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
        assert response[i] == pytest.approx(per_pos[starts[i] - 1:].mean().item(), rel=1e-4)
        assert every[i] == pytest.approx(per_pos.mean().item(), rel=1e-4)
    assert response != pytest.approx(every, rel=1e-3)  # the span matters on these samples
    with pytest.raises(DamocError, match="response token"):
        sample_jsd(a, b, ids, tok.pad_token_id, response_starts=[len(x) for x in ids])


def test_the_jsd_cache_keeps_spans_apart(pair, tiny_llama, tmp_path, monkeypatch):
    from damoc.recovery.degradation import cached_sample_jsd

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    tok, a, b, ids = pair
    starts = [len(x) - 2 for x in ids]
    spec = str(tiny_llama)
    every, hit = cached_sample_jsd(spec, spec, lambda: a, lambda: b, ids, tok.pad_token_id)
    assert not hit
    response, hit = cached_sample_jsd(spec, spec, lambda: a, lambda: b, ids, tok.pad_token_id, response_starts=starts)
    assert not hit and response != pytest.approx(every, rel=1e-3)  # not the all-position values, recomputed
    again, hit = cached_sample_jsd(spec, spec, lambda: a, lambda: b, ids, tok.pad_token_id, response_starts=starts)
    assert hit and again == response


def test_the_picker_rejects_a_conflicting_sample_once_and_reports_the_share():
    import numpy as np

    from damoc.recovery.paser import ClusterPicker

    texts = ["insulin. diabetes.", "insulin. cancer.", "diabetes. cancer.", "weather. rain."]
    jsd = np.array([0.4, 0.3, 0.2, 0.1])
    pick = ClusterPicker(np.zeros(4, dtype=int), jsd, [10, 10, 10, 10], texts, budget=4)
    pick.within_clusters()  # one cluster, budget 4: offered best first; the third conflicts
    assert pick.chosen == [0, 1, 3] and pick.rejected == 1
    assert pick.fill_shortfall() == 1  # offered again, refused again, still counted once
    assert pick.rejected == 1 and pick.chosen == [0, 1, 3] and pick.offered == {0, 1, 2, 3}
    # The budget is still met: the refused sample fills it last, and is counted.
    assert pick.fill_despite_graph() == 1 and pick.chosen == [0, 1, 3, 2]
    assert pick.fill_despite_graph() == 0


def test_the_clustering_text_puts_what_a_sample_asks_first():
    from damoc.recovery.paser import instruction_text
    from damoc.tasks.base import render

    qa = render("classification", id="a", question="is it benign?", context="a long abstract " * 50,
                options=["yes", "no"], label=0)
    alpaca = render("instruction", id="b", instruction="Summarise the input.", context="some passage",
                    answer="short")
    assert instruction_text(qa).startswith("Question: is it benign?") and "a long abstract" in instruction_text(qa)
    assert instruction_text(alpaca).startswith("### Instruction:\nSummarise the input.")
    assert instruction_text(alpaca).endswith("some passage") and "short" not in instruction_text(alpaca)


def test_a_cut_prompt_keeps_its_last_tokens_and_the_whole_response(recovery_setup, tmp_path, monkeypatch):
    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.paser import Context, encoded, measure_degradation
    from damoc.recovery.pool import load_pool

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    original, pruned, pool_file, _ = recovery_setup
    pool = load_pool(str(pool_file), 100, 0)[:6]
    tok = load_tokenizer(original)
    ctx = Context(pool=pool, budget=2, seed=0, original=original, pruned=pruned, progress=False)
    every = np.arange(len(pool))
    whole, lengths, _, flops_whole = measure_degradation(ctx, tok, every)
    cut_ctx = Context(**{**ctx.__dict__, "jsd_prompt_tokens": 3})
    cut, cut_lengths, cached, flops_cut = measure_degradation(cut_ctx, tok, every)
    pairs = encoded(tok, pool, ctx.max_len)
    assert all(n > 3 for _, n in pairs)  # every prompt is longer than the cut
    assert cut_lengths == [len(ids) - n + 3 for ids, n in pairs] and not cached and flops_cut < flops_whole
    a, b = load_model(original).eval(), load_model(pruned).eval()
    direct = sample_jsd(a, b, [ids[n - 3:] for ids, n in pairs], tok.pad_token_id, response_starts=[3] * len(pairs))
    assert list(cut) == pytest.approx(direct, rel=1e-5)
    assert list(cut) != pytest.approx(list(whole), rel=1e-4)  # the prompt's start mattered on these samples
    assert lengths == [len(ids) for ids, _ in pairs]


def test_the_heldout_split_follows_the_length_filter_and_not_the_selection_seed(recovery_setup, tmp_path):
    import json

    from damoc.recovery.run import RecoverConfig, recovery_pool

    original, pruned, pool, n = recovery_setup
    rows = [json.loads(line) for line in pool.read_text().splitlines()]
    rows += [{"instruction": f"Tell a long story {i}.", "input": "", "output": "and then " * 400} for i in range(5)]
    longer = tmp_path / "pool.jsonl"
    longer.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def split(**kw):
        cfg = RecoverConfig(original=original, pruned=pruned, pool=str(longer), max_len=256, heldout=6, **kw)
        kept, held, too_long = recovery_pool(cfg)
        assert not any("long story" in e.prefix for e in kept + held)  # only samples a method could pick
        return [e.id for e in kept], [e.id for e in held], too_long

    kept, held, too_long = split()
    assert too_long == 5 and len(held) == 6 and len(kept) + len(held) == n
    assert split(seed=7) == (kept, held, too_long)  # other selection seeds score the same held-out samples
    assert split(split_seed=7)[1] != held


def test_a_per_cluster_sample_measures_part_of_each_cluster_and_picks_only_from_it(recovery_setup, tmp_path,
                                                                                   monkeypatch):
    from damoc.recovery.paser import Context, measured_samples, select_paser
    from damoc.recovery.pool import load_pool

    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    measured = measured_samples(labels, 0.3, seed=0)
    assert [int((labels[measured] == c).sum()) for c in range(3)] == [3, 1, 1]  # ceil(0.3 n), at least one
    assert list(measured_samples(labels, None, 0)) == list(range(14))
    assert list(measured_samples(labels, 0.3, 0)) == list(measured)

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    original, pruned, pool_file, n = recovery_setup
    pool = load_pool(str(pool_file), 100, 0)
    ctx = Context(pool=pool, budget=6, seed=0, original=original, pruned=pruned, clusters=4, progress=False)
    whole = select_paser(ctx)
    half = select_paser(Context(**{**ctx.__dict__, "jsd_sample": 0.5}))
    assert whole.summary["jsd_measured"] == n and n / 2 <= half.summary["jsd_measured"] < n / 2 + 4
    assert half.summary["jsd_flops"] < 0.75 * whole.summary["jsd_flops"]
    assert len(half.indices) == 6 and all(np.isfinite(half.per_sample[i]["jsd"]) for i in half.indices)
    # Fewer measured samples than the budget: the budget is still met, the unmeasured ones carry no JSD.
    few = select_paser(Context(**{**ctx.__dict__, "jsd_sample": 0.05}))
    assert few.summary["jsd_measured"] < 6 and len(few.indices) == 6
    assert sum(few.per_sample[i]["jsd"] is None for i in few.indices) == 6 - few.summary["jsd_measured"]
    # A measured sample's degradation does not depend on which others were measured.
    shared = set(whole.indices) & set(half.indices)
    # (within float32 padding noise: the batches hold other samples)
    assert shared and all(half.per_sample[i]["jsd"] == pytest.approx(whole.per_sample[i]["jsd"], abs=1e-8)
                          for i in shared)
