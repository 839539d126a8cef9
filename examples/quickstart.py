"""recsdk quickstart: a shop's events into an embedded SQLite file, and what the store holds.

Run ``bash examples/demo.sh`` from a fresh clone, or ``python examples/quickstart.py``
with recsdk installed. It writes ``recsdk-demo.db`` in the working directory (replaced on
each run; ``--db PATH`` to choose another file).

1. Describes a small catalog (``upsert_items``).
2. Tracks a generated shop's events (views, cart additions, purchases; anonymous visitors
   who log in later) in batches, as a collector would receive them.
3. Retries a batch (every event is stored once) and sends a batch with bad events (they
   are rejected with the field and the reason; their valid neighbours are stored).
4. Reads back: counts, a shopper's history, an item's latest events, the interaction
   arrays the engine trains on, and an incremental read of what is new.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recsdk import Event, EventStore
from recsdk.datasets import synthetic_shop

CATEGORIES = ["kitchen", "garden", "toys", "books", "lighting", "textiles", "stationery", "tea"]
N_USERS, N_ITEMS, N_EVENTS = 2_000, 400, 30_000
BATCH = 500


def catalog(n_items: int, categories: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"sku-{item}",
            "title": f"{CATEGORIES[categories[item] % len(CATEGORIES)].title()} product {item}",
            "category": CATEGORIES[categories[item] % len(CATEGORIES)],
            "price": round(2.5 + (item * 37 % 100) / 4, 2),
            "tags": [f"tag-{item % 13}"],
        }
        for item in range(n_items)
    ]


def shop_events() -> Iterator[Event]:
    """A generated shop's event stream: a view, sometimes a cart addition and a purchase."""
    shop = synthetic_shop(N_USERS, N_ITEMS, N_EVENTS, n_categories=len(CATEGORIES), seed=7)
    for row, (user, item, moment) in enumerate(
        zip(shop.users.tolist(), shop.items.tolist(), shop.timestamps.tolist(), strict=True)
    ):
        when = datetime.fromtimestamp(moment, tz=timezone.utc)
        # The first 200 shoppers browse anonymously and log in when they buy.
        anonymous_id = f"visitor-{user}" if user < 200 else None
        browsing_id = None if anonymous_id else f"user-{user}"
        item_id = f"sku-{item}"
        yield Event(
            "view", user_id=browsing_id, anonymous_id=anonymous_id, item_id=item_id, timestamp=when
        )
        if row % 5 == 0:
            yield Event(
                "add_to_cart",
                user_id=browsing_id,
                anonymous_id=anonymous_id,
                item_id=item_id,
                timestamp=when,
            )
        if row % 15 == 0:
            yield Event(
                "purchase",
                user_id=f"user-{user}",
                anonymous_id=anonymous_id,  # both ids: the visitor is now known
                item_id=item_id,
                order_id=f"order-{row}",
                quantity=1 + row % 3,
                price=9.5,
                currency="EUR",
                timestamp=when,
            )


def batches(events: Sequence[Event], size: int) -> Iterator[Sequence[Event]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="recsdk quickstart")
    parser.add_argument("--db", type=Path, default=Path("recsdk-demo.db"))
    args = parser.parse_args(argv)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)

    store = EventStore(f"sqlite:///{args.db}")
    print(f"Store: {store}\n")

    shop = synthetic_shop(N_USERS, N_ITEMS, 1, n_categories=len(CATEGORIES), seed=7)
    written = store.upsert_items(catalog(N_ITEMS, shop.item_categories.tolist()))
    print(f"Catalog: {written} items described")

    events = list(shop_events())
    start = time.perf_counter()
    inserted = sum(store.add_many(batch).inserted for batch in batches(events, BATCH))
    seconds = time.perf_counter() - start
    print(f"Tracked {inserted:,} events in batches of {BATCH} ({inserted / seconds:,.0f} events/s)")

    retried = store.add_many(events[:BATCH])
    print(f"Retried one batch: {retried.inserted} new, {retried.duplicates} duplicates")

    mixed: list[Any] = [
        {"type": "Product Viewed", "user_id": "user-1", "item_id": "sku-3"},
        {"type": "view", "user_id": "user-1"},
        {
            "type": "purchase",
            "user_id": "user-1",
            "item_id": "sku-3",
            "order_id": "o-9",
            "price": -5,
        },
        {"type": "view", "user_id": "user-1", "item_id": "sku-4", "colour": "red"},
    ]
    result = store.add_many(mixed)
    print(f"A batch with bad events: {result.inserted} stored, {len(result.rejected)} rejected:")
    for rejected in result.rejected:
        print(f"  event {rejected.index}: {rejected.field}: {rejected.reason}")

    counts = store.counts()
    print(
        f"\nThe store holds {counts.events:,} events from {counts.users:,} users and "
        f"{counts.anonymous_ids:,} anonymous visitors ({counts.identity_links:,} identified "
        f"at checkout) about {counts.items:,} items."
    )

    items = store.get_items(f"sku-{i}" for i in range(N_ITEMS))
    titles = {item_id: item.title for item_id, item in items.items()}
    print("\nLatest history of user-7 (anonymous browsing included once identified):")
    for entry in store.history("user-7", limit=5):
        print(f"  {entry.timestamp:%Y-%m-%d %H:%M}  {entry.type:<12} {titles[entry.item_id]}")

    print("\nLatest events about sku-0:")
    for event in store.item_events("sku-0", limit=3):
        who = event.user_id or event.anonymous_id
        print(f"  {event.timestamp:%Y-%m-%d %H:%M}  {event.type:<12} by {who}")

    data = store.interactions()
    print(
        f"\nInteractions for the engine: {len(data):,} rows of (user, item, type, time, value) "
        f"over {data.n_users - 1:,} user and {data.n_items - 1:,} item indices; "
        f"watermark {data.watermark:,}"
    )
    store.add(Event("view", user_id="user-new", item_id="sku-1"))
    fresh = store.interactions(since=data.watermark)
    print(f"After one more event, an incremental read returns {len(fresh)} row.")
    store.close()


if __name__ == "__main__":
    main()
