"""Evaluate a model on a task's test examples: choice accuracy, answer bits per byte, ROUGE-L.

Choice tasks are scored as lm-evaluation-harness does: each option's log-likelihood as a
continuation of the prompt; the highest wins. Bits per byte of the reference answer is
reported for every task because per-token figures do not compare across tokenizers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import damoc.evaluation.metrics as M
from damoc.encoding import Encoded, encode
from damoc.evaluation.scoring import continuation_logprobs, generate, scoring_cost
from damoc.tasks.base import Example, Task, continuation


@dataclass
class EvalResult:
    metrics: dict[str, float]
    records: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    n: int = 0
    truncated: int = 0
    scored_tokens: int = 0  # real tokens through the model's body when scoring
    head_positions: int = 0  # positions through its output head (forward FLOPs: damoc.flops.forward_flops)


def evaluate(model, tokenizer, task: Task, *, examples: list[Example] | None = None,
             max_len: int = 512, batch_size: int = 8, max_new_tokens: int = 64,
             generation: bool = True, progress: bool = False, seed: int = 0) -> EvalResult:
    examples = task.test if examples is None else examples
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        if task.is_choice:
            result = _evaluate_choice(model, tokenizer, examples, max_len, batch_size, progress, seed)
        else:
            result = _evaluate_generation(model, tokenizer, examples, max_len, batch_size,
                                          max_new_tokens, generation, progress, seed)
    finally:
        model.train(was_training)
    result.seconds = time.perf_counter() - start
    result.n = len(examples)
    return result


def metrics_of(records: list[dict], choice: bool, seed: int = 0) -> dict[str, float]:
    """A task's metrics (with bootstrap SE) from per-question records: what evaluate() reports, and what
    sequential evaluation reports for questions scored in several batches (records concatenated).
    ROUGE-L, which needs generation, is added by the generative path only."""
    n = len(records)
    nll = np.array([r["answer_nll"] for r in records])
    nb = np.array([r["answer_bytes"] for r in records])
    if not choice:
        return M.with_se("answer_bpb", M.bits_per_byte(nll, nb), n, seed)
    gold = np.array([r["label"] for r in records])
    pred = np.array([r["pred"] for r in records])
    pred_norm = np.array([r["pred_norm"] for r in records])
    n_labels = max(len(r["loglik"]) for r in records)  # one log-likelihood per option
    out: dict[str, float] = {}
    out |= M.with_se("accuracy", M.accuracy(pred, gold), n, seed)
    out |= M.with_se("accuracy_norm", M.accuracy(pred_norm, gold), n, seed)
    out |= M.with_se("macro_f1", M.macro_f1(pred, gold, n_labels), n, seed)
    out |= M.with_se("answer_bpb", M.bits_per_byte(nll, nb), n, seed)
    return out


def _evaluate_choice(model, tokenizer, examples, max_len, batch_size, progress, seed) -> EvalResult:
    requests = scoring_requests(tokenizer, examples, max_len, choice=True)
    scores = continuation_logprobs(model, requests, tokenizer.pad_token_id, batch_size,
                                   desc="evaluating" if progress else None)
    records, k = [], 0
    for ex in examples:
        lls = [scores[k + j][0] for j in range(len(ex.options))]
        nbytes = [len(continuation(ex, o).encode("utf-8")) for o in ex.options]
        truncated = requests[k].truncated
        k += len(ex.options)
        records.append({
            "id": ex.id, "label": ex.label, "pred": int(np.argmax(lls)),
            "pred_norm": int(np.argmax(np.array(lls) / np.array(nbytes))),
            "loglik": lls, "answer_nll": -lls[ex.label], "answer_bytes": nbytes[ex.label],
            "truncated": truncated,
        })
    return EvalResult(metrics_of(records, choice=True, seed=seed), records,
                      truncated=sum(r["truncated"] for r in records), **_cost(requests, batch_size))


def _evaluate_generation(model, tokenizer, examples, max_len, batch_size, max_new_tokens,
                         generation, progress, seed) -> EvalResult:
    requests = scoring_requests(tokenizer, examples, max_len, choice=False)
    scores = continuation_logprobs(model, requests, tokenizer.pad_token_id, batch_size,
                                   desc="scoring answers" if progress else None)
    records = [{"id": ex.id, "answer_nll": -s[0],
                "answer_bytes": len(continuation(ex).encode("utf-8")), "truncated": r.truncated}
               for ex, s, r in zip(examples, scores, requests)]
    out = metrics_of(records, choice=False, seed=seed)
    n = len(records)
    if generation:
        prompts = [r.input_ids[:r.n_prompt] for r in requests]
        texts = generate(model, tokenizer, prompts, max_new_tokens, batch_size,
                         desc="generating" if progress else None)
        scores_rl = np.array([M.rouge_l(t, ex.answer) for t, ex in zip(texts, examples)])
        for rec, t, s in zip(records, texts, scores_rl):
            rec["generated"], rec["rougeL"] = t, float(s)
        out |= M.with_se("rougeL", M.mean(scores_rl), n, seed)
    return EvalResult(out, records, truncated=sum(r["truncated"] for r in records), **_cost(requests, batch_size))


def scoring_requests(tokenizer, examples: list[Example], max_len: int, choice: bool) -> list[Encoded]:
    """What evaluation scores, as it encodes it: every option of a choice question, in order, or the
    reference answer. The cost estimate prices these same requests."""
    return [encode(tokenizer, ex, continuation(ex, opt), max_len)
            for ex in examples for opt in (ex.options if choice else [None])]


def _cost(requests: list[Encoded], batch_size: int) -> dict[str, int]:
    tokens, head = scoring_cost(requests, batch_size)
    return {"scored_tokens": tokens, "head_positions": head}
