"""The recommendation engine: interactions -> weighted matrix -> numba kernels -> models.

Numbers only: the engine takes integer arrays and never imports the store or sqlalchemy.
"""

from __future__ import annotations

from recsdk.engine.ease import EASE
from recsdk.engine.matrix import (
    DEFAULT_TYPE_WEIGHTS,
    InteractionsLike,
    UserItemMatrix,
    Weighting,
    bot_users,
    build_matrix,
)
from recsdk.engine.model import MEASURES, ItemSimilarity, NotFitted, Scored

__all__ = [
    "DEFAULT_TYPE_WEIGHTS",
    "EASE",
    "MEASURES",
    "InteractionsLike",
    "ItemSimilarity",
    "NotFitted",
    "Scored",
    "UserItemMatrix",
    "Weighting",
    "bot_users",
    "build_matrix",
]
