"""Many threads ask for lists while fits, refreshes and tracking run: no error, no torn state."""

from __future__ import annotations

import random
import threading
import time

from recsdk import Recommender


def test_requests_keep_flowing_while_the_model_is_refitted(rec: Recommender) -> None:
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def shopper(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                user = f"u{rng.randrange(60)}"
                found = rec.recommend(user, k=5)
                assert len(set(found.item_ids)) == len(found) == 5
                assert len(rec.similar_items(f"k{rng.randrange(10)}", k=4)) == 4
                assert len(rec.bought_together("g0", k=3)) == 3
                assert len(rec.trending(k=3, category="books")) == 3
                answered[0] += 1
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    generation = rec._serving().generation
    for round_ in range(3):
        rec.track("view", user_id=f"u{round_}", item_id="b9")
        future = rec.fit_in_background()
        assert future.result(timeout=60) is rec
        rec.refresh()
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors[0]
    assert answered[0] > 0
    assert rec._serving().generation >= generation + 6


def test_tracking_from_many_threads_is_never_lost_in_the_cache(rec: Recommender) -> None:
    def buyer(n: int) -> None:
        for item in ("b5", "b6", "b7"):
            rec.recommend(f"buyer{n}", k=3)
            rec.track("purchase", user_id=f"buyer{n}", item_id=item, order_id=f"t{n}")

    threads = [threading.Thread(target=buyer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(8):
        assert not {"b5", "b6", "b7"} & set(rec.recommend(f"buyer{n}", k=30).item_ids)
