"""warmup() compiles every kernel a model runs, whichever way the model was made.

Each case runs in a fresh interpreter, where numba lists a kernel's compiled (or cache
loaded) variants only once this process has used them: a variant that first appears
after ``warmup()`` was compiled on the request path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recsdk.datasets import synthetic_shop
from recsdk.engine import ItemSimilarity, Weighting

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no kernels are compiled without JIT"
)

_SERVE_AFTER_WARMUP = textwrap.dedent(
    """
    import json, sys
    import attrs, numba
    from recsdk.datasets import synthetic_shop
    from recsdk.engine import ItemSimilarity, UserItemMatrix, kernels

    def variants():
        return {
            name: [str(s) for s in kernel.signatures]
            for name, kernel in vars(kernels).items()
            if isinstance(kernel, numba.core.registry.CPUDispatcher)
        }

    how, path = sys.argv[1], sys.argv[2]
    if how == "fit":
        # Warmed up before its fit, with the saved model's configuration.
        model = attrs.evolve(ItemSimilarity.load(path))
        assert model.warmup() is model
        model.fit(synthetic_shop(300, 80, 3000, seed=5))
    else:
        model = ItemSimilarity.load(path, mmap=how == "mmap")
        assert model.warmup() is model
    before = variants()
    model.similar_items(3, 5)
    model.recommend(7, k=5)
    model.explain([1, 2], k=5)
    model.recommend_all(k=5)
    model.recommend_all([4, 9], k=5)
    shop = synthetic_shop(320, 90, 600, seed=6)
    model.partial_fit(shop)  # new users and items
    model.partial_fit(synthetic_shop(320, 90, 300, seed=7))
    model.recommend_all(k=5)
    after = variants()
    print(json.dumps({n: [s for s in v if s not in before.get(n, [])] for n, v in after.items()}))
    """
)


@pytest.mark.parametrize("how", ["mmap", "read", "fit"])
@pytest.mark.parametrize(
    "model",
    [ItemSimilarity(), ItemSimilarity(measure="cosine", margin=5, weighting=Weighting())],
    ids=["default", "incremental-cosine"],
)
def test_nothing_compiles_after_warmup(tmp_path: Path, how: str, model: ItemSimilarity) -> None:
    path = tmp_path / "model.npz"
    model.fit(synthetic_shop(300, 80, 3000, seed=5)).save(path)
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_AFTER_WARMUP, how, str(path)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    compiled_late = {name: v for name, v in json.loads(done.stdout).items() if v}
    assert compiled_late == {}
