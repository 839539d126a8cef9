"""A module a ``RECSDK_RECOMMENDER`` setting can name (tests of the setting)."""

from __future__ import annotations

from typing import Any


class _Lists:
    def recommend(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def similar_items(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def invalidate(self, *args: Any, **kwargs: Any) -> None:
        pass


RECOMMENDER = _Lists()
NOT_ONE = object()


def factory() -> _Lists:
    return RECOMMENDER
