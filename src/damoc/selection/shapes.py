"""What the cost model (estimate.py) counts, measured without weights: each model's shape (its
parameters as damoc.flops counts them, on a model built on the meta device from its config: a
local folder, a bundled model, or the packaged `architectures.yaml` for hub models this machine
cannot download) and each example's token lengths as training encodes it."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from damoc.errors import DamocError
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

    def forward_flops(self, tokens: float, removed: int = 0, head_tokens: float | None = None) -> float:
        """A forward pass over `tokens` (2 FLOPs per matmul parameter per token), `removed` layers pruned,
        the output head on `head_tokens` positions (every token unless given), as damoc.flops counts it."""
        return 2.0 * (self.body(removed) * tokens + self.head * (tokens if head_tokens is None else head_tokens))


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
def encoder_tokenizer(spec: str) -> tuple[object, int]:
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
