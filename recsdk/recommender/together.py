"""Frequently bought together: item co-occurrence within orders and shopping sessions.

A basket is an order (the purchases sharing an ``order_id``) or a session (the cart
additions and purchases sharing a ``session_id``). The engine's item-item model runs over
the basket x item matrix with the ``conditional`` measure, ``c_ij / (c_i * sqrt(c_j))``: how
often ``j`` is in ``i``'s baskets, with a discount for items in every basket anyway.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import ItemSimilarity, UserItemMatrix, Weighting
from recsdk.store.results import BasketRow

__all__ = ["Baskets", "new_together_model"]

_NEIGHBORS: Final = 50


def new_together_model() -> ItemSimilarity:
    """An unfitted model of the bought-together kind."""
    return ItemSimilarity(
        measure="conditional",
        alpha=0.5,
        shrinkage=1.0,
        n_neighbors=_NEIGHBORS,
        binary=True,
        weighting=Weighting(),
        trend_weight=0.0,  # co-purchases only: trending items come from their own list
    )


@attrs.define(eq=False)
class Baskets:
    """Basket ids by order or session key; rows of later reads join their baskets."""

    keys: dict[str, int] = attrs.field(factory=dict)
    count: int = 0

    def matrix(self, rows: Sequence[BasketRow], n_items: int) -> UserItemMatrix | None:
        """The basket x item matrix of ``rows``, numbering baskets not seen before."""
        if not rows:
            return None
        baskets = np.empty(len(rows), dtype=np.int32)
        items = np.empty(len(rows), dtype=np.int32)
        for position, (order_id, session_id, item) in enumerate(rows):
            key = f"o:{order_id}" if order_id is not None else f"s:{session_id}"
            number = self.keys.get(key)
            if number is None:
                number = self.keys[key] = self.count
                self.count += 1
            baskets[position] = number
            items[position] = item
        return UserItemMatrix.from_coo(
            baskets, items, n_users=self.count, n_items=max(n_items, int(items.max()) + 1)
        )

    def fit(self, rows: Sequence[BasketRow], n_items: int) -> ItemSimilarity | None:
        """A new model of every basket in ``rows``; ``None`` without any."""
        self.keys.clear()
        self.count = 0
        matrix = self.matrix(rows, n_items)
        return None if matrix is None else new_together_model().fit(matrix)

    def update(
        self, model: ItemSimilarity | None, rows: Sequence[BasketRow], n_items: int
    ) -> ItemSimilarity | None:
        """``model`` with the baskets of ``rows`` added (a new object; ``model`` is kept)."""
        if model is not None:
            self.count = max(self.count, model.n_users)
        matrix = self.matrix(rows, n_items)
        if matrix is None:
            return model
        if model is None:
            return new_together_model().fit(matrix)
        return copy.copy(model).partial_fit(matrix)


def basket_items(model: ItemSimilarity | None) -> npt.NDArray[np.int32]:
    """Items found in at least one basket (have bought-together neighbours)."""
    if model is None:
        return np.empty(0, dtype=np.int32)
    return np.unique(model.affinity().indices).astype(np.int32)
