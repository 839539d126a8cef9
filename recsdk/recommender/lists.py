"""How each kind of list is filled: candidates from the models, then the fallbacks.

Every function returns ``k`` picks when ``k`` items are allowed (see
:mod:`recsdk.recommender.rules`), each with the reason it was chosen:

- ``personal``: the model's neighbours of the shopper's history, blended with content
  neighbours for history items few shoppers touched, boosted by the shopper's preferred
  categories; then trending in those categories, trending, popular.
- ``similar_items``: the item's neighbours, collaborative and content blended the same way;
  then trending in its category, trending, popular.
- ``bought_together``: co-purchases of the basket's items; then their similar items, then
  trending in their categories, trending, popular.
- ``trending``: trending (in a category), then popular.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from recsdk.engine import ItemSimilarity
from recsdk.recommender.profile import ACTIONS, History
from recsdk.recommender.rules import Pick, Picker, Rules
from recsdk.recommender.scoring import (
    Content,
    content_parts,
    leading_sources,
    score_history,
    strongest_sources,
)
from recsdk.recommender.state import ServingState

__all__ = [
    "PERSONAL",
    "backfill",
    "bought_together",
    "explain",
    "personal",
    "similar_items",
    "trending",
]

PERSONAL: Final = "personal"  # a placeholder reason, replaced by the history action
_EXPLAINED_FIRST: Final = 16  # history items searched first for the item behind a pick
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


def _fetch_sizes(state: ServingState, rules: Rules) -> list[int]:
    """How many scored candidates to ask the model for: a few, more, then all it can give."""
    first = 2 * rules.k + 10 + len(rules.blocked)
    if rules.category is not None or rules.include is not None:
        first *= 8  # strict filters drop most candidates
    return [first, 8 * first, max(8 * first, state.n_model_items)]


def _blend(
    state: ServingState,
    sources: IntArray,
    weights: FloatArray,
    share: FloatArray,
    collaborative: tuple[IntArray, npt.NDArray[np.floating]] | None,
) -> tuple[IntArray, FloatArray]:
    """Collaborative scores plus the content neighbours of the colder source items."""
    found_i, found_s, _ = content_parts(state, sources, weights, share)
    parts_i: list[npt.NDArray[np.integer]] = list(found_i)
    parts_s: list[npt.NDArray[np.floating]] = list(found_s)
    if collaborative is not None:
        parts_i.insert(0, collaborative[0])
        parts_s.insert(0, collaborative[1])
    if not parts_i:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
    if len(parts_i) == 1:
        return parts_i[0].astype(np.int32), parts_s[0].astype(np.float64)
    unique, inverse = np.unique(np.concatenate(parts_i), return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate(parts_s)).astype(np.float64)
    return unique.astype(np.int32), summed


def _ranked(items: IntArray, scores: FloatArray) -> tuple[IntArray, FloatArray]:
    keep = scores > 0
    items, scores = items[keep], scores[keep]
    order = np.lexsort((items, -scores))
    return items[order], scores[order]


def backfill(
    picker: Picker,
    state: ServingState,
    categories: Sequence[int] = (),
) -> None:
    """Trending in ``categories``, then trending, then popular (newest items last)."""
    by_category = state.rankings.trending_by_category
    for code in categories:
        if picker.full:
            return
        ranked = by_category.get(code)
        if ranked is not None:
            picker.offer(ranked, None, "trending_in_category")
    if picker.rules.category is not None and not picker.full:
        ranked = by_category.get(picker.rules.category)
        if ranked is not None:
            picker.offer(ranked, None, "trending_in_category")
    if not picker.full:
        picker.offer(state.rankings.trending, None, "trending")
    if not picker.full:
        picker.offer(state.rankings.popular, None, "popular")


def _picker(state: ServingState, rules: Rules) -> Picker:
    return Picker(rules, state.eligible, state.items.category)


# -- personal recommendations -----------------------------------------------------------


def personal(
    state: ServingState, history: History, share: FloatArray, rules: Rules, boost: float
) -> list[Pick]:
    """The ``k`` items for a shopper with this history (see the module docstring).

    ``share`` is :meth:`ServingState.collaborative_share` of the history's items.
    """
    picker = _picker(state, rules)
    ranked = None
    if len(history.items):
        for size in _fetch_sizes(state, rules):
            ranked = score_history(
                state, history.items, history.weights, share, rules.blocked, size
            )
            items, scores = _boosted(state, history, ranked.items, ranked.scores, boost)
            picker = _picker(state, rules)
            if picker.offer(items, scores, PERSONAL) or ranked.complete:
                break
    backfill(picker, state, list(history.preferred))
    picks = picker.finish()
    chosen = _personal_items(picks)
    if ranked is None or not len(chosen):
        return _named(history, picks, {})
    found = leading_sources(state, history.items, history.weights, share, ranked, chosen)
    return _named(history, picks, found)


def _boosted(
    state: ServingState, history: History, items: IntArray, scores: FloatArray, boost: float
) -> tuple[IntArray, FloatArray]:
    """Scores lifted by the shopper's preferred categories, best first again."""
    if not history.preferred or not boost or not len(items):
        return items, scores
    # One factor per category code; the last slot, 0, is for items without one (-1).
    factors = np.zeros(len(state.items.category_names) + 1, dtype=np.float64)
    for code, share_of in history.preferred.items():
        factors[code] = boost * share_of
    lifted = scores * (1.0 + factors[state.items.category[items]])
    order = np.lexsort((items, -lifted))
    return items[order], lifted[order]


def _first_sources(content: Content | None, top: int) -> Content | None:
    """The content parts of the first ``top`` sources only."""
    if content is None:
        return None
    keep = [n for n, position in enumerate(content[2]) if position < top]
    return (
        [content[0][n] for n in keep],
        [content[1][n] for n in keep],
        [content[2][n] for n in keep],
    )


def _personal_items(picks: list[Pick]) -> IntArray:
    return np.array([p[0] for p in picks if p[2] == PERSONAL], dtype=np.int32)


def explain(
    state: ServingState,
    history: History,
    share: FloatArray,
    picks: list[Pick],
    content: Content | None = None,
) -> list[Pick]:
    """Name the action and the history item behind each personal pick.

    For picks made without the engine's ranking at hand (batch lists); a personal
    list takes them from :func:`leading_sources` instead.
    """
    chosen = _personal_items(picks)
    sources: dict[int, int] = {}
    if len(chosen):
        # The strongest history items first: they explain nearly every pick.
        top = _EXPLAINED_FIRST
        sources = strongest_sources(
            state, history.items[:top], history.weights[:top], share[:top], chosen,
            _first_sources(content, top),
        )  # fmt: skip
        missing = np.array([c for c in chosen.tolist() if c not in sources], dtype=np.int32)
        if len(missing) and len(history.items) > top:
            sources.update(
                strongest_sources(state, history.items, history.weights, share, missing, content)
            )
    return _named(history, picks, sources)


def _named(history: History, picks: list[Pick], sources: dict[int, int]) -> list[Pick]:
    """Personal picks with the action on their source (position in the history) named."""
    out: list[Pick] = []
    for item, score, reason, about in picks:
        if reason != PERSONAL:
            out.append((item, score, reason, about))
            continue
        source = sources.get(item)
        if source is None:  # scored by the engine's trend term alone
            out.append((item, score, "trending", -1))
        else:
            action = ACTIONS[int(history.actions[source])]
            out.append((item, score, action, int(history.items[source])))
    return out


# -- item lists ---------------------------------------------------------------------------


def similar_items(state: ServingState, item: int | None, rules: Rules) -> list[Pick]:
    """The ``k`` items most like ``item`` (``None``: an item the store does not know)."""
    picker = _picker(state, rules)
    if item is not None:
        for size in _fetch_sizes(state, rules):
            items, scores, exhausted = _similar_candidates(state, item, rules, size)
            picker = _picker(state, rules)
            if picker.offer(items, scores, "similar", item) or exhausted:
                break
    backfill(picker, state, _categories(state, [item] if item is not None else []))
    return picker.finish()


def _similar_candidates(
    state: ServingState, item: int, rules: Rules, size: int
) -> tuple[IntArray, FloatArray, bool]:
    source = np.array([item], dtype=np.int32)
    shares = state.collaborative_share(source)
    share = float(shares[0])
    collaborative = None
    exhausted = True
    if state.similarity is not None and share > 0:
        size = min(size, state.n_model_items)
        found = state.similarity.similar_items(item, size, exclude=rules.blocked, fill=False)
        collaborative = (found[0], found[1] * share)
        exhausted = len(found[0]) < size or size >= state.n_model_items
    items, scores = _blend(state, source, np.ones(1), shares, collaborative)
    ranked_items, ranked_scores = _ranked(items, scores)
    return ranked_items, ranked_scores, exhausted


def bought_together(state: ServingState, basket: Sequence[int], rules: Rules) -> list[Pick]:
    """The ``k`` items most often bought with the basket's items, then similar ones."""
    picker = _picker(state, rules)
    model = state.together
    known = [b for b in basket if model is not None and b < model.n_items]
    if model is not None and known:
        size = min(model.n_items, 4 * rules.k + 20 + len(rules.blocked))
        items, scores = model.score(
            known, k=size, exclude=rules.blocked, exclude_history=True, fill=False, trend=False
        )
        picker.offer(items, scores, "bought_together")
    for item in basket:
        if picker.full:
            break
        size = _fetch_sizes(state, rules)[0]
        similar, similarity, _ = _similar_candidates(state, item, rules, size)
        picker.offer(similar, similarity, "similar", item)
    backfill(picker, state, _categories(state, basket))
    picks = picker.finish()
    if model is None:
        return picks
    return [
        (item, score, reason, _strongest_partner(model, known, item))
        if reason == "bought_together"
        else (item, score, reason, about)
        for item, score, reason, about in picks
    ]


def _strongest_partner(model: ItemSimilarity, basket: Sequence[int], item: int) -> int:
    """The basket item whose co-purchase with ``item`` is strongest."""
    if len(basket) == 1:
        return basket[0]
    best, best_score = basket[0], -1.0
    for source in basket:
        items, scores = model.neighbors(source)
        hit = np.flatnonzero(items == item)
        if len(hit) and float(scores[hit[0]]) > best_score:
            best, best_score = source, float(scores[hit[0]])
    return best


def trending(state: ServingState, rules: Rules) -> list[Pick]:
    """The ``k`` trending items (in ``rules.category`` when given), scored by their trend
    relative to the top item's (1.0), then popular ones (score 0)."""
    picker = _picker(state, rules)
    scores = state.trending.scores
    top = float(scores.max(initial=0.0))
    if top > 0:
        if rules.category is None:
            ranked, reason = state.rankings.trending, "trending"
        else:
            found = state.rankings.trending_by_category.get(rules.category)
            ranked = found if found is not None else np.empty(0, dtype=np.int32)
            reason = "trending_in_category"
        picker.offer(ranked, scores[ranked] / top, reason)
    backfill(picker, state)
    return picker.finish()


def _categories(state: ServingState, items: Sequence[int]) -> list[int]:
    codes: list[int] = []
    for item in items:
        if item < len(state.items):
            code = int(state.items.category[item])
            if code >= 0 and code not in codes:
                codes.append(code)
    return codes
