"""What a script compiles after its warmup: the warmup tests' shared runner.

The script runs in a fresh interpreter, where numba lists a kernel's compiled (or cache
loaded) variants only once that process has used them: a variant that first appears after
the script's ``mark()`` was compiled (or loaded) on the request path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

needs_jit = pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no kernels are compiled without JIT"
)

_PRELUDE = """
import json
import numba
from recsdk.engine import kernels

def _variants():
    return {
        name: [str(s) for s in kernel.signatures]
        for name, kernel in vars(kernels).items()
        if isinstance(kernel, numba.core.registry.CPUDispatcher)
    }

def mark():
    global _before
    _before = _variants()

def report():
    after = _variants()
    print(json.dumps({n: [s for s in v if s not in _before.get(n, [])] for n, v in after.items()}))
"""


def compiled_late(script: str, *args: str) -> dict[str, list[str]]:
    """Run ``script`` (which calls ``mark()`` after its warmup and ``report()`` at its end)
    with ``args`` in ``sys.argv``; return the kernel variants that appeared in between."""
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    late: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return {name: variants for name, variants in late.items() if variants}
