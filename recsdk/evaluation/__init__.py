"""Offline evaluation: splits, ranking metrics and a popularity baseline.

Works on any model with a ``recommend(user, k)`` method; it does not import the engine.
"""

from __future__ import annotations

from recsdk.evaluation.baselines import Popularity
from recsdk.evaluation.metrics import METRICS, Recommends, evaluate, rank_metrics
from recsdk.evaluation.splits import EventArrays, Split, leave_last_out, temporal_split

__all__ = [
    "METRICS",
    "EventArrays",
    "Popularity",
    "Recommends",
    "Split",
    "evaluate",
    "leave_last_out",
    "rank_metrics",
    "temporal_split",
]
