import math

import numpy as np
import pytest
import torch
from conftest import build_model, build_tokenizer

from damoc.encoding import encode
from damoc.evaluation import evaluate
from damoc.evaluation import metrics as M
from damoc.evaluation.scoring import continuation_logprobs
from damoc.tasks.base import Task, continuation, render


def choice_task(n=10, options=("yes", "no", "maybe")) -> Task:
    exs = [render("classification", id=str(i), question=f"is case {i} positive?",
                  context="patient has a fever " * (1 + i % 4), options=list(options), label=i % 3)
           for i in range(n)]
    return Task("t", "classification", train=exs, test=exs)


def mc_task(n=8) -> Task:
    opts = ["red fox", "the lazy dog jumps", "blue", "a cough and a cold"]
    exs = [render("multiple_choice", id=str(i), question=f"which one {i}?", options=opts, label=i % 4)
           for i in range(n)]
    return Task("mc", "multiple_choice", train=exs, test=exs)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("make_task", [choice_task, mc_task])
def test_scores_do_not_depend_on_batch_size(tok, arch, make_task):
    model = build_model(arch, len(tok)).eval()
    task = make_task()
    r1 = evaluate(model, tok, task, batch_size=1)
    r8 = evaluate(model, tok, task, batch_size=8)
    for a, b in zip(r1.records, r8.records):
        assert np.allclose(a["loglik"], b["loglik"], atol=1e-4)
    assert r1.metrics["accuracy"] == r8.metrics["accuracy"]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_continuation_logprob_equals_a_direct_unpadded_forward(tok, arch):
    model = build_model(arch, len(tok)).eval()
    task = mc_task(4)
    reqs = [encode(tok, e, continuation(e, o), 512) for e in task.test for o in e.options]
    got = continuation_logprobs(model, reqs, tok.pad_token_id, batch_size=3)
    for r, (lp, _) in zip(reqs, got):
        ids = torch.tensor([r.input_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), -1)
        want = sum(float(logp[t - 1, r.input_ids[t]]) for t in range(r.n_prompt, len(r.input_ids)))
        assert math.isclose(lp, want, abs_tol=1e-4)


def generation_task(n=9) -> Task:
    exs = [render("generation", id=str(i), question=f"what follows {i}?", context="the cat sat " * (1 + i % 3),
                  answer="on the mat " * (1 + i % 4)) for i in range(n)]
    return Task("g", "generation", train=exs, test=exs)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("make_task", [choice_task, mc_task, generation_task])
def test_scoring_is_priced_on_what_runs(tok, arch, make_task):
    """The FLOPs of evaluation count the real tokens the body sees and only the positions the output
    head computes (its input, counted by a hook, padding rows' kept positions included); a shared
    yes/no/maybe prompt runs once. Before 2026-12 the head was priced at every token."""
    model = build_model(arch, len(tok)).eval()
    seen = {"head": 0, "tokens": 0}
    model.get_output_embeddings().register_forward_hook(
        lambda m, inp, out: seen.__setitem__("head", seen["head"] + inp[0].shape[0] * inp[0].shape[1]))
    model.get_input_embeddings().register_forward_hook(
        lambda m, inp, out: seen.__setitem__("tokens", seen["tokens"] + int((inp[0] != tok.pad_token_id).sum())))
    task = make_task()
    r = evaluate(model, tok, task, batch_size=4, generation=False)
    assert (r.scored_tokens, r.head_positions) == (seen["tokens"], seen["head"])
    assert r.head_positions < r.scored_tokens  # the head runs on fewer positions than the body


def test_choice_metrics_follow_the_log_likelihoods(tok):
    model = build_model("llama", len(tok)).eval()
    task = choice_task(12)
    r = evaluate(model, tok, task)
    preds = [int(np.argmax(rec["loglik"])) for rec in r.records]
    acc = np.mean([p == e.label for p, e in zip(preds, task.test)])
    assert r.metrics["accuracy"] == pytest.approx(acc)
    nll = sum(rec["answer_nll"] for rec in r.records)
    nbytes = sum(len(continuation(e).encode()) for e in task.test)
    assert r.metrics["answer_bpb"] == pytest.approx(nll / nbytes / math.log(2))
    assert r.metrics["accuracy_se"] > 0 and r.seconds > 0


def test_generation_task_gives_bpb_and_rouge(tok):
    model = build_model("llama", len(tok)).eval()
    exs = [render("generation", id=str(i), question=f"what is {i}?", answer=f"it is {i}") for i in range(4)]
    r = evaluate(model, tok, Task("g", "generation", exs, exs), max_new_tokens=5)
    assert set(r.metrics) >= {"answer_bpb", "answer_bpb_se", "rougeL", "rougeL_se"}
    assert all("generated" in rec for rec in r.records)
    assert 0 <= r.metrics["rougeL"] <= 1


def test_rouge_l_known_values():
    assert M.rouge_l("the cat sat", "the cat sat") == 1.0
    assert M.rouge_l("", "x") == 0.0
    # LCS "the cat" = 2; precision 2/3, recall 2/4
    assert M.rouge_l("the cat ran", "the big cat sat") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_bootstrap_se_matches_the_binomial_formula():
    rng = np.random.default_rng(1)
    correct = (rng.random(400) < 0.6).astype(float)
    se = M.bootstrap_se(M.mean(correct), len(correct))
    p = correct.mean()
    assert se == pytest.approx(math.sqrt(p * (1 - p) / len(correct)), rel=0.15)


def test_macro_f1():
    gold = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    f1 = M.macro_f1(pred, gold, 2)(np.arange(4))
    assert f1 == pytest.approx(np.mean([2 / 3, 0.8]))


def test_perplexity_equals_the_mean_token_loss_and_ignores_padding(tiny_llama):
    import math

    import torch

    from damoc.evaluation import perplexity
    from damoc.models import LoadOptions, load_model, load_tokenizer

    model = load_model(str(tiny_llama), LoadOptions(dtype="float32")).eval()  # the machine's device, full precision
    tok = load_tokenizer(str(tiny_llama))
    texts = ["the patient has a fever and a cough", "aspirin"]
    losses, n = 0.0, 0
    for t in texts:
        ids = tok(t, return_tensors="pt")["input_ids"].to(model.device)
        with torch.no_grad():
            out = model(ids, labels=ids)
        losses += out.loss.item() * (ids.shape[1] - 1)
        n += ids.shape[1] - 1
    assert perplexity(model, tok, texts, batch_size=2) == pytest.approx(math.exp(losses / n), rel=1e-4)
    assert perplexity(model, tok, texts, batch_size=1) == pytest.approx(math.exp(losses / n), rel=1e-4)
