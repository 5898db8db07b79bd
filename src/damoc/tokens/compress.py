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
from dataclasses import dataclass, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from damoc.errors import DamocError
from damoc.filtering.embeddings import BUNDLED_EMBEDDER
from damoc.flops import forward_flops
from damoc.models.bundled import BUNDLED_SCORER
from damoc.tasks.base import Example, continuation
from damoc.timing import Stopwatch
from damoc.tokens.dropping import compress_text

DEFAULT_LM = BUNDLED_SCORER


class CompressConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ratio: float = Field(0.5, gt=0, le=1, description="share of context tokens to keep")
    # 0.7 on our rescaled scale: 97% of PubMedQA contexts pass at ratio 0.5, none at 0.9, so 0.9 left
    # ~0.9 of the tokens (bench/results/compress-pubmedqa-threshold0.9.json).
    threshold: float = Field(0.7, ge=0, le=1, description="minimum rescaled BERTScore F1 of an emitted context")
    scorer: str = Field(DEFAULT_LM, description="causal LM that scores token surprisal")
    # Off unless asked: the bundled 135M rewriter rescued 0 of 100 PubMedQA contexts at 5.8 s each on
    # a CPU (bench/results/compress-pubmedqa.json). Give a capable instruct model, ideally on a GPU.
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


@dataclass
class _Sample:
    """One context on its way through the loop: what it was, what it is now and how it got there."""

    original: str
    scored: object  # its token surprisals
    tokens_before: int
    text: str = ""  # the current candidate for emission
    score: float = 0.0
    first_score: float = 0.0  # of the first compressed cut
    status: str = "failing"
    ratio: float = 1.0
    tries: int = 0
    best_rewrite: float | None = None  # best score any rewrite reached
    best_text: str = ""  # what the next rewrite starts from: the best version so far
    best_score: float = 0.0


def compress_examples(examples: list[Example], config: CompressConfig, components: Components | None = None,
                      progress: bool = True) -> tuple[list[Example], list[dict], dict]:
    """Compressed copies of the examples, one record per example, and a summary."""
    if not examples:
        raise DamocError("there are no examples to compress")
    clock = Stopwatch()
    with clock.stage("load"):
        c = components or load_components(config)
    todo = [i for i, e in enumerate(examples) if e.context.strip()]
    loop = _Loop(c, config, clock, progress)
    samples = loop.cut([examples[i].context for i in todo])
    loop.rewrite(samples)
    loop.milder(samples)
    for s in loop.failing(samples):  # what no route rescued stays whole
        s.text, s.score, s.status, s.ratio = s.original, 1.0, "original", 1.0
    assert all(s.score >= config.threshold - 1e-9 for s in samples), "a context below the threshold was emitted"
    out, records = list(examples), [{"id": e.id, "status": "empty", "tokens_before": 0, "tokens_after": 0}
                                    for e in examples]
    for s, i in zip(samples, todo):
        out[i] = replace(examples[i], context=s.text)
        records[i] = {"id": examples[i].id, "status": s.status, "tokens_before": s.tokens_before,
                      "tokens_after": loop.ntok(s.text), "bertscore_before": s.first_score,
                      "bertscore_after": float(s.score), "rewrite_tries": s.tries,
                      "best_rewrite_bertscore": s.best_rewrite, "target_ratio": s.ratio}
    return out, records, loop.summary(examples, out, samples, records)


class _Loop:
    """The steps of the compression loop, each over every sample still failing the threshold."""

    def __init__(self, components: Components, config: CompressConfig, clock: Stopwatch, progress: bool):
        self.c, self.config, self.clock, self.progress = components, config, clock, progress
        self.baseline = 0.0

    def ntok(self, text: str) -> int:
        """Tokens in the tokenizer the ratio is reported in."""
        return len(self.c.count_tokenizer(text, add_special_tokens=False)["input_ids"])

    def score(self, texts: list[str], refs: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        with self.clock.stage("bertscore"):
            return self.c.bert.rescale(self.c.bert.raw_f1(texts, refs), self.baseline)

    @staticmethod
    def failing(samples: list[_Sample]) -> list[_Sample]:
        return [s for s in samples if s.status == "failing"]

    def cut(self, originals: list[str]) -> list[_Sample]:
        """Score every token, keep the most surprising words up to the ratio, score the cut."""
        from damoc.tokens.surprisal import token_surprisals

        cfg = self.config
        with self.clock.stage("surprisal"):
            scored = token_surprisals(self.c.scorer_model, self.c.scorer_tokenizer, originals, window=cfg.window,
                                      overlap=min(64, cfg.window // 4), batch_size=cfg.batch_size,
                                      desc="scoring tokens" if self.progress else None)
        with self.clock.stage("prune"):
            first = [compress_text(t, s, cfg.ratio) for t, s in zip(originals, scored)]
        with self.clock.stage("bertscore"):
            self.baseline = self.c.bert.baseline(originals, seed=cfg.seed)
        scores = self.score(first, originals)
        samples = [_Sample(o, sc, self.ntok(o), text=t, score=float(v), first_score=float(v), ratio=cfg.ratio,
                           best_text=t, best_score=float(v)) for o, sc, t, v in zip(originals, scored, first, scores)]
        for s in samples:
            s.status = "compressed" if s.score >= cfg.threshold else "failing"
        return samples

    def rewrite(self, samples: list[_Sample]) -> None:
        """An instruct LLM rewrites what fails; each retry starts from the best version so far."""
        cfg = self.config
        if self.c.rewriter is None or cfg.max_tries <= 0:
            return
        for attempt in range(cfg.max_tries):
            pending = self.failing(samples)
            if not pending:
                return
            caps = [math.ceil(cfg.ratio * s.scored.n_tokens * 1.1) + 4 for s in pending]
            with self.clock.stage("rewrite"):
                texts = self.c.rewriter.rewrite([s.best_text for s in pending], caps, attempt=attempt, seed=cfg.seed,
                                                desc=f"rewriting (try {attempt + 1})" if self.progress else None)
            for s, text, v in zip(pending, texts, self.score(texts, [s.original for s in pending])):
                s.tries += 1
                s.best_rewrite = max(float(v), s.best_rewrite if s.best_rewrite is not None else -np.inf)
                usable = self.ntok(text) < s.tokens_before and bool(text.strip())
                if usable and v > s.best_score:
                    s.best_text, s.best_score = text, float(v)
                if usable and v >= cfg.threshold:
                    s.text, s.score, s.status = text, float(v), "rewritten"

    def milder(self, samples: list[_Sample]) -> None:
        """What still fails is cut again at milder ratios, mildest last."""
        for r in self.config.milder_ratios():
            pending = self.failing(samples)
            if not pending:
                return
            texts = [compress_text(s.original, s.scored, r) for s in pending]
            for s, text, v in zip(pending, texts, self.score(texts, [s.original for s in pending])):
                if v >= self.config.threshold:
                    s.text, s.score, s.status, s.ratio = text, float(v), "milder", r

    def summary(self, examples: list[Example], out: list[Example], samples: list[_Sample],
                records: list[dict]) -> dict:
        c, thr = self.c, self.config.threshold

        def whole(e: Example) -> int:
            return self.ntok(e.prompt + continuation(e))

        n_scorer_tokens = sum(s.scored.n_tokens for s in samples)
        flops = {"surprisal": forward_flops(c.scorer_model, n_scorer_tokens),
                 "bertscore": forward_flops(c.bert.model, getattr(c.bert, "tokens", 0))}
        if getattr(c.rewriter, "model", None) is not None:
            flops["rewrite"] = forward_flops(c.rewriter.model, getattr(c.rewriter, "tokens", 0))
        total = self.clock.total("load")
        shares = {k: sum(s.status == k for s in samples) / max(len(samples), 1)
                  for k in ("compressed", "rewritten", "milder", "original")}
        before = np.array([s.first_score for s in samples])
        after = np.array([s.score for s in samples])
        tokens_before = sum(s.tokens_before for s in samples)
        tokens_after = sum(r["tokens_after"] for r in records if r["status"] != "empty")
        return {
            "config": self.config.model_dump(),
            "examples": len(examples), "compressed_examples": len(samples),
            "empty_context": len(examples) - len(samples),
            "context_token_ratio": tokens_after / max(tokens_before, 1),
            "example_token_ratio": sum(map(whole, out)) / max(sum(map(whole, examples)), 1),
            "bertscore_baseline_raw": self.baseline,
            "bertscore_before": _stats(before, thr), "bertscore_after": _stats(after, thr),
            "share_passed_without_rewrite": shares["compressed"], "share_rewritten": shares["rewritten"],
            "share_fell_back_milder": shares["milder"], "share_fell_back_original": shares["original"],
            "share_sent_to_rewriter": (shares["rewritten"] + shares["milder"] + shares["original"])
            if c.rewriter is not None else 0.0,
            "seconds": self.clock.seconds, "seconds_total_without_load": total, "forward_flops": flops,
            "scorer_tokens": n_scorer_tokens, "tokens_per_second": n_scorer_tokens / total if total > 0 else None,
        }
