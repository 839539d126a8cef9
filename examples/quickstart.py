"""recsdk quickstart: a generated shop, tracked and fitted, recommending with reasons.

Run ``bash examples/demo.sh`` from a fresh clone, or ``python examples/quickstart.py``
with recsdk installed. It writes ``recsdk-demo.db`` in the working directory (replaced on
each run; ``--db PATH`` to choose another file) and the fitted model beside it.

1. Describes a catalog and tracks a generated shop's events through the
   :class:`~recsdk.Recommender` (views, cart additions, orders; anonymous visitors who log
   in when they buy), leaving each shopper's last view out.
2. Fits, then prints recommendations with their reasons for a few shoppers, similar items
   and items bought together for a few products, and what is trending.
3. Evaluates on what was left out: did the recommendations hold the item each shopper
   viewed next? Against the most popular items.
4. Tracks one shopper's next events: their recommendations change at once, without a
   refit; ``refresh()`` then updates the model, reading only the new events.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from recsdk import Event, Recommender
from recsdk.datasets import synthetic_shop
from recsdk.evaluation import rank_metrics

CATEGORIES = ["kitchen", "garden", "toys", "books", "lighting", "textiles", "stationery", "tea"]
WORDS = ["mug", "lamp", "kite", "novel", "kettle", "scarf", "notebook", "teapot", "vase"]
N_USERS, N_ITEMS, N_EVENTS = 2_000, 400, 30_000
BATCH = 500


def catalog(categories: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"sku-{item}",
            "title": f"{CATEGORIES[category].title()} {WORDS[item % len(WORDS)]} {item}",
            "category": CATEGORIES[category],
            "tags": [WORDS[item % len(WORDS)]],
            "price": round(2.5 + (item * 37 % 100) / 4, 2),
        }
        for item, category in enumerate(categories)
    ]


def shop_events() -> Iterator[Event]:
    """A generated shop: views, cart additions and orders.

    Products come in sets of four that go together (a teapot and its cups): after a view,
    a shopper often looks at another piece of the set, and an order holds both.
    """
    shop = synthetic_shop(N_USERS, N_ITEMS, N_EVENTS, n_categories=len(CATEGORIES), seed=7)
    rng = random.Random(7)
    for row, (user, item, moment) in enumerate(
        zip(shop.users.tolist(), shop.items.tolist(), shop.timestamps.tolist(), strict=True)
    ):
        when = datetime.fromtimestamp(moment, tz=timezone.utc)
        # The first 200 shoppers browse anonymously and log in when they buy.
        anonymous_id = f"visitor-{user}" if user < 200 else None
        who: dict[str, Any] = {"user_id": None if anonymous_id else f"user-{user}"}
        who["anonymous_id"] = anonymous_id
        pieces = [item]
        partner = item - item % 4 + rng.randrange(4)
        if partner != item and partner < N_ITEMS and rng.random() < 0.3:
            pieces.append(partner)
        for minute, piece in enumerate(pieces):
            yield Event("view", item_id=f"sku-{piece}", timestamp=when + minutes(minute), **who)
        if row % 5 == 0:
            yield Event("add_to_cart", item_id=f"sku-{item}", timestamp=when + minutes(2), **who)
        if row % 15 == 0:
            who["user_id"] = f"user-{user}"  # both ids at checkout: the visitor is now known
            for piece in pieces:
                yield Event(
                    "purchase", item_id=f"sku-{piece}", order_id=f"order-{row}", price=9.5,
                    quantity=1, timestamp=when + minutes(3), **who,
                )  # fmt: skip


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def held_out(events: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    """Each shopper's last view and what followed it are held out; the rest is tracked."""
    last_view: dict[str, int] = {}
    for position, event in enumerate(events):
        if event.type == "view":
            last_view[_shopper(event)] = position
    train: list[Event] = []
    test: list[Event] = []
    for position, event in enumerate(events):
        shopper = _shopper(event)
        (test if position >= last_view.get(shopper, len(events)) else train).append(event)
    return train, test


def _shopper(event: Event) -> str:
    # Visitors are known by their anonymous id until checkout links them.
    return event.anonymous_id or event.user_id or ""


def show(title: str, results: Any) -> None:
    print(f"\n{title}")
    for r in results:
        print(f"  {r.item_id:<9} {r.title or '':<24} {r.score:6.3f}  {r.reason}")


def evaluate(rec: Recommender, train: Sequence[Event], test: Sequence[Event]) -> None:
    """NDCG@10 and HR@10 on the items shoppers went on to view that they had not seen."""
    seen: dict[str, set[str]] = {}
    popularity: Counter[str] = Counter()
    for event in train:
        shopper = _shopper(event)
        if event.item_id and event.item_id not in seen.setdefault(shopper, set()):
            seen[shopper].add(event.item_id)
            popularity[event.item_id] += 1
    targets: dict[str, set[str]] = {}
    for event in test:
        shopper = _shopper(event)
        if (
            event.type == "view"
            and shopper in seen
            and event.item_id
            and event.item_id not in seen[shopper]
        ):
            targets.setdefault(shopper, set()).add(event.item_id)
    ranked = [item for item, _ in popularity.most_common()]
    totals: dict[str, dict[str, float]] = {"recsdk Recommender": {}, "popularity": {}}
    for shopper, wanted in targets.items():
        visitor = shopper.startswith("visitor-")
        ours = rec.recommend(
            None if visitor else shopper,
            anonymous_id=shopper if visitor else None,
            k=10,
            exclude_viewed=True,
        ).item_ids
        popular = [item for item in ranked if item not in seen[shopper]][:10]
        for name, found in (("recsdk Recommender", ours), ("popularity", popular)):
            for metric, value in _metrics(found, wanted).items():
                totals[name][metric] = totals[name].get(metric, 0.0) + value
    print(f"\nEvaluation: the next new item {len(targets):,} shoppers viewed (held out)")
    print(f"  {'model':<20} {'NDCG@10':>8} {'HR@10':>7} {'recall@10':>10}")
    for name, sums in totals.items():
        n = max(len(targets), 1)
        print(f"  {name:<20} {sums['ndcg'] / n:>8.4f} {sums['hr'] / n:>7.4f} "
              f"{sums['recall'] / n:>10.4f}")  # fmt: skip


def _viewed_next(user: str, test: Sequence[Event]) -> bool:
    return any(e.user_id == user and e.type == "view" for e in test)


def _metrics(found: list[str], wanted: set[str]) -> dict[str, float]:
    ids = {item: n for n, item in enumerate({*found, *wanted})}
    return rank_metrics([ids[i] for i in found], {ids[i] for i in wanted}, 10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="recsdk quickstart")
    parser.add_argument("--db", type=Path, default=Path("recsdk-demo.db"))
    args = parser.parse_args(argv)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()

    rec = Recommender(f"sqlite:///{args.db}", load=False)
    shop = synthetic_shop(N_USERS, N_ITEMS, 1, n_categories=len(CATEGORIES), seed=7)
    rec.upsert_items(catalog(shop.item_categories.tolist()))
    train, test = held_out(sorted(shop_events(), key=lambda e: e.timestamp))
    start = time.perf_counter()
    for begin in range(0, len(train), BATCH):
        rec.track_many(train[begin : begin + BATCH])
    rate = len(train) / (time.perf_counter() - start)
    print(f"Tracked {len(train):,} events into {args.db} ({rate:,.0f} events/s); "
          f"{len(test):,} held out")  # fmt: skip

    start = time.perf_counter()
    rec.warmup()  # numba compiles the kernels on a machine's first run, then loads them
    print(f"Kernels ready in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    rec.fit()
    print(f"Fitted in {time.perf_counter() - start:.1f} s; saved in {rec.model_path}")

    regulars = Counter(e.user_id for e in train if e.user_id and e.type == "view")
    for user, _ in regulars.most_common(2):
        show(f"Recommended for {user}:", rec.recommend(user, k=5))
    show("Recommended for a visitor seen for the first time:", rec.recommend(k=3))
    show("Recommended for visitor-42 (anonymous, linked at checkout):",
         rec.recommend(anonymous_id="visitor-42", k=3))  # fmt: skip
    for item in ("sku-3", "sku-120"):
        show(f"Similar to {item} ({rec.store.get_items([item])[item].title}):",
             rec.similar_items(item, k=4))  # fmt: skip
    show("Bought together with sku-3:", rec.bought_together("sku-3", k=3))
    show("Trending in tea:", rec.trending(k=3, category="tea"))
    user = regulars.most_common(1)[0][0]
    profile = rec.profile(user)
    print(
        f"\n{user}: last seen {profile.last_seen:%Y-%m-%d}, {profile.orders} orders, "
        f"{profile.monetary:.2f} spent ({profile.average_order_value or 0:.2f} an order), "
        f"prefers {', '.join(profile.preferred_categories)}"
    )

    evaluate(rec, train, test)

    newcomer = next(u for u, n in sorted(regulars.items()) if 2 <= n <= 4 and _viewed_next(u, test))
    mine = [e for e in test if e.user_id == newcomer and e.type == "view"]
    show(f"Recommended for {newcomer}, who viewed {regulars[newcomer]} items:",
         rec.recommend(newcomer, k=3))  # fmt: skip
    rec.track_many(mine)
    show(f"{newcomer} views {', '.join(str(e.item_id) for e in mine)}; at once, no refit:",
         rec.recommend(newcomer, k=3))  # fmt: skip
    rec.track_many([e for e in test if e not in mine])
    start = time.perf_counter()
    rec.refresh()
    print(f"\nThe held-out events tracked; refresh() updated the model in "
          f"{time.perf_counter() - start:.2f} s")  # fmt: skip
    print(f"Done in {time.perf_counter() - started:.1f} s")
    rec.close()


if __name__ == "__main__":
    main()
