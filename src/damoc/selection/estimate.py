"""What a `select` run will cost, before it runs: FLOPs per stage of damoc's route and of full
fine-tuning of every candidate, from the candidates' configs and the data's token lengths.

A user deciding whether damoc is worth it has 7-9B candidates and 10k-100k examples; the runs
this machine can make are 135M-270M models on 1,000. So nothing here loads weights: each model
is built on the meta device from its config (a local folder, a bundled model, or the packaged
`architectures.yaml` for hub models this machine cannot download) and its parameters counted
by the same `damoc.flops` rules the runs report, and each example is tokenized as training
encodes it. What is not known before running is predicted from the settings: the filter keeps
`rate` of the examples (their mean length is the whole set's), compression keeps `ratio` of
each context, pruning removes its cap of `max_fraction` of the layers."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources

from damoc.errors import DamocError
from damoc.filtering.base import example_text, resolve_budget
from damoc.finetune import FinetuneConfig
from damoc.finetune.train import schedule
from damoc.tasks import Example

FALLBACK_TOKENIZER = "bundled:smollm2-135m-instruct"


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, dict]:
    """Hub id (lower case) -> the config fields that decide its matmul shapes."""
    import yaml

    text = resources.files("damoc.selection").joinpath("architectures.yaml").read_text(encoding="utf-8")
    return {name.lower(): {"name": name, **fields} for name, fields in yaml.safe_load(text).items()}


@dataclass(frozen=True)
class Shape:
    """A model's parameters as the FLOP rules count them (damoc.flops), without its weights."""

    name: str
    matmul: int  # every Linear and the output head
    head: int
    layers: int
    lora_per_rank: int  # LoRA parameters per unit of rank on the decoder blocks' Linear layers
    source: str  # "config" (a folder or bundled model) or "catalog"

    @property
    def per_layer(self) -> int:
        return (self.matmul - self.head) // max(self.layers, 1)

    def body(self, removed: int = 0) -> int:
        return self.matmul - self.head - removed * self.per_layer


def _config(spec: str, causal: bool):
    """A model's config: packaged catalog for hub ids it knows, else the model's own config.json."""
    from transformers import AutoConfig

    from damoc.filtering.embeddings import embedder_path
    from damoc.models import resolve_spec

    known = catalog().get(spec.lower())
    if known is not None:
        fields = {k: v for k, v in known.items() if k != "name"}
        return AutoConfig.for_model(fields.pop("model_type"), **fields), "catalog"
    try:
        return AutoConfig.from_pretrained(resolve_spec(spec) if causal else embedder_path(spec)), "config"
    except OSError as e:
        known = ", ".join(sorted(c["name"] for c in catalog().values()))
        raise DamocError(f"{spec}: no config here (offline?) and not in damoc's catalog of hub models "
                         f"({known}); give a local model folder") from e


@functools.lru_cache(maxsize=32)
def shape(spec: str, causal: bool = True) -> Shape:
    """Counted on a model built on the meta device: no memory, no weights, the same counting as a run."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoModelForCausalLM

    from damoc.flops import head_params, matmul_params

    config, source = _config(spec, causal)
    if causal:
        config = getattr(config, "text_config", None) or config
    with torch.device("meta"):
        model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)
    lora = sum(m.in_features + m.out_features for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and ".layers." in name)
    layers = getattr(config, "num_hidden_layers", 0) or 0
    return Shape(spec, matmul_params(model), head_params(model), layers, lora, source)


@dataclass(frozen=True)
class Lengths:
    """One example's token counts as training encodes it (damoc.encoding.encode), context apart."""

    fixed: int  # special tokens, instruction and question: everything of the prompt but the context
    context: int
    answer: int  # with the end-of-sequence token

    def trained(self, max_len: int, ratio: float = 1.0) -> int:
        """Tokens of the encoded example when its context keeps `ratio` (truncation cuts the context)."""
        context = round(self.context * ratio) if ratio < 1 else self.context
        return self.fixed + self.answer + min(context, max(max_len - self.fixed - self.answer, 0))


def lengths(tokenizer, examples: list[Example]) -> list[Lengths]:
    from damoc.encoding import _ids, leading_special_ids
    from damoc.finetune.train import continuation

    head = len(leading_special_ids(tokenizer))
    eos = 1 if tokenizer.eos_token_id is not None else 0
    return [Lengths(head + len(_ids(tokenizer, e.prefix)) + len(_ids(tokenizer, e.suffix)),
                    len(_ids(tokenizer, e.context)), len(_ids(tokenizer, continuation(e))) + eos)
            for e in examples]


@functools.lru_cache(maxsize=16)
def _tokenizer(spec: str):
    from damoc.models import load_tokenizer

    return load_tokenizer(spec)


@functools.lru_cache(maxsize=4)
def _encoder_tokenizer(spec: str) -> tuple[object, int]:
    """An encoder's tokenizer and the length sentence-transformers truncates at."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    from damoc.filtering.embeddings import embedder_path

    folder = Path(embedder_path(spec))
    tok = AutoTokenizer.from_pretrained(folder)
    settings = folder / "sentence_bert_config.json"
    if settings.exists():
        return tok, int(json.loads(settings.read_text())["max_seq_length"])
    # sentence-transformers' rule for a plain folder: the tokenizer's limit, capped by the positions
    positions = json.loads((folder / "config.json").read_text()).get("max_position_embeddings", 10**9)
    return tok, int(min(tok.model_max_length, positions))


def tokenizer_for(spec: str) -> tuple[object, str]:
    """The candidate's own tokenizer; for a catalog model, from the local hub cache only (a user
    who has it), else the fallback's: pricing must not wait on a network this machine may lack."""
    if spec.lower() in catalog():
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(spec, local_files_only=True), spec
        except (OSError, ValueError):
            return _tokenizer(FALLBACK_TOKENIZER), FALLBACK_TOKENIZER
    return _tokenizer(spec), spec


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def training_flops(s: Shape, method: str, tokens: float, loss_tokens: float, removed: int = 0,
                   lora_r: int = 0) -> float:
    """damoc.flops' training rule on a Shape, LoRA's adapters on the layers that remain."""
    from damoc.flops import training_flops as rule

    lora = 0.0 if method == "full" else lora_r * s.lora_per_rank * (s.layers - removed) / max(s.layers, 1)
    return rule(s.body(removed) + lora, s.head, tokens, loss_tokens, method)


def _run_tokens(ls: list[Lengths], n: int, config: FinetuneConfig, ratio: float) -> dict:
    plan = schedule(n, config)
    per = _mean([x.trained(config.max_seq_len, ratio) for x in ls])
    return {"examples": n, "epochs": plan.epochs, "steps": plan.steps,
            "tokens": n * plan.epochs * per, "loss_tokens": n * plan.epochs * _mean([x.answer for x in ls])}


def _filter_cost(f, examples: list[Example], scale: float, n_kept: int) -> tuple[float, dict]:
    """The selector's forward passes, as damoc.filtering.selectors runs them: an embedding of every
    example (GraphCut, facility location; hybrid: of its IFD pool), and a scorer's pass over every
    example with its prompt and over its answer alone (perplexity, IFD, hybrid)."""
    from damoc.filtering.embeddings import BUNDLED_EMBEDDER

    flops, tokens = 0.0, {}
    scorer = f.options.get("scorer", FALLBACK_TOKENIZER)
    if f.method in ("perplexity", "ifd", "hybrid"):
        tok, _ = tokenizer_for(scorer)
        per = _mean([x.trained(512) + x.answer for x in lengths(tok, examples)])
        tokens["scorer"] = scale * len(examples) * per
        flops += 2.0 * shape(scorer).matmul * tokens["scorer"]
    embedded = {"graphcut": 1.0, "facility-location": 1.0,
                "hybrid": min(1.0, f.options.get("pool_factor", 3.0) * n_kept / (scale * len(examples)))}
    if f.method in embedded:
        embedder = f.options.get("embedder", BUNDLED_EMBEDDER)
        tok, limit = _encoder_tokenizer(embedder)
        per = _mean([min(len(x), limit) for x in tok([example_text(e) for e in examples])["input_ids"]])
        tokens["embedder"] = embedded[f.method] * scale * len(examples) * per
        flops += 2.0 * shape(embedder, causal=False).matmul * tokens["embedder"]
    return flops, tokens


def estimate(config, examples: list[Example], n_examples: int | None = None,
             throughput: float | None = None) -> dict:
    """Predicted tokens and FLOPs of `select` (config: a SelectConfig) and of full fine-tuning on
    `examples` (the training sample), scaled to `n_examples` when given; hours when `throughput`
    (training FLOP/s achieved on the user's device) is given. Evaluation is left out: both routes
    evaluate every candidate on the same test split. Every number is finite or None (strict JSON)."""
    if throughput is not None and not (math.isfinite(throughput) and throughput > 0):
        raise DamocError(f"--throughput {throughput}: give the FLOP/s your device achieves, a positive finite number "
                         "(e.g. 1e14)")
    if n_examples is not None and (isinstance(n_examples, bool) or n_examples < 1):
        raise DamocError(f"--examples {n_examples}: give a count of at least 1")
    if not examples:
        raise DamocError("no training examples to measure")
    shapes = {c.model: shape(c.model) for c in config.candidates}  # an unknown model fails before any work
    n_all = n_examples or len(examples)
    scale = n_all / len(examples)
    f, c, p = config.filter, config.compress, config.prune
    n_kept = resolve_budget(n_all, None if f is None or f.budget else f.rate, f.budget if f else None) \
        if f is not None else n_all
    ratio = c.ratio if c is not None else 1.0
    notes = [] if config.strategy == "fixed" else [
        f"priced as the fixed strategy: {config.strategy}'s rounds depend on what each round finds"]
    data: dict = {"input_examples": n_all, "kept_examples": n_kept}
    flops = {"filter": 0.0, "compress_surprisal": 0.0, "compress_bertscore": 0.0}
    if f is not None:
        flops["filter"], data["filter_tokens"] = _filter_cost(f, examples, scale, n_kept)
    if c is not None:
        tok, _ = tokenizer_for(c.scorer)
        context = _mean([x.context for x in lengths(tok, examples)]) * n_kept
        flops["compress_surprisal"] = 2.0 * shape(c.scorer).matmul * context
        bert_tok, _ = _encoder_tokenizer(c.bert_model)
        bert_context = _mean([min(len(x), 512) for x in bert_tok([e.context for e in examples])["input_ids"]]) \
            * n_kept
        flops["compress_bertscore"] = 2.0 * shape(c.bert_model, causal=False).matmul * bert_context * (1 + ratio)
        data["scorer_context_tokens"] = context
        if c.rewriter is not None:
            notes.append("LLM rewriting is on: its generation is not priced")
    rows, measured = [], {}
    for cand in config.candidates:
        s = shapes[cand.model]
        if cand.model not in measured:  # a model's methods share its token counts
            tok, counted_with = tokenizer_for(cand.model)
            measured[cand.model] = (lengths(tok, examples), counted_with)
        ls, counted_with = measured[cand.model]
        if counted_with != cand.model:
            notes.append(f"{cand.model}: tokens counted with {counted_with}'s tokenizer")
        ft = config.finetune.model_copy(update={"method": cand.method})
        full = _run_tokens(ls, n_all, ft, 1.0)
        cheap = _run_tokens(ls, n_kept, ft, ratio)
        removed = int(p.max_fraction * s.layers) if p is not None else 0
        prune_tokens = min(config.calibration_samples, n_kept) * _mean(
            [min(x.trained(config.finetune.max_seq_len, ratio), p.max_len) for x in ls]) if p is not None else 0.0
        r = ft.lora_r
        rows.append({
            "candidate": cand.name, "model": cand.model, "method": cand.method, "shape_from": s.source,
            "tokens_counted_with": counted_with, "layers": s.layers, "layers_removed": removed,
            "full": {**full, "flops": training_flops(s, cand.method, full["tokens"], full["loss_tokens"], 0, r)},
            "damoc": {**cheap, "flops": training_flops(s, cand.method, cheap["tokens"], cheap["loss_tokens"],
                                                       removed, r),
                      "prune_tokens": prune_tokens, "prune_flops": 2.0 * s.body() * prune_tokens}})
    full_flops = sum(r["full"]["flops"] for r in rows)
    train_flops = sum(r["damoc"]["flops"] for r in rows)
    overhead = sum(flops.values()) + sum(r["damoc"]["prune_flops"] for r in rows)
    out = {"data": data, "data_stage_flops": flops, "candidates": rows, "full_flops": full_flops,
           "damoc_train_flops": train_flops, "damoc_overhead_flops": overhead,
           "speedup_flops": _ratio(full_flops, train_flops + overhead),
           "speedup_flops_training_only": _ratio(full_flops, train_flops),
           "data_stage_flops_share": _ratio(overhead, train_flops),
           "notes": sorted(set(notes))}
    if throughput is not None:
        out["throughput_flops_per_second"] = throughput
        out["full_hours"] = full_flops / throughput / 3600
        out["damoc_hours"] = (train_flops + overhead) / throughput / 3600
    return _finite(out)


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None (unknown: JSON's null) where b is zero."""
    return a / b if b else None


def _finite(value):
    """`value` with every non-finite float as None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
