"""Naive numpy references for the engine's kernels (dense, slow, obviously right)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recsdk.engine.matrix import UserItemMatrix

Array = npt.NDArray[np.float64]


def random_matrix(
    rng: np.random.Generator,
    n_users: int,
    n_items: int,
    density: float,
    *,
    max_value: int = 1,
) -> UserItemMatrix:
    """A random user x item matrix with integer values in 1..max_value."""
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    values = rng.integers(1, max_value + 1, size=len(users)).astype(np.float32)
    return UserItemMatrix.from_coo(users, items, values, n_users=n_users, n_items=n_items)


def dense(m: UserItemMatrix) -> Array:
    out = np.zeros(m.shape, dtype=np.float64)
    rows = np.repeat(np.arange(m.n_users), np.diff(m.indptr))
    np.add.at(out, (rows, m.indices), m.data.astype(np.float64))
    return out


def similarity_matrix(
    x: Array, measure: str, alpha: float, shrink: float, min_support: float
) -> Array:
    """Every pair's similarity with the kernels' formulas; -inf for non-candidates."""
    c = (x.T @ x).astype(np.float32).astype(np.float64)
    d = np.diag(x.T @ x).copy()
    n = len(d)
    f = np.ones(n)
    g = np.ones(n)
    pos = d > 0
    if measure in ("cosine", "bm25", "tfidf"):
        f[pos] = 1.0 / np.sqrt(d[pos])
        g[pos] = f[pos]
    elif measure in ("lift", "conditional"):
        a = 1.0 if measure == "lift" else alpha
        f[pos] = 1.0 / d[pos]
        g[pos] = d[pos] ** (-a)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "jaccard":
            base = c / np.maximum(d[:, None] + d[None, :] - c, c)
        else:
            base = (c * f[:, None]) * g[None, :]
        if shrink > 0:
            base = base * (c / (c + shrink))
    s = np.where((c > 0) & (c >= min_support), base, -np.inf)
    np.fill_diagonal(s, -np.inf)
    return s


def top_lists(
    s: Array, k: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], Array, npt.NDArray[np.int32]]:
    """Top-k per row by (score desc, index asc); -1 pads; plus the best left out."""
    n = s.shape[0]
    idx = np.full((n, k), -1, dtype=np.int32)
    val = np.zeros((n, k), dtype=np.float32)
    cut_s = np.full(n, -np.inf)
    cut_i = np.full(n, -1, dtype=np.int32)
    for i in range(n):
        order = np.lexsort((np.arange(n), -s[i]))
        order = order[np.isfinite(s[i, order])]
        kept = order[:k]
        idx[i, : len(kept)] = kept
        val[i, : len(kept)] = s[i, kept]
        if len(order) > k:
            cut_s[i] = s[i, order[k]]
            cut_i[i] = order[k]
    return idx, val, cut_s, cut_i


def score_reference(
    neighbors: npt.NDArray[np.int32],
    scores: npt.NDArray[np.float32],
    history: npt.NDArray[np.int32],
    weights: Array,
    excluded: set[int],
    popular: npt.NDArray[np.int32],
    k: int,
    fill: bool,
    prior: Array | None = None,
) -> tuple[list[int], list[float]]:
    """score(j) = sum_h w_h sim(h, j) over stored lists; positives ranked, then popular.

    With a ``prior`` (the trend term), sums are divided by the largest and the prior is
    added; items outside the neighbours with a positive prior are candidates too.
    """
    n = neighbors.shape[0]
    total = np.zeros(n)
    touched = np.zeros(n, dtype=bool)
    for h, w in zip(history, weights, strict=True):
        for j, s in zip(neighbors[h], scores[h], strict=True):
            if j < 0:
                break
            total[j] += w * np.float64(s)
            touched[j] = True
    cands = [j for j in range(n) if touched[j] and total[j] > 0 and j not in excluded]
    if prior is not None and prior.max() > 0:
        best = max([0.0, *total[cands].tolist()])
        scale = 1.0 / best if best > 0 else 0.0
        total = np.where(touched, total * scale + prior, prior)
        cands += [j for j in range(n) if not touched[j] and prior[j] > 0 and j not in excluded]
    cands.sort(key=lambda j: (-total[j], j))
    items = cands[:k]
    values = [float(np.float32(total[j])) for j in items]
    if fill:
        for j in popular:
            if len(items) >= k:
                break
            if int(j) not in excluded and int(j) not in items:
                items.append(int(j))
                values.append(0.0)
    return items, values
