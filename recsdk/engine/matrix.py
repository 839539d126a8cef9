"""Interactions (integer arrays) -> weighted user x item matrices.

:func:`build_matrix` turns event arrays (users, items, event types, values, timestamps), as
the store's ``interactions()`` returns them, into a :class:`UserItemMatrix`: each event
weighs by its type (:class:`Weighting`), optionally decays with age, duplicates of one
(user, item) add up, and a cap and user damping shape the result. Users whose activity looks
like a bot's can be left out (:func:`bot_users`).

Nothing here imports the store or sqlalchemy: the engine takes arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import numba
import numpy as np
import numpy.typing as npt

from recsdk.engine import kernels
from recsdk.events import TypeCode

__all__ = [
    "DEFAULT_TYPE_WEIGHTS",
    "InteractionsLike",
    "UserItemMatrix",
    "Weighting",
    "bot_users",
    "build_matrix",
    "column_sums",
    "event_weights",
    "item_trend",
    "reference_time",
    "trend_prior",
    "weights_and_trend",
]

_T = TypeCode
RATE = int(TypeCode.rate)

#: Weight of one event of each type (SAR-like). ``rate`` events weigh their rating times
#: this factor; types missing from the mapping weigh 0.
DEFAULT_TYPE_WEIGHTS: Mapping[int, float] = {
    _T.custom: 0.0,
    _T.page: 0.0,
    _T.view: 1.0,
    _T.click: 2.0,
    _T.add_to_cart: 3.0,
    _T.remove_from_cart: -1.0,
    _T.purchase: 5.0,
    _T.search: 0.0,
    _T.rate: 1.0,
    _T.wishlist: 2.0,
    _T.refund: -5.0,
}

_DAY = 86400.0

# Rows filled from a transpose a block of this many at a time (their write offsets: 1 MB).
_ROWS_PER_BLOCK = 1 << 17


class InteractionsLike(Protocol):
    """What the engine reads: the shape of the store's ``interactions()`` result.

    ``types``, ``values`` and ``timestamps`` may be absent (every event then weighs 1).
    """

    @property
    def users(self) -> npt.NDArray[np.int32]: ...

    @property
    def items(self) -> npt.NDArray[np.int32]: ...

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...


def _frozen_weights(value: Mapping[int, float]) -> Mapping[int, float]:
    return {int(k): float(v) for k, v in dict(value).items()}


@attrs.frozen
class Weighting:
    """How events become user x item weights.

    Attributes
    ----------
    type_weights:
        Weight per event type code (:data:`DEFAULT_TYPE_WEIGHTS`). A ``rate`` event weighs
        its rating times ``type_weights[RATE]``.
    half_life_days:
        Time decay: an event ``age`` days older than the reference weighs
        ``0.5 ** (age / half_life_days)``. ``None``: no decay. Decay shapes a user's affinity
        (how much each past item counts when scoring), never the item-item similarity.
    reference_time:
        Epoch seconds the ages are measured from; ``None``: the newest event.
    cap:
        Upper bound of one (user, item) weight after summing its events; ``None``: none.
    user_damping:
        Exponent ``d``: the weights of a user with ``n`` items are scaled by ``n ** -d``
        (0 = off, 0.5 = a square-root damping of very active users).
    max_events_per_minute:
        Users with more events than this in one clock minute are left out as bots.
    max_events_percentile:
        Users whose event count is above this percentile of all users' counts (e.g. 99.99)
        are left out as bots.
    """

    type_weights: Mapping[int, float] = attrs.field(
        default=DEFAULT_TYPE_WEIGHTS, converter=_frozen_weights
    )
    half_life_days: float | None = None
    reference_time: float | None = None
    cap: float | None = None
    user_damping: float = 0.0
    max_events_per_minute: int | None = None
    max_events_percentile: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        if self.cap is not None and self.cap <= 0:
            raise ValueError("cap must be positive")
        if self.user_damping < 0:
            raise ValueError("user_damping must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (type codes as strings)."""
        out = attrs.asdict(self)
        out["type_weights"] = {str(k): v for k, v in self.type_weights.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Weighting:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["type_weights"] = {int(k): float(v) for k, v in values["type_weights"].items()}
        return cls(**values)


@attrs.frozen(eq=False)
class UserItemMatrix:
    """A sparse user x item matrix in CSR form (``float32`` values, sorted column indices).

    Attributes
    ----------
    indptr:
        ``int64``, ``n_users + 1`` offsets.
    indices:
        ``int32`` item index of each stored value.
    data:
        ``float32`` weights.
    n_users, n_items:
        The shape.
    """

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    data: npt.NDArray[np.float32]
    n_users: int
    n_items: int

    @property
    def nnz(self) -> int:
        """Number of stored values."""
        return int(self.indices.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return (self.n_users, self.n_items)

    def row(self, user: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """Items and weights of one user."""
        lo, hi = int(self.indptr[user]), int(self.indptr[user + 1])
        return self.indices[lo:hi], self.data[lo:hi]

    def row_lengths(self) -> npt.NDArray[np.int64]:
        """Number of items of each user."""
        return np.diff(self.indptr)

    def transpose(
        self,
        new_label: npt.NDArray[np.int32] | None = None,
        *,
        uniform: bool = False,
        chunk_counts: npt.NDArray[np.int64] | None = None,
    ) -> UserItemMatrix:
        """The item x user matrix (same class, rows are items), users sorted in each row.

        ``new_label`` (a permutation) puts item ``j`` in row ``new_label[j]``. ``uniform``:
        every value is the same (0/1 input), so the transpose shares ``data`` instead of
        scattering a copy of it. ``chunk_counts``: the items' counts per range of rows
        (:func:`kernels._column_counts`' third result) with its columns put in the new
        labels; they spare the transpose a counting pass and are used up.
        """
        if new_label is None:
            new_label = np.arange(self.n_items, dtype=np.int32)
        if chunk_counts is None:
            indptr, indices, data = kernels._transpose(
                self.indptr, self.indices, self.data, new_label, numba.get_num_threads(),
                not uniform,
            )  # fmt: skip
        else:
            indptr, indices, data = kernels._transpose_counted(
                self.indptr, self.indices, self.data, new_label, chunk_counts, not uniform
            )
        data = self.data if uniform else data
        return UserItemMatrix(indptr, indices, data, self.n_items, self.n_users)

    def relabeled(
        self,
        new_label: npt.NDArray[np.int32],
        transposed: UserItemMatrix | None = None,
        *,
        constant_rows: bool = False,
    ) -> UserItemMatrix:
        """Item ``j`` renamed ``new_label[j]`` (a permutation), rows sorted again.

        The rows are filled from the transpose under the new labels (:meth:`transpose`);
        pass it as ``transposed`` when it is at hand. ``constant_rows``: each row holds one
        value (0/1 input, or BM25 weights of it), so the rows keep ``data`` as it is.
        """
        if transposed is None:
            transposed = self.transpose(new_label)
        indices, data = kernels._rows_from_transpose(
            transposed.indptr,
            transposed.indices,
            transposed.data,
            self.indptr,
            numba.get_num_threads(),
            _ROWS_PER_BLOCK,
            not constant_rows,
        )
        data = self.data if constant_rows else data
        return UserItemMatrix(self.indptr, indices, data, self.n_users, self.n_items)

    def with_data(self, data: npt.NDArray[np.float32]) -> UserItemMatrix:
        """Same structure, other values."""
        return attrs.evolve(self, data=np.ascontiguousarray(data, dtype=np.float32))

    def select_rows(self, rows: npt.NDArray[np.int64]) -> UserItemMatrix:
        """The given rows, in that order; rows outside the matrix (unknown users) are empty."""
        indptr, positions = kernels._row_positions(
            self.indptr, np.ascontiguousarray(rows, dtype=np.int64)
        )
        return UserItemMatrix(
            indptr, self.indices[positions], self.data[positions], len(rows), self.n_items
        )

    def prune(self, keep: npt.NDArray[np.bool_]) -> UserItemMatrix:
        """Drop the stored values where ``keep`` is false."""
        indptr = kernels._kept_per_row(self.indptr, keep)
        return UserItemMatrix(
            indptr, self.indices[keep], self.data[keep], self.n_users, self.n_items
        )

    @classmethod
    def from_coo(
        cls,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
        *,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> UserItemMatrix:
        """Sum ``weights`` per (user, item); stored zeros stay stored."""
        u = np.ascontiguousarray(users, dtype=np.int32)
        i = np.ascontiguousarray(items, dtype=np.int32)
        if u.shape != i.shape or u.ndim != 1:
            raise ValueError("users and items must be 1-d arrays of one length")
        w = (
            np.ones(len(u), dtype=np.float32)
            if weights is None
            else np.ascontiguousarray(weights, dtype=np.float32)
        )
        if w.shape != u.shape:
            raise ValueError("weights must have the length of users")
        n_u = _size(u, n_users, "users")
        n_i = _size(i, n_items, "items")
        indptr, indices, data = kernels._coo_to_csr(u, i, w, n_u)
        return cls(indptr, indices, data, n_u, n_i)

    @classmethod
    def from_scipy(cls, matrix: Any) -> UserItemMatrix:
        """From any scipy sparse matrix (users as rows); duplicates are summed."""
        csr = matrix.tocsr(copy=True)
        csr.sum_duplicates()
        csr.sort_indices()
        return cls(
            np.asarray(csr.indptr, dtype=np.int64),
            np.asarray(csr.indices, dtype=np.int32),
            np.asarray(csr.data, dtype=np.float32),
            int(csr.shape[0]),
            int(csr.shape[1]),
        )

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` view of the same arrays (needs scipy)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


def _size(index: npt.NDArray[np.int32], given: int | None, what: str) -> int:
    top = int(index.max()) + 1 if len(index) else 0
    if len(index) and int(index.min()) < 0:
        raise ValueError(f"negative {what} index")
    if given is None:
        return top
    if given < top:
        raise ValueError(f"an index of {what} is >= n_{what}={given}")
    return int(given)


# --------------------------------------------------------------------------- weighting


def event_weights(
    n_events: int,
    types: npt.ArrayLike | None,
    values: npt.ArrayLike | None,
    type_weights: Mapping[int, float],
) -> npt.NDArray[np.float64]:
    """Weight of each event from its type (and its rating for ``rate`` events)."""
    if types is None:
        return np.ones(n_events, dtype=np.float64)
    codes = np.asarray(types).astype(np.int64)
    table = np.zeros(256, dtype=np.float64)
    for code, weight in type_weights.items():
        table[int(code) % 256] = weight
    weights = table[codes % 256]
    if values is not None:
        rated = codes == RATE
        weights[rated] *= np.asarray(values, dtype=np.float64)[rated]
    return weights


def decay_factors(
    timestamps: npt.ArrayLike, half_life_days: float, reference_time: float
) -> npt.NDArray[np.float64]:
    """``0.5 ** (age / half_life)`` with age measured back from ``reference_time``."""
    age_days = (reference_time - np.asarray(timestamps, dtype=np.float64)) / _DAY
    factors: npt.NDArray[np.float64] = np.exp2(-age_days / half_life_days)
    return factors


def bot_users(
    users: npt.ArrayLike,
    timestamps: npt.ArrayLike | None,
    n_users: int,
    *,
    max_events_per_minute: int | None = None,
    max_events_percentile: float | None = None,
) -> npt.NDArray[np.bool_]:
    """A mask over users: ``True`` for those whose activity looks like a bot's.

    Parameters
    ----------
    users, timestamps:
        One entry per event.
    n_users:
        Length of the mask.
    max_events_per_minute:
        More events than this in one clock minute marks a bot.
    max_events_percentile:
        An event count above this percentile of the active users' counts marks a bot.
    """
    u = np.asarray(users, dtype=np.int64)
    bots = np.zeros(n_users, dtype=bool)
    if max_events_percentile is not None and len(u):
        counts = np.bincount(u, minlength=n_users)
        limit = np.percentile(counts[counts > 0], max_events_percentile)
        bots |= counts > limit
    if max_events_per_minute is not None and timestamps is not None and len(u):
        minutes = np.floor(np.asarray(timestamps, dtype=np.float64) / 60.0).astype(np.int64)
        minutes -= minutes.min()
        keys = u * (int(minutes.max()) + 1) + minutes
        unique, counts = np.unique(keys, return_counts=True)
        busy = unique[counts > max_events_per_minute] // (int(minutes.max()) + 1)
        bots[busy] = True
    return bots


def build_matrix(
    interactions: InteractionsLike,
    weighting: Weighting | None = None,
    *,
    binary: bool = False,
) -> UserItemMatrix:
    """The weighted user x item matrix of some interactions.

    Parameters
    ----------
    interactions:
        Anything with ``users``, ``items``, ``n_users``, ``n_items`` arrays/ints and
        optionally ``types``, ``values``, ``timestamps`` (the store's ``interactions()``,
        a :class:`recsdk.datasets.EventLog`...).
    weighting:
        Type weights, decay, cap, damping and bot rules; :class:`Weighting` defaults.
    binary:
        Every (user, item) with a positive weight becomes 1.

    Returns
    -------
    UserItemMatrix
        Only positive weights are stored.
    """
    weighting = weighting or Weighting()
    plain, decayed = summed_weights(interactions, weighting)
    return finish(decayed if decayed is not None else plain, weighting, binary=binary)


def summed_weights(
    interactions: InteractionsLike, weighting: Weighting
) -> tuple[UserItemMatrix, UserItemMatrix | None]:
    """Type-weighted sums per (user, item), bots removed: without decay, and with it.

    The second matrix is ``None`` when the weighting has no decay. Both have the same
    structure. Sums may be zero or negative (a refund after a purchase).
    """
    return _summed(_Events.of(interactions, weighting), weighting)


def item_trend(
    interactions: InteractionsLike,
    weighting: Weighting,
    half_life_days: float | None,
    reference_time: float | None,
) -> npt.NDArray[np.float64]:
    """How much each item is bought and viewed lately: its decayed, type-weighted events.

    A rating counts as one event of its type whatever its value: a low rating is still
    attention. Events of bots and events with a negative weight count nothing; without
    timestamps or a half-life every event counts fully. ``reference_time`` ``None``: the
    newest event.
    """
    return _trend(_Events.of(interactions, weighting), half_life_days, reference_time)


def weights_and_trend(
    interactions: InteractionsLike,
    weighting: Weighting,
    trend_half_life_days: float | None,
    reference_time: float | None,
) -> tuple[UserItemMatrix, UserItemMatrix | None, npt.NDArray[np.float64]]:
    """:func:`summed_weights` and :func:`item_trend`, reading the events once."""
    events = _Events.of(interactions, weighting)
    plain, decayed = _summed(events, weighting)
    return plain, decayed, _trend(events, trend_half_life_days, reference_time)


def _summed(events: _Events, weighting: Weighting) -> tuple[UserItemMatrix, UserItemMatrix | None]:
    users, items, weights, stamps = events.kept(ratings=True)
    shape = {"n_users": events.n_users, "n_items": events.n_items}
    plain = UserItemMatrix.from_coo(users, items, weights, **shape)
    if weighting.half_life_days is None or stamps is None:
        return plain, None
    reference = weighting.reference_time
    if reference is None:
        reference = float(stamps.max()) if len(stamps) else 0.0
    decay = decay_factors(stamps, weighting.half_life_days, reference)
    return plain, UserItemMatrix.from_coo(users, items, weights * decay, **shape)


def _trend(
    events: _Events, half_life_days: float | None, reference_time: float | None
) -> npt.NDArray[np.float64]:
    _, items, weights, stamps = events.kept(ratings=False)
    weights = np.maximum(weights, 0.0)
    if half_life_days is not None and stamps is not None and len(stamps):
        reference = float(stamps.max()) if reference_time is None else reference_time
        weights = weights * decay_factors(stamps, half_life_days, reference)
    return np.bincount(items, weights=weights, minlength=events.n_items).astype(np.float64)


def reference_time(interactions: Any, weighting: Weighting) -> float | None:
    """The time ages are measured from: the weighting's, else the newest event's."""
    if weighting.reference_time is not None:
        return weighting.reference_time
    stamps = getattr(interactions, "timestamps", None)
    if stamps is None:
        return None
    return float(np.asarray(stamps, dtype=np.float64).max(initial=0.0))


def column_sums(m: UserItemMatrix) -> npt.NDArray[np.float64]:
    """Per item: the sum of its positive weights (a matrix's stand-in for the trend)."""
    sums: npt.NDArray[np.float64] = kernels._positive_column_sums(m.indices, m.data, m.n_items)
    return sums


def trend_prior(
    trend: npt.NDArray[np.float64], weight: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Scoring's trend term: ``weight * trend / max(trend)``, and the items in its order.

    The order lists only items with a positive term, best first (ties by index); it is empty
    when ``weight`` is 0, which turns the term off.
    """
    top = float(trend.max(initial=0.0))
    if weight <= 0 or top <= 0:
        return np.zeros(len(trend), dtype=np.float64), np.empty(0, dtype=np.int32)
    prior = weight * np.maximum(trend, 0.0) / top
    order = np.argsort(-prior, kind="stable").astype(np.int32)
    return prior, order[prior[order] > 0]


@attrs.frozen
class _Events:
    """Event columns and weights, read once for every use a fit makes of them."""

    users: npt.NDArray[np.int32]
    items: npt.NDArray[np.int32]
    typed: npt.NDArray[np.float64]
    """Each event's type weight."""
    rated: npt.NDArray[np.float64]
    """The same, times the rating for ``rate`` events."""
    stamps: npt.NDArray[np.float64] | None
    human: npt.NDArray[np.bool_] | None
    """Per event, whether its user is no bot (``None``: no bot rule)."""
    n_users: int
    n_items: int

    @classmethod
    def of(cls, interactions: InteractionsLike, weighting: Weighting) -> _Events:
        users = np.asarray(interactions.users, dtype=np.int32)
        types = getattr(interactions, "types", None)
        values = getattr(interactions, "values", None)
        timestamps = getattr(interactions, "timestamps", None)
        typed = event_weights(len(users), types, None, weighting.type_weights)
        rated = typed
        if values is not None and types is not None:
            rated = event_weights(len(users), types, values, weighting.type_weights)
        human = None
        if (
            weighting.max_events_per_minute is not None
            or weighting.max_events_percentile is not None
        ):
            bots = bot_users(
                users,
                timestamps,
                int(interactions.n_users),
                max_events_per_minute=weighting.max_events_per_minute,
                max_events_percentile=weighting.max_events_percentile,
            )
            human = ~bots[users]
        return cls(
            users=users,
            items=np.asarray(interactions.items, dtype=np.int32),
            typed=typed,
            rated=rated,
            stamps=None if timestamps is None else np.asarray(timestamps, dtype=np.float64),
            human=human,
            n_users=int(interactions.n_users),
            n_items=int(interactions.n_items),
        )

    def kept(
        self, *, ratings: bool
    ) -> tuple[
        npt.NDArray[np.int32],
        npt.NDArray[np.int32],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64] | None,
    ]:
        """Users, items, weights and timestamps of the events that count (weight != 0, no bot).

        ``ratings``: a ``rate`` event weighs its value times its type's weight (else the latter).
        """
        weights = self.rated if ratings else self.typed
        keep = weights != 0
        if self.human is not None:
            keep &= self.human
        if keep.all():
            return self.users, self.items, weights, self.stamps
        stamps = None if self.stamps is None else self.stamps[keep]
        return self.users[keep], self.items[keep], weights[keep], stamps


def finish(summed: UserItemMatrix, weighting: Weighting, *, binary: bool) -> UserItemMatrix:
    """Cap, damp or binarize summed weights; keep only the positive ones."""
    positive = summed.data > 0
    out = summed if positive.all() else summed.prune(positive)
    if binary:
        return out.with_data(np.ones(out.nnz, dtype=np.float32))
    data = out.data
    if weighting.cap is not None:
        data = np.minimum(data, np.float32(weighting.cap))
    if weighting.user_damping > 0:
        lengths = np.maximum(out.row_lengths(), 1).astype(np.float64)
        scale = lengths ** (-weighting.user_damping)
        data = data * np.repeat(scale, out.row_lengths()).astype(np.float32)
    return out.with_data(data)


def bm25_weight(matrix: UserItemMatrix, k1: float = 1.2, b: float = 0.75) -> UserItemMatrix:
    """BM25 weights: a user's entries are documents' terms, heavy users count less.

    Each value becomes ``idf(user) * x * (k1 + 1) / (x + k1 * (1 - b + b * len / avg_len))``
    where ``len`` is the user's number of items and ``idf = log(n_items / (1 + len)) + 1``
    (positive), so that a user with many items says less about each pair of them.
    """
    lengths = matrix.row_lengths().astype(np.float64)
    active = lengths[lengths > 0]
    average = float(active.mean()) if len(active) else 1.0
    norm = k1 * (1.0 - b + b * lengths / average)
    values = kernels._bm25_values(matrix.indptr, matrix.data, _user_idf(matrix), norm, k1)
    return matrix.with_data(values)


def tfidf_weight(matrix: UserItemMatrix) -> UserItemMatrix:
    """TF-IDF weights: ``sqrt(x) * idf(user)``, ``idf = log(n_items / (1 + len)) + 1``."""
    return matrix.with_data(kernels._tfidf_values(matrix.indptr, matrix.data, _user_idf(matrix)))


def _user_idf(matrix: UserItemMatrix) -> npt.NDArray[np.float64]:
    """Per user, ``log(n_items / (1 + len)) + 1``, at least 0.001: heavy users weigh less."""
    lengths = matrix.row_lengths().astype(np.float64)
    idf: npt.NDArray[np.float64] = np.maximum(np.log(matrix.n_items / (1.0 + lengths)) + 1.0, 1e-3)
    return idf
