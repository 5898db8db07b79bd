"""Token compression of training examples: drop low-surprisal words, check meaning, repair.

Only an example's context (the passage, abstract or input) is compressed. The question, the
instruction, the answer options and the answer are kept whole: they are short, and they carry
the task, so dropping words from them changes what is learned rather than how much is read.

Every emitted context scores at or above the threshold (rescaled BERTScore against its
original, see bertscore.py): a sample that fails after compression is rewritten by an instruct
LLM (up to `max_tries`), then compressed at milder ratios, then left as its original text.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from damoc.errors import DamocError
from damoc.filtering.embeddings import BUNDLED_EMBEDDER
from damoc.flops import forward_flops
from damoc.tasks.base import Example, continuation
from damoc.tokens.prune import compress_text

DEFAULT_LM = "bundled:smollm2-135m-instruct"


class CompressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratio: float = Field(0.5, gt=0, le=1, description="share of context tokens to keep")
    # 0.7 on our rescaled scale: 97% of PubMedQA contexts pass at ratio 0.5, none at 0.9, so 0.9 left
    # ~0.9 of the tokens (bench/compress_pubmedqa.py).
    threshold: float = Field(0.7, ge=0, le=1, description="minimum rescaled BERTScore F1 of an emitted context")
    scorer: str = Field(DEFAULT_LM, description="causal LM that scores token surprisal")
    # Off unless asked: the bundled 135M rewriter rescued 0 of 100 PubMedQA contexts at 5.8 s each on
    # a CPU (bench/compress_pubmedqa.py). Give a capable instruct model, ideally on a GPU.
    rewriter: str | None = Field(None, description="instruct LM that repairs failing samples; None: no rewriting")
    bert_model: str = Field(BUNDLED_EMBEDDER, description="encoder for BERTScore")
    count_tokenizer: str | None = Field(None, description="tokenizer the ratio is reported in (default: the scorer's)")
    max_tries: int = Field(2, ge=0, le=10, description="rewrites per failing sample")
    fallback_ratios: list[float] | None = Field(None, description="milder ratios tried before the original "
                                                "(default: a quarter, half and three quarters of the way to 1)")
    window: int = Field(512, ge=16, description="scorer window in tokens; longer texts are scored in windows")
    batch_size: int = Field(8, ge=1, description="texts per scoring forward pass")
    seed: int = Field(0, description="rewriting seed (in a run: the run's seed)")

    @field_validator("fallback_ratios")
    @classmethod
    def _ratios_in_range(cls, v):
        if v is not None and any(not 0 < r <= 1 for r in v):
            raise ValueError("fallback ratios must lie in (0, 1]")
        return v

    def milder_ratios(self) -> list[float]:
        if self.fallback_ratios is not None:
            return sorted(r for r in self.fallback_ratios if r > self.ratio)
        return [round(self.ratio + (1 - self.ratio) * f, 4) for f in (0.25, 0.5, 0.75) if self.ratio < 1]


@dataclass
class Components:
    """The loaded models; built once by `load_components`, or by hand in tests."""

    scorer_model: object
    scorer_tokenizer: object
    bert: object
    rewriter: object | None
    count_tokenizer: object


def load_components(config: CompressConfig) -> Components:
    from damoc.models import load_model, load_tokenizer
    from damoc.tokens.bertscore import BertScorer
    from damoc.tokens.rewrite import Rewriter

    tok = load_tokenizer(config.scorer)
    model = load_model(config.scorer).eval()
    rewriter = None
    if config.rewriter and config.max_tries > 0:
        if config.rewriter == config.scorer:
            rewriter = Rewriter(model, tok)
        else:
            rewriter = Rewriter(load_model(config.rewriter).eval(), load_tokenizer(config.rewriter))
    count = load_tokenizer(config.count_tokenizer) if config.count_tokenizer else tok
    return Components(model, tok, BertScorer(config.bert_model), rewriter, count)


def _stats(scores: np.ndarray, threshold: float) -> dict:
    if len(scores) == 0:
        return {"n": 0}
    return {"n": int(len(scores)), "mean": float(scores.mean()), "min": float(scores.min()),
            "p05": float(np.percentile(scores, 5)), "median": float(np.median(scores)),
            "share_at_or_above_threshold": float((scores >= threshold - 1e-9).mean())}


def compress_examples(examples: list[Example], config: CompressConfig, components: Components | None = None,
                      progress: bool = True) -> tuple[list[Example], list[dict], dict]:
    """Compressed copies of the examples, one record per example, and a summary."""
    from damoc.tokens.surprisal import token_surprisals

    if not examples:
        raise DamocError("there are no examples to compress")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    c = components or load_components(config)
    seconds["load"] = time.perf_counter() - clock

    todo = [i for i, e in enumerate(examples) if e.context.strip()]
    originals = [examples[i].context for i in todo]
    thr = config.threshold

    def timed(stage: str, fn, *a, **k):
        start = time.perf_counter()
        result = fn(*a, **k)
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
        return result

    scored = timed("surprisal", token_surprisals, c.scorer_model, c.scorer_tokenizer, originals,
                   window=config.window, overlap=min(64, config.window // 4), batch_size=config.batch_size,
                   desc="scoring tokens" if progress else None)
    first = timed("prune", lambda: [compress_text(t, s, config.ratio) for t, s in zip(originals, scored)])
    baseline = timed("bertscore", c.bert.baseline, originals, seed=config.seed)

    def score(cands: list[str], refs: list[str]) -> np.ndarray:
        return timed("bertscore", lambda: c.bert.rescale(c.bert.raw_f1(cands, refs), baseline))

    before = score(first, originals) if todo else np.zeros(0)
    final, final_score = list(first), before.copy()
    status = ["compressed" if s >= thr else "failing" for s in before]
    tries = [0] * len(todo)
    best_rewrite = [None] * len(todo)
    # Each retry rewrites the best version so far (the paper's loop is iterative), not the first cut.
    best_text, best_score = list(first), before.copy()
    kept_ratio = [config.ratio] * len(todo)

    def failing() -> list[int]:
        return [j for j, s in enumerate(status) if s == "failing"]

    def ntok(text: str) -> int:
        """Tokens in the tokenizer the ratio is reported in."""
        return len(c.count_tokenizer(text, add_special_tokens=False)["input_ids"])

    n_count = [ntok(t) for t in originals]
    if c.rewriter is not None and config.max_tries > 0:
        for attempt in range(config.max_tries):
            pending = failing()
            if not pending:
                break
            caps = [math.ceil(config.ratio * scored[j].n_tokens * 1.1) + 4 for j in pending]
            texts = timed("rewrite", c.rewriter.rewrite, [best_text[j] for j in pending], caps, attempt=attempt,
                          seed=config.seed, desc=f"rewriting (try {attempt + 1})" if progress else None)
            new = score(texts, [originals[j] for j in pending])
            for j, text, s in zip(pending, texts, new):
                tries[j] += 1
                best_rewrite[j] = max(float(s), best_rewrite[j] if best_rewrite[j] is not None else -np.inf)
                shorter = ntok(text) < n_count[j]
                if s > best_score[j] and shorter and text.strip():
                    best_text[j], best_score[j] = text, s
                if s >= thr and shorter and text.strip():
                    final[j], final_score[j], status[j] = text, s, "rewritten"
    for r in config.milder_ratios():
        pending = failing()
        if not pending:
            break
        texts = [compress_text(originals[j], scored[j], r) for j in pending]
        new = score(texts, [originals[j] for j in pending])
        for j, text, s in zip(pending, texts, new):
            if s >= thr:
                final[j], final_score[j], status[j], kept_ratio[j] = text, s, "milder", r
    for j in failing():
        final[j], final_score[j], status[j], kept_ratio[j] = originals[j], 1.0, "original", 1.0
    assert all(s >= thr - 1e-9 for s in final_score), "a context below the threshold was about to be emitted"

    out = list(examples)
    records = [{"id": e.id, "status": "empty", "tokens_before": 0, "tokens_after": 0} for e in examples]
    n_final = [ntok(t) for t in final]
    for j, i in enumerate(todo):
        out[i] = replace(examples[i], context=final[j])
        records[i] = {"id": examples[i].id, "status": status[j], "tokens_before": n_count[j],
                      "tokens_after": n_final[j], "bertscore_before": float(before[j]),
                      "bertscore_after": float(final_score[j]), "rewrite_tries": tries[j],
                      "best_rewrite_bertscore": best_rewrite[j],
                      "target_ratio": kept_ratio[j]}

    def whole(e: Example) -> int:
        return ntok(e.prompt + continuation(e))

    n_scorer_tokens = sum(s.n_tokens for s in scored)
    flops = {"surprisal": forward_flops(c.scorer_model, n_scorer_tokens),
             "bertscore": forward_flops(c.bert.model, getattr(c.bert, "tokens", 0))}
    if getattr(c.rewriter, "model", None) is not None:
        flops["rewrite"] = forward_flops(c.rewriter.model, getattr(c.rewriter, "tokens", 0))
    total = sum(seconds.values()) - seconds["load"]
    shares = {k: sum(s == k for s in status) / max(len(todo), 1)
              for k in ("compressed", "rewritten", "milder", "original")}
    summary = {
        "config": config.model_dump(),
        "examples": len(examples), "compressed_examples": len(todo), "empty_context": len(examples) - len(todo),
        "context_token_ratio": sum(n_final) / max(sum(n_count), 1),
        "example_token_ratio": sum(map(whole, out)) / max(sum(map(whole, examples)), 1),
        "bertscore_baseline_raw": baseline,
        "bertscore_before": _stats(before, thr), "bertscore_after": _stats(final_score, thr),
        "share_passed_without_rewrite": shares["compressed"], "share_rewritten": shares["rewritten"],
        "share_fell_back_milder": shares["milder"], "share_fell_back_original": shares["original"],
        "share_sent_to_rewriter": (shares["rewritten"] + shares["milder"] + shares["original"])
        if c.rewriter is not None else 0.0,
        "seconds": seconds, "seconds_total_without_load": total, "forward_flops": flops,
        "scorer_tokens": n_scorer_tokens, "tokens_per_second": n_scorer_tokens / total if total > 0 else None,
    }
    return out, records, summary
