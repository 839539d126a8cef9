"""The recommender: :class:`Recommender`, the few-lines API a shop uses, and its results.

``recommender`` imports the store, the engine and cachetools; it is loaded on first use of
``recsdk.Recommender``, never by ``import recsdk``.
"""

from recsdk.recommender.batch import RecommendationBatch
from recsdk.recommender.facade import Recommender
from recsdk.recommender.results import (
    REASON_TYPES,
    Recommendation,
    Recommendations,
    UserProfile,
)

__all__ = [
    "REASON_TYPES",
    "Recommendation",
    "RecommendationBatch",
    "Recommendations",
    "Recommender",
    "UserProfile",
]
