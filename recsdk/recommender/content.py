"""Content similarity for cold items: TF-IDF cosine over catalog attributes, in numpy.

Each described item is a bag of terms: its category, its tags and the words of its title.
Terms weigh their inverse document frequency, rows are L2-normalized, and an item's
neighbours are the items sharing the most weighted terms with it. Terms found in a single
item cannot relate two items and are left out; words in more than ``max_df`` of the
catalog carry little and are dropped as stop words (categories never are).

Neighbours are computed on demand, from an inverted index, and remembered per item.
"""

from __future__ import annotations

import re
import threading
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.recommender.items import ItemTable

__all__ = ["ContentIndex"]

_WORD: Final = re.compile(r"\w+")
_MEMO_LIMIT: Final = 100_000
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]


def item_terms(items: ItemTable, ix: int) -> set[str]:
    """The terms of one item: ``c:<category>``, ``t:<tag>``, ``w:<title word>``."""
    terms: set[str] = set()
    category = items.category_name(ix)
    if category is not None:
        terms.add("c:" + category.lower())
    terms.update("t:" + tag.lower() for tag in items.tags[ix])
    title = items.titles[ix]
    if title:
        words = _WORD.findall(title.lower())
        terms.update("w:" + word for word in words if len(word) > 1 and not word.isdigit())
    return terms


@attrs.define(eq=False)
class ContentIndex:
    """TF-IDF vectors of the described items and an inverted index over their terms."""

    item_indptr: npt.NDArray[np.int64]
    item_terms: IntArray
    item_weights: FloatArray
    term_indptr: npt.NDArray[np.int64]
    term_items: IntArray
    term_weights: FloatArray
    _memo: dict[tuple[int, int], tuple[IntArray, FloatArray]] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @classmethod
    def build(cls, items: ItemTable, max_df: float = 0.2) -> ContentIndex:
        n = len(items)
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for ix in np.flatnonzero(items.described).tolist():
            for name in item_terms(items, ix):
                rows.append(ix)
                cols.append(vocabulary.setdefault(name, len(vocabulary)))
        item = np.asarray(rows, dtype=np.int64)
        term = np.asarray(cols, dtype=np.int64)
        df = np.bincount(term, minlength=len(vocabulary)).astype(np.float64)
        n_docs = max(1, int(items.described.sum()))
        idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        weight = idf[term]
        norms = np.sqrt(np.bincount(item, weights=weight**2, minlength=n))
        weight = weight / np.where(norms[item] > 0, norms[item], 1.0)
        is_category = np.zeros(len(vocabulary), dtype=bool)
        is_category[[v for t, v in vocabulary.items() if t.startswith("c:")]] = True
        useful = (df >= 2) & ((df <= max_df * n_docs) | is_category)
        keep = useful[term]
        item, term, weight = item[keep], term[keep], weight[keep]
        by_item = np.lexsort((term, item))
        by_term = np.lexsort((item, term))
        return cls(
            item_indptr=_indptr(item[by_item], n),
            item_terms=term[by_item].astype(np.int32),
            item_weights=weight[by_item].astype(np.float32),
            term_indptr=_indptr(term[by_term], len(vocabulary)),
            term_items=item[by_term].astype(np.int32),
            term_weights=weight[by_term].astype(np.float32),
        )

    @property
    def has_terms(self) -> bool:
        """Whether any two items share a term (else every item has no neighbours)."""
        return bool(len(self.term_items))

    def neighbors(self, item: int, k: int) -> tuple[IntArray, FloatArray]:
        """The ``k`` items most similar to ``item`` by content (never itself), best first."""
        key = (int(item), int(k))
        found = self._memo.get(key)
        if found is None:
            found = self._compute(int(item), int(k))
            with self._lock:
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = found
        return found

    def _compute(self, item: int, k: int) -> tuple[IntArray, FloatArray]:
        empty = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32))
        if item >= len(self.item_indptr) - 1:
            return empty
        lo, hi = int(self.item_indptr[item]), int(self.item_indptr[item + 1])
        terms, weights = self.item_terms[lo:hi], self.item_weights[lo:hi]
        if not len(terms):
            return empty
        starts, ends = self.term_indptr[terms], self.term_indptr[terms + 1]
        lengths = ends - starts
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            int(lengths.sum())
        )
        candidates = self.term_items[positions]
        products = self.term_weights[positions] * np.repeat(weights, lengths)
        unique, inverse = np.unique(candidates, return_inverse=True)
        scores = np.bincount(inverse, weights=products).astype(np.float32)
        scores[unique == item] = 0.0
        order = np.lexsort((unique, -scores))[:k]
        order = order[scores[order] > 0]
        return unique[order].astype(np.int32), scores[order]


def _indptr(sorted_rows: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    counts = np.bincount(sorted_rows, minlength=n)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
