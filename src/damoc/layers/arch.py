"""Which architectures damoc can prune, and where their decoder layers live."""

from __future__ import annotations

from torch import nn

from damoc.errors import DamocError

# model_type values whose decoder is `model.model.layers`, one homogeneous block per layer,
# attention layer index in `self_attn.layer_idx`, per-layer settings in `config.layer_types`.
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "gemma3")


def check_supported(model) -> None:
    kind = getattr(model.config, "model_type", None)
    if kind not in SUPPORTED:
        raise DamocError(f"cannot prune a {kind!r} model; supported families: {', '.join(SUPPORTED)}")


def decoder_layers(model) -> nn.ModuleList:
    check_supported(model)
    inner = getattr(model, "model", None)
    inner = getattr(inner, "language_model", inner)  # multimodal gemma3 wraps its text model
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise DamocError(f"{type(model).__name__} has no decoder layer list at model.layers")
    return layers


def text_config(model):
    """The config that holds num_hidden_layers (the text config for multimodal models)."""
    config = model.config
    return getattr(config, "text_config", None) or config
