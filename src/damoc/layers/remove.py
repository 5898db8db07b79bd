"""Remove decoder layers in place and keep the model loadable and generating.

After the removal every attention module's `layer_idx` (the KV-cache slot) is renumbered, and
the config's `num_hidden_layers` and per-layer lists (`layer_types`) shrink to match, so
`from_pretrained` and `generate` work on the saved folder.
"""

from __future__ import annotations

from torch import nn

from damoc.layers.arch import decoder_layers, text_config

PER_LAYER_LISTS = ("layer_types",)


def remove_layers(model, removed: list[int]) -> None:
    layers = decoder_layers(model)
    gone = set(removed)
    kept = [layer for i, layer in enumerate(layers) if i not in gone]
    for new_idx, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    parent = model.model.language_model if hasattr(model.model, "language_model") else model.model
    parent.layers = nn.ModuleList(kept)
    config = text_config(model)
    n_before = config.num_hidden_layers
    config.num_hidden_layers = len(kept)
    for key in PER_LAYER_LISTS:
        values = getattr(config, key, None)
        if isinstance(values, list) and len(values) == n_before:
            setattr(config, key, [v for i, v in enumerate(values) if i not in gone])
    if getattr(config, "max_window_layers", None) is not None:  # qwen2: sliding window from this layer on
        config.max_window_layers = sum(1 for i in range(min(config.max_window_layers, n_before)) if i not in gone)
