"""EASE: closed form against a direct numpy solve; API invariants; persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_reference import dense, random_matrix

from recsdk.datasets import synthetic_shop
from recsdk.engine import NotFitted
from recsdk.engine.ease import EASE
from recsdk.errors import ValidationError


def test_weights_match_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    m = random_matrix(rng, 60, 15, 0.3)
    model = EASE(l2=10.0).fit(m)
    x = dense(m)
    p = np.linalg.inv(x.T @ x + 10.0 * np.eye(15))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    assert model._weights is not None
    np.testing.assert_allclose(model._weights, b, rtol=1e-4, atol=1e-6)


def test_recommend_and_similar(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    m = random_matrix(rng, 50, 12, 0.3)
    model = EASE(l2=5.0).fit(m)
    seen = set(m.row(0)[0].tolist())
    items, scores = model.recommend(0, k=5)
    assert len(items) == 5
    assert not seen & set(items.tolist())
    assert np.all(np.diff(scores) <= 0)
    items, _ = model.similar_items(3, k=50, exclude=[4])
    assert sorted(items.tolist()) == sorted(set(range(12)) - {3, 4})
    model.save(tmp_path / "ease.npz")
    loaded = EASE.load(tmp_path / "ease.npz", mmap=True)
    assert loaded.similar_items(3, k=5)[0].tolist() == model.similar_items(3, k=5)[0].tolist()
    # The trend term: scores scaled so that the best is 1, plus 0.3 * count / top count.
    history, weights = m.row(0)
    _, got = model.score(history, weights, k=12, exclude_history=False)
    raw = (weights.astype(np.float32) @ model._fitted()[history]).astype(np.float64)
    counts = np.bincount(m.indices, minlength=12)
    expected = raw / raw.max() + 0.3 * counts / counts.max()
    np.testing.assert_allclose(got, np.sort(expected)[::-1], rtol=1e-5)
    assert loaded.score(history, weights)[0].tolist() == model.score(history, weights)[0].tolist()
    for user in range(50):  # the training users' affinities are saved too
        for a, b in zip(loaded.recommend(user, k=5), model.recommend(user, k=5), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(NotFitted):
        EASE().similar_items(0)
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=5).fit(m)


@pytest.mark.parametrize(("field", "value"), [("l2", 0.0), ("l2", -1), ("max_items", 0)])
def test_bad_parameters_name_themselves(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        EASE(**{field: value})  # type: ignore[arg-type]


def test_bad_k_names_itself() -> None:
    model = EASE(l2=10.0).fit(synthetic_shop(50, 20, 400))
    with pytest.raises(ValidationError, match=r"^k: "):
        model.similar_items(0, k=-1)
