"""A recommender that loads a saved state warms up once: its requests compile nothing.

The check runs in a fresh interpreter, where numba lists a kernel's compiled (or cache
loaded) variants only once the process has used them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from recsdk import Recommender

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no kernels are compiled without JIT"
)

_SERVE_AFTER_WARMUP = textwrap.dedent(
    """
    import json, sys
    import numba
    from recsdk import Recommender
    from recsdk.engine import kernels

    def variants():
        return {
            name: [str(s) for s in kernel.signatures]
            for name, kernel in vars(kernels).items()
            if isinstance(kernel, numba.core.registry.CPUDispatcher)
        }

    with Recommender(sys.argv[1]) as rec:  # loads the saved state, memory-mapped
        assert rec.warmup() is rec
        before = variants()
        rec.recommend("u1", k=5)
        rec.recommend_many(["u1", "u2"], k=5)
        rec.recommend_many(k=5)
        rec.similar_items("k1", k=5)
        rec.bought_together("k1", k=5)
        rec.trending(k=5)
        rec.track("view", user_id="u-new", item_id="k2")
        rec.refresh()
        rec.recommend("u-new", k=5)
        rec.recommend_many(k=5)
        after = variants()
    print(json.dumps({n: [s for s in v if s not in before.get(n, [])] for n, v in after.items()}))
    """
)


def test_requests_after_warmup_compile_nothing(rec: Recommender, db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_AFTER_WARMUP, db_url],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    compiled_late = {name: v for name, v in json.loads(done.stdout).items() if v}
    assert compiled_late == {}
