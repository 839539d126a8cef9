"""Serving benchmark: latency of the Recommender facade, side by side with implicit.

Builds the synthetic shop of ANCHORS.md (200k users x 50k items x 5M events, 200
categories; 8% of the events are purchases in orders of about two lines) in a SQLite file
through the event store, with a catalog, once (reused on later runs), then measures in one
run, in turns, best of ``--repeat``:

- ``recommend`` through the facade: warm (the list is cached), warm history (the shopper's
  history is cached, the list is computed), cold (the history is read from SQLite);
  shoppers are drawn by their events (active shoppers ask more often), and for the cold
  case also uniformly among those with events;
- ``similar_items`` and ``bought_together``, cold (computed) and warm (cached);
- the same data in implicit's ``BM25Recommender`` (K=50): ``recommend`` with the user's
  items filtered and ``similar_items``, per call;
- batch lists for every user: ``recommend_many`` versus implicit's batch ``recommend``.

    python benchmarks/bench_serving.py                  # 200k x 50k x 5M (builds ~2 min once)
    python benchmarks/bench_serving.py --small          # 20k x 5k x 400k
    python benchmarks/bench_serving.py --db shop.db     # where the shop's SQLite file lives

Needs the ``bench`` extra (implicit, scipy) for implicit's rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from recsdk import Event, EventStore, Recommender
from recsdk.datasets import synthetic_shop

SIZES = {"small": (20_000, 5_000, 400_000), "medium": (200_000, 50_000, 5_000_000)}
K, N = 50, 10
PURCHASE_SHARE = 0.08
WORDS = ["mug", "lamp", "chair", "scarf", "kettle", "novel", "glove", "plant", "bowl", "clock"]
STYLES = ["red", "oak", "linen", "brass", "blue", "wool", "glass", "stone", "silk", "teak"]
SAMPLE = 3_000


# --------------------------------------------------------------------------- the shop


def _catalog(categories: np.ndarray) -> Iterator[dict[str, Any]]:
    for item, category in enumerate(categories.tolist()):
        word = WORDS[category % len(WORDS)]
        style = STYLES[item % len(STYLES)]
        yield {
            "item_id": f"sku-{item}",
            "title": f"{style.title()} {word} {item}",
            "category": f"cat-{category}",
            "tags": [word, style],
            "price": round(2.0 + (item * 37 % 500) / 7, 2),
        }


def _events(n_users: int, n_items: int, n_events: int) -> Iterator[list[Event]]:
    shop = synthetic_shop(n_users, n_items, n_events, seed=0)
    rng = np.random.default_rng(1)
    purchase = rng.random(n_events) < PURCHASE_SHARE
    # Number each user's purchases in time order; two consecutive ones make an order.
    rows = np.flatnonzero(purchase)
    by_user = rows[np.argsort(shop.users[rows], kind="stable")]
    users_sorted = shop.users[by_user]
    first = np.searchsorted(users_sorted, users_sorted, side="left")
    order_of = np.empty(n_events, dtype=np.int64)
    order_of[by_user] = (np.arange(len(by_user)) - first) // 2
    batch: list[Event] = []
    for row, (user, item, moment) in enumerate(
        zip(shop.users.tolist(), shop.items.tolist(), shop.timestamps.tolist(), strict=True)
    ):
        when = datetime.fromtimestamp(moment, tz=timezone.utc)
        if purchase[row]:
            batch.append(
                Event("purchase", user_id=f"u{user}", item_id=f"sku-{item}",
                      order_id=f"o{user}-{order_of[row]}", price=9.5, timestamp=when)
            )  # fmt: skip
        else:
            batch.append(Event("view", user_id=f"u{user}", item_id=f"sku-{item}", timestamp=when))
        if len(batch) == 50_000:
            yield batch
            batch = []
    if batch:
        yield batch


def build_shop(path: Path, size: str) -> None:
    """Write the shop into ``path`` unless a file of the same size is there already."""
    marker = path.with_name(path.name + ".json")
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == {"size": size}:
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    n_users, n_items, n_events = SIZES[size]
    print(f"building the shop: {n_users:,} users x {n_items:,} items x {n_events:,} events")
    start = time.perf_counter()
    with EventStore(f"sqlite:///{path}") as store:
        categories = synthetic_shop(n_users, n_items, 1, seed=0).item_categories
        store.upsert_items(_catalog(categories))
        for batch in _events(n_users, n_items, n_events):
            store.add_many(batch)
    marker.write_text(json.dumps({"size": size}))
    print(f"  built in {time.perf_counter() - start:.0f} s")


# --------------------------------------------------------------------------- timing


def latencies(call: Callable[[Any], object], args: Sequence[Any]) -> np.ndarray:
    """Microseconds of each call, in order."""
    out = np.empty(len(args), dtype=np.float64)
    gc.collect()
    for position, arg in enumerate(args):
        start = time.perf_counter_ns()
        call(arg)
        out[position] = time.perf_counter_ns() - start
    return out / 1000.0


class Table:
    """Rows of p50/p99 figures, the best of the rounds for each."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[float, float]]] = {}

    def add(self, name: str, micros: np.ndarray) -> None:
        p50, p99 = np.percentile(micros, [50, 99])
        self.rows.setdefault(name, []).append((float(p50), float(p99)))

    def best(self, name: str) -> tuple[float, float]:
        runs = self.rows[name]
        return min(r[0] for r in runs), min(r[1] for r in runs)

    def print(self) -> None:
        print(f"\n{'one call, through the facade (us)':<52} {'p50':>9} {'p99':>9}")
        for name in self.rows:
            p50, p99 = self.best(name)
            print(f"{name:<52} {p50:>9.1f} {p99:>9.1f}")


# --------------------------------------------------------------------------- runs


def implicit_model(data: Any) -> tuple[Any, Any] | None:
    try:
        import scipy.sparse as sp
        from implicit.nearest_neighbours import BM25Recommender
    except ImportError:
        return None
    ones = np.ones(len(data.users), dtype=np.float32)
    x = sp.csr_matrix((ones, (data.users, data.items)), shape=(data.n_users, data.n_items))
    x.data[:] = 1.0  # duplicates of one (user, item) collapse to one interaction
    model = BM25Recommender(K=K)
    start = time.perf_counter()
    model.fit(x, show_progress=False)
    print(f"implicit BM25Recommender fit: {time.perf_counter() - start:.1f} s")
    return model, x


def run(path: Path, repeat: int, seed: int) -> None:
    rec = Recommender(f"sqlite:///{path}", autosave=False, load=False, cache_size=200_000)
    start = time.perf_counter()
    rec.fit()
    print(f"Recommender.fit (read 5M events, model, trending, baskets): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    start = time.perf_counter()
    rec.warmup()
    print(
        f"Recommender.warmup (JIT from cache, content index): {time.perf_counter() - start:.1f} s"
    )
    data = rec.store.interactions()
    rng = random.Random(seed)
    rows = [rng.randrange(len(data)) for _ in range(SAMPLE)]
    user_ix = sorted({int(data.users[r]) for r in rows})  # active shoppers ask more often
    active = np.unique(data.users)
    uniform_ix = sorted({int(u) for u in rng.sample(active.tolist(), SAMPLE)} - set(user_ix))
    item_ix = [int(data.items[r]) for r in rows]  # pages visited: popular items more often
    user_names = dict(zip(user_ix, rec.store.user_ids(user_ix), strict=True))
    item_names = dict(zip(item_ix, rec.store.item_ids(item_ix), strict=True))
    users = [user_names[u] for u in user_ix]
    uniform = [name for name in rec.store.user_ids(uniform_ix) if name]
    items = [item_names[i] for i in item_ix]
    distinct = list(dict.fromkeys(items))  # a cold call per item: the first one
    reference = implicit_model(data)
    table = Table()
    for round_ in range(repeat):
        print(f"round {round_ + 1}/{repeat}")
        rec.clear_cache()
        table.add("recommend, cold (history read from SQLite)",
                  latencies(lambda u: rec.recommend(u, k=N), users))  # fmt: skip
        table.add("recommend, cold, shoppers drawn uniformly",
                  latencies(lambda u: rec.recommend(u, k=N), uniform))  # fmt: skip
        table.add("recommend, warm (cached list)",
                  latencies(lambda u: rec.recommend(u, k=N), users))  # fmt: skip
        table.add("recommend, warm history (list computed)",
                  latencies(partial(recompute, rec, N + 1 + round_), users))  # fmt: skip
        table.add("similar_items, cold (computed)",
                  latencies(lambda i: rec.similar_items(i, k=N), distinct))  # fmt: skip
        table.add("similar_items, warm (cached)",
                  latencies(lambda i: rec.similar_items(i, k=N), items))  # fmt: skip
        table.add("bought_together, cold (computed)",
                  latencies(lambda i: rec.bought_together(i, k=5), distinct))  # fmt: skip
        table.add("bought_together, warm (cached)",
                  latencies(lambda i: rec.bought_together(i, k=5), items))  # fmt: skip
        if reference is not None:
            implicit_rows(table, reference, user_ix, item_ix)
    table.print()
    batch(rec, reference, data.n_users, repeat)
    targets(table)
    rec.close()


def recompute(rec: Recommender, k: int, user: str) -> object:
    """A list with a ``k`` not asked before: the cached history, a computed list."""
    return rec.recommend(user, k=k)


def implicit_rows(
    table: Table, reference: tuple[Any, Any], users: list[int], items: list[int]
) -> None:
    model, x = reference
    liked = {u: x[u] for u in users}  # sliced beforehand: not implicit's cost
    table.add("implicit BM25 recommend (seen filtered)",
              latencies(lambda u: model.recommend(u, liked[u], N=N), users))  # fmt: skip
    # N + 1: implicit returns the item itself first.
    table.add("implicit BM25 similar_items",
              latencies(lambda i: model.similar_items(i, N=N + 1), items))  # fmt: skip


def batch(rec: Recommender, reference: tuple[Any, Any] | None, n_users: int, repeat: int) -> None:
    ours: list[float] = []
    theirs: list[float] = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = rec.recommend_many(k=N)
        ours.append(time.perf_counter() - start)
        count = len(found)
        if reference is not None:
            model, x = reference
            start = time.perf_counter()
            model.recommend(np.arange(n_users), x, N=N, filter_already_liked_items=True)
            theirs.append(time.perf_counter() - start)
    print(f"\nbatch lists, every user (N={N}), best of {repeat}")
    print(f"  Recommender.recommend_many: {count / min(ours):>10,.0f} users/s "
          f"({count:,} users in {min(ours):.2f} s)")  # fmt: skip
    if theirs:
        print(f"  implicit BM25 recommend:    {n_users / min(theirs):>10,.0f} users/s")


def targets(table: Table) -> None:
    warm50, warm99 = table.best("recommend, warm (cached list)")
    cold50, _ = table.best("recommend, cold (history read from SQLite)")
    print("\nANCHORS.md targets: warm p50 <= 50 us, p99 <= 250 us; cold p50 <= 500 us")
    print(f"  warm p50 {warm50:.1f} us, p99 {warm99:.1f} us; cold p50 {cold50:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="20k x 5k x 400k")
    parser.add_argument("--db", type=Path, help="the shop's SQLite file (built if missing)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    size = "small" if args.small else "medium"
    path = args.db or Path(tempfile.gettempdir()) / f"recsdk-bench-serving-{size}.db"
    build_shop(path, size)
    run(path, args.repeat, args.seed)


if __name__ == "__main__":
    main()
