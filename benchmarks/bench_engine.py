"""Engine benchmark: fit time, top-K overlap and peak memory, side by side with implicit.

Runs on the synthetic shop of ANCHORS.md (binary matrix, K=50, cosine; also recsdk's
default measure, BM25-weighted cosine, beside implicit's BM25). Every fit runs in
a fresh child process so that its peak memory can be measured alone; the matrix is built
once and shared through a temporary ``.npz``. Also: numba's first-call (compile) versus
cached cost in fresh processes, and batch scoring throughput.

    python benchmarks/bench_engine.py                 # 200k users x 50k items x 5M events
    python benchmarks/bench_engine.py --large         # also 1M x 200k x 20M
    python benchmarks/bench_engine.py --threads 1 2   # fit scaling by thread count
    python benchmarks/bench_engine.py --warm-memory 2 # fits on memory already touched
    python benchmarks/bench_engine.py --real          # only partial_fit, on real logs

Machines are noisy: every engine fits ``--repeat`` times (3), in turns, and the best run of
each is compared; the cosine ratio of each turn is printed too, to show the spread.
``partial_fit`` and its refit take turns the same way.

Needs the ``bench`` extra (implicit, scipy, psutil); implicit's rows are skipped without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recsdk.arrays import EventArrays
    from recsdk.datasets import SyntheticShop
    from recsdk.engine import ItemSimilarity, UserItemMatrix

K = 50
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZES = {"medium": (200_000, 50_000, 5_000_000), "large": (1_000_000, 200_000, 20_000_000)}
# partial_fit's batches, as shares of the events: 1% (the target's) and the smaller ones of
# frequent updates.
PARTIAL_SHARES = (0.01, 0.001, 0.0001)


# --------------------------------------------------------------------------- child side


class PeakMemory:
    """Samples this process's RSS every few milliseconds; ``peak`` minus the start."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def delta_mb(self) -> float:
        return float(self.peak - self.start) / 2**20


def _load_matrix(path: str) -> Any:
    import scipy.sparse as sp

    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        return sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape)


def child_fit(
    engine: str, matrix_path: str, out_path: str, threads: int, warm_gb: float
) -> dict[str, Any]:
    """Fit one engine on the shared matrix; save its top-K lists; report time and memory."""
    x = _load_matrix(matrix_path)
    _warm_memory(warm_gb)
    if engine.startswith("recsdk"):
        import numba

        from recsdk.engine import ItemSimilarity, UserItemMatrix, Weighting

        numba.set_num_threads(threads)
        m = UserItemMatrix.from_scipy(x)
        model = ItemSimilarity(
            measure="bm25" if engine == "recsdk-bm25" else "cosine",  # bm25: the default
            n_neighbors=K,
            weighting=Weighting(),
        )
        model.fit(UserItemMatrix.from_coo([0, 1], [0, 1], n_users=2, n_items=2))  # JIT
        with PeakMemory() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(m)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert model._state is not None
        top = model._state.neighbors[:, :K]
    else:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        cls = CosineRecommender if engine == "implicit-cosine" else BM25Recommender
        rec = cls(K=K + 1, num_threads=threads)
        with PeakMemory() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            rec.fit(x, show_progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        top = _implicit_top(rec.similarity.tocsr(), x.shape[1])
    np.save(out_path, top)
    return {"wall": wall, "cpu": cpu, "peak_mb": mem.delta_mb}


def _warm_memory(gigabytes: float) -> None:
    """Touch and free ``gigabytes`` of memory, so that the fit that follows allocates pages
    the virtual machine has already backed (``--warm-memory``)."""
    if gigabytes > 0:
        block = np.empty(int(gigabytes * 2**30) // 8)
        block[:: 4096 // 8] = 0.0  # one write a page
        del block


def _implicit_top(sim: Any, n_items: int) -> np.ndarray:
    """implicit's neighbour lists without the item itself, best first (ties by index)."""
    top = np.full((n_items, K), -1, dtype=np.int32)
    for i in range(n_items):
        cols = sim.indices[sim.indptr[i] : sim.indptr[i + 1]]
        vals = sim.data[sim.indptr[i] : sim.indptr[i + 1]]
        keep = cols != i
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:K]
        top[i, : len(order)] = cols[order]
    return top


def shop_events(shop: SyntheticShop | EventArrays, lo: int, hi: int) -> UserItemMatrix:
    """Events ``lo`` to ``hi`` of a log in time order (the synthetic shop's, or a real one)
    as a 0/1 user x item matrix."""
    from recsdk.engine import UserItemMatrix

    return UserItemMatrix.from_coo(
        shop.users[lo:hi], shop.items[lo:hi], n_users=shop.n_users, n_items=shop.n_items
    )


def partial_model(margin: int = 30) -> ItemSimilarity:
    """The model of the partial_fit benchmark."""
    from recsdk.engine import ItemSimilarity, Weighting

    return ItemSimilarity(measure="cosine", n_neighbors=K, margin=margin, weighting=Weighting())


def child_partial(
    size: str, threads: int, repeat: int, share: float, margin: int = 30
) -> dict[str, Any]:
    """partial_fit with the newest ``share`` of events versus a full refit on all of them,
    in turns, ``repeat`` times each (the best of each counts)."""
    import numba

    from recsdk.datasets import synthetic_shop

    numba.set_num_threads(threads)
    n_users, n_items, n_events = SIZES[size]
    shop = synthetic_shop(n_users, n_items, n_events)
    cut = n_events - int(n_events * share)
    fitted = partial_model(margin).fit(shop_events(shop, 0, cut))
    # Loads partial_fit's kernels, as the fit loaded its own.
    tiny = partial_model().fit(shop_events(shop, 0, 1000))
    tiny.partial_fit(shop_events(shop, 1000, 2000))
    new, everything = shop_events(shop, cut, n_events), shop_events(shop, 0, n_events)
    partial, full, inc, same = update_against_refit(fitted, new, everything, repeat, margin)
    return {"partial": partial, "full": full, "same": same, "stats": inc._fitted().stats}


def update_against_refit(
    fitted: ItemSimilarity,
    new: UserItemMatrix,
    everything: UserItemMatrix,
    repeat: int,
    margin: int = 30,
) -> tuple[float, float, ItemSimilarity, bool]:
    """``partial_fit(new)`` on a copy of ``fitted`` and a refit on ``everything``, in turns,
    ``repeat`` times: the best time of each, the last update, and whether its neighbours are
    the refit's."""
    import copy

    partial, full = [], []
    alive: list[ItemSimilarity] = []
    for _ in range(repeat):
        # Each call runs while the last turn's models are still alive (`alive`), as in an
        # application that serves from the old model until the new one is ready: neither
        # the update nor the refit reuses the memory of the model it replaces.
        inc = copy.copy(fitted)  # partial_fit builds new arrays: `fitted` stays as it was
        t0 = time.perf_counter()
        inc.partial_fit(new)
        partial.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        refit = partial_model(margin).fit(everything)
        full.append(time.perf_counter() - t0)
        alive[:] = [inc, refit]
    same = np.array_equal(inc._fitted().neighbors[:, :K], refit._fitted().neighbors[:, :K])
    return min(partial), min(full), inc, bool(same)


def child_jit() -> dict[str, Any]:
    """Time ItemSimilarity.warmup() in this (fresh) process."""
    t0 = time.perf_counter()
    from recsdk.engine import ItemSimilarity

    imported = time.perf_counter() - t0
    t0 = time.perf_counter()
    ItemSimilarity().warmup()
    return {"import": imported, "warmup": time.perf_counter() - t0}


def child_score(matrix_path: str, threads: int) -> dict[str, Any]:
    """Batch recommendation throughput, recsdk versus implicit, all users, N=10."""
    import numba

    from recsdk.engine import ItemSimilarity, UserItemMatrix, Weighting

    numba.set_num_threads(threads)
    x = _load_matrix(matrix_path)
    model = ItemSimilarity(measure="cosine", n_neighbors=K, weighting=Weighting())
    model.fit(UserItemMatrix.from_scipy(x))
    model.recommend_all(users=np.arange(10), k=10)
    t0 = time.perf_counter()
    model.recommend_all(k=10)
    ours = x.shape[0] / (time.perf_counter() - t0)
    model.recommend(0, k=10)  # loads the one-user kernel, as recommend_all loaded its own
    t0 = time.perf_counter()
    for user in range(2000):
        model.recommend(user, k=10)
    single = (time.perf_counter() - t0) / 2000 * 1e6
    out: dict[str, Any] = {"recsdk_users_per_s": ours, "recsdk_single_us": single}
    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        return out
    rec = CosineRecommender(K=K, num_threads=threads)
    rec.fit(x, show_progress=False)
    users = np.arange(x.shape[0])
    t0 = time.perf_counter()
    rec.recommend(users, x, N=10, filter_already_liked_items=True)
    out["implicit_users_per_s"] = x.shape[0] / (time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------- parent side


def _run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _have_implicit() -> bool:
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


def _write_matrix(size: str, path: Path) -> tuple[int, int]:
    from recsdk.datasets import synthetic_shop
    from recsdk.engine import UserItemMatrix

    n_users, n_items, n_events = SIZES[size]
    t0 = time.perf_counter()
    shop = synthetic_shop(n_users, n_items, n_events)
    generated = time.perf_counter() - t0
    m = UserItemMatrix.from_coo(shop.users, shop.items, n_users=n_users, n_items=n_items)
    ones = np.ones(m.nnz, dtype=np.float32)
    np.savez(path, indptr=m.indptr, indices=m.indices, data=ones, shape=np.array(m.shape))
    print(
        f"\n== {size}: {n_users:,} users x {n_items:,} items x {n_events:,} events "
        f"-> {m.nnz:,} distinct pairs (generated in {generated:.1f} s)"
    )
    return m.nnz, n_items


def _overlap(ours: np.ndarray, theirs: np.ndarray) -> float:
    hits = total = 0
    for a, b in zip(ours, theirs, strict=True):
        ref = set(b[b >= 0].tolist())
        hits += len(ref & set(a[a >= 0].tolist()))
        total += len(ref)
    return hits / max(total, 1)


def bench_fit(size: str, threads: list[int], tmp: Path, repeat: int, warm_gb: float) -> None:
    matrix_path = tmp / f"{size}.npz"
    _write_matrix(size, matrix_path)
    engines = ["recsdk", "recsdk-bm25"]
    engines += ["implicit-cosine", "implicit-bm25"] if _have_implicit() else []
    print(f"{'engine':<16}{'threads':>8}{'fit s':>9}{'cpu s':>9}{'peak MB':>9}{'overlap':>9}")
    for t in threads:
        results: dict[str, dict[str, Any]] = {}
        walls: dict[str, list[float]] = {engine: [] for engine in engines}
        for _ in range(repeat):  # engines take turns, so that noise hits all of them alike
            for engine in engines:
                out = tmp / f"{engine}-{size}-{t}.npy"
                run = _run_child(["fit", engine, str(matrix_path), str(out), str(t), str(warm_gb)])
                walls[engine].append(run["wall"])
                if engine not in results or run["wall"] < results[engine]["wall"]:
                    results[engine] = {**run, "top": np.load(out)}
        for engine in engines:
            r = results[engine]
            overlap = ""
            if engine == "recsdk" and "implicit-cosine" in results:
                overlap = f"{_overlap(r['top'], results['implicit-cosine']['top']):.4f}"
            print(
                f"{engine:<16}{t:>8}{r['wall']:>9.2f}{r['cpu']:>9.2f}{r['peak_mb']:>9.0f}"
                f"{overlap:>9}"
            )
        if "implicit-cosine" in results:
            for ref, ours in (("implicit-cosine", "recsdk"), ("implicit-bm25", "recsdk-bm25")):
                speed = results[ref]["wall"] / results[ours]["wall"]
                cpu = results[ref]["cpu"] / results[ours]["cpu"]
                print(f"  ratio {ref}/{ours}: wall {speed:.2f}x, cpu {cpu:.2f}x")
            print(f"  per turn, implicit-cosine/recsdk: {_turn_ratios(walls)}")
    score = _run_child(["score", str(matrix_path), str(max(threads))])
    line = f"batch recommend (all users, N=10): recsdk {score['recsdk_users_per_s']:,.0f} users/s"
    if "implicit_users_per_s" in score:
        line += f", implicit {score['implicit_users_per_s']:,.0f} users/s"
    print(line)
    print(f"single recommend (python call + kernel): {score['recsdk_single_us']:.0f} us")
    # margin 30 as the docs advise for models that are updated; then the default, where a
    # 1% batch reorders most lists and the update gives up for a refit.
    for share, margin in [*((share, 30) for share in PARTIAL_SHARES), (0.01, 0)]:
        args = [size, str(max(threads)), str(repeat), str(share), str(margin)]
        inc = _run_child(["partial", *args])
        print(
            f"partial_fit (newest {share:.2%} of events, cosine, margin {margin}, "
            f"best of {repeat}): {inc['partial']:.3f} s vs "
            f"full refit {inc['full']:.2f} s = {inc['full'] / inc['partial']:.1f}x; "
            f"same neighbours: {inc['same']}; {inc['stats']}"
        )


def _turn_ratios(walls: dict[str, list[float]]) -> str:
    """The cosine ratio of each turn and their median: fits minutes apart can run at very
    different speeds, and this shows how far the best-of ratio can be trusted."""
    ratios = [
        ref / ours for ref, ours in zip(walls["implicit-cosine"], walls["recsdk"], strict=True)
    ]
    shown = " ".join(f"{r:.2f}x" for r in ratios)
    return f"{shown} (median {float(np.median(ratios)):.2f}x)"


def bench_jit(tmp: Path) -> None:
    cache = tmp / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    cold = _run_child(["jit"], env)
    warm = _run_child(["jit"], env)
    print(
        f"\nJIT: first call in a fresh process with an empty cache {cold['warmup']:.1f} s; "
        f"cached {warm['warmup']:.2f} s (import {warm['import']:.2f} s)"
    )


def bench_partial_real(repeat: int) -> None:
    """partial_fit with the newest events of the real logs (in time order) against a refit,
    in this process: Online Retail's purchases and MovieLens-100k's ratings."""
    from recsdk.datasets import load_movielens, load_online_retail

    logs = {
        "Online Retail": (DATA / "online-retail" / "online_retail.csv.gz", load_online_retail),
        "MovieLens-100k": (DATA / "ml-100k" / "u.data", load_movielens),
    }
    for name, (path, load) in logs.items():
        if not path.exists():
            print(f"partial_fit on {name}: skipped, {path} not found")
            continue
        log = load(path)
        n = len(log)
        partial_model().fit(shop_events(log, 0, 1000)).partial_fit(shop_events(log, 1000, 2000))
        for share in PARTIAL_SHARES[:2]:
            cut = n - int(n * share)
            fitted = partial_model().fit(shop_events(log, 0, cut))
            new, everything = shop_events(log, cut, n), shop_events(log, 0, n)
            partial, full, _, same = update_against_refit(fitted, new, everything, repeat)
            print(
                f"partial_fit on {name} (newest {share:.2%} of {n:,} events, best of {repeat}): "
                f"{partial * 1e3:.1f} ms vs full refit {full * 1e3:.1f} ms = "
                f"{full / partial:.1f}x; same neighbours: {same}"
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "fit":
            result = child_fit(rest[0], rest[1], rest[2], int(rest[3]), float(rest[4]))
        elif kind == "jit":
            result = child_jit()
        elif kind == "partial":
            result = child_partial(
                rest[0], int(rest[1]), int(rest[2]), float(rest[3]), int(rest[4])
            )
        else:
            result = child_score(rest[0], int(rest[1]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also run 1M x 200k x 20M")
    parser.add_argument("--only-large", action="store_true", help="run only the large size")
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1])
    parser.add_argument("--no-jit", action="store_true", help="skip the JIT cost runs")
    parser.add_argument(
        "--real",
        action="store_true",
        help="only partial_fit against a refit, on Online Retail and MovieLens-100k",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="fits per engine, in turns; the best is shown"
    )
    parser.add_argument(
        "--warm-memory",
        type=float,
        default=0.0,
        metavar="GB",
        help="each fit first touches and frees this much memory (0: none): on virtual "
        "machines that back memory lazily a page's first touch is slow (about 3 s a GB on "
        "the project's), and the engine that allocates more pays more",
    )
    args = parser.parse_args()
    if args.real:
        bench_partial_real(max(args.repeat, 5))
        return
    if not _have_implicit():
        print("implicit is not installed (pip install 'recsdk[bench]'): recsdk rows only")
    sizes = ["large"] if args.only_large else ["medium"] + (["large"] if args.large else [])
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.no_jit:
            bench_jit(tmp)
        for size in sizes:
            bench_fit(size, args.threads, tmp, args.repeat, args.warm_memory)


if __name__ == "__main__":
    main()
