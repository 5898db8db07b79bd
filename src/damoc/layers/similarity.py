"""How much each decoder layer changes its input: mean cosine(input, output) over real tokens.

A layer whose output points the same way as its input adds little (ShortGPT's Block
Influence is 1 minus this). Inputs and outputs are taken from hooks on the layer itself: a
model's last `hidden_states` entry is after the final norm, not the last layer's output.
Padding is masked out and the first token of every text is left out (its hidden state is an
attention sink with outsized norm in most models, and would dominate the mean).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from damoc.errors import DamocError
from damoc.evaluation.scoring import right_pad
from damoc.layers.arch import decoder_layers


@torch.inference_mode()
def layer_similarity(model, tokenizer, texts: list[str], max_len: int = 256, batch_size: int = 8,
                     progress: bool = False, stats: dict | None = None) -> np.ndarray:
    """Mean cosine similarity between each layer's input and output hidden states.

    `stats`, when given, gets "tokens" increased by the tokens run through the model (for
    FLOP accounting)."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DamocError("the calibration set is empty: give some non-empty texts")
    layers = decoder_layers(model)
    device = next(model.parameters()).device
    sums = torch.zeros(len(layers), dtype=torch.float64)
    count = 0
    state: dict = {}

    def pre_hook(i):
        def hook(module, args, kwargs):
            state[i] = args[0] if args else kwargs["hidden_states"]
        return hook

    def post_hook(i):
        def hook(module, args, kwargs, output):
            out = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(state.pop(i).float(), out.float(), dim=-1)
            sums[i] += (cos * state["mask"]).sum().double().cpu()
        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
        handles.append(layer.register_forward_hook(post_hook(i), with_kwargs=True))
    try:
        for b in tqdm(range(0, len(texts), batch_size), desc="layer similarity", disable=not progress, leave=False):
            batch = [tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts[b:b + batch_size]]
            ids, attention = right_pad(batch, 0, device)  # every text starts at position 0
            mask = attention.clone()
            mask[:, 0] = 0
            state["mask"] = mask.float()
            count += int(mask.sum())
            if stats is not None:
                stats["tokens"] = stats.get("tokens", 0) + int(attention.sum())
            # The decoder alone: the hooks need hidden states, not logits, and the output head is
            # most of a small model's forward cost (Gemma-3-270M: 168M of its 268M parameters).
            model.base_model(input_ids=ids, attention_mask=attention)
    finally:
        for h in handles:
            h.remove()
    if count == 0:
        raise DamocError("the calibration texts are too short: each needs at least two tokens")
    return (sums / count).numpy()


def layer_cap(n_layers: int, max_fraction: float) -> int:
    """How many of `n_layers` layers a prune may remove: the one rounding every stage uses (the prune itself,
    its messages, the cost estimate)."""
    return int(max_fraction * n_layers)


def choose_layers(similarity: np.ndarray, threshold: float, max_fraction: float) -> list[int]:
    """Layers at or above the threshold, most similar first, at most max_fraction of all layers.

    The first and last layers are never removed: they map into and out of the embedding space.
    """
    n = len(similarity)
    if not -1 <= threshold <= 1:
        raise DamocError(f"the threshold is a cosine similarity: give one in [-1, 1], not {threshold}")
    if not 0 <= max_fraction < 1:
        raise DamocError(f"the maximum fraction must be in [0, 1), not {max_fraction}")
    cap = layer_cap(n, max_fraction)
    if n - cap < 2:
        raise DamocError(f"removing {cap} of {n} layers would leave fewer than two; lower --max-fraction")
    inner = [i for i in range(1, n - 1) if similarity[i] >= threshold]
    inner.sort(key=lambda i: (-similarity[i], i))
    return sorted(inner[:cap])
