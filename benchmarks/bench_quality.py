"""Quality benchmark: the two protocols of ANCHORS.md, every measure, side by side.

* MovieLens-100k, leave-last-out: each user's last rating (by time) is the test item, every
  rating is a positive, seen items are filtered, all 943 users; NDCG@10 and HR@10.
* Online Retail, discovery: train on purchase lines before 2011-11-01 (cancellations and
  lines without a customer dropped); test users are the customers with training history
  who buy on or after that date; their targets are the items they had never bought before.

``--check`` runs the same table on the other public sets instead, which nothing was tuned
on (each user's or session's last new item, leave-last-out, seen items filtered):

* YooChoose sample: clicks of 21k sessions (a session is a user);
* Taobao slice: 110k page views, carts, favourites and buys of two hours;
* Groceries: 9,835 baskets (a basket is a user, its items in the order listed).

Reads ``../shared/data`` (or ``--data``); a dataset that is absent is skipped with a message.
implicit's rows need the ``bench`` extra.

    python benchmarks/bench_quality.py [--check]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from recsdk.arrays import EventArrays
from recsdk.datasets import load_movielens, load_online_retail
from recsdk.engine import ItemSimilarity, UserItemMatrix, Weighting
from recsdk.engine.ease import EASE
from recsdk.evaluation import Popularity, Split, evaluate, leave_last_out, temporal_split
from recsdk.events import TypeCode

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL_CUT = dt.datetime(2011, 11, 1, tzinfo=dt.timezone.utc).timestamp()


class ImplicitModel:
    """implicit's item-item recommenders behind ``recommend(user, k)``."""

    def __init__(self, kind: str, k: int) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        cls = CosineRecommender if kind == "cosine" else BM25Recommender
        self._model = cls(K=k)
        self._matrix: Any = None

    def fit(self, events: Any) -> ImplicitModel:
        m = UserItemMatrix.from_coo(
            events.users, events.items, n_users=events.n_users, n_items=events.n_items
        )
        self._matrix = m.with_data(np.ones(m.nnz, dtype=np.float32)).to_scipy()
        self._model.fit(self._matrix, show_progress=False)
        return self

    def recommend(self, user: int, k: int) -> Any:
        ids, _ = self._model.recommend(
            user, self._matrix[user], N=k, filter_already_liked_items=True
        )
        return ids


def _similarity(measure: str, alpha: float, weighting: Weighting) -> ItemSimilarity:
    """A measure alone: no trend term, so that rows compare the measures themselves."""
    return ItemSimilarity(measure=measure, alpha=alpha, weighting=weighting, trend_weight=0.0)  # type: ignore[arg-type]


def _models(dataset: str) -> list[tuple[str, Callable[[], Any]]]:
    """(name, factory) of every configuration in the table, for one dataset.

    Names are the same for both datasets; where a parameter differs per dataset (as in
    ANCHORS.md) the name gives both values, MovieLens first.
    """
    no_decay = Weighting()
    ml = dataset == "ml"
    l2 = 100.0 if ml else 500.0
    rows: list[tuple[str, Callable[[], Any]]] = [("popularity", Popularity)]
    rows.append(("implicit cosine K=50/20", partial(ImplicitModel, "cosine", 50 if ml else 20)))
    rows.append(("implicit bm25 K=50/500", partial(ImplicitModel, "bm25", 50 if ml else 500)))
    for measure in ("cosine", "jaccard", "conditional", "lift", "cooccurrence", "bm25", "tfidf"):
        alpha = 0.5 if measure == "conditional" else 0.0
        rows.append((f"recsdk {measure}", partial(_similarity, measure, alpha, no_decay)))
    decayed = Weighting(half_life_days=30)
    rows.append(("recsdk jaccard + decay 30d", partial(_similarity, "jaccard", 0.0, decayed)))
    rows.append(("recsdk DEFAULT (bm25, decay 3d, trend .8/14d)", ItemSimilarity))
    plain_ease = partial(EASE, l2=l2, weighting=no_decay, trend_weight=0.0)
    rows.append(("recsdk EASE l2=100/500", plain_ease))
    capped = Weighting(cap=5.0, half_life_days=14)
    rows.append(
        ("recsdk EASE + cap 5, decay 14d, trend .3/14d", partial(EASE, l2=l2, weighting=capped))
    )
    return rows


def _splits(data: Path) -> dict[str, Split]:
    splits: dict[str, Split] = {}
    ml = data / "ml-100k" / "u.data"
    if ml.exists():
        splits["ml"] = leave_last_out(load_movielens(ml))
    else:
        print(f"skipping MovieLens-100k: {ml} not found")
    retail = data / "online-retail" / "online_retail.csv.gz"
    if retail.exists():
        log = load_online_retail(retail)
        splits["retail"] = temporal_split(log, RETAIL_CUT, new_items_only=True)
    else:
        print(f"skipping Online Retail: {retail} not found")
    return splits


# -- the check sets: read here, not in the package (their formats are one-off files) --------

_TAOBAO_TYPES: Final = {
    "pv": TypeCode.view,
    "cart": TypeCode.add_to_cart,
    "fav": TypeCode.wishlist,
    "buy": TypeCode.purchase,
}


def _indexed(values: npt.ArrayLike) -> npt.NDArray[np.int32]:
    return np.unique(np.asarray(values), return_inverse=True)[1].astype(np.int32)


def _first_touches(
    users: npt.ArrayLike, items: npt.ArrayLike, types: npt.ArrayLike, stamps: npt.ArrayLike
) -> EventArrays:
    """Events in time order, each (user, item) pair's first one only: a user's last event
    is then an item new to them, as in the two protocols."""
    u, i = _indexed(users), _indexed(items)
    t, ts = np.asarray(types, dtype=np.int8), np.asarray(stamps, dtype=np.float64)
    order = np.lexsort((np.arange(len(u)), ts))
    pairs = u[order].astype(np.int64) << 32 | i[order]
    first = order[np.sort(np.unique(pairs, return_index=True)[1])]
    return EventArrays(
        users=u[first], items=i[first], types=t[first], timestamps=ts[first],
        values=np.ones(len(first), dtype=np.float32),
        n_users=int(u.max()) + 1, n_items=int(i.max()) + 1,
    )  # fmt: skip


def _yoochoose(folder: Path) -> EventArrays:
    parts = [np.loadtxt(folder / f"yoochoose-clicks-100k_{name}.txt", skiprows=1, ndmin=2)
             for name in ("train_full", "test")]  # fmt: skip
    clicks = np.vstack(parts)  # SessionId, ItemId, Time
    n = len(clicks)
    return _first_touches(clicks[:, 0], clicks[:, 1], [TypeCode.view] * n, clicks[:, 2])


def _taobao(folder: Path) -> EventArrays:
    with gzip.open(folder / "UserBehavior.csv.gz", "rt", newline="") as file:
        rows = list(csv.reader(file))  # user, item, category, behaviour, timestamp
    return _first_touches(
        [r[0] for r in rows], [r[1] for r in rows],
        [_TAOBAO_TYPES[r[3]] for r in rows], [float(r[4]) for r in rows],
    )  # fmt: skip


def _groceries(folder: Path) -> EventArrays:
    with open(folder / "groceries.csv", newline="") as file:
        baskets = [[item.strip() for item in row if item.strip()] for row in csv.reader(file)]
    users = [n for n, basket in enumerate(baskets) for _ in basket]
    items = [item for basket in baskets for item in basket]
    stamps = [float(n) for n in range(len(items))]
    return _first_touches(users, items, [TypeCode.purchase] * len(items), stamps)


_CHECK_SETS: Final = {
    "yoochoose": ("yoochoose-sample", _yoochoose),
    "taobao": ("taobao-slice", _taobao),
    "groceries": ("groceries", _groceries),
}


def _check_splits(data: Path) -> dict[str, Split]:
    splits: dict[str, Split] = {}
    for name, (folder, load) in _CHECK_SETS.items():
        if (data / folder).is_dir():
            splits[name] = leave_last_out(load(data / folder))
        else:
            print(f"skipping {name}: {data / folder} not found")
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="the sets nothing was tuned on")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="implicit")
    splits = _check_splits(args.data) if args.check else _splits(args.data)
    if not splits:
        return
    try:
        import implicit  # noqa: F401

        have_implicit = True
    except ImportError:
        print("implicit is not installed: its rows are skipped")
        have_implicit = False
    for name, split in splits.items():
        print(f"{name}: {len(split)} test users, {len(split.train)} training events")
    header = "".join(f"{n + ' NDCG':>14}{n + ' HR':>12}" for n in splits)
    print(f"\n{'model (@' + str(args.k) + ')':<44}{header}{'fit s':>8}")
    names = [n for n, _ in _models("ml")]
    for row, name in enumerate(names):
        if name.startswith("implicit") and not have_implicit:
            continue
        cells, fit_time = "", 0.0
        for dataset, split in splits.items():
            factory = _models(dataset)[row][1]
            model = factory()
            if isinstance(model, EASE) and split.train.n_items > model.max_items:
                cells += f"{'(too many items)':>26}"
                continue
            t0 = time.perf_counter()
            model.fit(split.train)
            fit_time += time.perf_counter() - t0
            result = evaluate(model, split, k=args.k)
            cells += f"{result['ndcg']:>14.4f}{result['hr']:>12.4f}"
        print(f"{name:<44}{cells}{fit_time:>8.2f}")


if __name__ == "__main__":
    main()
