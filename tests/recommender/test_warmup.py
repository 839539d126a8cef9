"""A recommender that loads a saved state warms up once: its requests compile nothing."""

from __future__ import annotations

from compiled_late import compiled_late, needs_jit

from recsdk import Recommender

pytestmark = needs_jit

_SERVE_AFTER_WARMUP = """
import sys
from recsdk import Recommender

with Recommender(sys.argv[1]) as rec:  # loads the saved state, memory-mapped
    assert rec.warmup() is rec
    mark()
    rec.recommend("u1", k=5)
    rec.recommend_many(["u1", "u2"], k=5)
    rec.recommend_many(k=5)
    rec.similar_items("k1", k=5)
    rec.bought_together("k1", k=5)
    rec.trending(k=5)
    rec.track("view", user_id="u-new", item_id="k2")
    rec.refresh()
    rec.recommend("u-new", k=5)
    rec.recommend_many(k=5)
    report()
"""


def test_requests_after_warmup_compile_nothing(rec: Recommender, db_url: str) -> None:
    assert compiled_late(_SERVE_AFTER_WARMUP, db_url) == {}


_FIT_AFTER_WARMUP = """
import sys
from recsdk import Recommender

with Recommender(sys.argv[1], load=False) as rec:  # nothing fitted yet
    assert rec.warmup() is rec
    mark()
    for n in range(30):
        rec.track("purchase", user_id=f"u{n % 7}", item_id=f"k{n % 5}", order_id=f"o{n}")
    rec.fit()
    rec.track("view", user_id="u-new", item_id="k2")
    rec.refresh()
    rec.recommend("u-new", k=5)
    rec.recommend_many(k=5)
    rec.similar_items("k1", k=5)
    rec.bought_together("k1", k=5)
    report()
"""


def test_an_unfitted_recommender_warms_up_its_fit_and_refresh(db_url: str) -> None:
    assert compiled_late(_FIT_AFTER_WARMUP, db_url) == {}
