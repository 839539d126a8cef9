"""Data to try recsdk on without a shop: a synthetic shop generator and loaders for public datasets.

:func:`synthetic_shop` builds the reproducible event log that the project's benchmarks use
(``benchmarks/``). :func:`load_online_retail` and :func:`load_movielens` read the public
UCI Online Retail and MovieLens ``u.data`` files from a path the caller gives; no data ships
with the package.

Every loader returns an :class:`EventLog`, which has the same array fields as the store's
``interactions()`` result, so the engine and the evaluation code accept either.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.arrays import EventArrays

__all__ = [
    "EventLog",
    "SyntheticShop",
    "load_movielens",
    "load_online_retail",
    "synthetic_shop",
]

_EPOCH_2025 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
_ZIPF_EXPONENT = 1.1
_ACTIVITY_MEAN = 1.5
_ACTIVITY_SIGMA = 1.0
_FAVOURITES = 3

# Event type codes, the same numbers as ``recsdk.events.TypeCode``.
_VIEW = 2
_PURCHASE = 6
_RATE = 8
_REFUND = 10


@attrs.frozen(eq=False)
class SyntheticShop:
    """An event log drawn by :func:`synthetic_shop`.

    Attributes
    ----------
    users, items:
        ``int32`` user and item index of each event, in time order.
    timestamps:
        ``float64`` epoch seconds of each event, non-decreasing.
    item_categories:
        ``int32`` category of each item (``len == n_items``).
    n_users, n_items:
        Upper bounds of the indices; some users may have no events.
    """

    users: npt.NDArray[np.int32]
    items: npt.NDArray[np.int32]
    timestamps: npt.NDArray[np.float64]
    item_categories: npt.NDArray[np.int32]
    n_users: int
    n_items: int

    @property
    def types(self) -> npt.NDArray[np.int8]:
        """Event type codes: every synthetic event is a ``view``."""
        return np.full(len(self.users), _VIEW, dtype=np.int8)

    @property
    def values(self) -> npt.NDArray[np.float32]:
        """Event values: ``1.0`` for every synthetic event."""
        return np.ones(len(self.users), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.users)


@attrs.frozen(eq=False)
class EventLog(EventArrays):
    """Events read from a public dataset: :class:`~recsdk.arrays.EventArrays` and names.

    ``users`` and ``items`` index :attr:`user_ids` and :attr:`item_ids` (the dataset's own
    identifiers, as strings); ``types`` are ``recsdk.events.TypeCode`` numbers; ``values``
    are ratings for ``rate`` events, otherwise quantities; timestamps are non-decreasing.
    :attr:`item_names` holds a display name per item (empty strings when the dataset has
    none).
    """

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    item_names: npt.NDArray[np.str_]


# --------------------------------------------------------------------------- synthetic shop


def synthetic_shop(
    n_users: int,
    n_items: int,
    n_events: int,
    *,
    n_categories: int = 200,
    seed: int = 0,
    start: dt.datetime = _EPOCH_2025,
    days: float = 365,
) -> SyntheticShop:
    """Draw a reproducible event log of a shop.

    Item popularity is Zipf(1.1) over a random permutation of the items; each user's number
    of events is lognormal(1.5, 1.0), scaled so that the total is ``n_events``; items belong
    to ``n_categories`` categories and each user favours 3 of them. Half of a user's events
    pick an item of a favourite category (by popularity inside the category), half pick an
    item by global popularity. Timestamps are uniform over ``days`` days from ``start``; the
    events come back in time order.

    Parameters
    ----------
    n_users, n_items, n_events:
        Sizes of the log. ``n_events`` is met exactly.
    n_categories:
        Number of item categories.
    seed:
        Seed of the random generator; the same arguments give the same log.
    start:
        The first instant of the period (an aware datetime; naive ones are taken as UTC).
    days:
        Length of the period.

    Returns
    -------
    SyntheticShop
    """
    if n_users < 1 or n_items < 1 or n_events < 0 or n_categories < 1 or days <= 0:
        raise ValueError("n_users, n_items, n_categories and days must be positive")
    rng = np.random.default_rng(seed)
    popularity = _zipf_popularity(rng, n_items)
    categories = rng.integers(0, n_categories, size=n_items).astype(np.int32)
    counts = _activity(rng, n_users, n_events)
    users = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    rng.shuffle(users)  # a uniformly random interleaving of the users' events in time
    items = _draw_items(rng, users, popularity, categories, n_users, n_categories)
    timestamps = _sorted_uniform(rng, n_events) * (days * 86400.0) + _epoch(start)
    return SyntheticShop(
        users=users,
        items=items,
        timestamps=timestamps,
        item_categories=categories,
        n_users=n_users,
        n_items=n_items,
    )


def _epoch(start: dt.datetime) -> float:
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.timezone.utc)
    return start.timestamp()


def _zipf_popularity(rng: np.random.Generator, n_items: int) -> npt.NDArray[np.float64]:
    """Zipf weights by rank, assigned to the items through a random permutation."""
    by_rank = np.arange(1, n_items + 1, dtype=np.float64) ** -_ZIPF_EXPONENT
    popularity = np.empty(n_items, dtype=np.float64)
    popularity[rng.permutation(n_items)] = by_rank / by_rank.sum()
    return popularity


def _activity(rng: np.random.Generator, n_users: int, n_events: int) -> npt.NDArray[np.int64]:
    """Lognormal event counts per user, rounded so that they sum to ``n_events`` exactly."""
    raw = rng.lognormal(_ACTIVITY_MEAN, _ACTIVITY_SIGMA, size=n_users)
    scaled = raw * (n_events / raw.sum())
    counts: npt.NDArray[np.int64] = np.floor(scaled).astype(np.int64)
    missing = n_events - int(counts.sum())
    if missing > 0:
        # Largest remainders first; ties by user index for determinism.
        remainders = scaled - counts
        counts[np.argsort(-remainders, kind="stable")[:missing]] += 1
    return counts


def _draw_items(
    rng: np.random.Generator,
    users: npt.NDArray[np.int32],
    popularity: npt.NDArray[np.float64],
    categories: npt.NDArray[np.int32],
    n_users: int,
    n_categories: int,
) -> npt.NDArray[np.int32]:
    """Half global popularity, half popularity inside one of the user's favourite categories.

    Both draws are one inverse-CDF lookup in a single table: the global cumulative mass
    (total 1) followed by the cumulative mass of the items sorted by category (offset by 1),
    where category ``c`` occupies one contiguous slice.
    """
    n_items = len(popularity)
    by_category = np.argsort(categories, kind="stable").astype(np.int32)
    cat_sizes = np.bincount(categories, minlength=n_categories)
    cat_end = np.cumsum(cat_sizes)
    cat_start = cat_end - cat_sizes
    cat_cumulative = np.concatenate(([0.0], np.cumsum(popularity[by_category])))
    mass_before = cat_cumulative[cat_start]
    mass = cat_cumulative[cat_end] - mass_before
    table = np.concatenate((np.cumsum(popularity), 1.0 + cat_cumulative[1:]))
    table[n_items - 1] = 1.0  # the global part ends exactly at 1 whatever the rounding
    favourites = _favourite_categories(rng, n_users, np.flatnonzero(cat_sizes))
    chosen = favourites[users, rng.integers(0, favourites.shape[1], size=len(users))]
    draw = rng.random(len(users))
    from_favourite = draw < 0.5
    draw = 2.0 * draw - ~from_favourite  # uniform on [0, 1) again, independent of the coin
    targets = np.where(from_favourite, 1.0 + mass_before[chosen] + draw * mass[chosen], draw)
    index = _inverse_cdf(table, targets).astype(np.int64)
    # Keep favourite draws inside their category despite rounding at the slice edges.
    low = np.where(from_favourite, n_items + cat_start[chosen], 0)
    high = np.where(from_favourite, n_items + cat_end[chosen] - 1, n_items - 1)
    np.clip(index, low, high, out=index)
    lookup = np.concatenate((np.arange(n_items, dtype=np.int32), by_category))
    return lookup[index]


def _inverse_cdf(
    cumulative: npt.NDArray[np.float64], targets: npt.NDArray[np.float64]
) -> npt.NDArray[np.int32]:
    """First index ``i`` with ``cumulative[i] > target``, like ``searchsorted(side="right")``.

    A guide table (one start index per equal slice of the total mass) makes this a gather
    plus a few vectorized steps instead of a binary search per target.
    """
    n = len(cumulative)
    slices = 4 * n
    total = float(cumulative[-1])
    guide = np.searchsorted(cumulative, np.arange(slices) * (total / slices), side="right")
    bucket = np.minimum((targets * (slices / total)).astype(np.int64), slices - 1)
    index = guide[bucket]
    index = np.minimum(index, n - 1)
    active = np.flatnonzero(cumulative[index] <= targets)
    while active.size:
        index[active] += 1
        index[active] = np.minimum(index[active], n - 1)
        still = cumulative[index[active]] <= targets[active]
        still &= index[active] < n - 1
        active = active[still]
    return index.astype(np.int32)


def _favourite_categories(
    rng: np.random.Generator, n_users: int, nonempty: npt.NDArray[np.intp]
) -> npt.NDArray[np.int32]:
    """Up to three distinct non-empty categories per user, drawn uniformly."""
    k = min(_FAVOURITES, len(nonempty))
    picks = rng.integers(0, len(nonempty), size=(n_users, k))
    for _ in range(64):  # redraw rows with a duplicate; a few rounds suffice
        clash = np.zeros(n_users, dtype=bool)
        for a in range(k):
            for b in range(a + 1, k):
                clash |= picks[:, a] == picks[:, b]
        if not clash.any():
            break
        picks[clash] = rng.integers(0, len(nonempty), size=(int(clash.sum()), k))
    return nonempty[picks].astype(np.int32)


def _sorted_uniform(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """``n`` sorted uniforms on [0, 1) in linear time (normalized exponential spacings)."""
    if n == 0:
        return np.empty(0, dtype=np.float64)
    spacings = rng.standard_exponential(n + 1)
    cumulative = np.cumsum(spacings)
    uniforms: npt.NDArray[np.float64] = cumulative[:-1] / cumulative[-1]
    return uniforms


# --------------------------------------------------------------------------- loaders


def load_movielens(path: str | os.PathLike[str]) -> EventLog:
    """Read a MovieLens ``u.data`` file (tab-separated user, item, rating, timestamp).

    Parameters
    ----------
    path:
        The ``u.data`` file, or the folder that holds it.

    Returns
    -------
    EventLog
        One ``rate`` event per line, the rating as the value, sorted by time (stable).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "u.data")
    raw = np.loadtxt(path, dtype=np.int64, ndmin=2).reshape(-1, 4)
    order = np.argsort(raw[:, 3], kind="stable")
    raw = raw[order]
    user_ids, users = np.unique(raw[:, 0], return_inverse=True)
    item_ids, items = np.unique(raw[:, 1], return_inverse=True)
    return EventLog(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        types=np.full(len(raw), _RATE, dtype=np.int8),
        timestamps=raw[:, 3].astype(np.float64),
        values=raw[:, 2].astype(np.float32),
        n_users=len(user_ids),
        n_items=len(item_ids),
        user_ids=user_ids.astype(str),
        item_ids=item_ids.astype(str),
        item_names=np.full(len(item_ids), "", dtype=str),
    )


def load_online_retail(
    path: str | os.PathLike[str],
    *,
    keep_anonymous: bool = False,
    keep_cancellations: bool = False,
) -> EventLog:
    """Read the UCI Online Retail data (``.csv``, ``.csv.gz`` or the original ``.xlsx``).

    Each invoice line becomes a ``purchase`` event of its customer and stock code, valued by
    its quantity; cancellation lines (invoice numbers starting with ``C``) become ``refund``
    events with the absolute quantity when ``keep_cancellations`` is set, and are dropped
    otherwise. Lines without a customer are dropped unless ``keep_anonymous`` (they then get
    the user id ``""``). Lines with a non-positive quantity that are not cancellations
    (stock adjustments) are dropped.

    Parameters
    ----------
    path:
        The data file. ``.xlsx`` needs ``openpyxl``.
    keep_anonymous:
        Keep lines without a customer id.
    keep_cancellations:
        Keep cancellation lines as ``refund`` events.

    Returns
    -------
    EventLog
        Sorted by invoice date (stable); ``item_names`` holds the product descriptions.
    """
    columns = _retail_columns(os.fspath(path))
    customers = np.asarray([_customer_id(c) for c in columns["CustomerID"]], dtype=str)
    invoices = np.char.upper(np.asarray(columns["InvoiceNo"], dtype=str))
    quantities = np.asarray(columns["Quantity"], dtype=np.float64)
    cancelled = np.char.startswith(invoices, "C")
    keep = np.where(cancelled, keep_cancellations, quantities > 0)
    if not keep_anonymous:
        keep &= customers != ""
    codes = np.char.strip(np.asarray(columns["StockCode"], dtype=str))
    names = np.char.strip(np.asarray(columns["Description"], dtype=str))
    stamps = _retail_times(columns["InvoiceDate"])
    timestamps = stamps[keep]
    order = np.argsort(timestamps, kind="stable")
    user_ids, users = np.unique(customers[keep], return_inverse=True)
    item_ids, items = np.unique(codes[keep], return_inverse=True)
    first_line = np.unique(codes[keep], return_index=True)[1]
    return EventLog(
        users=users.astype(np.int32)[order],
        items=items.astype(np.int32)[order],
        types=np.where(cancelled[keep], _REFUND, _PURCHASE).astype(np.int8)[order],
        timestamps=timestamps[order],
        values=np.abs(quantities[keep]).astype(np.float32)[order],
        n_users=len(user_ids),
        n_items=len(item_ids),
        user_ids=user_ids,
        item_ids=item_ids,
        item_names=names[keep][first_line],
    )


def _customer_id(value: Any) -> str:
    """``17850.0`` / ``17850`` / ``"17850.0"`` -> ``"17850"``; empty -> ``""``."""
    if value is None:
        return ""
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return ""
    return text[:-2] if text.endswith(".0") else text


def _retail_times(values: list[Any]) -> npt.NDArray[np.float64]:
    """Epoch seconds (UTC) of ISO strings, ``"12/1/2010 8:26"`` strings or datetimes."""
    try:
        text = np.asarray([str(v).strip().replace(" ", "T", 1) for v in values], dtype=str)
        seconds = text.astype("datetime64[s]").astype(np.int64)
        return seconds.astype(np.float64)
    except ValueError:
        return np.asarray([_retail_time(v) for v in values], dtype=np.float64)


def _retail_time(value: Any) -> float:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:  # the UCI sheet's "12/1/2010 8:26" form
            moment = dt.datetime.strptime(text, "%m/%d/%Y %H:%M")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


_RETAIL_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "CustomerID")


def _retail_columns(path: str) -> dict[str, list[Any]]:
    rows = _xlsx_rows(path) if path.lower().endswith((".xlsx", ".xlsm")) else _csv_rows(path)
    header = [str(h).strip() for h in next(rows)]
    missing = [c for c in _RETAIL_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: not the Online Retail format, missing columns {missing}")
    positions = [header.index(c) for c in _RETAIL_COLUMNS]
    columns: list[list[Any]] = [[] for _ in _RETAIL_COLUMNS]
    for row in rows:
        for column, position in zip(columns, positions, strict=True):
            value = row[position] if position < len(row) else None
            column.append("" if value is None else value)
    return dict(zip(_RETAIL_COLUMNS, columns, strict=True))


def _csv_rows(path: str) -> Iterator[Sequence[Any]]:
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield from csv.reader(text)


def _xlsx_rows(path: str) -> Iterator[Sequence[Any]]:
    try:
        import openpyxl  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading .xlsx needs openpyxl: pip install openpyxl") from exc
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()
