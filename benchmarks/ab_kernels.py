"""Time edited copies of recsdk/engine/kernels.py against the package's own, in turns.

A fit's time on the project's machines swings by a fifth from one minute to the next, so a
kernel change worth a few percent shows only when the old and the new kernel run in turns,
many times, in one process, on the same inputs. This script captures the arguments of one
kernel call from a real run on the synthetic shop of ``bench_engine.py``: the fit's
``_topk_items`` (``--kernel fit``) or the list update of ``partial_fit`` with the newest 1%
of events (``--kernel update``, the benchmark's model: cosine, margin 30; ``--new-share``
sets another share). It then calls the package's kernel and each variant in turns, checks
each variant's output (the fit's arrays must be the same; the update's served lists must be
right wherever it proved them), and prints the times::

    cp recsdk/engine/kernels.py /tmp/ab/kernels_x.py    # then edit the copy
    python benchmarks/ab_kernels.py /tmp/ab/kernels_x.py --kernel fit --threads 2 --turns 8

A variant's module name is its file name, so give each variant its own. ``--keep-freed-memory``
runs the script again with glibc told to keep freed memory in the process, so that no turn
pays for pages the machine has taken back (docs/engine.md, "Incremental updates").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import numpy as np
from bench_engine import SIZES, K, partial_model, shop_events

from recsdk.engine import MEASURES
from recsdk.engine.model import Measure

_KEEP_FREED_MEMORY = {
    "MALLOC_MMAP_THRESHOLD_": str(2**32),
    "MALLOC_TRIM_THRESHOLD_": str(2**36),
}
_KERNELS = {"fit": "_topk_items", "update": "_update_items"}


def capture(
    kernel: str, size: str, measure: Measure, new_share: float = 0.01
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The arguments of the kernel's call in a fit (or update) on the synthetic shop, and
    what a variant must return: a copy of the fit's output, or the served lists
    (neighbours, scores) at the end of the update, which equal a refit's."""
    from recsdk.datasets import synthetic_shop
    from recsdk.engine import ItemSimilarity, Weighting, kernels

    n_users, n_items, n_events = SIZES[size]
    shop = synthetic_shop(n_users, n_items, n_events)
    name = _KERNELS[kernel]
    original = getattr(kernels, name)
    calls: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []

    def recording(*args: Any) -> Any:
        out = original(*args)
        calls.append((args, tuple(np.copy(a) for a in out)))
        return out

    setattr(kernels, name, recording)
    try:
        if kernel == "fit":
            model = ItemSimilarity(measure=measure, n_neighbors=K, weighting=Weighting())
            model.fit(shop_events(shop, 0, n_events))
        else:
            cut = n_events - int(n_events * new_share)
            model = partial_model()
            model.fit(shop_events(shop, 0, cut)).partial_fit(shop_events(shop, cut, n_events))
    finally:
        setattr(kernels, name, original)
    if not calls:
        raise SystemExit(f"the {kernel} did not call {name} (it fell back to another path)")
    args, expected = calls[-1]
    if kernel == "update":
        state = model._state
        assert state is not None
        expected = (state.neighbors[:, :K], state.scores[:, :K])
    return args, expected


def load_variant(path: Path) -> ModuleType:
    """Import a copy of kernels.py under its file name (numba's cache finds it there)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def check(kernel: str, out: tuple[Any, ...], expected: tuple[Any, ...]) -> str:
    """What a variant's output is worth: the fit's must equal the package's; the update's
    served lists must equal the final ones wherever the variant proved them (code <= 0; a
    variant may prove more or fewer lists, and the rest are recomputed after it)."""
    if kernel == "fit":
        same = all(np.array_equal(a, b) for a, b in zip(out, expected, strict=True))
        return "same output" if same else "DIFFERENT OUTPUT"
    proved = out[5] <= 0
    served = zip(out[:2], expected, strict=True)
    same = all(np.array_equal(a[proved, :K], b[proved]) for a, b in served)
    verdict = "served lists right" if same else "WRONG SERVED LISTS"
    return f"{verdict}, {np.count_nonzero(~proved)} lists left to recompute"


def time_in_turns(
    functions: dict[str, Callable[..., Any]], args: tuple[Any, ...], turns: int
) -> dict[str, list[float]]:
    """Seconds per call of each function, the functions taking turns."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(turns):
        for name, function in functions.items():
            start = time.perf_counter()
            out = function(*args)
            times[name].append(time.perf_counter() - start)
            del out
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", type=Path, help="edited copies of kernels.py")
    parser.add_argument("--kernel", choices=sorted(_KERNELS), default="fit")
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--measure", choices=MEASURES, default="cosine", help="--kernel fit's")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument(
        "--new-share",
        type=float,
        default=0.01,
        help="--kernel update's batch (a share of the events)",
    )
    parser.add_argument("--keep-freed-memory", action="store_true")
    args = parser.parse_args()
    if args.keep_freed_memory and not all(os.environ.get(k) for k in _KEEP_FREED_MEMORY):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_KEEP_FREED_MEMORY})

    import numba

    from recsdk.engine import kernels

    numba.set_num_threads(args.threads)
    call_args, expected = capture(
        args.kernel, args.size, cast(Measure, args.measure), args.new_share
    )
    name = _KERNELS[args.kernel]
    functions = {"recsdk": getattr(kernels, name)}
    for path in args.variants:
        functions[path.stem] = getattr(load_variant(path), name)
    for label, function in functions.items():  # compiles (or loads) each variant once
        print(f"{label}: {check(args.kernel, function(*call_args), expected)}")
    times = time_in_turns(functions, call_args, args.turns)
    base = float(np.median(times["recsdk"]))
    print(f"{name}, {args.size}, {args.threads} threads, {args.turns} turns:")
    for label, seconds in times.items():
        median = float(np.median(seconds))
        each = " ".join(f"{s:.3f}" for s in seconds)
        print(f"  {label:24s} median {median:.3f} s ({median / base:.3f}x)  min {min(seconds):.3f}")
        print(f"  {'':24s} {each}")


if __name__ == "__main__":
    main()
