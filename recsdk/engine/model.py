"""The item-item similarity model: fit, incremental update, scoring, save and load.

:class:`ItemSimilarity` keeps the top ``n_neighbors`` most similar items of every item. It is
fitted from interactions (arrays, as the store returns them) or from a ready
:class:`~recsdk.engine.matrix.UserItemMatrix`, answers "similar items" and "recommended for
this history" queries through numba kernels, and saves to a plain ``.npz`` file that web
workers can load memory-mapped.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import attrs
import numba
import numpy as np
import numpy.typing as npt

from recsdk.engine import kernels, matrix
from recsdk.engine.matrix import InteractionsLike, UserItemMatrix, Weighting
from recsdk.errors import NotFitted, ValidationError, checked_int, checked_number

__all__ = ["MEASURES", "ItemSimilarity", "NotFitted", "Scored"]

Measure = Literal["cosine", "jaccard", "lift", "conditional", "cooccurrence", "bm25", "tfidf"]

#: The similarity measures :class:`ItemSimilarity` offers.
MEASURES: tuple[str, ...] = (
    "cosine",
    "jaccard",
    "lift",
    "conditional",
    "cooccurrence",
    "bm25",
    "tfidf",
)

_KERNEL_MEASURE = {
    "cosine": kernels._COSINE,
    "jaccard": kernels._JACCARD,
    "lift": kernels._LIFT,
    "conditional": kernels._LIFT,
    "cooccurrence": kernels._COOCCURRENCE,
    "bm25": kernels._COSINE,
    "tfidf": kernels._COSINE,
}
_FORMAT = "recsdk.ItemSimilarity/1"
# partial_fit settles doubtful pairs exactly while the look-ups cost less than this share
# of the accumulations that recomputing the item takes.
_RESOLVE_SHARE = 4.0
# partial_fit writes out the co-occurrence changes that each changed row makes to its
# unchanged items (kernels._split_changes); beyond this many per stored entry (users who had
# and added many items: a large share of a refit's work) it refits instead, in bounded memory.
_MAX_SPREAD_PER_ENTRY = 4
# partial_fit gives up and refits when, in a sample of this many items per thread's chunk,
# the look-ups and the recomputations the lists need come to more than this share of the
# accumulations a refit of those items takes. An update that needs that much (a large batch
# on a model without a margin) costs more than a refit: measured in benchmarks/RESULTS.md.
_GIVE_UP_SAMPLE = 2048
_GIVE_UP_SHARE = 1.5

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]

_NO_ITEMS: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)


def _n_chunks(n_tasks: int) -> int:
    """Work units for a parallel kernel that deals its tasks in turn: several per thread."""
    return max(1, min(n_tasks, numba.get_num_threads() * 8))


@attrs.define(eq=False)
class ItemSimilarity:
    """Item-item nearest neighbours over a user x item matrix.

    The defaults (BM25-weighted cosine, 50 neighbours, a 3-day half-life on the affinities)
    are the best item-kNN configuration on the two public reference sets (MovieLens-100k,
    Online Retail); see ``docs/engine.md``. BM25 weights depend on every user's activity,
    so :meth:`partial_fit` recomputes everything with it; choose ``"cosine"`` for cheap
    incremental updates.

    Parameters
    ----------
    measure:
        ``"cosine"``, ``"jaccard"`` (Tanimoto on weighted data), ``"lift"``
        (``c_ij / (c_i c_j)``), ``"conditional"`` (``c_ij / (c_i c_j ** alpha)``, a
        conditional probability with a popularity discount), ``"cooccurrence"`` (raw counts),
        ``"bm25"`` / ``"tfidf"`` (cosine over BM25- or TF-IDF-weighted data, which damps
        heavy users).
    n_neighbors:
        Neighbours kept per item.
    alpha:
        Popularity discount exponent of ``"conditional"``.
    shrinkage:
        ``lambda``: similarities are multiplied by ``c_ij / (c_ij + lambda)``, which
        discounts pairs seen together by few users.
    min_support:
        Pairs with a co-occurrence below this are not neighbours.
    binary:
        Compute similarities from the binary matrix (a user touched an item or not) rather
        than from the weights. Weights and time decay still shape a user's affinity.
    weighting:
        Event type weights, decay, cap, damping and bot rules
        (:class:`~recsdk.engine.matrix.Weighting`).
    bm25_k1, bm25_b:
        Parameters of the ``"bm25"`` weighting.
    trend_weight:
        How much what is selling now counts when scoring a user: the user's neighbour
        scores are scaled so that the best is 1, then ``trend_weight`` times each item's
        trend (recent, decayed, type-weighted events, scaled so that the top item's is 1)
        is added. 0 turns it off (scores are then the plain neighbour sums).
    trend_half_life_days:
        Half-life of an event's contribution to its item's trend; ``None``: every event
        counts fully (plain popularity).
    margin:
        Extra candidates kept per item beyond ``n_neighbors`` (not served), with which
        :meth:`partial_fit` proves lists instead of recomputing them. 0 keeps the fit
        fastest and smallest; give a model that will be updated one (30 is a good start:
        at 1M users, updates after 1% new events ran 2-3x faster than a refit with it and
        slower than a refit without).
    """

    measure: Measure = attrs.field(default="bm25")
    n_neighbors: int = 50
    alpha: float = 0.0
    shrinkage: float = 0.0
    min_support: float = 0.0
    binary: bool = True
    weighting: Weighting = attrs.field(factory=lambda: Weighting(half_life_days=3.0))
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    margin: int = 0
    trend_weight: float = 0.8
    trend_half_life_days: float | None = 14.0

    _state: _State | None = attrs.field(default=None, init=False, repr=False)
    _scratch: threading.local = attrs.field(factory=threading.local, init=False, repr=False)

    @measure.validator
    def _check_measure(self, _: Any, value: str) -> None:
        if value not in MEASURES:
            raise ValueError(f"measure must be one of {MEASURES}, not {value!r}")

    def __attrs_post_init__(self) -> None:
        self.n_neighbors = checked_int("n_neighbors", self.n_neighbors, minimum=1)
        self.margin = checked_int("margin", self.margin, minimum=0)
        self.alpha = checked_number("alpha", self.alpha)
        self.shrinkage = checked_number("shrinkage", self.shrinkage, minimum=0)
        self.min_support = checked_number("min_support", self.min_support, minimum=0)
        self.bm25_k1 = checked_number("bm25_k1", self.bm25_k1, minimum=0)
        self.bm25_b = checked_number("bm25_b", self.bm25_b, minimum=0, maximum=1)
        self.trend_weight = checked_number("trend_weight", self.trend_weight, minimum=0)
        if self.trend_half_life_days is not None:
            self.trend_half_life_days = checked_number(
                "trend_half_life_days", self.trend_half_life_days, above=0
            )
        if not isinstance(self.weighting, Weighting):
            raise ValidationError("weighting", f"must be a Weighting, not {self.weighting!r}")

    # ------------------------------------------------------------------ fitting

    def fit(self, data: InteractionsLike | UserItemMatrix | Any) -> ItemSimilarity:
        """Compute every item's neighbours.

        Parameters
        ----------
        data:
            Interactions (``users``, ``items`` and optionally ``types``, ``values``,
            ``timestamps`` arrays, ``n_users``, ``n_items``), a
            :class:`~recsdk.engine.matrix.UserItemMatrix` of summed weights, or a scipy
            sparse user x item matrix.

        Returns
        -------
        ItemSimilarity
            ``self``.
        """
        plain, decayed, reference, trend = self._summed(data)
        self._state = self._compute(plain, decayed, reference, trend)
        return self

    def _summed(
        self, data: Any, reference: float | None = None
    ) -> tuple[
        UserItemMatrix, npt.NDArray[np.float32] | None, float | None, npt.NDArray[np.float64]
    ]:
        """Summed weights, decayed ones, the reference time and the items' trend.

        ``reference`` (a fitted model's) overrides the weighting's and the newest event.
        """
        if isinstance(data, UserItemMatrix) or hasattr(data, "tocsr"):
            m = data if isinstance(data, UserItemMatrix) else UserItemMatrix.from_scipy(data)
            return m, None, None, matrix.column_sums(m)
        if reference is None:
            reference = matrix.reference_time(data, self.weighting)
        weighting = attrs.evolve(self.weighting, reference_time=reference)
        plain, decayed, trend = matrix.weights_and_trend(
            data, weighting, self.trend_half_life_days, reference
        )
        return plain, (decayed.data if decayed is not None else None), reference, trend

    def _similarity_input(self, plain: UserItemMatrix) -> UserItemMatrix:
        x = matrix.finish(plain, self.weighting, binary=self.binary)
        if self.measure == "bm25":
            return matrix.bm25_weight(x, self.bm25_k1, self.bm25_b)
        if self.measure == "tfidf":
            return matrix.tfidf_weight(x)
        return x

    def _kernel_args(self) -> tuple[int, float, float, float]:
        alpha = 1.0 if self.measure == "lift" else self.alpha
        return _KERNEL_MEASURE[self.measure], alpha, self.shrinkage, self.min_support

    def _compute(
        self,
        plain: UserItemMatrix,
        decayed: npt.NDArray[np.float32] | None,
        reference: float | None,
        trend: npt.NDArray[np.float64],
    ) -> _State:
        x = self._similarity_input(plain)
        popularity, work, chunk_counts = kernels._column_counts(
            x.indptr, x.indices, x.n_items, numba.get_num_threads()
        )
        binary = self._binary_input()
        constant_rows = self._constant_rows(x)
        xr, item_users = _by_popularity(
            x, popularity, work, uniform=binary, constant_rows=constant_rows,
            chunk_counts=chunk_counts,
        )  # fmt: skip
        diag = popularity if binary else item_users.squares()
        everything = np.arange(x.n_items, dtype=np.int32)
        incremental = self._incremental()
        found = self._run_topk(xr, item_users, diag, everything, constant_rows, incremental)
        return _State(
            plain=plain,
            decayed=decayed,
            reference_time=reference,
            diag=diag,
            popularity=popularity,
            trend=trend,
            neighbors=found[0],
            scores=found[1],
            cooc=found[2],
            cut_score=found[3],
            cut_item=found[4],
            # Only partial_fit's incremental path reads it again: others need not keep it.
            item_users=item_users if incremental else None,
            integral=True if self._binary_input() else None,
            positive=x.nnz == plain.nnz,
        )

    def _run_topk(
        self,
        xr: UserItemMatrix,
        item_users: _ItemUsers,
        diag: npt.NDArray[np.float64],
        todo: npt.NDArray[np.int32],
        constant_rows: bool,
        keep_cooc: bool,
    ) -> tuple[Any, ...]:
        """Neighbour lists of the items ``todo`` (rows in that order).

        ``item_users`` is the similarity input's item side, ``xr`` its user side with the
        items labelled as the item side's rows are (:func:`_by_popularity`);
        ``constant_rows``: :meth:`_constant_rows`; ``keep_cooc``: return the kept pairs'
        co-occurrences, which only :meth:`partial_fit`'s incremental path reads (else an
        array with no columns).
        """
        rows = item_users.rows
        if rows is None:
            labels = np.arange(xr.n_items, dtype=np.int32)
            internal_todo = todo
        else:
            labels = np.empty_like(rows)
            labels[rows] = np.arange(len(rows), dtype=np.int32)
            internal_todo = rows[todo]
        xt = item_users.matrix
        order = np.argsort(internal_todo, kind="stable").astype(np.int64)
        internal_todo = internal_todo[order]
        work = item_users.work[labels]
        measure, alpha, shrink, support = self._kernel_args()
        binary = self._binary_input()
        row_constant = constant_rows and not binary  # (0/1 input reads no values at all)
        n_chunks = max(1, min(len(todo), numba.get_num_threads()))  # balanced by work: one each
        n_heads = kernels._count_heads(work, internal_todo, xr.n_items)
        return kernels._topk_items(  # type: ignore[no-any-return]
            xr.indptr, xr.indices, xr.data, xt.indptr, xt.indices, xt.data, diag[labels],
            work, labels, internal_todo, order, self.n_neighbors + self.margin, measure, alpha,
            shrink, support, binary, row_constant, keep_cooc, n_heads, n_chunks,
        )  # fmt: skip

    def partial_fit(self, new_data: InteractionsLike | UserItemMatrix | Any) -> ItemSimilarity:
        """Add new interactions and update only the neighbour lists they can change.

        The result equals :meth:`fit` on the union of all interactions seen so far (the
        served ``n_neighbors`` lists and their scores). Items whose lists provably cannot
        change are skipped, items whose lists change predictably are re-ranked from stored
        co-occurrences, and only the rest are recomputed. Updates that can lower an item's
        self-product (refunds), non-integral similarity inputs (whose float sums depend on
        their order), user damping, a negative ``alpha`` and the global
        ``"bm25"``/``"tfidf"`` weightings fall back to a full recomputation. Ages are
        measured from the newest event seen so far, as in a fit on all of them (unless the
        weighting fixes a reference time): newer events age the stored affinities and
        trend, which stay within float range however much time passes. The update pays
        off with a ``margin`` (see the class's parameters): without one, most lists are
        recomputed, and when the first items updated show that the rest would cost more
        than a refit, the update stops and refits (``stats == {"gave_up": 1}``).

        Parameters
        ----------
        new_data:
            New interactions, in any form :meth:`fit` accepts. Indices may exceed the
            fitted ``n_users``/``n_items``: the model grows.

        Returns
        -------
        ItemSimilarity
            ``self``.
        """
        state = self._fitted()
        reference = self._moved_reference(state, new_data)
        delta, delta_decayed, delta_trend = self._delta(new_data, state, reference)
        n_users = max(state.plain.n_users, delta.n_users)
        n_items = max(state.plain.n_items, delta.n_items)
        old = _grown(state.plain, n_users, n_items)
        delta = _grown(delta, n_users, n_items)
        decayed_old = (
            None
            if state.decayed is None
            else _aged(state.decayed, self.weighting.half_life_days, state, reference)
        )
        decayed_new = delta_decayed
        with_decay = decayed_old is not None and decayed_new is not None
        merged = kernels._merge_csr(
            old.indptr, old.indices, old.data, decayed_old if with_decay else old.data,
            delta.indptr, delta.indices, delta.data,
            decayed_new if with_decay else delta.data, with_decay,
        )  # fmt: skip
        plain = UserItemMatrix(merged[0], merged[1], merged[2], n_users, n_items)
        decayed = merged[3] if with_decay else None
        old_trend = _aged(state.trend, self.trend_half_life_days, state, reference)
        trend = _grown_vector(old_trend, n_items) + _grown_vector(delta_trend, n_items)
        updated = None
        if self._incremental():
            users = np.flatnonzero(np.diff(delta.indptr) > 0).astype(np.int32)
            changed = UserItemMatrix(merged[4], merged[5], merged[6], len(users), n_items)
            updated = self._update(state, plain, changed, merged[7], users)
        if updated is None:
            updated = self._compute(plain, decayed, reference, trend)
        updated.reference_time = reference
        updated.decayed = decayed
        updated.trend = trend
        self._state = updated
        return self

    def _moved_reference(self, state: _State, data: Any) -> float | None:
        """The reference time after adding ``data``: the newest event seen so far, as a fit
        on all of them would take, unless the weighting fixes one."""
        if state.reference_time is None or self.weighting.reference_time is not None:
            return state.reference_time
        newest = matrix.reference_time(data, self.weighting)
        return state.reference_time if newest is None else max(state.reference_time, newest)

    def _delta(
        self, data: Any, state: _State, reference: float | None
    ) -> tuple[UserItemMatrix, npt.NDArray[np.float32] | None, npt.NDArray[np.float64]]:
        """New interactions summed like the fitted ones, aged from ``reference``."""
        plain, decayed, _, trend = self._summed(data, reference)
        if (decayed is None) != (state.decayed is None):
            if isinstance(data, UserItemMatrix) or hasattr(data, "tocsr"):
                raise ValueError("a decayed model takes interactions with timestamps")
            raise ValueError("new interactions must have timestamps like the first ones")
        return plain, decayed, trend

    def _constant_rows(self, x: UserItemMatrix) -> bool:
        """Whether each row of the similarity input ``x`` holds one value: 0/1 input, or
        BM25 or TF-IDF weights of it, which weigh a user's entries alike."""
        return self._binary_input() or bool(kernels._rows_constant(x.indptr, x.data))

    def _binary_input(self) -> bool:
        """Whether the similarity input is 0/1."""
        return bool(self.binary and self.measure not in ("bm25", "tfidf"))

    def _incremental(self) -> bool:
        """Whether partial_fit may update lists: new events change only their users'
        entries, and an item's growing self-product never raises another's score."""
        return not self._global_weighting() and (self.measure != "conditional" or self.alpha >= 0)

    def _global_weighting(self) -> bool:
        """Whether one new event can change weights of other users' entries."""
        if self.measure in ("bm25", "tfidf"):
            return True
        return not self.binary and self.weighting.user_damping > 0

    def _transform(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-entry similarity input of summed weights (binary or capped, never < 0)."""
        if self.binary:
            return (values > 0).astype(np.float32)
        out = np.maximum(values, np.float32(0))
        if self.weighting.cap is not None:
            out = np.minimum(out, np.float32(self.weighting.cap))
        return np.asarray(out, dtype=np.float32)

    def _update(
        self,
        state: _State,
        plain: UserItemMatrix,
        changed: UserItemMatrix,
        old_weights: npt.NDArray[np.float32],
        users: IntArray,
    ) -> _State | None:
        """The incremental path of :meth:`partial_fit` to the new summed weights ``plain``,
        whose rows ``users`` changed (``changed``: those rows, ``old_weights``: their
        values before); ``None`` asks for a full refit."""
        if state.cooc.shape != state.neighbors.shape:
            return None  # fitted under a configuration that keeps no co-occurrences
        n_items = plain.n_items
        new_weights = changed.data
        rows = changed.with_data(self._transform(new_weights))
        old_rows = rows.with_data(self._transform(old_weights))
        moved = rows.data != old_rows.data
        d_old = _grown_vector(state.diag, n_items)
        d_new: npt.NDArray[np.float64] = d_old + np.bincount(
            rows.indices[moved],
            weights=rows.data[moved].astype(np.float64) ** 2
            - old_rows.data[moved].astype(np.float64) ** 2,
            minlength=n_items,
        )
        if np.any(d_new < d_old) or not self._exact_sums(state, rows.data, d_new):
            return None
        popularity: npt.NDArray[np.float64] = _grown_vector(
            state.popularity, n_items
        ) + np.bincount(
            rows.indices[moved],
            weights=(rows.data[moved] > 0).astype(np.float64) - (old_rows.data[moved] > 0),
            minlength=n_items,
        )
        fits, *changes, work_change = kernels._split_changes(
            rows.indptr, rows.indices, old_rows.data, rows.data, n_items,
            _MAX_SPREAD_PER_ENTRY * plain.nnz, numba.get_num_threads(),
        )  # fmt: skip
        if not fits:
            return None
        # Per item: the rows where its value changed, and what the others changed beside it.
        own_changes, spread_changes = changes[:4], changes[4:]
        item_users = self._merged_item_users(state, own_changes, work_change, users, plain.n_users)
        measure, alpha, shrink, support = self._kernel_args()
        n_chunks = 2 * numba.get_num_threads()  # each zeroes an n_items scratch: few
        found = kernels._update_items(
            state.neighbors, state.scores, state.cooc, state.cut_score, state.cut_item,
            d_old, d_new, *own_changes, rows.indptr, rows.indices, old_rows.data, rows.data,
            *spread_changes, item_users.matrix.indptr, item_users.matrix.indices,
            item_users.matrix.data, item_users.work, plain.n_users, self.n_neighbors, measure,
            alpha, shrink, support, self._binary_input(), _RESOLVE_SHARE, _GIVE_UP_SHARE,
            _GIVE_UP_SAMPLE, n_chunks,
        )  # fmt: skip
        if found[6]:
            refit = self._compute(plain, None, state.reference_time, state.trend)
            refit.stats = {"gave_up": 1}
            return refit
        new_state = _State(
            plain=plain,
            decayed=None,
            reference_time=state.reference_time,
            diag=d_new,
            popularity=popularity,
            neighbors=found[0],
            scores=found[1],
            cooc=found[2],
            cut_score=found[3],
            cut_item=found[4],
            trend=state.trend,  # partial_fit sets the new one
            item_users=item_users,
            integral=True,
            positive=bool(self._positive(state) and np.all(new_weights > 0)),
        )
        self._recompute(new_state, found[5])
        return new_state

    def _exact_sums(
        self,
        state: _State,
        new_values: npt.NDArray[np.float32],
        d_new: npt.NDArray[np.float64],
    ) -> bool:
        """Whether every co-occurrence is an integer that float32 sums exactly, in any
        order: the incremental path's arithmetic then equals a full fit's."""
        if not self._binary_input():
            if state.integral is None:
                values = self._transform(state.plain.data)
                state.integral = bool(np.all(values == np.round(values)))
            if not (state.integral and np.all(new_values == np.round(new_values))):
                return False
        # Co-occurrences are at most max(d) (Cauchy-Schwarz).
        return len(d_new) == 0 or float(d_new.max()) <= 2.0**24

    @staticmethod
    def _positive(state: _State) -> bool:
        """Whether every stored weight is positive (the similarity input keeps them all)."""
        if state.positive is None:
            state.positive = bool(np.all(state.plain.data > 0))
        return state.positive

    def _merged_item_users(
        self,
        state: _State,
        own_changes: list[npt.NDArray[Any]],
        work_change: npt.NDArray[np.int64],
        users: IntArray,
        n_users: int,
    ) -> _ItemUsers:
        """The new item side of the similarity input: the fitted one with the changed
        ``users``' entries replaced (``own_changes``, ``work_change``: what
        :func:`kernels._split_changes` made of their rows)."""
        old = state.item_users
        if old is None:  # a loaded model: rebuild it once
            x = self._similarity_input(state.plain)
            n_chunks = numba.get_num_threads()
            work = kernels._column_counts(x.indptr, x.indices, x.n_items, n_chunks)[1]
            old = _ItemUsers(x.transpose(), None, work)
        starts, ends = old.matrix.indptr[:-1], old.matrix.indptr[1:]
        if old.rows is not None:
            starts, ends = starts[old.rows], ends[old.rows]
        binary = self._binary_input()
        indptr, indices, data = kernels._merge_item_users(
            starts, ends, old.matrix.indices, old.matrix.data, *own_changes, users, not binary
        )
        ones = None
        if binary:  # every value is 1: the new side shares the old one's ones
            ones = _shared_ones(old, len(indices))
            data = ones[: len(indices)]
        n_items = len(work_change)
        work = _grown_vector(old.work, n_items) + work_change
        matrix = UserItemMatrix(indptr, indices, data, n_items, n_users)
        return _ItemUsers(matrix, None, work, ones)

    def _recompute(self, state: _State, codes: npt.NDArray[np.int8]) -> None:
        """Recompute in place the lists ``_update_items`` could not prove (``codes > 0``)."""
        reasons = np.bincount(codes[codes >= 0], minlength=4)
        redo = np.flatnonzero(codes > 0).astype(np.int32)
        state.stats = {
            "checked": int(reasons.sum()),
            "updated": int(reasons[0]),
            "recomputed": len(redo),
            "too_few_known": int(reasons[1]),
            "beaten_by_cut": int(reasons[2]),
            "beaten_by_changed_pair": int(reasons[3]),
        }
        if len(redo) == 0:
            return
        x = state.plain
        if not state.positive:
            x = self._similarity_input(x)
        elif not self._binary_input():
            x = x.with_data(self._transform(x.data))
        # (With 0/1 input the kernels read only the positions of x.)
        item_users = state.item_users
        assert item_users is not None  # _update merged it
        if item_users.rows is not None or len(redo) * 8 >= x.n_items:
            # Many lists: relabelling by popularity pays for itself, as in a fit.
            x, item_users = _by_popularity(
                x, state.popularity, item_users.work, uniform=False, constant_rows=False
            )
        found = self._run_topk(x, item_users, state.diag, redo, self._constant_rows(x), True)
        targets: tuple[npt.NDArray[Any], ...] = (
            state.neighbors,
            state.scores,
            state.cooc,
            state.cut_score,
            state.cut_item,
        )
        for target, values in zip(targets, found, strict=True):
            target[redo] = values

    # ------------------------------------------------------------------ queries

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return self._state is not None

    @property
    def n_items(self) -> int:
        """Number of items the model knows."""
        return int(self._fitted().neighbors.shape[0])

    @property
    def n_users(self) -> int:
        """Number of users in the training data."""
        return self._fitted().plain.n_users

    def neighbors(self, item: int) -> tuple[IntArray, FloatArray]:
        """The stored neighbours of one item and their similarities, best first.

        Read-only views into the model (no copy); a later ``partial_fit`` never changes them.
        """
        state = self._fitted()
        self._check_item(item)
        row = state.neighbors[item, : self.n_neighbors]
        kept = int(np.count_nonzero(row >= 0))
        items, scores = row[:kept], state.scores[item, :kept]
        items.flags.writeable = False
        scores.flags.writeable = False
        return items, scores

    def similar_items(
        self,
        item: int,
        k: int = 10,
        *,
        exclude: npt.ArrayLike | None = None,
        fill: bool = True,
    ) -> tuple[IntArray, FloatArray]:
        """The ``k`` items most similar to ``item``, best first.

        Never returns ``item`` itself nor an item of ``exclude``. With ``fill`` (default)
        the list is completed with the most popular allowed items (score 0) when the item
        has fewer than ``k`` neighbours, so exactly ``min(k, allowed items)`` come back.

        Returns
        -------
        (items, scores):
            ``int32`` item indices and ``float32`` similarities.
        """
        self._check_item(item)
        return self.score([item], k=k, exclude=exclude, fill=fill, trend=False)

    def score(
        self,
        history: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        k: int = 10,
        exclude: npt.ArrayLike | None = None,
        exclude_history: bool = True,
        fill: bool = True,
        trend: bool = True,
    ) -> tuple[IntArray, FloatArray]:
        """Top ``k`` items for a history: ``score(j) = sum_h weight_h * sim(h, j)``.

        With a ``trend_weight``, these sums are scaled so that the best is 1 and the item's
        trend term is added; trending items outside the neighbours compete with their
        trend term alone.

        Parameters
        ----------
        history:
            Item indices the user interacted with (unknown indices are ignored).
        weights:
            One affinity per history item (default 1 each).
        k:
            Number of results.
        exclude:
            Items never to return.
        exclude_history:
            Never return a history item (default).
        fill:
            Complete the list with the most popular allowed items (score 0).
        trend:
            Add the trend term (when the model has a ``trend_weight``).

        Returns
        -------
        (items, scores):
            Exactly ``min(k, allowed items)`` entries with ``fill``, best first.
        """
        found = self.explain(
            history, weights, k=k, exclude=exclude, exclude_history=exclude_history,
            fill=fill, trend=trend,
        )  # fmt: skip
        return found.items, found.scores

    def explain(
        self,
        history: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        k: int = 10,
        exclude: npt.ArrayLike | None = None,
        exclude_history: bool = True,
        fill: bool = True,
        trend: bool = True,
    ) -> Scored:
        """:meth:`score`, and for each item the history item that led to it.

        Same parameters as :meth:`score`. A recommender's reasons ("because you viewed
        ...") come from :attr:`Scored.sources` at no extra cost.
        """
        state = self._fitted()
        k = checked_int("k", k, minimum=0)
        hist, w = history_arrays(history, weights)  # the kernel passes over unknown items
        excluded = self._excluded(hist if exclude_history else None, exclude)
        prior, trending = state.prior(self.trend_weight if trend else 0.0)
        items, scores, sources, top = kernels._score_one(
            state.neighbors[:, : self.n_neighbors], state.scores[:, : self.n_neighbors],
            hist, w, excluded, state.popular_order(), prior, trending, k, bool(fill),
            *self._scratch_arrays(state.neighbors.shape[0]),
        )  # fmt: skip
        return Scored(items, scores, sources, float(top))

    def score_many(
        self,
        histories: UserItemMatrix,
        *,
        k: int = 10,
        exclude: UserItemMatrix | None = None,
        exclude_history: bool = True,
        fill: bool = True,
        trend: bool = True,
    ) -> tuple[IntArray, FloatArray]:
        """:meth:`score` for many histories at once, in parallel.

        Parameters
        ----------
        histories:
            One row per user: the history items and their weights.
        exclude:
            One row per user of further items never to return (values ignored).

        Returns
        -------
        (items, scores):
            ``(n_rows, k)`` arrays; rows with fewer results are padded with ``-1`` / 0.
        """
        state = self._fitted()
        k = checked_int("k", k, minimum=0)
        if histories.n_items > self.n_items:
            keep = histories.indices < self.n_items
            histories = histories.prune(keep)
        x_indptr, x_items = self._excluded_rows(histories, exclude, exclude_history)
        prior, trending = state.prior(self.trend_weight if trend else 0.0)
        return cast(
            "tuple[IntArray, FloatArray]",
            kernels._score_many(
                state.neighbors[:, : self.n_neighbors], state.scores[:, : self.n_neighbors],
                histories.indptr, histories.indices, histories.data, x_indptr, x_items,
                state.popular_order(), prior, trending, k, bool(fill),
                _n_chunks(histories.n_users),
            ),
        )  # fmt: skip

    def user_history(self, user: int) -> tuple[IntArray, FloatArray]:
        """A training user's items and affinities (weights, decayed and capped)."""
        state = self._fitted()
        if not 0 <= user < state.plain.n_users:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        lo, hi = int(state.plain.indptr[user]), int(state.plain.indptr[user + 1])
        items = state.plain.indices[lo:hi]
        source = state.decayed if state.decayed is not None else state.plain.data
        values = self._affinity_values(np.asarray(source[lo:hi]))
        positive = values > 0
        return items[positive], values[positive]

    def _affinity_values(self, values: npt.NDArray[np.float32]) -> FloatArray:
        if self.weighting.cap is not None:
            values = np.minimum(values, np.float32(self.weighting.cap))
        return np.asarray(values, dtype=np.float32)

    def recommend(
        self, user: int, k: int = 10, *, exclude_seen: bool = True
    ) -> tuple[IntArray, FloatArray]:
        """Top ``k`` items for a training user, from their training history.

        Unknown users get the most popular items.
        """
        items, weights = self.user_history(user)
        return self.score(items, weights, k=k, exclude_history=exclude_seen)

    def affinity(self, users: npt.ArrayLike | None = None) -> UserItemMatrix:
        """The training users' affinities (decayed, capped, positive) as a matrix: one row
        per user, or per user of ``users`` in that order (empty for unknown users)."""
        state = self._fitted()
        source = state.decayed if state.decayed is not None else state.plain.data
        rows = state.plain.with_data(np.asarray(source))
        if users is not None:
            rows = rows.select_rows(np.asarray(users, dtype=np.int64))
        out = rows.with_data(self._affinity_values(rows.data))
        return out.prune(out.data > 0)

    def recommend_all(
        self, users: npt.ArrayLike | None = None, k: int = 10, *, exclude_seen: bool = True
    ) -> tuple[IntArray, FloatArray]:
        """:meth:`recommend` for many training users (default: all), in parallel."""
        return self.score_many(self.affinity(users), k=k, exclude_history=exclude_seen)

    # ------------------------------------------------------------------ helpers

    def _fitted(self) -> _State:
        if self._state is None:
            raise NotFitted("call fit() or load() first")
        return self._state

    def _check_item(self, item: int) -> None:
        if not 0 <= int(item) < self.n_items:
            raise IndexError(f"item {item} is not in 0..{self.n_items - 1}")

    def _scratch_arrays(
        self, n_items: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], IntArray]:
        """This thread's scratch arrays for scoring one history (the kernel resets them)."""
        arrays: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], IntArray] | None
        arrays = getattr(self._scratch, "arrays", None)
        if arrays is None or len(arrays[0]) != n_items:
            arrays = (
                np.zeros(n_items, dtype=np.float64),
                np.full(n_items, -np.inf, dtype=np.float64),
                np.zeros(n_items, dtype=np.int32),
            )
            self._scratch.arrays = arrays
        return arrays

    def _excluded(
        self, hist: npt.NDArray[np.int64] | None, exclude: npt.ArrayLike | None
    ) -> npt.NDArray[np.int64]:
        """The items never to return, sorted (repeats and items outside the catalog are
        harmless to the kernels)."""
        parts = []
        if hist is not None and len(hist):
            parts.append(hist)
        if exclude is not None:
            parts.append(np.asarray(exclude, dtype=np.int64).ravel())
        if not parts:
            return _NO_ITEMS
        merged = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return np.sort(merged)

    def _excluded_rows(
        self, histories: UserItemMatrix, exclude: UserItemMatrix | None, with_history: bool
    ) -> tuple[npt.NDArray[np.int64], IntArray]:
        """Per history, the sorted items never to return, as CSR ``(indptr, indices)``."""
        n = histories.n_users
        if exclude is None and with_history:
            return histories.indptr, histories.indices  # rows already sorted
        rows: list[npt.NDArray[np.int64]] = []
        cols: list[IntArray] = []
        if with_history:
            rows.append(np.repeat(np.arange(n, dtype=np.int64), histories.row_lengths()))
            cols.append(histories.indices)
        if exclude is not None:
            if exclude.n_users != n:
                raise ValueError("exclude must have one row per history")
            rows.append(np.repeat(np.arange(n, dtype=np.int64), exclude.row_lengths()))
            cols.append(exclude.indices)
        if not rows:
            return np.zeros(n + 1, dtype=np.int64), np.empty(0, dtype=np.int32)
        wide = max(self.n_items, histories.n_items, 0 if exclude is None else exclude.n_items)
        merged = UserItemMatrix.from_coo(
            np.concatenate(rows), np.concatenate(cols), n_users=n, n_items=wide
        )
        return merged.indptr, merged.indices

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path`` (``.npz``, plain arrays, no pickle, uncompressed)."""
        state = self._fitted()
        arrays = state.to_arrays()
        arrays["config"] = np.asarray(json.dumps(self._config()))
        arrays["format"] = np.asarray(_FORMAT)
        np.savez(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False) -> ItemSimilarity:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path:
            The ``.npz`` file.
        mmap:
            Map the arrays read-only from the file instead of reading them into memory
            (several processes then share one copy through the page cache).
        """
        arrays = _read_npz(os.fspath(path), mmap=mmap)
        if str(arrays.get("format")) != _FORMAT:
            raise ValueError(f"{path}: not an ItemSimilarity file")
        config = json.loads(str(arrays["config"]))
        config["weighting"] = Weighting.from_dict(config["weighting"])
        model = cls(**config)
        model._state = _State.from_arrays(arrays)
        return model

    def _config(self) -> dict[str, Any]:
        config = attrs.asdict(self, filter=lambda a, _: a.init, recurse=False)
        config["weighting"] = self.weighting.to_dict()
        return config

    def warmup(self) -> ItemSimilarity:
        """Compile (or load from numba's cache) every kernel the model runs, off the request
        path: those of fitting, scoring and :meth:`partial_fit`.

        A tiny model of the same configuration runs them all. When this model was loaded,
        a tiny model made the way :meth:`load` makes one runs them too: a loaded model's
        first :meth:`partial_fit` rebuilds what a fit keeps, and numba compiles other code
        for read-only arrays, which memory-mapped ones are.
        """
        tiny = attrs.evolve(self, n_neighbors=2)
        users = np.array([0, 0, 1, 1, 2], dtype=np.int32)
        items = np.array([0, 1, 1, 2, 0], dtype=np.int32)
        tiny.fit(UserItemMatrix.from_coo(users, items, n_users=3, n_items=3))
        state = self._state
        if state is not None and state.item_users is None:
            arrays = {name: np.array(a) for name, a in tiny._fitted().to_arrays().items()}
            if not state.neighbors.flags.writeable:
                for copy in arrays.values():
                    copy.flags.writeable = False
            loaded = attrs.evolve(tiny)
            loaded._state = _State.from_arrays(arrays)
            _exercise(loaded)
        _exercise(tiny)
        return self


def _exercise(model: ItemSimilarity) -> None:
    """Run each kernel of a fitted tiny model once (see :meth:`ItemSimilarity.warmup`)."""
    model.similar_items(0, 2)
    model.recommend_all(k=2)
    model.recommend_all([1], k=2)
    # A new user and a new item: partial_fit's incremental kernels (refresh() runs them).
    model.partial_fit(UserItemMatrix.from_coo([1, 3], [0, 3], n_users=4, n_items=4))


@attrs.frozen
class Scored:
    """Top items for a history, and what led to each (:meth:`ItemSimilarity.explain`)."""

    items: IntArray
    """Item indices, best first."""
    scores: FloatArray
    """Their scores."""
    sources: npt.NDArray[np.int32]
    """Per item, the position in the given history of the item whose neighbour score
    contributed most (the earliest on a tie), or -1 when none did (a trending or popular
    fill)."""
    top: float
    """The largest neighbour sum among allowed items (0 if none): with a trend term, the
    neighbour sums were divided by it before the trend was added."""


@attrs.frozen
class _ItemUsers:
    """The similarity input transposed (item x user) and each item's recomputation work."""

    matrix: UserItemMatrix
    rows: IntArray | None
    """The row of each item in ``matrix`` (``None``: the item's index)."""
    work: npt.NDArray[np.int64]
    """Per item, the summed lengths of its users' rows (:func:`kernels._column_counts`)."""
    ones: npt.NDArray[np.float32] | None = None
    """With 0/1 input after an update: the ones that ``matrix.data`` is the start of, with
    room for more, which later updates share instead of copying the values."""

    def squares(self) -> npt.NDArray[np.float64]:
        """Per item, the sum of its squared values (in user order, as a pass over the user
        rows sums them)."""
        squares: npt.NDArray[np.float64] = kernels._row_squares(
            self.matrix.indptr, self.matrix.data
        )
        return squares if self.rows is None else squares[self.rows]


def _by_popularity(
    x: UserItemMatrix,
    popularity: npt.NDArray[np.float64],
    work: npt.NDArray[np.int64],
    *,
    uniform: bool,
    constant_rows: bool,
    chunk_counts: npt.NDArray[np.int64] | None = None,
) -> tuple[UserItemMatrix, _ItemUsers]:
    """``x`` with its items relabelled by decreasing popularity (ties by index), and its
    item side in those labels (``work``: :attr:`_ItemUsers.work`). ``uniform``: every value
    of ``x`` is the same, and both sides share its values; ``constant_rows``: each row of
    ``x`` holds one value, and the relabelled rows share its values; ``chunk_counts``:
    :func:`kernels._column_counts`' counts by ranges of rows, where the caller has them.

    Popular items first keeps the hot part of the fit's accumulator in cache, and rows
    sorted in the new labels are read in order.
    """
    labels = np.argsort(-popularity, kind="stable").astype(np.int32)
    internal = np.empty_like(labels)
    internal[labels] = np.arange(len(labels), dtype=np.int32)
    if chunk_counts is not None:
        chunk_counts = chunk_counts[:, labels]  # (a copy, in the new labels)
    xt = x.transpose(internal, uniform=uniform, chunk_counts=chunk_counts)
    xr = x.relabeled(internal, xt, constant_rows=constant_rows)
    return xr, _ItemUsers(xt, internal, work)


@attrs.define(eq=False)
class _State:
    """The fitted arrays of an :class:`ItemSimilarity`."""

    plain: UserItemMatrix
    decayed: npt.NDArray[np.float32] | None
    reference_time: float | None
    diag: npt.NDArray[np.float64]
    popularity: npt.NDArray[np.float64]
    neighbors: IntArray
    scores: FloatArray
    cooc: FloatArray
    """The stored pairs' co-occurrences; no columns where partial_fit refits instead."""
    cut_score: npt.NDArray[np.float64]
    cut_item: IntArray
    trend: npt.NDArray[np.float64]
    stats: dict[str, int] = attrs.field(factory=dict)
    item_users: _ItemUsers | None = None
    """The similarity input's item side, kept for partial_fit; not saved."""
    integral: bool | None = None
    """Whether every similarity input value is an integer (``None``: not known yet)."""
    positive: bool | None = None
    """Whether every stored weight is positive (``None``: not known yet)."""
    _popular: IntArray | None = None
    _priors: dict[float, tuple[npt.NDArray[np.float64], IntArray]] = attrs.field(factory=dict)

    def prior(self, weight: float) -> tuple[npt.NDArray[np.float64], IntArray]:
        """The trend term of scores and the items in its order (cached per weight)."""
        if weight not in self._priors:
            self._priors[weight] = matrix.trend_prior(self.trend, weight)
        return self._priors[weight]

    def popular_order(self) -> IntArray:
        """Items by decreasing popularity, ties by index."""
        if self._popular is None:
            order = np.argsort(-self.popularity, kind="stable").astype(np.int32)
            self._popular = order
        return self._popular

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        out: dict[str, npt.NDArray[Any]] = {
            "indptr": self.plain.indptr,
            "indices": self.plain.indices,
            "data": self.plain.data,
            "shape": np.asarray(self.plain.shape, dtype=np.int64),
            "diag": self.diag,
            "popularity": self.popularity,
            "neighbors": self.neighbors,
            "scores": self.scores,
            "cooc": self.cooc,
            "cut_score": self.cut_score,
            "cut_item": self.cut_item,
            "trend": self.trend,
        }
        if self.decayed is not None:
            out["decayed"] = self.decayed
        if self.reference_time is not None:
            out["reference_time"] = np.asarray(self.reference_time, dtype=np.float64)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> _State:
        shape = arrays["shape"]
        plain = UserItemMatrix(
            arrays["indptr"], arrays["indices"], arrays["data"], int(shape[0]), int(shape[1])
        )
        decayed = arrays.get("decayed")
        reference = arrays.get("reference_time")
        return cls(
            plain=plain,
            decayed=decayed,
            reference_time=float(reference) if reference is not None else None,
            diag=arrays["diag"],
            popularity=arrays["popularity"],
            neighbors=arrays["neighbors"],
            scores=arrays["scores"],
            cooc=arrays["cooc"],
            cut_score=arrays["cut_score"],
            cut_item=arrays["cut_item"],
            trend=arrays.get("trend", arrays["popularity"]),
        )


def history_arrays(
    history: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A history's items and their weights (default 1), as flat arrays of one length."""
    hist = np.atleast_1d(np.asarray(history, dtype=np.int64))
    w = (
        np.ones(len(hist), dtype=np.float64)
        if weights is None
        else np.atleast_1d(np.asarray(weights, dtype=np.float64))
    )
    if w.shape != hist.shape:
        raise ValueError("weights must have one value per history item")
    return hist, w


def known_history(
    history: npt.ArrayLike, weights: npt.ArrayLike | None, n_items: int
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """The known items of a history and their weights (default 1)."""
    hist, w = history_arrays(history, weights)
    known = (hist >= 0) & (hist < n_items)
    return hist[known].astype(np.int32), w[known]


def _shared_ones(old: _ItemUsers, n: int) -> npt.NDArray[np.float32]:
    """At least ``n`` ones for the item side that replaces ``old`` (0/1 input): ``old``'s
    own (all ones, never written) when they are enough, else new ones, with a quarter more
    room when ``old`` came from an update too (updates come in runs)."""
    ones = old.matrix.data if old.ones is None else old.ones
    if len(ones) >= n:
        return ones
    room = 0 if old.ones is None else n // 4  # just fitted or loaded: as many as needed
    return kernels._ones(n + room)  # type: ignore[no-any-return]


def _grown(m: UserItemMatrix, n_users: int, n_items: int) -> UserItemMatrix:
    """The same matrix with more (empty) rows and columns."""
    extra = n_users - m.n_users
    indptr = np.concatenate((m.indptr, np.full(extra, m.indptr[-1], dtype=np.int64)))
    return UserItemMatrix(indptr, m.indices, m.data, n_users, n_items)


def _aged(
    values: npt.NDArray[Any],
    half_life_days: float | None,
    state: _State,
    reference: float | None,
) -> npt.NDArray[Any]:
    """Decayed sums of ``state`` re-aged from ``reference``: every event's weight is
    ``0.5 ** (age / half_life)``, so moving the reference scales them all alike."""
    if half_life_days is None or reference is None or state.reference_time is None:
        return values
    if reference == state.reference_time:
        return values
    factor = matrix.decay_factors(state.reference_time, half_life_days, reference)
    aged = (values * factor).astype(values.dtype)
    # As writable as the stored array: numba compiles a kernel per kind of array, and
    # warmup() compiled those of the model's own (read-only when memory-mapped).
    aged.flags.writeable = values.flags.writeable
    return aged


def _grown_vector(v: npt.NDArray[Any], n: int, fill: float = 0) -> npt.NDArray[Any]:
    out = np.full(n, fill, dtype=v.dtype)
    out[: len(v)] = v
    return out


def _read_npz(path: str, *, mmap: bool) -> dict[str, npt.NDArray[Any]]:
    """Arrays of an ``.npz`` file; with ``mmap`` each member is mapped, not read."""
    if not mmap:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    out: dict[str, npt.NDArray[Any]] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{path}: member {name} is compressed, cannot map it")
            out[name] = _map_member(path, raw, info)
    return out


def _map_member(path: str, raw: Any, info: zipfile.ZipInfo) -> npt.NDArray[Any]:
    raw.seek(info.header_offset)
    local = raw.read(30)
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    raw.seek(info.header_offset + 30 + name_len + extra_len)
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
    if dtype.hasobject:
        raise ValueError(f"{path}: object arrays are not supported")
    offset = raw.tell()
    if dtype.kind == "U" or int(np.prod(shape)) == 0:
        raw.seek(offset)
        count = int(np.prod(shape))
        data = np.frombuffer(raw.read(count * dtype.itemsize), dtype=dtype, count=count)
        return data.reshape(shape, order="F" if fortran else "C")
    return np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape),
        order="F" if fortran else "C",
    )  # fmt: skip


def neighbors_from_dense(
    similarity: npt.NDArray[np.float64], k: int
) -> tuple[IntArray, FloatArray]:
    """Top-``k`` lists of a dense similarity matrix (diagonal excluded), ranking rules of the
    kernels: higher score first, ties by lower index; ``-inf`` entries are never kept."""
    n = similarity.shape[0]
    sim = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(sim, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(n), sim.shape), -sim), axis=1)[:, :k]
    top = np.take_along_axis(sim, order, axis=1)
    idx = np.where(np.isfinite(top), order, -1).astype(np.int32)
    return idx, np.where(np.isfinite(top), top, 0).astype(np.float32)


def as_int_list(values: Sequence[int] | npt.ArrayLike) -> IntArray:
    """Any sequence of item indices as a contiguous ``int32`` array."""
    return np.ascontiguousarray(values, dtype=np.int32)
