"""Saving the fitted state to a folder next to the database, and loading it memory-mapped.

Layout of the folder (``shop.db.recsdk/`` beside ``shop.db`` by default)::

    current                 the name of the version being served, replaced atomically
    <version>/state.npz     trending scores, popularity, watermark, erasure mark, format
    <version>/similarity.npz, <version>/together.npz   the engine's models

A save writes a new version folder, then points ``current`` at it, so a web worker
loading at that moment reads either the old version or the new one, never half of one.
Every file holds plain arrays (no pickle) and is mapped read-only on load: several
gunicorn workers share one copy in the page cache. The item ids and the catalog are not
saved: a load reads them from the database, which always has them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from recsdk.engine import ItemSimilarity, UserItemMatrix
from recsdk.recommender.state import FitOptions, ServingState, assemble, read_items
from recsdk.recommender.trending import Trending
from recsdk.store import EventStore

__all__ = ["current_version", "load_state", "save_state"]

_FORMAT: Final = "recsdk.Recommender/1"
_POINTER: Final = "current"
_KEEP: Final = 2  # versions kept: the current one and the one before (maybe still mapped)


def current_version(folder: Path) -> str | None:
    """The version ``current`` names, or ``None`` when nothing was saved."""
    try:
        return (folder / _POINTER).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def save_state(state: ServingState, folder: Path) -> str:
    """Write ``state`` as a new version in ``folder`` and make it current; return its name."""
    folder.mkdir(parents=True, exist_ok=True)
    version = f"v{time.time_ns()}-{os.getpid()}"
    scratch = folder / f".{version}.tmp"
    scratch.mkdir()
    if state.similarity is not None:
        state.similarity.save(scratch / "similarity.npz")
    if state.together is not None:
        state.together.save(scratch / "together.npz")
    meta = {
        "format": _FORMAT,
        "saved_at": time.time(),
        "watermark": state.watermark,
        "erasures": state.erasures,
    }
    arrays: dict[str, npt.NDArray[Any]] = {
        "meta": np.asarray(json.dumps(meta)),
        "trending_scores": state.trending.scores,
        "trending_reference": np.asarray(state.trending.reference, dtype=np.float64),
        "trending_half_life": np.asarray(state.trending.half_life_days, dtype=np.float64),
        "popularity": state.rankings.popularity,
        **_purchase_arrays(state.purchases),
    }
    np.savez(scratch / "state.npz", **arrays)  # type: ignore[arg-type]
    scratch.rename(folder / version)
    pointer = folder / f".{_POINTER}.{version}.tmp"
    pointer.write_text(version, encoding="utf-8")
    os.replace(pointer, folder / _POINTER)
    _prune(folder, version, state.erasures)
    return version


def _prune(folder: Path, current: str, erasures: int) -> None:
    """Remove the oldest versions beyond ``_KEEP``, and every version fitted before an
    erasure that ``current`` was fitted after (it may hold erased events)."""
    versions = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("v"))
    others = [v for v in versions if v != current]
    old = set(others[: max(0, len(versions) - _KEEP)])
    old.update(v for v in others if _erasures(folder / v) < erasures)
    for name in old:
        shutil.rmtree(folder / name, ignore_errors=True)  # a mapped file stays readable


def _erasures(where: Path) -> int:
    """The erasure mark a saved version was fitted under (0 before marks were saved)."""
    try:
        with np.load(where / "state.npz", allow_pickle=False) as data:
            return int(json.loads(str(data["meta"])).get("erasures", 0))
    except (OSError, ValueError, KeyError):
        return -1  # unreadable: nothing worth keeping


def load_state(
    folder: Path, store: EventStore, options: FitOptions, generation: int
) -> tuple[ServingState, str] | None:
    """The current saved state, mapped from ``folder``; ``None`` when nothing was saved."""
    version = current_version(folder)
    if version is None:
        return None
    where = folder / version
    with np.load(where / "state.npz", allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{where}: not a saved recsdk.Recommender state")
        trending = Trending(
            np.array(data["trending_scores"]),
            float(data["trending_reference"]),
            float(data["trending_half_life"]),
        )
        popularity = np.array(data["popularity"])
        purchases = _purchases(data)
    similarity = _model(where / "similarity.npz")
    together = _model(where / "together.npz")
    items = read_items(store)
    state = assemble(
        generation, options, similarity, together, items, trending, int(meta["watermark"]),
        purchases, popularity, erasures=int(meta.get("erasures", 0)),
    )  # fmt: skip
    return state, version


def _purchase_arrays(purchases: UserItemMatrix | None) -> dict[str, npt.NDArray[Any]]:
    if purchases is None:
        return {}
    return {
        "purchases_indptr": purchases.indptr,
        "purchases_indices": purchases.indices,
        "purchases_shape": np.asarray(purchases.shape, dtype=np.int64),
    }


def _purchases(data: Any) -> UserItemMatrix | None:
    if "purchases_indptr" not in data:
        return None
    indices = np.array(data["purchases_indices"])
    n_users, n_items = (int(v) for v in data["purchases_shape"])
    ones = np.ones(len(indices), dtype=np.float32)
    return UserItemMatrix(np.array(data["purchases_indptr"]), indices, ones, n_users, n_items)


def _model(path: Path) -> ItemSimilarity | None:
    return ItemSimilarity.load(path, mmap=True) if path.exists() else None
