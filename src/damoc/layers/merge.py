"""Fold what removed layers learned into the layers that stay, before they are dropped.

Each removed layer j goes into its nearest retained layer (the preceding one on a tie, as LaCo
merges later layers into an earlier one). Methods, by name:
- `none`: drop the layer.
- `difference` (LaCo): theta_l += scale * (theta_j - theta_l). Needs no other model, so it
  works for models whose pre-trained weights were never released.
- `sparse` (DaMoC): theta_l += scale * sparsify(theta_j(finetuned) - theta_j(pretrained)),
  the task vector of layer j taken from `--base`. Sparsified per tensor either by magnitude
  (keep the top `density` share of entries, as TIES trims) or at random (keep each entry
  with probability `density` and rescale by 1/density, as DARE drops).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from damoc.errors import DamocError
from damoc.registry import Registry

MERGES: Registry[Callable] = Registry("merge")
register = MERGES.register


def nearest_retained(j: int, removed: set[int], n: int) -> int:
    for d in range(1, n):
        for k in (j - d, j + d):
            if 0 <= k < n and k not in removed:
                return k
    raise DamocError("no layer would remain to merge into")


def sparsify(delta: torch.Tensor, density: float, how: str, generator: torch.Generator) -> torch.Tensor:
    if density >= 1:
        return delta
    if density <= 0:
        return torch.zeros_like(delta)
    if how == "magnitude":
        k = int(round(density * delta.numel()))
        if k == 0:
            return torch.zeros_like(delta)
        cut = delta.abs().flatten().kthvalue(delta.numel() - k + 1).values
        return torch.where(delta.abs() >= cut, delta, torch.zeros_like(delta))
    if how == "random":
        keep = torch.rand(delta.shape, generator=generator) < density
        return torch.where(keep, delta / density, torch.zeros_like(delta))
    raise DamocError(f"unknown sparsification {how!r}; use magnitude or random")


def layer_params(layers, i: int) -> dict[str, torch.nn.Parameter]:
    return dict(layers[i].named_parameters())


@register("none")
def merge_none(layers, removed: list[int], **_) -> dict:
    return {}


def _fold(layers, removed: list[int], delta) -> dict:
    """Add delta(j, t, name, param_of_t) into retained layer t for every removed layer j."""
    into = {j: nearest_retained(j, set(removed), len(layers)) for j in removed}
    updates: dict[int, dict[str, torch.Tensor]] = {}
    for j, t in into.items():
        acc = updates.setdefault(t, {})
        for name, p in layer_params(layers, t).items():
            acc[name] = acc.get(name, 0) + delta(j, name, p.detach())
    _apply(layers, updates)
    return into


@register("difference")
def merge_difference(layers, removed: list[int], scale: float = 1.0, **_) -> dict:
    return _fold(layers, removed, lambda j, name, p: scale * (layer_params(layers, j)[name].detach() - p))


@register("sparse")
def merge_sparse(layers, removed: list[int], base_layers=None, scale: float = 1.0, density: float = 0.3,
                 sparsification: str = "magnitude", seed: int = 0, **_) -> dict:
    if base_layers is None:
        raise DamocError("the sparse merge needs --base: the pre-trained weights of the same model")
    if len(base_layers) != len(layers):
        raise DamocError(f"--base has {len(base_layers)} layers, the model {len(layers)}: not the same architecture")
    generator = torch.Generator().manual_seed(seed)

    def task_vector(j: int, name: str, p: torch.Tensor) -> torch.Tensor:
        tuned = layer_params(layers, j)[name].detach().float()
        delta = tuned - layer_params(base_layers, j)[name].detach().float().to(tuned.device)
        return scale * sparsify(delta.cpu(), density, sparsification, generator).to(p.device)

    return _fold(layers, removed, task_vector)


def check_same_shapes(layers, base_layers) -> None:
    """Refuse a base model whose layers differ in names or shapes from the model's."""
    if len(base_layers) != len(layers):
        raise DamocError(f"--base has {len(base_layers)} decoder layers, the model {len(layers)}")
    for i in range(len(layers)):
        a = {n: tuple(p.shape) for n, p in layers[i].named_parameters()}
        b = {n: tuple(p.shape) for n, p in base_layers[i].named_parameters()}
        if a != b:
            diff = next((n for n in a if a[n] != b.get(n)), next(iter(set(b) - set(a)), "?"))
            raise DamocError(f"--base does not match the model at layer {i} ({diff}: {a.get(diff)} vs "
                             f"{b.get(diff)}); give the pre-trained weights of the same architecture")


@torch.no_grad()
def _apply(layers, updates: dict[int, dict[str, torch.Tensor]]) -> None:
    for t, deltas in updates.items():
        params = layer_params(layers, t)
        for name, d in deltas.items():
            params[name].add_(d.to(params[name].dtype))
