"""Personal lists from the engine's ``explain`` match the reference computation.

The reference is what personal lists did before :meth:`ItemSimilarity.explain`: the
engine's scores, a second scoring call for the neighbour scale that content contributions
are divided by, and :func:`~recsdk.recommender.scoring.strongest_sources` searching every
contribution for the item behind each reason. Random shops with many items few shoppers
touched, so that content neighbours take part in scores and reasons.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsdk import Recommender
from recsdk.engine import ItemSimilarity
from recsdk.recommender import lists
from recsdk.recommender.profile import History, read_history
from recsdk.recommender.rules import Picker, Rules, member
from recsdk.recommender.scoring import content_parts, strongest_sources
from recsdk.recommender.state import ServingState

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
WORDS = ["mug", "lamp", "chair", "scarf", "kettle", "novel", "glove", "plant"]
TYPES = ["view", "view", "view", "add_to_cart", "purchase", "wishlist", "click"]


def _catalog(rng: random.Random, n_items: int) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"i{n}",
            "title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
            "category": f"c{n % 4}",
            "tags": rng.sample(WORDS, 2),
        }
        for n in range(n_items)
    ]


def _events(rng: random.Random, n_users: int, n_items: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for user in range(n_users):
        for step in range(rng.randrange(1, 30)):
            item = min(int(rng.paretovariate(0.8)) - 1, n_items - 1)  # a long tail
            moment = T0 + timedelta(hours=rng.randrange(500), minutes=step)
            kind = rng.choice(TYPES)
            event = {"type": kind, "user_id": f"u{user}", "item_id": f"i{item}",
                     "timestamp": moment.isoformat()}  # fmt: skip
            if kind == "purchase":
                event["order_id"] = f"o{user}-{step}"
            out.append(event)
    return out


def _reference_scores(
    state: ServingState, history: History, share: np.ndarray, blocked: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Candidates as the two-call scoring ranked them: neighbour scale from a second call."""
    model = state.similarity
    assert model is not None
    sources, weights = history.items, history.weights
    size = min(size, model.n_items)
    items, scores = model.score(
        sources, weights * share, k=size, exclude=blocked, exclude_history=False, fill=False
    )
    complete = len(items) < size or size >= model.n_items
    content_i, content_s, _ = content_parts(state, sources, weights, share)
    if not content_i:
        return items.astype(np.int32), scores.astype(np.float64), complete
    scale = 1.0
    if model.trend_weight:
        _, best = model.score(
            sources, weights * share, k=1, exclude=blocked, exclude_history=False, fill=False,
            trend=False,
        )  # fmt: skip
        scale = float(best[0]) if len(best) and best[0] > 0 else 1.0
    unique, inverse = np.unique(np.concatenate([items, *content_i]), return_inverse=True)
    parts = np.concatenate([scores, *(part / scale for part in content_s)])
    totals = np.bincount(inverse, weights=parts).astype(np.float64)
    keep = (totals > 0) & ~member(unique, blocked)
    unique, totals = unique[keep], totals[keep]
    order = np.lexsort((unique, -totals))
    return unique[order].astype(np.int32), totals[order], complete


def _reference_picks(
    state: ServingState, history: History, share: np.ndarray, rules: Rules
) -> list[tuple[int, float, str, int]]:
    """:func:`lists.personal` as it was, with every contribution searched for reasons."""
    picker = Picker(rules, state.eligible, state.items.category)
    for size in lists._fetch_sizes(state, rules):
        items, scores, complete = _reference_scores(state, history, share, rules.blocked, size)
        items, scores = lists._boosted(state, history, items, scores, 0.2)
        picker = Picker(rules, state.eligible, state.items.category)
        if picker.offer(items, scores, lists.PERSONAL) or complete:
            break
    lists.backfill(picker, state, list(history.preferred))
    picks = picker.finish()
    chosen = np.array([p[0] for p in picks if p[2] == lists.PERSONAL], dtype=np.int32)
    found = strongest_sources(state, history.items, history.weights, share, chosen)
    return lists._named(history, picks, found if len(chosen) else {})


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("trend_weight", [0.0, 0.8])
def test_personal_lists_match_the_reference(tmp_path: Path, seed: int, trend_weight: float) -> None:
    rng = random.Random(seed)
    n_items = 80
    n_neighbors = rng.choice([5, 20])
    model = ItemSimilarity(measure="cosine", n_neighbors=n_neighbors, trend_weight=trend_weight)
    with Recommender(f"sqlite:///{tmp_path / 'shop.db'}", model=model) as rec:
        rec.upsert_items(_catalog(rng, n_items))
        rec.track_many(_events(rng, 60, n_items))
        rec.fit()
        state = rec._serving()
        blended = 0
        for user in range(60):
            rows = rec.store.item_event_rows(f"u{user}")
            history = read_history(rows, state.weights, state.items)
            share = state.collaborative_share(history.items)
            blended += bool((share < 1).any())
            for k, cap in ((5, None), (12, 2)):
                rules = Rules(k=k, blocked=history.bought, max_per_category=cap)
                expected = _reference_picks(state, history, share, rules)
                assert lists.personal(state, history, share, rules, 0.2) == expected
        assert blended  # content neighbours took part
