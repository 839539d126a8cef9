"""Scoring one shopper's history, and finding the history item behind each result.

``score(j) = sum_h w_h * (s_h * sim(h, j) + (1 - s_h) * content(h, j))`` over the history
items ``h`` with affinity ``w_h``, where ``s_h`` is how collaborative ``h`` is (see
:meth:`ServingState.collaborative_share`). The collaborative part is the engine's own
scoring (a numba kernel, with its trend term for what sells now), which returns the best
candidates only; the content neighbours of the colder history items are added to those, in
the same units. :func:`strongest_sources` then finds, for the
few items a list shows, the history item that contributed most: the item a reason names
("because you viewed ...").
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.recommender.rules import member
from recsdk.recommender.state import ServingState

__all__ = ["CONTENT_NEIGHBORS", "Ranked", "content_parts", "score_history", "strongest_sources"]

CONTENT_NEIGHBORS: Final = 20
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class Ranked:
    """Candidates, best first (ties by index), and whether they are all there are."""

    items: IntArray
    scores: FloatArray
    complete: bool
    content: tuple[list[IntArray], list[FloatArray], list[int]] = ([], [], [])


def content_parts(
    state: ServingState, sources: IntArray, weights: FloatArray, share: FloatArray
) -> tuple[list[IntArray], list[FloatArray], list[int]]:
    """Content neighbours of the sources that are not fully collaborative, weighted.

    Returns the neighbour lists, their weighted scores and the sources' positions.
    """
    cold = np.flatnonzero(share < 1.0)
    if not len(cold) or not state.content().has_terms:
        return [], [], []
    content = state.content()
    parts_i: list[IntArray] = []
    parts_s: list[FloatArray] = []
    for position in cold.tolist():
        items, scores = content.neighbors(int(sources[position]), CONTENT_NEIGHBORS)
        parts_i.append(items)
        parts_s.append(scores * ((1.0 - share[position]) * weights[position]))
    return parts_i, parts_s, cold.tolist()


def score_history(
    state: ServingState,
    sources: IntArray,
    weights: FloatArray,
    share: FloatArray,
    blocked: IntArray,
    size: int,
) -> Ranked:
    """The best ``size`` collaborative candidates, plus every content one, none blocked."""
    parts_i: list[npt.NDArray[np.integer]] = []
    parts_s: list[npt.NDArray[np.floating]] = []
    complete = True
    model = state.similarity
    if model is not None and len(sources) and bool((share > 0).any()):
        size = min(size, model.n_items)
        items, scores = model.score(
            sources, weights * share, k=size, exclude=blocked, exclude_history=False, fill=False
        )
        parts_i.append(items)
        parts_s.append(scores)
        complete = len(items) < size or size >= model.n_items
    content_i, content_s, cold = content_parts(state, sources, weights, share)
    if not content_i:
        if not parts_i:
            return Ranked(np.empty(0, np.int32), np.empty(0, np.float64), True)
        return Ranked(parts_i[0].astype(np.int32), parts_s[0].astype(np.float64), complete)
    content = (content_i, content_s, cold)
    scale = _neighbour_scale(state, sources, weights * share, blocked) if parts_i else 1.0
    parts_i += content_i
    parts_s += [part / scale for part in content_s]
    unique, inverse = np.unique(np.concatenate(parts_i), return_inverse=True)
    totals = np.bincount(inverse, weights=np.concatenate(parts_s)).astype(np.float64)
    keep = totals > 0
    if len(blocked):
        keep &= ~member(unique, blocked)
    unique, totals = unique[keep], totals[keep]
    order = np.lexsort((unique, -totals))
    return Ranked(unique[order].astype(np.int32), totals[order], complete, content)


def _neighbour_scale(
    state: ServingState, sources: IntArray, weights: FloatArray, blocked: IntArray
) -> float:
    """What the engine divides neighbour sums by before adding its trend term (else 1).

    With a ``trend_weight`` the engine scales a user's neighbour sums so that the best is
    1; content contributions, sums of the same kind, are scaled alike.
    """
    model = state.similarity
    if model is None or not model.trend_weight:
        return 1.0
    _, best = model.score(
        sources, weights, k=1, exclude=blocked, exclude_history=False, fill=False, trend=False
    )
    return float(best[0]) if len(best) and best[0] > 0 else 1.0


def strongest_sources(
    state: ServingState,
    sources: IntArray,
    weights: FloatArray,
    share: FloatArray,
    chosen: IntArray,
    content: tuple[list[IntArray], list[FloatArray], list[int]] | None = None,
) -> dict[int, int]:
    """For each chosen item, the position of the source contributing most to its score.

    Ties go to the earliest source (the history's strongest item). ``content`` is
    :func:`content_parts` of the same sources, when already at hand.
    """
    rows = [state.neighbors(item) for item in sources.tolist()]
    parts_i: list[npt.NDArray[np.integer]] = [row[0] for row in rows]
    parts_s: list[npt.NDArray[np.floating]] = [row[1] for row in rows]
    lengths = [len(row[0]) for row in rows]
    factors = (share * weights).tolist()
    positions = list(range(len(sources)))
    content_i, content_s, cold = content or content_parts(state, sources, weights, share)
    parts_i += content_i
    parts_s += content_s
    lengths += [len(part) for part in content_i]
    factors += [1.0] * len(cold)  # content parts come weighted
    positions += cold
    if not parts_i:
        return {}
    candidates = np.concatenate(parts_i)
    hit = member(candidates, np.sort(chosen))
    candidates = candidates[hit]
    contributions = (np.concatenate(parts_s) * np.repeat(factors, lengths))[hit]
    origins = np.repeat(positions, lengths)[hit]
    positive = contributions > 0
    candidates, contributions, origins = (
        candidates[positive],
        contributions[positive],
        origins[positive],
    )
    # Per candidate, the largest contribution first, then the earliest source.
    order = np.lexsort((origins, -contributions, candidates))
    candidates, origins = candidates[order], origins[order]
    first = np.ones(len(candidates), dtype=bool)
    first[1:] = candidates[1:] != candidates[:-1]
    return dict(zip(candidates[first].tolist(), origins[first].tolist(), strict=True))
