"""Fixtures of the recommender's tests: the small shop of :mod:`recommender.shop`, fitted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.shop import fill
from recsdk import Recommender


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
def rec(db_url: str) -> Iterator[Recommender]:
    """A fitted recommender over the small shop, on a SQLite file."""
    with Recommender(db_url) as recommender:
        fill(recommender)
        recommender.fit()
        yield recommender
