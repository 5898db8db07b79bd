"""S2RIC: semantic clusters of the instruction pool without an N x N matrix.

1. a k-nearest-neighbour graph on unit sentence embeddings (cosine, found block by block, so
   memory grows with N x block, not N x N), symmetrised, Gaussian weights scaled by each
   point's k-th neighbour distance (self-tuning);
2. the symmetric normalised Laplacian L = I - D^-1/2 W D^-1/2 (symmetric, so `eigsh` is
   right for it; PASER's public code called it on a non-symmetric matrix) and its smallest
   eigenpairs; the diffusion-kernel embedding exp(-t lambda_i) u_i;
3. NMF on the non-negative split [max(Y, 0), max(-Y, 0)] of the row-normalised embedding;
   a sample's cluster is its largest NMF weight. With `k="auto"`, K is the knee of the NMF
   reconstruction error over K = 1..max_k (`elbow`).
A large diffusion time t (default 10) keeps the near-zero Laplacian eigenvalues, one per
well-separated group, and damps the rest, so the error falls steeply up to the true K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damoc.errors import DamocError


@dataclass
class Clustering:
    labels: np.ndarray          # (N,) cluster id per sample, 0..K-1
    k: int
    errors: dict[int, float]    # NMF reconstruction error per K tried
    embedding: np.ndarray       # (N, m) diffusion embedding, for plots
    components: int = 0         # connected components of the k-NN graph: with a long diffusion time
                                # the clusters follow them, so K far from this count is a warning


def knn_graph(x: np.ndarray, k: int, block: int = 1024):
    """Sparse symmetric affinity matrix of the k nearest neighbours by cosine (x unit rows)."""
    from scipy import sparse

    n = len(x)
    k = min(k, n - 1)
    rows, cols, dists = [], [], []
    for start in range(0, n, block):
        sims = x[start:start + block] @ x.T
        for i in range(sims.shape[0]):
            sims[i, start + i] = -np.inf  # not its own neighbour
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near = np.take_along_axis(sims, idx, axis=1)
        rows.append(np.repeat(np.arange(start, start + sims.shape[0]), k))
        cols.append(idx.ravel())
        dists.append(np.clip(1.0 - near, 0.0, None).ravel())
    rows, cols, d = np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)
    scale = np.maximum(d.reshape(n, k).max(axis=1), 1e-6)  # each point's k-th neighbour distance
    w = np.exp(-(d ** 2) / (scale[rows] * scale[cols]))
    graph = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
    return graph.maximum(graph.T)


def diffusion_embedding(graph, dims: int, t: float = 1.0, seed: int = 0) -> np.ndarray:
    """Rows of exp(-t Lambda) U for the `dims` smallest eigenpairs of the normalised Laplacian."""
    from scipy import sparse
    from scipy.sparse.linalg import eigsh

    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv_sqrt = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    s = inv_sqrt @ graph @ inv_sqrt  # = I - L_sym: its largest eigenpairs are L's smallest
    v0 = np.random.default_rng(seed).standard_normal(graph.shape[0])
    mu, u = eigsh(s, k=dims, which="LA", v0=v0)
    lam = np.clip(1.0 - mu, 0.0, 2.0)
    order = np.argsort(lam)
    return u[:, order] * np.exp(-t * lam[order])


def _nmf_labels(features: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    from sklearn.decomposition import NMF

    model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=1000)
    weights = model.fit_transform(features)
    return weights.argmax(axis=1), float(model.reconstruction_err_)


def cluster(embeddings: np.ndarray, k: int | str = "auto", neighbours: int = 10, max_k: int = 20,
            t: float = 10.0, seed: int = 0) -> Clustering:
    n = len(embeddings)
    if n < 3:
        raise DamocError(f"clustering needs at least 3 samples, got {n}")
    if isinstance(k, int) and not 1 <= k <= n:
        raise DamocError(f"--clusters {k} must lie between 1 and the pool size ({n})")
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    graph = knn_graph(x.astype(np.float32), neighbours)
    from scipy.sparse.csgraph import connected_components

    components = int(connected_components(graph, directed=False)[0])
    top = min(n - 2, max(max_k if k == "auto" else int(k), 2) + 1)
    y = diffusion_embedding(graph, top, t=t, seed=seed)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    features = np.hstack([np.maximum(y, 0), np.maximum(-y, 0)])
    if k != "auto":
        labels, err = _nmf_labels(features, int(k), seed)
        return Clustering(_compact(labels), int(k), {int(k): err}, y, components)
    errors, results = {}, {}
    for kk in range(1, min(max_k, n - 1) + 1):
        results[kk] = _nmf_labels(features, kk, seed)
        errors[kk] = results[kk][1]
    chosen = elbow(errors)
    return Clustering(_compact(results[chosen][0]), chosen, errors, y, components)


def elbow(errors: dict[int, float]) -> int:
    """The knee of the error curve: the K farthest below the straight line from the first to the
    last K tried, both axes scaled to [0, 1] (Kneedle). On real pools the error falls smoothly,
    and "the K whose extra component removed the most error" was then always 2."""
    ks = sorted(errors)
    if len(ks) < 3:
        return ks[-1] if len(ks) == 2 and errors[ks[1]] < errors[ks[0]] else ks[0]
    e = np.array([errors[kk] for kk in ks])
    span = e.max() - e.min()
    if span <= 0:
        return ks[0]
    x = (np.array(ks) - ks[0]) / (ks[-1] - ks[0])
    y = (e - e.min()) / span
    return ks[int(np.argmax((1 - x) - y))]


def _compact(labels: np.ndarray) -> np.ndarray:
    """Renumber to 0..K'-1 (an NMF component may win no sample)."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse
