"""EASE: the closed-form linear item-item model (Steck, 2019), dense numpy.

``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1`` and ``diag(B) = 0``. It is the
strongest item-item model on the reference datasets, at the price of a dense
``n_items x n_items`` matrix: meant for catalogs up to about 20,000 items.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import matrix
from recsdk.engine.matrix import UserItemMatrix, Weighting
from recsdk.engine.model import NotFitted, known_history
from recsdk.errors import checked_int, checked_number

__all__ = ["EASE"]

_FORMAT = "recsdk.EASE/1"
_BLOCK = 1 << 22  # dense user-block size (values) when forming X^T X


@attrs.define(eq=False)
class EASE:
    """Embarrassingly shallow autoencoder: dense item-item weights in closed form.

    Parameters
    ----------
    l2:
        The regularization ``lambda`` (larger for more data; 100-1000 is typical).
    binary:
        Learn from the binary matrix (a user touched an item or not).
    weighting:
        Event weights, decay and bot rules, as for
        :class:`~recsdk.engine.model.ItemSimilarity`; decay shapes the affinities used when
        scoring.
    max_items:
        Refuse catalogs larger than this (the model is ``n_items ** 2`` floats).
    trend_weight, trend_half_life_days:
        The trend term added to a user's scores (scaled so that the best is 1), as for
        :class:`~recsdk.engine.model.ItemSimilarity`; 0 turns it off.
    """

    l2: float = 100.0
    binary: bool = True
    weighting: Weighting = attrs.field(factory=Weighting)
    max_items: int = 20_000
    trend_weight: float = 0.3
    trend_half_life_days: float | None = 14.0

    def __attrs_post_init__(self) -> None:
        self.l2 = checked_number("l2", self.l2, above=0)
        self.max_items = checked_int("max_items", self.max_items, minimum=1)
        self.trend_weight = checked_number("trend_weight", self.trend_weight, minimum=0)
        if self.trend_half_life_days is not None:
            self.trend_half_life_days = checked_number(
                "trend_half_life_days", self.trend_half_life_days, above=0
            )

    _weights: npt.NDArray[np.float32] | None = attrs.field(default=None, init=False)
    _affinity: UserItemMatrix | None = attrs.field(default=None, init=False)
    _popular: npt.NDArray[np.int32] | None = attrs.field(default=None, init=False)
    _prior: npt.NDArray[np.float64] | None = attrs.field(default=None, init=False)

    def fit(self, data: Any) -> EASE:
        """Learn the item-item weights from interactions or a user x item matrix."""
        if isinstance(data, UserItemMatrix) or hasattr(data, "tocsr"):
            plain = data if isinstance(data, UserItemMatrix) else UserItemMatrix.from_scipy(data)
            decayed, trend = None, matrix.column_sums(plain)
        else:
            reference = matrix.reference_time(data, self.weighting)
            weighting = attrs.evolve(self.weighting, reference_time=reference)
            plain, decayed, trend = matrix.weights_and_trend(
                data, weighting, self.trend_half_life_days, reference
            )
        if plain.n_items > self.max_items:
            raise ValueError(f"{plain.n_items} items: EASE is dense, max_items={self.max_items}")
        x = matrix.finish(plain, self.weighting, binary=self.binary)
        self._weights = self._solve(x)
        self._affinity = matrix.finish(decayed or plain, self.weighting, binary=False)
        counts = np.bincount(x.indices, minlength=x.n_items)
        self._popular = np.argsort(-counts, kind="stable").astype(np.int32)
        self._prior = matrix.trend_prior(trend, self.trend_weight)[0]
        return self

    def _solve(self, x: UserItemMatrix) -> npt.NDArray[np.float32]:
        n = x.n_items
        dtype = np.float64 if n <= 8_000 else np.float32
        gram = np.zeros((n, n), dtype=dtype)
        block = max(1, _BLOCK // max(n, 1))
        for start in range(0, x.n_users, block):
            stop = min(start + block, x.n_users)
            dense = np.zeros((stop - start, n), dtype=dtype)
            lo, hi = int(x.indptr[start]), int(x.indptr[stop])
            rows = np.repeat(np.arange(stop - start), np.diff(x.indptr[start : stop + 1]))
            dense[rows, x.indices[lo:hi]] = x.data[lo:hi]
            gram += dense.T @ dense
        gram[np.diag_indices(n)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        weights[np.diag_indices(n)] = 0.0
        return weights.astype(np.float32)

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self._fitted().shape[0])

    def _fitted(self) -> npt.NDArray[np.float32]:
        if self._weights is None:
            raise NotFitted("call fit() or load() first")
        return self._weights

    def score(
        self,
        history: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        k: int = 10,
        exclude: npt.ArrayLike | None = None,
        exclude_history: bool = True,
        trend: bool = True,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """Top ``k`` items for a history: ``sum_h weight_h * B[h, :]``; ties by popularity.

        With a ``trend_weight`` (and ``trend``) the sums are scaled so that the best is 1
        and each item's trend term is added.
        """
        b = self._fitted()
        k = checked_int("k", k, minimum=0)
        hist, w = known_history(history, weights, b.shape[0])
        scores = (w.astype(np.float32) @ b[hist]) if len(hist) else np.zeros(b.shape[0])
        if trend and self._prior is not None and self.trend_weight > 0:
            best = float(scores.max(initial=0.0))
            scores = scores * (1.0 / best if best > 0 else 0.0) + self._prior
        allowed = np.ones(b.shape[0], dtype=bool)
        if exclude_history:
            allowed[hist] = False
        if exclude is not None:
            allowed[np.atleast_1d(np.asarray(exclude, dtype=np.int64))] = False
        return _top(np.asarray(scores, dtype=np.float32), allowed, k, self._rank_of())

    def _rank_of(self) -> npt.NDArray[np.int64]:
        assert self._popular is not None
        rank = np.empty(len(self._popular), dtype=np.int64)
        rank[self._popular] = np.arange(len(self._popular))
        return rank

    def similar_items(
        self, item: int, k: int = 10, *, exclude: npt.ArrayLike | None = None
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """The ``k`` items with the largest weight from ``item`` (never ``item`` itself)."""
        return self.score([item], k=k, exclude=exclude, trend=False)

    def recommend(
        self, user: int, k: int = 10, *, exclude_seen: bool = True
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """Top ``k`` items for a training user from their training affinities."""
        self._fitted()
        assert self._affinity is not None
        if 0 <= user < self._affinity.n_users:
            items, weights = self._affinity.row(user)
        else:
            items, weights = np.empty(0, np.int32), np.empty(0, np.float32)
        return self.score(items, weights, k=k, exclude_history=exclude_seen)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights, the popularity order and the training users' affinities
        (``.npz``, no pickle)."""
        b = self._fitted()
        assert self._popular is not None
        assert self._affinity is not None
        config = attrs.asdict(self, filter=lambda a, _: a.init, recurse=False)
        config["weighting"] = self.weighting.to_dict()
        np.savez(
            path,
            weights=b,
            popular=self._popular,
            prior=self._prior if self._prior is not None else np.zeros(b.shape[0]),
            affinity_indptr=self._affinity.indptr,
            affinity_indices=self._affinity.indices,
            affinity_data=self._affinity.data,
            config=np.asarray(json.dumps(config)),
            format=np.asarray(_FORMAT),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False) -> EASE:
        """Read a model written by :meth:`save`. Files written before the affinities were
        saved load without them: :meth:`recommend` then treats every user as unknown."""
        from recsdk.engine.model import _read_npz

        arrays = _read_npz(os.fspath(path), mmap=mmap)
        if str(arrays.get("format")) != _FORMAT:
            raise ValueError(f"{path}: not an EASE file")
        config = json.loads(str(arrays["config"]))
        config["weighting"] = Weighting.from_dict(config["weighting"])
        model = cls(**config)
        model._weights = arrays["weights"]
        model._popular = arrays["popular"]
        model._prior = arrays.get("prior", np.zeros(model._weights.shape[0]))
        n_items = model._weights.shape[0]
        if "affinity_indptr" in arrays:
            indptr = arrays["affinity_indptr"]
            model._affinity = UserItemMatrix(
                indptr, arrays["affinity_indices"], arrays["affinity_data"], len(indptr) - 1,
                n_items,
            )  # fmt: skip
        else:
            model._affinity = UserItemMatrix(
                np.zeros(1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32), 0, n_items
            )
        return model


def _top(
    scores: npt.NDArray[np.float32],
    allowed: npt.NDArray[np.bool_],
    k: int,
    rank: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """Best ``k`` allowed items by score, ties by popularity rank."""
    candidates = np.flatnonzero(allowed)
    k = min(k, len(candidates))
    if k <= 0:
        return np.empty(0, np.int32), np.empty(0, np.float32)
    s = scores[candidates]
    if k < len(candidates):
        keep = np.argpartition(-s, k - 1)[:k]
        threshold = s[keep].min()
        keep = np.flatnonzero(s >= threshold)  # all ties at the threshold
        candidates, s = candidates[keep], s[keep]
    order = np.lexsort((rank[candidates], -s))[:k]
    return candidates[order].astype(np.int32), s[order].astype(np.float32)
