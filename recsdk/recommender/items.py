"""The items the recommender knows, in memory: id <-> index maps and catalog fields as arrays.

Item indices are the store's interned integer ids (the indices of
:meth:`~recsdk.store.EventStore.interactions`), so the model's rows, the catalog and the
maps below line up without translation. An :class:`ItemTable` is immutable: catalog changes
make a new one, which the recommender swaps in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.catalog import CatalogItem

__all__ = ["ItemTable"]

NO_CATEGORY = -1


def _text(attributes: dict[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return value if isinstance(value, str) else None


@attrs.frozen(eq=False)
class ItemTable:
    """Every item id with its index and what the catalog says about it.

    Lists and arrays are indexed by item index; index 0 and ids never seen are holes
    (an empty id). ``category`` holds a code into ``category_names`` (``-1``: none).
    """

    ids: list[str]
    index: dict[str, int]
    titles: list[str | None]
    prices: list[float | None]
    urls: list[str | None]
    image_urls: list[str | None]
    tags: list[tuple[str, ...]]
    category: npt.NDArray[np.int32]
    available: npt.NDArray[np.bool_]
    described: npt.NDArray[np.bool_]
    category_names: list[str]
    category_codes: dict[str, int]
    catalog_version: int = 0

    @classmethod
    def empty(cls) -> ItemTable:
        return cls(
            ids=[""],
            index={},
            titles=[None],
            prices=[None],
            urls=[None],
            image_urls=[None],
            tags=[()],
            category=np.full(1, NO_CATEGORY, dtype=np.int32),
            available=np.zeros(1, dtype=bool),
            described=np.zeros(1, dtype=bool),
            category_names=[],
            category_codes={},
        )

    def __len__(self) -> int:
        """One more than the largest item index."""
        return len(self.ids)

    def updated(
        self,
        new_ids: Iterable[tuple[int, str]],
        entries: Sequence[tuple[int, CatalogItem]] = (),
        catalog_version: int | None = None,
    ) -> ItemTable:
        """A copy with more item ids and the given catalog entries applied."""
        ids = list(self.ids)
        index = dict(self.index)
        for ix, name in new_ids:
            if ix >= len(ids):
                ids.extend([""] * (ix + 1 - len(ids)))
            ids[ix] = name
            index[name] = ix
        for ix, _ in entries:  # an entry may name an item the id read has not seen yet
            if ix >= len(ids):
                ids.extend([""] * (ix + 1 - len(ids)))
        n = len(ids)
        grow = n - len(self.ids)
        table = ItemTable(
            ids=ids,
            index=index,
            titles=[*self.titles, *([None] * grow)],
            prices=[*self.prices, *([None] * grow)],
            urls=[*self.urls, *([None] * grow)],
            image_urls=[*self.image_urls, *([None] * grow)],
            tags=[*self.tags, *([()] * grow)],
            category=_grown(self.category, n, NO_CATEGORY),
            available=_grown(self.available, n, True),
            described=_grown(self.described, n, False),
            category_names=list(self.category_names),
            category_codes=dict(self.category_codes),
            catalog_version=self.catalog_version if catalog_version is None else catalog_version,
        )
        table.available[0] = False  # index 0 is never an item
        for ix, item in entries:
            table._describe(ix, item)
        return table

    def _describe(self, ix: int, item: CatalogItem) -> None:
        """Write one catalog entry into this (new, not yet shared) table."""
        self.titles[ix] = item.title
        self.prices[ix] = item.price
        self.urls[ix] = _text(item.attributes, "url")
        self.image_urls[ix] = _text(item.attributes, "image_url")
        self.tags[ix] = item.tags
        self.available[ix] = item.available
        self.described[ix] = True
        code = NO_CATEGORY
        if item.category is not None:
            code = self.category_codes.get(item.category, len(self.category_names))
            if code == len(self.category_names):
                self.category_names.append(item.category)
                self.category_codes[item.category] = code
        self.category[ix] = code

    def eligible(self, catalog_only: bool) -> npt.NDArray[np.bool_]:
        """Items that may be recommended: available, and described if ``catalog_only``."""
        mask: npt.NDArray[np.bool_] = self.available.copy()
        if catalog_only:
            mask &= self.described
        mask &= np.fromiter((bool(name) for name in self.ids), dtype=bool, count=len(self.ids))
        return mask

    def title(self, ix: int) -> str:
        """The item's title, or its id when the catalog has none."""
        if not 0 <= ix < len(self.ids):
            return "an item"
        return self.titles[ix] or self.ids[ix]

    def category_name(self, ix: int) -> str | None:
        code = int(self.category[ix])
        return None if code < 0 else self.category_names[code]


def _grown(values: npt.NDArray[Any], n: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(n, fill, dtype=values.dtype)
    out[: len(values)] = values
    return out
