"""warmup() compiles every kernel a model runs, whichever way the model was made."""

from __future__ import annotations

from pathlib import Path

import pytest
from compiled_late import compiled_late, needs_jit

from recsdk.datasets import synthetic_shop
from recsdk.engine import ItemSimilarity, Weighting

pytestmark = needs_jit

_SERVE_AFTER_WARMUP = """
import sys
import attrs
from recsdk.datasets import synthetic_shop
from recsdk.engine import ItemSimilarity

how, path = sys.argv[1], sys.argv[2]
if how == "fit":
    # Warmed up before its fit, with the saved model's configuration.
    model = attrs.evolve(ItemSimilarity.load(path))
    assert model.warmup() is model
    model.fit(synthetic_shop(300, 80, 3000, seed=5))
else:
    model = ItemSimilarity.load(path, mmap=how == "mmap")
    assert model.warmup() is model
mark()
model.similar_items(3, 5)
model.recommend(7, k=5)
model.explain([1, 2], k=5)
model.recommend_all(k=5)
model.recommend_all([4, 9], k=5)
model.partial_fit(synthetic_shop(320, 90, 600, seed=6))  # new users and items
model.partial_fit(synthetic_shop(320, 90, 300, seed=7))
model.recommend_all(k=5)
report()
"""


@pytest.mark.parametrize("how", ["mmap", "read", "fit"])
@pytest.mark.parametrize(
    "model",
    [ItemSimilarity(), ItemSimilarity(measure="cosine", margin=5, weighting=Weighting())],
    ids=["default", "incremental-cosine"],
)
def test_nothing_compiles_after_warmup(tmp_path: Path, how: str, model: ItemSimilarity) -> None:
    path = tmp_path / "model.npz"
    model.fit(synthetic_shop(300, 80, 3000, seed=5)).save(path)
    assert compiled_late(_SERVE_AFTER_WARMUP, how, str(path)) == {}
