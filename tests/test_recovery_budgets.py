"""Recovery budgets in answer tokens, the original model's own answers as targets (--targets self),
PASER's parts one at a time, and the held-out answer NLL per sample (issue 30), on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from damoc.errors import DamocError

TOPICS = {
    "medicine": ("Explain how {x} affects blood pressure in adults.", ["insulin", "salt", "caffeine"]),
    "finance": ("Should I invest in {x} for retirement savings?", ["bonds", "gold", "index funds"]),
    "law": ("Is a verbal {x} legally binding in court?", ["contract", "promise", "lease"]),
    "cooking": ("How long should I bake {x} in the oven?", ["bread", "salmon", "cookies"]),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An original tiny model, its pruned copy and an Alpaca pool whose answers differ in length."""
    from conftest import save_tiny
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from damoc.layers import PruneConfig, prune_model, save_pruned

    root = tmp_path_factory.mktemp("budgets")
    original = save_tiny(root, "llama", seed=5, layers=4)
    model, tok = AutoModelForCausalLM.from_pretrained(original).eval(), AutoTokenizer.from_pretrained(original)
    result = prune_model(model, tok, ["some calibration text about a patient"], PruneConfig(threshold=-1.0))
    pruned = save_pruned(model, tok, root / "pruned", result, {})
    rows = [{"instruction": template.format(x=x) + f" Case {i}.", "input": "",
             "output": f"It depends on {x}." + " Ask a doctor first." * (i % 4)}
            for template, xs in TOPICS.values() for x in xs for i in range(3)]
    pool = root / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(original), str(pruned), pool


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    """One DAMOC_HOME for the module's tests (caches shared, as a user's are)."""
    monkeypatch.setenv("DAMOC_HOME", str(tmp_path_factory.getbasetemp() / "budgets-home"))


def recover(setup, out, *extra) -> int:
    from damoc.cli import main

    original, pruned, pool = setup
    return main(["recover", "--original", original, "--pruned", pruned, "--pool", str(pool), "--clusters", "3",
                 "--heldout", "4", "--out", str(out), *extra])


def the_pool(setup):
    """The pool a run selects from (after the held-out split), and each sample's answer tokens."""
    from damoc.recovery.run import RecoverConfig, answer_token_counts, recovery_pool

    original, pruned, pool_file = setup
    pool = recovery_pool(RecoverConfig(original=original, pruned=pruned, pool=str(pool_file), heldout=4))[0]
    return pool, answer_token_counts(pool, pruned)


def test_answer_tokens_are_counted_as_training_encodes_the_answer(setup):
    from damoc.encoding import encode
    from damoc.models import load_tokenizer
    from damoc.tasks.base import continuation

    pool, tokens = the_pool(setup)
    tok = load_tokenizer(setup[1])
    for e, n in zip(pool, tokens):
        enc = encode(tok, e, continuation(e), 512)
        assert n == len(enc.input_ids) - enc.n_prompt > 0
    assert len(set(tokens)) > 2  # the answers differ in length


def test_cut_at_tokens_keeps_the_order_and_stops_before_the_budget_is_passed():
    from damoc.recovery.paser import cut_at_tokens

    tokens = [5, 3, 8, 2, 4]
    assert cut_at_tokens([2, 0, 1, 3], tokens, 13) == [2, 0]  # 8 + 5; the 3 after would pass 13
    assert cut_at_tokens([2, 0, 1, 3], tokens, 16) == [2, 0, 1]  # exactly the budget
    assert cut_at_tokens([2, 0], tokens, 7) == []
    assert cut_at_tokens([3, 4, 1], tokens, 100) == [3, 4, 1]


def test_the_token_search_takes_the_largest_sample_budget_that_fits():
    from damoc.recovery.paser import largest_within_tokens

    class Fake:  # a "picker" whose choice at n samples is not the start of its choice at n + 1
        def __init__(self, n):
            self.chosen = list(range(n))[::-1]

    tokens = [4, 4, 4, 4, 4, 4]
    assert largest_within_tokens(Fake, tokens, 13, 6).chosen == [2, 1, 0]
    assert largest_within_tokens(Fake, tokens, 24, 6).chosen == [5, 4, 3, 2, 1, 0]
    with pytest.raises(DamocError, match="selects nothing"):
        largest_within_tokens(Fake, tokens, 3, 6)


@pytest.mark.parametrize("method", ["random", "length", "paser"])
def test_budget_tokens_cut_the_subset_at_the_budget(setup, tmp_path, method):
    import random

    pool, tokens = the_pool(setup)
    by_id = {e.id: k for k, e in enumerate(pool)}
    limit = sum(tokens) // 4
    out = tmp_path / method
    assert recover(setup, out, "--method", method, "--budget-tokens", str(limit)) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    chosen = [by_id[r["id"]] for r in rows]
    spent = sum(tokens[k] for k in chosen)
    assert summary["answer_tokens"] == summary["trained_answer_tokens"] == spent <= limit
    assert summary["budget_by"] == "answer tokens" and summary["budget_tokens"] == limit
    assert summary["budget"] == summary["selected"] == len(rows) >= 1
    assert summary["config"]["budget"] is None
    if method == "random":  # the seeded order of the whole pool, cut where the next answer would pass
        order = random.Random(0).sample(range(len(pool)), len(pool))
        assert chosen == order[:len(chosen)] and spent + tokens[order[len(chosen)]] > limit
    if method == "length":
        order = sorted(range(len(pool)), key=lambda k: (-len(pool[k].answer), k))
        assert chosen == order[:len(chosen)] and spent + tokens[order[len(chosen)]] > limit
    if method == "paser":
        # PASER's own choice at that many samples, whose cluster shares fill it; one more does not fit.
        assert sum(summary["cluster_budget"]) == len(rows) == sum(summary["cluster_selected"])
        from damoc.recovery.paser import Context, select_paser

        original, pruned, _ = setup
        ctx = Context(pool=pool, budget=len(rows) + 1, seed=0, original=original, pruned=pruned, clusters=3,
                      progress=False)
        assert sum(tokens[k] for k in select_paser(ctx).indices) > limit
    # The same run at a sample budget records its answer tokens too.
    assert recover(setup, tmp_path / "count", "--method", method, "--budget", "5") == 0
    counted = json.loads((tmp_path / "count" / "summary.json").read_text())
    assert counted["budget_by"] == "samples" and counted["budget"] == counted["selected"] == 5
    assert counted["answer_tokens"] == sum(tokens[by_id[json.loads(x)["id"]]]
                                           for x in (tmp_path / "count" / "subset.jsonl").read_text().splitlines())


@pytest.mark.parametrize("argv,message", [
    (["--budget-tokens", "0"], "budget_tokens: Input should be greater than or equal to 1"),
    (["--budget-tokens", "-5"], "budget_tokens: Input should be greater than or equal to 1"),
    (["--budget-tokens", "50", "--budget", "0.2"], "not both"),
    (["--budget", "none"], "give --budget"),
    (["--budget-tokens", "100000"], "more than the pool's answers hold"),
    (["--budget-tokens", "1"], "selects nothing"),
    (["--self-max-new-tokens", "0"], "self_max_new_tokens: Input should be greater than or equal to 1"),
    (["--targets", "distill"], "add --train"),
    (["--targets", "distill", "--train", "--distill-weight", "1.5"], "distill_weight: Input should be less than"),
    (["--targets", "distill", "--train", "--distill-weight", "0"], "distill_weight: Input should be greater than 0"),
])
def test_bad_budgets_and_targets_are_refused_in_one_line(setup, tmp_path, capsys, argv, message):
    out = tmp_path / "o"
    assert recover(setup, out, "--method", "random", *argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("damoc: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_an_unknown_target_is_refused(setup, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        recover(setup, tmp_path / "o", "--targets", "teacher")
    assert e.value.code == 2 and "invalid choice: 'teacher'" in capsys.readouterr().err


def test_a_run_file_may_give_the_token_budget_and_round_trips(setup):
    from damoc.recovery.run import RecoverConfig

    original, pruned, _ = setup
    config = RecoverConfig(original=original, pruned=pruned, budget_tokens=300)
    assert config.budget is None and config.budget_tokens == 300
    again = RecoverConfig(**config.model_dump(mode="json"))  # a summary's config reads back
    assert again.budget is None and again.budget_tokens == 300
    assert RecoverConfig(original=original, pruned=pruned).budget == 0.2


def test_the_default_recovery_is_random_with_distillation_when_it_trains(setup):
    """The measured best (recover-methods.json): random + distill. Without --train nothing is trained, so
    the subset keeps the pool's answers and says so."""
    from damoc.recovery.run import RecoverConfig

    original, pruned, _ = setup
    trained = RecoverConfig(original=original, pruned=pruned, train=True)
    assert (trained.method, trained.targets) == ("random", "distill")
    assert RecoverConfig(original=original, pruned=pruned).targets == "data"
    assert RecoverConfig(original=original, pruned=pruned, targets="self").targets == "self"


def test_own_answer_stops_where_the_template_starts_a_new_turn():
    from damoc.recovery.targets import own_answer

    assert own_answer(" It is salt.\nMostly.\n\n### Instruction:\nNext one") == "It is salt.\nMostly."
    assert own_answer("yes\nQuestion: is it?\nAnswer: no") == "yes"
    assert own_answer("\n### Response:\nhello") == ""
    assert own_answer("   ") == ""


def test_self_targets_are_the_original_models_greedy_answers_and_are_cached(setup, tmp_path, monkeypatch):
    import dataclasses
    import random

    from damoc.encoding import encode
    from damoc.evaluation.scoring import generate
    from damoc.flops import forward_flops
    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.targets import own_answer
    from damoc.tasks.base import continuation

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))  # nothing cached yet
    original, pruned, _ = setup
    pool, _ = the_pool(setup)
    args = ["--method", "random", "--budget", "6", "--targets", "self", "--self-max-new-tokens", "6",
            "--batch-size", "1"]
    out = tmp_path / "self"
    assert recover(setup, out, *args) == 0
    summary = json.loads((out / "summary.json").read_text())
    t = summary["self_targets"]
    assert summary["targets"] == "self" and summary["selected"] == t["generated"] == 6 and t["cached"] == 0
    assert t["kept"] + t["empty_dropped"] + t["too_long_dropped"] == 6 and summary["trained"] == t["kept"] >= 1
    # The answers are the original model's greedy continuations of the chosen prompts, cut at a new turn.
    tok, model = load_tokenizer(original), load_model(original).eval()
    chosen = [pool[k] for k in random.Random(0).sample(range(len(pool)), 6)]
    prompts = []
    for e in chosen:
        enc = encode(tok, e, continuation(e), 512)
        prompts.append(enc.input_ids[:enc.n_prompt])
    raw = generate(model, tok, prompts, 6, batch_size=1)
    kept = [(e, own_answer(x)) for e, x in zip(chosen, raw) if own_answer(x)]
    rows = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["data_answer"]) for r in rows] == [(e.id, a, e.answer) for e, a in kept]
    assert t["empty_dropped"] == 6 - len(kept) and t["too_long_dropped"] == 0
    generated = sum(min(6, len(tok(x, add_special_tokens=False)["input_ids"])) for x in raw)
    assert t["generation_tokens"] == sum(len(p) for p in prompts) + generated
    assert t["generation_flops"] == summary["generation_flops"] == pytest.approx(
        forward_flops(model, t["generation_tokens"]))
    assert summary["trained_answer_tokens"] == t["answer_tokens"] == sum(
        len(tok(continuation(dataclasses.replace(e, answer=a)), add_special_tokens=False)["input_ids"])
        for e, a in kept)
    # A second run (another seed's training, the same subset) reads every answer from the cache.
    again = tmp_path / "again"
    assert recover(setup, again, *args) == 0
    t2 = json.loads((again / "summary.json").read_text())["self_targets"]
    assert t2["cached"] == 6 and t2["generation_flops"] == t["generation_flops"]
    assert (again / "subset.jsonl").read_text() == (out / "subset.jsonl").read_text()
    # Another cap is another entry: generated again.
    assert recover(setup, tmp_path / "cap", *args[:-3], "5") == 0
    assert json.loads((tmp_path / "cap" / "summary.json").read_text())["self_targets"]["cached"] == 0


def test_self_targets_drop_empty_answers_and_train_on_the_rest(setup, tmp_path, monkeypatch):
    import damoc.evaluation.scoring as scoring
    import damoc.recovery.run as run

    monkeypatch.setenv("DAMOC_HOME", str(tmp_path / "home"))
    answers = iter(["", "### Instruction:\nsomething else", "Keep it short.\nQuestion: more?", "Salt, mostly."])
    monkeypatch.setattr(scoring, "generate", lambda model, tok, prompts, *a, **k: [next(answers) for _ in prompts])
    seen = {}

    class Trained(Exception):
        pass

    def fake_training(config, subset, heldout, progress):
        seen["answers"] = [e.answer for e in subset]
        raise Trained

    monkeypatch.setattr(run, "train_and_evaluate", fake_training)
    with pytest.raises(Trained):
        recover(setup, tmp_path / "t", "--method", "length", "--budget", "4", "--targets", "self",
                "--batch-size", "4", "--train")
    # generate sees the prompts longest first; whichever order, two answers are empty, two kept
    assert sorted(seen["answers"]) == ["Keep it short.", "Salt, mostly."]
    answers = iter(["", "", "", ""])
    with pytest.raises(DamocError, match="empty or too long"):
        from damoc.recovery.targets import self_targets

        pool, _ = the_pool(setup)
        self_targets(pool[:4], setup[0], setup[1], 512, 512, 7)


def test_the_paser_parts_switch_off_one_at_a_time():
    from damoc.recovery.paser import ClusterPicker

    labels = np.array([0] * 6 + [1] * 2)
    jsd = np.array([0.1] * 6 + [0.5, 0.4])
    lengths = [10] * 8
    texts = [f"topic{i}. shared. other{i % 2}." for i in range(8)]
    # PASER: the budget follows degradation (cluster 1 first and in full), then efficiency.
    full = ClusterPicker(labels, jsd, lengths, texts, 4)
    full.run()
    assert full.allocation == [2, 2]
    # By size: 6 : 2 of 4 -> 3 : 1.
    by_size = ClusterPicker(labels, jsd, lengths, texts, 4, share_by="size")
    assert by_size.allocation == [3, 1]
    # A given order replaces the efficiency order within clusters (higher first).
    order = np.array([0, 5, 4, 3, 2, 1, 0, 9], dtype=float)
    ordered = ClusterPicker(labels, jsd, lengths, texts, 4, share_by="size", order=order, graph=False)
    ordered.run()
    assert ordered.chosen == [7, 1, 2, 3]  # the more degraded cluster first
    # Without the graph nothing is refused and no concept is extracted.
    assert ordered.rejected == 0 and ordered.concepts == {}
    with pytest.raises(ValueError, match="share_by"):
        ClusterPicker(labels, jsd, lengths, texts, 4, share_by="tokens")


def test_clustering_only_measures_no_degradation(setup, tmp_path):
    out = tmp_path / "clusters"
    assert recover(setup, out, "--method", "paser", "--budget", "8", "--cluster-budget", "size",
                   "--within-cluster", "random", "--no-concept-graph") == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["jsd_flops"] == 0 and s["jsd_measured"] == 0 and s["rejected_by_concept_graph"] == 0
    assert s["parts"] == {"cluster_budget": "size", "within_cluster": "random", "concept_graph": False}
    assert sum(s["cluster_budget"]) == s["selected"] == 8
    # shares follow the clusters' sizes (up to rounding)
    sizes, share = np.array(s["cluster_sizes"]), np.array(s["cluster_budget"])
    assert np.all(np.abs(share - 8 * sizes / sizes.sum()) < 1 + 1e-9)
    # The degradation budget alone measures the JSD, without the concept graph.
    out = tmp_path / "degradation"
    assert recover(setup, out, "--method", "paser", "--budget", "8", "--within-cluster", "random",
                   "--no-concept-graph") == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["jsd_flops"] > 0 and s["rejected_by_concept_graph"] == 0 and s["selected"] == 8


def test_the_heldout_answer_nll_per_sample_and_per_source_mean():
    from damoc.recovery.run import answer_nll_means
    from damoc.tasks.base import Example

    heldout = [Example(f"{s}/{i}", "", "", "", "a") for i, s in enumerate(["fiqa", "fiqa", "fiqa", "xsum"])]
    items = {"answer": {"nll": [2.0, 4.0, 3.0, 1.0], "tokens": [2, 2, 1, 1]}}
    means = answer_nll_means(items, heldout)
    assert means["per_sample"]["nll"] == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert means["sources_mean"]["nll"] == pytest.approx((9 / 5 + 1) / 2)
    assert means["per_sample"]["nll_se"] > 0 and means["per_sample"]["n"] == 4


def test_the_distillation_loss_is_the_answer_loss_plus_the_kl_to_the_teacher(setup):
    """Against itself the KL is 0, so the loss is (1 - w) x the answer loss; against the pruned model it is
    positive; a teacher of another vocabulary is refused in one line."""
    import torch

    from damoc.finetune.train import _Collator, answer_loss, prepare_examples
    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.distill import check_same_vocabulary, distill_loss

    original, pruned, _ = setup
    pool, _ = the_pool(setup)
    tok = load_tokenizer(original)
    batch = _Collator(tok.pad_token_id)(prepare_examples(tok, pool[:3], 512))
    student, teacher = load_model(pruned), load_model(original)
    with torch.no_grad():
        ce = answer_loss(student, batch["input_ids"], batch["attention_mask"], batch["labels"])
        same = distill_loss(load_model(pruned), 0.5)(student, batch, None, 1)
        other = distill_loss(teacher, 0.5)(student, batch, None, 1)
        halved = distill_loss(teacher, 0.5)(student, batch, None, 2)
        pure = distill_loss(teacher, 0.0)(student, batch, None, 1)
    assert torch.isclose(same, 0.5 * ce, atol=1e-5)
    assert other - same > 1e-5  # the pruned model's distributions differ (tiny random models: a little)
    assert torch.isclose(halved - 0.5 * ce, (other - 0.5 * ce) / 2, atol=1e-5)  # the KL per micro-batch
    assert torch.isclose(pure, ce)
    wider = torch.nn.Linear(8, 7)
    with pytest.raises(DamocError, match="share a vocabulary"):
        check_same_vocabulary(type("M", (), {"get_output_embeddings": lambda self: wider})(), student)


def test_the_distillation_loss_in_chunks_gives_the_same_loss_and_gradients(setup):
    """A long micro-batch at a large vocabulary runs the heads on a few positions at a time (checkpointed):
    the loss and every gradient match the one-pass loss."""
    import torch

    from damoc.finetune.train import _Collator, prepare_examples
    from damoc.models import load_model, load_tokenizer
    from damoc.recovery.distill import distill_loss

    original, pruned, _ = setup
    pool, _ = the_pool(setup)
    tok = load_tokenizer(original)
    batch = _Collator(tok.pad_token_id)(prepare_examples(tok, pool[:3], 512))
    teacher = load_model(original)
    vocab = teacher.get_output_embeddings().weight.shape[0]
    results = []
    for chunk in (2 ** 40, 3 * vocab):  # one pass; three positions per chunk
        student = load_model(pruned)
        loss = distill_loss(teacher, 0.5, chunk_elements=chunk)(student, batch, None, 1)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in student.named_parameters()
                                        if p.grad is not None}))
    (one, grads_one), (chunked, grads_chunked) = results
    assert int(batch["attention_mask"][:, 1:].sum()) > 3  # several chunks
    assert torch.isclose(one, chunked, rtol=1e-5)
    assert grads_one.keys() == grads_chunked.keys() and grads_one
    for name in grads_one:
        torch.testing.assert_close(grads_chunked[name], grads_one[name], rtol=1e-4, atol=1e-6, msg=name)


def test_distilled_recovery_trains_and_counts_the_teachers_forward_passes(setup, tmp_path):
    from damoc.flops import forward_flops
    from damoc.models import load_model

    out = tmp_path / "d"
    assert recover(setup, out, "--method", "random", "--budget", "6", "--targets", "distill", "--train",
                   "--eval-tasks", "boolq", "--eval-limit", "2", "--finetune.min-steps", "2",
                   "--finetune.max-seq-len", "512") == 0
    summary = json.loads((out / "summary.json").read_text())
    rec = summary["recovery"]
    assert summary["targets"] == "distill" and rec["distill_weight"] == 0.5
    assert rec["teacher_flops"] == pytest.approx(forward_flops(load_model(setup[0]), rec["train"]["train_tokens"]))
    assert np.isfinite(rec["train"]["last_loss"]) and rec["train"]["steps"] >= 2
    assert "next-token distributions (KL weight 0.5" in (out / "report.md").read_text()
