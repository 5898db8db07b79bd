"""`damoc prune`: measure layer similarity, remove the most redundant layers, merge, save.

The output folder is a normal Hugging Face model (safetensors) with `damoc-prune.json`
(what was removed, into what it was merged, from which models) and `similarity.png`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from damoc.errors import DamocError
from damoc.flops import forward_flops
from damoc.layers.arch import check_supported, decoder_layers
from damoc.layers.merge import MERGES, check_same_shapes
from damoc.layers.remove import remove_layers
from damoc.layers.similarity import choose_layers, layer_cap, layer_similarity
from damoc.timing import Stopwatch


class PruneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    threshold: float = Field(0.85, ge=-1, le=1, description="remove layers whose cosine(in, out) is at least this")
    max_fraction: float = Field(0.25, ge=0, lt=1, description="remove at most this share of the layers")
    merge: str = Field("none", json_schema_extra={"registry": "damoc.layers.merge:MERGES"},
                       description="how removed layers are folded into retained ones (sparse needs a base model)")
    density: float = Field(0.3, ge=0, le=1, description="share of task-vector entries kept by the sparse merge")
    sparsification: Literal["magnitude", "random"] = Field("magnitude", description=(
        "sparse merge: keep the largest task-vector entries (TIES) or a random share, rescaled (DARE)"))
    scale: float = Field(1.0, description="weight of the merged differences")
    iterative: bool = Field(False, description="recompute similarity after each removal")
    max_len: int = Field(256, ge=2, description="calibration tokens per text")
    batch_size: int = Field(8, ge=1, description="calibration texts per forward pass")
    seed: int = Field(0, description="seed of the random sparsification (in a run: the run's seed)")

    @field_validator("merge")
    @classmethod
    def _known_merge(cls, name: str) -> str:
        return MERGES.check(name)


@dataclass
class PruneResult:
    similarity: list[float]
    removed: list[int]  # indices in the original model
    merged_into: dict[int, int] = field(default_factory=dict)  # original removed index -> original kept index
    layers_before: int = 0
    layers_after: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    forward_flops: float = 0.0  # similarity passes, 2 N T each (N without the output head)


def prune_model(model, tokenizer, texts: list[str], config: PruneConfig, base_model=None,
                progress: bool = False, plan: PruneResult | None = None) -> PruneResult:
    """Prune `model` in place. `base_model` (pre-trained weights of the same model) is needed
    only by the sparse merge, and is pruned alongside so their layers stay aligned. `plan`: the
    result of an earlier prune of the same weights on the same texts with the same settings; its
    steps are replayed without measuring again (the candidates of one model with several
    fine-tuning methods share one similarity pass), and its FLOPs are the earlier pass's."""
    check_supported(model)
    if config.merge == "sparse":
        if base_model is None:
            raise DamocError("--merge sparse needs --base: the pre-trained weights of the same architecture")
        check_same_shapes(decoder_layers(model), decoder_layers(base_model))
    n = len(decoder_layers(model))
    clock = Stopwatch()
    clock.seconds.update(similarity=0.0, merge=0.0)
    flops = 0.0

    def measure() -> np.ndarray:
        nonlocal flops
        stats: dict = {}
        with clock.stage("similarity"):
            sim = layer_similarity(model, tokenizer, texts, config.max_len, config.batch_size, progress, stats)
        flops += forward_flops(model, stats["tokens"], head_tokens=0)  # the similarity pass skips the head
        return sim

    similarity = np.array(plan.similarity) if plan is not None else measure()
    chosen = choose_layers(similarity, config.threshold, config.max_fraction)  # also validates the settings
    result = PruneResult(similarity.tolist(), [], {}, n)
    original = list(range(n))  # original index of each current layer

    def remove(step: list[int], sim: np.ndarray) -> None:
        with clock.stage("merge"):
            into = apply_removal(model, step, config, base_model)
        result.merged_into.update({original[j]: original[t] for j, t in into.items()})
        result.removed += [original[j] for j in step]
        result.steps.append({"removed": [original[j] for j in step], "similarity": [float(sim[j]) for j in step]})
        gone = set(step)
        original[:] = [o for i, o in enumerate(original) if i not in gone]

    if plan is not None:
        if plan.layers_before != n:
            raise DamocError(f"a prune plan for {plan.layers_before} layers cannot prune a model with {n}")
        for step in plan.steps:
            remove([original.index(o) for o in step["removed"]], np.array(plan.similarity))
            result.steps[-1]["similarity"] = step["similarity"]
        flops = plan.forward_flops
    elif not config.iterative:
        if chosen:
            remove(chosen, similarity)
    else:  # one layer at a time, most similar first, re-measuring after each removal
        sim, cap = similarity, layer_cap(n, config.max_fraction)
        while len(result.removed) < cap:
            inner = [i for i in range(1, len(original) - 1) if sim[i] >= config.threshold]
            if not inner:
                break
            remove([max(inner, key=lambda i: (sim[i], -i))], sim)
            sim = measure()
    result.removed.sort()
    result.layers_after = len(decoder_layers(model))
    result.seconds = clock.seconds
    result.forward_flops = flops
    return result


def apply_removal(model, removed: list[int], config: PruneConfig, base_model=None) -> dict[int, int]:
    """Merge the given layers into their retained neighbours, then remove them (in place).

    Returns removed index -> retained index (both in the model's current numbering)."""
    layers = decoder_layers(model)
    base_layers = decoder_layers(base_model) if base_model is not None else None
    into = MERGES.get(config.merge)(layers, removed, base_layers=base_layers, scale=config.scale,
                                density=config.density, sparsification=config.sparsification, seed=config.seed)
    remove_layers(model, removed)
    if base_model is not None and config.merge == "sparse":
        remove_layers(base_model, removed)
    return into


def save_pruned(model, tokenizer, out: str | Path, result: PruneResult, info: dict,
                overwrite: bool = False) -> Path:
    """Write the pruned model as a loadable folder, atomically (a crash leaves no half folder)."""
    from damoc.io import atomic_dir

    out = Path(out)
    with atomic_dir(out, "prune", overwrite) as work:
        model.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        record = {**info, "layers_before": result.layers_before, "layers_after": result.layers_after,
                  "removed": result.removed, "merged_into": {str(k): v for k, v in result.merged_into.items()},
                  "similarity": result.similarity, "steps": result.steps, "seconds": result.seconds}
        (work / "damoc-prune.json").write_text(json.dumps(record, indent=2))
        plot_similarity(np.array(result.similarity), result.removed, info.get("model", ""), work / "similarity.png")
    return out


def plot_similarity(similarity: np.ndarray, removed: list[int], title: str, path: Path,
                    threshold: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    gone = set(removed)
    colours = ["tab:red" if i in gone else "tab:blue" for i in range(len(similarity))]
    ax.bar(range(len(similarity)), similarity, color=colours)
    if threshold is not None:
        ax.axhline(threshold, color="grey", lw=0.8)
    ax.set_xlabel("decoder layer (red: removed)")
    ax.set_ylabel("cosine(input, output)")
    ax.set_ylim(min(0.0, float(similarity.min()) - 0.05), 1.0)
    ax.set_title(f"layer similarity {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
