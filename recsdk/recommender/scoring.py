"""Scoring one shopper's history: neighbours summed, with each candidate's strongest source.

``score(j) = sum_h w_h * (s_h * sim(h, j) + (1 - s_h) * content(h, j))`` over the history
items ``h`` with affinity ``w_h``, where ``s_h`` is how collaborative ``h`` is (see
:meth:`ServingState.collaborative_share`): the engine's scoring rule, with content
neighbours blended in for items few shoppers touched. Summing the stored neighbour rows in
numpy keeps each contribution, so the history item that contributed most to a chosen
candidate can be found: the item its reason names ("because you viewed ...").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.recommender.state import ServingState

__all__ = ["CONTENT_NEIGHBORS", "Scored", "content_parts", "score_history"]

CONTENT_NEIGHBORS: Final = 50
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class Scored:
    """Candidates of one history, by item index, and every contribution to them.

    ``items`` and ``scores`` are the candidates and their summed scores; the contributions
    (``candidates``, ``contributions``, ``origins``: candidate, amount and the position of
    the history item it comes from) are sorted by candidate, ``starts`` marking where each
    candidate's begin.
    """

    items: IntArray
    scores: FloatArray
    candidates: IntArray
    contributions: FloatArray
    origins: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]

    def strongest_sources(self, chosen: Iterable[int]) -> dict[int, int]:
        """For each chosen candidate, the position of the history item contributing most.

        Ties go to the earliest history item (the strongest one).
        """
        wanted = np.fromiter(chosen, dtype=np.int64)
        at = np.searchsorted(self.items, wanted)
        found = at < len(self.items)
        found[found] = self.items[at[found]] == wanted[found]
        wanted, at = wanted[found], at[found]
        if not len(at):
            return {}
        lo = self.starts[at]
        hi = np.append(self.starts, len(self.candidates))[at + 1]
        lengths = hi - lo
        # The contributions of the chosen candidates, one segment after the other.
        offsets = np.cumsum(lengths) - lengths
        positions = np.repeat(lo - offsets, lengths) + np.arange(int(lengths.sum()))
        values = self.contributions[positions]
        best = np.maximum.reduceat(values, offsets)
        hits = np.flatnonzero(values == np.repeat(best, lengths))
        first = hits[np.searchsorted(hits, offsets)]
        return dict(zip(wanted.tolist(), self.origins[positions[first]].tolist(), strict=True))


EMPTY: Final = Scored(
    np.empty(0, dtype=np.int32),
    np.empty(0, dtype=np.float64),
    np.empty(0, dtype=np.int32),
    np.empty(0, dtype=np.float64),
    np.empty(0, dtype=np.int64),
    np.empty(0, dtype=np.int64),
)


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
    state: ServingState, sources: IntArray, weights: FloatArray, share: FloatArray
) -> Scored:
    """Every candidate of a history, its score and its strongest source."""
    if not len(sources):
        return EMPTY
    rows = [state.neighbors(item) for item in sources.tolist()]
    parts_i: list[IntArray] = [row[0] for row in rows]
    parts_s: list[npt.NDArray[np.floating]] = [row[1] for row in rows]
    lengths = [len(row[0]) for row in rows]
    factors = (share * weights).tolist()
    positions = list(range(len(sources)))
    content_i, content_s, cold = content_parts(state, sources, weights, share)
    parts_i += content_i
    parts_s += content_s
    lengths += [len(part) for part in content_i]
    factors += [1.0] * len(cold)  # content parts come weighted
    positions += cold
    candidates = np.concatenate(parts_i)
    if not len(candidates):
        return EMPTY
    contributions = np.concatenate(parts_s).astype(np.float64) * np.repeat(factors, lengths)
    origins = np.repeat(positions, lengths)
    order = np.argsort(candidates, kind="stable")  # stable: history order within a candidate
    candidates, contributions, origins = candidates[order], contributions[order], origins[order]
    boundary = np.empty(len(candidates), dtype=bool)
    boundary[0] = True
    np.not_equal(candidates[1:], candidates[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    return Scored(
        candidates[starts].astype(np.int32),
        np.add.reduceat(contributions, starts),
        candidates.astype(np.int32),
        contributions,
        origins.astype(np.int64),
        starts.astype(np.int64),
    )
