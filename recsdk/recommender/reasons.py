"""Turning picks into :class:`Recommendation` values: ids, catalog fields and reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from recsdk.recommender.results import Recommendation
from recsdk.recommender.rules import Pick
from recsdk.recommender.state import ServingState

__all__ = ["render"]

_ABOUT_AN_ITEM: Final = {
    "viewed": "because you viewed {}",
    "bought": "because you bought {}",
    "added_to_cart": "because you added {} to your cart",
    "wishlisted": "because you added {} to your wishlist",
    "rated": "because you rated {}",
    "bought_together": "bought together with {}",
    "similar": "similar to {}",
}


def render(state: ServingState, picks: Sequence[Pick]) -> tuple[Recommendation, ...]:
    """The recommendations of ``picks``, with the catalog's fields and each reason."""
    return tuple(_one(state, pick) for pick in picks)


def _one(state: ServingState, pick: Pick) -> Recommendation:
    items = state.items
    item, score, reason, about = pick
    category = items.category_name(item)
    about_id = None
    template = _ABOUT_AN_ITEM.get(reason)
    if template is not None:
        text = template.format(items.title(about))
        about_id = items.ids[about] if 0 <= about < len(items.ids) else None
    elif reason == "trending_in_category" and category is not None:
        text = f"trending in {category}"
    elif reason in ("trending", "trending_in_category"):
        reason, text = "trending", "trending"
    elif state.rankings.popularity[item] > 0:
        reason, text = "popular", "popular"
    else:
        reason, text = "new", f"new in {category}" if category else "new"
    return Recommendation(
        item_id=items.ids[item],
        score=score,
        reason=text,
        reason_type=reason,
        reason_item_id=about_id,
        title=items.titles[item],
        category=category,
        price=items.prices[item],
        url=items.urls[item],
        image_url=items.image_urls[item],
    )
