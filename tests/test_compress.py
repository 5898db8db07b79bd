"""Token compression: surprisal windows, word dropping, the BERTScore gate and the rewrite loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from damoc.cli import main
from damoc.models import LoadOptions, load_model, load_tokenizer
from damoc.tasks import DataSpec, load_task
from damoc.tokens import CompressConfig, compress_examples
from damoc.tokens.compress import Components
from damoc.tokens.dropping import compress_text, words_of
from damoc.tokens.surprisal import _windows, token_surprisals

TEXT = ("the patient has a fever and a cough so the doctor says it is a cold and aspirin helps "
        "the quick brown fox jumps over the lazy dog while the market should diversify costs ") * 3


@pytest.fixture(scope="module")
def lm(tiny_llama):
    # fp32 on the machine's device (CUDA where present): exact comparisons need full precision.
    return load_model(str(tiny_llama), LoadOptions(dtype="float32")).eval(), load_tokenizer(str(tiny_llama))


@pytest.fixture(scope="module")
def bert():
    from damoc.tokens.bertscore import BertScorer

    return BertScorer()


@pytest.mark.parametrize("n,window,overlap", [(1, 8, 2), (40, 8, 2), (100, 16, 0), (17, 16, 7)])
def test_windows_score_every_token_once_with_bounded_rows(n, window, overlap):
    spans = _windows(n, window, overlap)
    scored = [t for _, s, e in spans for t in range(s, e)]
    assert scored == list(range(n))
    assert all(e - ctx <= window for ctx, _, e in spans)
    assert all(s - ctx == (overlap if s else 0) for ctx, s, _ in spans)


def test_surprisal_equals_a_direct_forward_pass(lm):
    model, tok = lm
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([[tok.bos_token_id, *ids]], device=model.device)).logits[0, :-1],
                                 -1).cpu()
    direct = -logp[torch.arange(len(ids)), torch.tensor(ids)].numpy()
    (whole,) = token_surprisals(model, tok, [TEXT], window=1024)
    np.testing.assert_allclose(whole.surprisal, direct, rtol=1e-4, atol=1e-4)
    # In small windows every token is still scored once; the first window sees the same context.
    (win,) = token_surprisals(model, tok, [TEXT], window=16, overlap=4)
    assert win.n_tokens == len(ids)
    np.testing.assert_allclose(win.surprisal[:16], direct[:16], rtol=1e-4, atol=1e-4)
    # Batched with a shorter text (right padding) gives the same scores.
    short, again = token_surprisals(model, tok, ["a cold", TEXT], window=1024)
    np.testing.assert_allclose(again.surprisal, direct, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.8])
def test_word_dropping_meets_the_ratio_and_keeps_word_order(lm, ratio):
    model, tok = lm
    (scored,) = token_surprisals(model, tok, [TEXT])
    words, scores, costs = words_of(TEXT, scored)
    assert costs.sum() == scored.n_tokens
    out = compress_text(TEXT, scored, ratio)
    kept = out.split()
    it = iter(words)
    assert all(any(w == k for w in it) for k in kept), "kept words must be a subsequence"
    n_out = len(tok(out, add_special_tokens=False)["input_ids"])
    assert abs(n_out / scored.n_tokens - ratio) < 0.1
    # The kept words are the most surprising ones that fit: no dropped word beats a kept word
    # while it would still fit in the remaining budget.
    keep = _mask(TEXT, scored, ratio)
    kept_cost = costs[keep].sum()
    assert " ".join(w for w, k in zip(words, keep) if k) == out
    for i in np.flatnonzero(~keep):
        if kept_cost + costs[i] <= ratio * costs.sum():
            raise AssertionError("a dropped word still fits in the budget")
    assert compress_text(TEXT, scored, 1.0) == TEXT


def _mask(text, scored, ratio):
    from damoc.tokens.dropping import keep_mask

    _, scores, costs = words_of(text, scored)
    return keep_mask(scores, costs, ratio)


def test_bertscore_identity_symmetry_and_baseline(bert):
    a = "aspirin reduces pain in adults with headache"
    b = "the market fell sharply on friday after the report"
    raw = bert.raw_f1([a, a, b], [a, b, a])
    assert raw[0] == pytest.approx(1.0, abs=1e-5)
    assert raw[1] == pytest.approx(raw[2], abs=1e-6)
    assert raw[1] < 0.9
    base = bert.baseline([a, b, "a cold is caught in winter", "stocks and bonds differ"], pairs=20)
    assert 0 < base < 1
    assert bert.rescale(np.array([base, 1.0]), base) == pytest.approx([0.0, 1.0])


def test_bertscore_embeds_references_once_unless_told_not_to(bert):
    """Compression scores the same originals every round: their embeddings are kept, and the
    scores do not depend on whether they were."""
    cands, refs = ["a cold in winter", "stocks fell"], ["a cold is caught in winter", "stocks and bonds differ"]
    bert.clear_cache()
    first = bert.raw_f1(cands, refs)
    before = bert.tokens
    again = bert.raw_f1(cands, refs)
    cached_cost = bert.tokens - before
    fresh = bert.raw_f1(cands, refs, cache_references=False)
    assert bert.tokens - before - cached_cost > cached_cost > 0  # only the candidates, then both
    assert np.allclose(first, again) and np.allclose(first, fresh, atol=1e-6)
    bert.clear_cache()
    before = bert.tokens
    bert.raw_f1(cands, refs)
    assert bert.tokens - before > cached_cost


class CountingRewriter:
    """Wraps a real rewriter and counts calls; or returns a fixed transformation."""

    def __init__(self, inner=None, fn=None):
        self.inner, self.fn, self.calls = inner, fn, 0

    def __getattr__(self, name):  # model and token counts of the wrapped rewriter
        if self.inner is None:
            raise AttributeError(name)
        return getattr(self.inner, name)

    def rewrite(self, texts, caps, attempt=0, seed=0, desc=None):
        self.calls += 1
        return self.fn(texts) if self.fn else self.inner.rewrite(texts, caps, attempt, seed, desc)


def _cls_task(path):
    return load_task(None, DataSpec(path=path, format="classification", fields={"context": "passage", "label": "y"}))


def _components(lm, bert, rewriter):
    model, tok = lm
    return Components(model, tok, bert, rewriter, tok)


def test_compression_never_touches_questions_options_or_answers(lm, bert, cls_file):
    task = _cls_task(cls_file)
    examples = task.train[:8]
    out, records, summary = compress_examples(examples, CompressConfig(ratio=0.5, threshold=0.0, max_tries=0),
                                              _components(lm, bert, None), progress=False)
    for e, o in zip(examples, out):
        assert (o.id, o.prefix, o.suffix, o.answer, o.options, o.label) == \
               (e.id, e.prefix, e.suffix, e.answer, e.options, e.label)
        assert len(o.context) <= len(e.context)
    # These passages are near-duplicates, so the unrelated-text baseline is high and some
    # compressed ones score below it (negative): those fall back to milder ratios.
    for r in records:
        assert (r["status"] == "compressed") == (r["bertscore_before"] >= 0.0)
        if r["status"] == "compressed":
            assert abs(r["tokens_after"] / r["tokens_before"] - 0.5) < 0.2
    assert summary["share_passed_without_rewrite"] > 0


def test_rewrite_loop_stops_after_max_tries_and_falls_back(lm, bert, cls_file):
    from damoc.tokens.rewrite import Rewriter

    model, tok = lm
    task = _cls_task(cls_file)
    examples = task.train[:6]
    rewriter = CountingRewriter(Rewriter(model, tok))  # a random tiny model: its rewrites never pass
    config = CompressConfig(ratio=0.3, threshold=0.99, max_tries=2)
    out, records, summary = compress_examples(examples, config, _components(lm, bert, rewriter), progress=False)
    assert rewriter.calls == 2
    assert {r["status"] for r in records} <= {"milder", "original"}
    assert all(r["rewrite_tries"] == 2 for r in records)
    assert summary["share_rewritten"] == 0
    flops = summary["forward_flops"]
    assert flops["surprisal"] > 0 and flops["bertscore"] > 0 and flops["rewrite"] > 0
    assert summary["share_fell_back_milder"] + summary["share_fell_back_original"] == pytest.approx(1.0)
    assert summary["bertscore_after"]["min"] >= 0.99 - 1e-9
    for o, r, e in zip(out, records, examples):  # what was emitted really scores what is recorded
        if r["status"] == "original":
            assert o.context == e.context


def test_a_passing_rewrite_is_taken_and_the_loop_ends(lm, bert):
    from damoc.tasks.base import render

    passages = ["aspirin reduces pain and fever in adults who have a bad headache after work",
                "the market fell sharply on friday after the central bank raised its interest rates",
                "the quick brown fox jumps over the lazy dog near the old river bank in spring",
                "a court may refuse the appeal when the contract was signed without any witness"]
    examples = [render("classification", id=str(i), question="is it true?", context=c,
                       options=[" yes", " no"], label=i % 2) for i, c in enumerate(passages)]

    # A rewriter that gives back the original minus its first word passes a modest threshold.
    def restore(texts):
        return [next(c for c in passages if set(t.split()) <= set(c.split())).split(" ", 1)[1] for t in texts]

    rewriter = CountingRewriter(fn=restore)
    config = CompressConfig(ratio=0.2, threshold=0.5, max_tries=3)
    _, records, summary = compress_examples(examples, config, _components(lm, bert, rewriter), progress=False)
    assert rewriter.calls == 1
    assert summary["share_rewritten"] > 0
    assert all(r["rewrite_tries"] <= 1 for r in records)
    assert all(r["status"] in ("compressed", "rewritten") for r in records)


def test_each_retry_rewrites_the_best_version_so_far(lm, bert):
    """The paper's loop is iterative: try 2 starts from try 1's output when that scored better."""
    from damoc.tasks.base import render

    passage = "aspirin reduces pain and fever in adults who have a bad headache after a long day at work"
    examples = [render("classification", id="0", question="is it true?", context=passage,
                       options=[" yes", " no"], label=0)]
    seen: list[str] = []

    def improve(texts):  # each call restores two more words of the original, never enough to pass
        seen.extend(texts)
        n = len(texts[0].split()) + 2
        return [" ".join(passage.split()[: min(n, len(passage.split()) - 3)])]

    rewriter = CountingRewriter(fn=improve)
    config = CompressConfig(ratio=0.2, threshold=0.999, max_tries=3)
    compress_examples(examples, config, _components(lm, bert, rewriter), progress=False)
    assert rewriter.calls == 3
    lengths = [len(t.split()) for t in seen]
    assert lengths == sorted(lengths) and lengths[1] == lengths[0] + 2  # fed its own better output


def test_empty_contexts_pass_through(lm, bert, gen_file):
    task = load_task(None, DataSpec(path=gen_file, format="generation"))
    out, records, summary = compress_examples(task.train[:3], CompressConfig(max_tries=0),
                                              _components(lm, bert, None), progress=False)
    assert out == task.train[:3]
    assert summary["empty_context"] == 3 and {r["status"] for r in records} == {"empty"}


def test_cli_compress_writes_three_files_and_refuses_bad_input(tiny_llama, cls_file, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    common = ["compress", "--data", str(cls_file), "--format", "classification",
              "--field", "context=passage", "--field", "label=y",
              "--scorer", str(tiny_llama), "--rewriter", str(tiny_llama), "--limit", "5", "--quiet"]
    assert main([*common, "--ratio", "1.5", "--out", str(out)]) == 2
    assert "ratio" in capsys.readouterr().err and not out.exists()
    assert main([*common, "--threshold", "-0.1", "--out", str(out)]) == 2
    assert main([*common, "--ratio", "0.5", "--threshold", "0.2", "--max-tries", "1", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["examples"] == 5 and summary["bertscore_after"]["min"] >= 0.2 - 1e-9
    assert len(out.with_suffix(".records.jsonl").read_text().splitlines()) == 5
    # A damoc filter output is accepted as input; a binary file is a clear error.
    again = tmp_path / "again.jsonl"
    assert main(["compress", "--examples", str(out), "--scorer", str(tiny_llama), "--max-tries", "0", "--quiet",
                 "--threshold", "0", "--out", str(again)]) == 0
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\x00\xff\xfe" * 10)
    capsys.readouterr()
    assert main(["compress", "--examples", str(binary), "--quiet", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "not a damoc examples file" in capsys.readouterr().err
