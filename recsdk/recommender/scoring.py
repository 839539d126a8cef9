"""Scoring one shopper's history, and finding the history item behind each result.

``score(j) = sum_h w_h * (s_h * sim(h, j) + (1 - s_h) * content(h, j))`` over the history
items ``h`` with affinity ``w_h``, where ``s_h`` is how collaborative ``h`` is (see
:meth:`ServingState.collaborative_share`). The collaborative part is the engine's own
scoring (a numba kernel, with its trend term for what sells now), which returns the best
candidates only; the content neighbours of the colder history items are added to those, in
the same units. For the few items a list shows, the history item that contributed most is
the item a reason names ("because you viewed ..."): :func:`leading_sources` takes it from
the engine's :meth:`~recsdk.engine.ItemSimilarity.explain` and folds in content
contributions; :func:`strongest_sources` searches every contribution (the reference, and
the fallback).
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import Scored
from recsdk.recommender.rules import member
from recsdk.recommender.state import ServingState

__all__ = [
    "CONTENT_NEIGHBORS",
    "Content",
    "Ranked",
    "content_parts",
    "leading_sources",
    "score_history",
    "strongest_sources",
]

CONTENT_NEIGHBORS: Final = 20
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
_NO_ITEMS: Final[IntArray] = np.empty(0, dtype=np.int32)
_NO_SCORES: Final[FloatArray] = np.empty(0, dtype=np.float64)


Content = tuple[list[IntArray], list[FloatArray], list[int]]
"""Content neighbours of some sources, weighted, and the sources' positions."""
_NO_CONTENT: Content = ([], [], [])


@attrs.frozen(eq=False)
class Ranked:
    """Candidates, best first (ties by index), and whether they are all there are.

    ``found`` and ``leaders`` are the engine's candidates and, for each, the position of
    the source that led to it (-1: the trend term alone), from :meth:`ItemSimilarity.explain`.
    """

    items: IntArray
    scores: FloatArray
    complete: bool
    content: Content = _NO_CONTENT
    found: IntArray = _NO_ITEMS
    leaders: IntArray = _NO_ITEMS


def content_parts(
    state: ServingState, sources: IntArray, weights: FloatArray, share: FloatArray
) -> Content:
    """Content neighbours of the sources that are not fully collaborative, weighted.

    Returns the neighbour lists, their weighted scores and the sources' positions.
    """
    cold = np.flatnonzero(share < 1.0)
    if not len(cold) or not state.content().has_terms:
        return _NO_CONTENT
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
    found = None
    complete = True
    model = state.similarity
    if model is not None and len(sources) and bool((share > 0).any()):
        size = min(size, model.n_items)
        found = model.explain(
            sources, weights * share, k=size, exclude=blocked, exclude_history=False, fill=False
        )
        complete = len(found.items) < size or size >= model.n_items
    content = content_parts(state, sources, weights, share)
    if found is None:
        return _blended(_NO_ITEMS, _NO_SCORES, content, 1.0, blocked, complete)
    leaders = found.sources.astype(np.int32)
    if not content[0]:
        items, scores = found.items.astype(np.int32), found.scores.astype(np.float64)
        return Ranked(items, scores, complete, content, items, leaders)
    ranked = _blended(found.items, found.scores, content, _scale(state, found), blocked, complete)
    return attrs.evolve(ranked, found=found.items.astype(np.int32), leaders=leaders)


def _scale(state: ServingState, found: Scored) -> float:
    """What the engine divided neighbour sums by before adding its trend term (else 1).

    With a ``trend_weight`` the engine scales a user's neighbour sums so that the best is
    1; content contributions, sums of the same kind, are scaled alike. The best sum is
    taken at the precision of the engine's scores, as it always was.
    """
    best = float(np.float32(found.top))
    trend = state.similarity is not None and state.similarity.trend_weight
    return best if trend and best > 0 else 1.0


def _blended(
    items: npt.NDArray[np.integer],
    scores: npt.NDArray[np.floating],
    content: Content,
    scale: float,
    blocked: IntArray,
    complete: bool,
) -> Ranked:
    """Collaborative candidates plus the content ones (divided by ``scale``), ranked."""
    parts_i: list[npt.NDArray[np.integer]] = [items, *content[0]]
    parts_s: list[npt.NDArray[np.floating]] = [scores, *(part / scale for part in content[1])]
    unique, inverse = np.unique(np.concatenate(parts_i), return_inverse=True)
    totals = np.bincount(inverse, weights=np.concatenate(parts_s)).astype(np.float64)
    keep = totals > 0
    if len(blocked):
        keep &= ~member(unique, blocked)
    unique, totals = unique[keep], totals[keep]
    order = np.lexsort((unique, -totals))
    return Ranked(unique[order].astype(np.int32), totals[order], complete, content)


def leading_sources(
    state: ServingState,
    sources: IntArray,
    weights: FloatArray,
    share: FloatArray,
    ranked: Ranked,
    chosen: IntArray,
) -> dict[int, int]:
    """:func:`strongest_sources` of ``chosen``, from what :func:`score_history` found.

    The engine named the strongest collaborative source of its candidates; content
    contributions are folded in for the few items content neighbours reach. Items the
    engine did not return but content did are searched for as before.
    """
    leaders = _engine_leaders(ranked, chosen)
    if not ranked.content[0]:
        return {item: leader for item, leader in leaders.items() if leader >= 0}
    reached = _content_contributions(ranked.content, chosen)
    factors = share * weights
    out: dict[int, int] = {}
    unknown: list[int] = []
    for item in chosen.tolist():
        leader = leaders.get(item)
        offers = reached.get(item, [])
        if leader is None and offers:
            unknown.append(item)  # content reached it, the engine's list did not
        elif leader is not None and leader >= 0:
            strength = _similarity(state, sources, leader, item) * float(factors[leader])
            out[item] = min([*offers, (strength, leader)], key=_strongest_first)[1]
        elif offers:
            out[item] = min(offers, key=_strongest_first)[1]
    if unknown:
        missing = np.array(unknown, dtype=np.int32)
        out.update(strongest_sources(state, sources, weights, share, missing, ranked.content))
    return out


def _strongest_first(offer: tuple[float, int]) -> tuple[float, int]:
    return -offer[0], offer[1]


def _engine_leaders(ranked: Ranked, chosen: IntArray) -> dict[int, int]:
    """The engine's leading source of each chosen item it returned."""
    found = ranked.found
    if not len(found) or not len(chosen):
        return {}
    order = np.argsort(found, kind="stable")
    at = np.searchsorted(found, chosen, sorter=order)
    at[at >= len(found)] = 0
    slots = order[at]
    hit = found[slots] == chosen
    return dict(zip(chosen[hit].tolist(), ranked.leaders[slots[hit]].tolist(), strict=True))


def _content_contributions(
    content: Content, chosen: IntArray
) -> dict[int, list[tuple[float, int]]]:
    """Per chosen item, its positive content contributions and their sources' positions."""
    wanted = set(chosen.tolist())
    out: dict[int, list[tuple[float, int]]] = {}
    for items, scores, position in zip(*content, strict=True):
        for item, score in zip(items.tolist(), scores.tolist(), strict=True):
            if item in wanted and score > 0:
                out.setdefault(item, []).append((score, position))
    return out


def _similarity(state: ServingState, sources: IntArray, position: int, item: int) -> float:
    """The model's stored similarity of ``item`` to the source at ``position``."""
    neighbours, similarities = state.neighbors(int(sources[position]))
    return float(similarities[np.flatnonzero(neighbours == item)[0]])


def strongest_sources(
    state: ServingState,
    sources: IntArray,
    weights: FloatArray,
    share: FloatArray,
    chosen: IntArray,
    content: Content | None = None,
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
