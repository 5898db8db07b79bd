"""FLOPs, counted one way everywhere: 2 N per token forward, 4 N (LoRA) or 6 N (full) per token
trained, N the parameters that take part in a matmul per token (every Linear and the output head).
DaMoC's claim is about training cost, so every stage that runs a model (filtering, token
compression, layer similarity, training, PASER's JSD) reports its FLOPs from here."""

from __future__ import annotations

import functools

from torch import nn


def matmul_params(model: nn.Module) -> int:
    """Parameters that take part in a matmul per token: every Linear, the output head included
    (counted even when tied to the embedding, which is only a lookup on the way in)."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and id(head.weight) not in seen:
        total += head.weight.numel()
    return total


def forward_flops(model: nn.Module, tokens: float, head_tokens: float | None = None) -> float:
    """2 N T: a forward pass (scoring, generation), N counted as for training, with the output head on
    `head_tokens` positions: every token by default, fewer where only some logits are computed
    (evaluation keeps the answer's), 0 for a pass that stops at the last hidden state (layer similarity).
    An unmerged LoHa's dense update is one more matmul per token (`dense_delta_params`)."""
    head = head_params(model)
    body = matmul_params(model) - head + dense_delta_params(model)
    return 2.0 * (body * tokens + head * (tokens if head_tokens is None else head_tokens))


def dense_delta_params(model: nn.Module) -> int:
    """LyCORIS adapters (LoHa) rebuild their update as a dense matrix the size of the layer they adapt and
    apply it as a second matmul per token (peft: F.linear(x, delta_weight)), so while unmerged each costs
    what its base layer costs, again; low-rank LoRA factors are Linear layers, counted by matmul_params."""
    try:
        from peft.tuners.lycoris_utils import LycorisLayer
    except ImportError:  # peft is a dependency; a stripped environment simply has no such layers
        return 0
    return sum(m.get_base_layer().weight.numel() * len(m.active_adapters) for m in model.modules()
               if isinstance(m, LycorisLayer) and not m.merged)


def head_params(model: nn.Module) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return head.weight.numel() if head is not None else 0


def estimate_flops(model: nn.Module, tokens: int, method: str, loss_tokens: int | None = None,
                   micro_batches: int = 0, options=None, run=None) -> float:
    """The method's rule (finetune/methods.py): 6 N T where every weight is trained, 4 N T for adapters
    (no weight gradients for frozen matrices), plus any cost per micro-batch the method adds. The output
    head runs only where the loss is taken (`answer_loss`), so it counts `loss_tokens`."""
    from damoc.finetune.methods import get_method

    head = head_params(model)
    body = matmul_params(model) - head
    total = training_flops(body, head, tokens, tokens if loss_tokens is None else loss_tokens, method,
                           dense_delta_params(model))
    spec = get_method(method)
    if spec.step_flops is not None and micro_batches:
        total += micro_batches * spec.step_flops(body, options if options is not None else spec.parse({}), run)
    return total


def training_flops(body: float, head: float, tokens: float, loss_tokens: float, method: str,
                   dense_delta: float = 0.0) -> float:
    """The training rule on parameter counts: `body` the matmul parameters without the head (a
    LoRA model's adapters included), `head` the output head's, which runs on `loss_tokens`; 6 per
    parameter and token where the method trains every weight (full), 4 where weights are frozen.
    `dense_delta`: a LoHa's rebuilt updates, each a trained dense matrix per token (6 per parameter:
    forward, the input's gradient and its own)."""
    from damoc.finetune.methods import get_method

    per = 6 if get_method(method).weight_gradients else 4
    return per * (body * tokens + head * loss_tokens) + 6 * dense_delta * tokens


@functools.lru_cache(maxsize=16)
def _text_config(spec: str):
    from transformers import AutoConfig

    from damoc.models import resolve_spec

    c = AutoConfig.from_pretrained(resolve_spec(spec))
    return getattr(c, "text_config", None) or c


def head_params_of(spec: str) -> int:
    """The output head's parameters from the config alone."""
    c = _text_config(spec)
    return c.hidden_size * c.vocab_size


def matmul_params_of(spec: str) -> int:
    """Matmul parameters from the config alone (no weights loaded): attention, MLP and head."""
    c = _text_config(spec)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    attn = c.hidden_size * head_dim * (2 * c.num_attention_heads + 2 * kv)
    mlp = 3 * c.hidden_size * c.intermediate_size
    return c.num_hidden_layers * (attn + mlp) + c.hidden_size * c.vocab_size
