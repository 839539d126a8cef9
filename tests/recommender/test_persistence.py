"""Saving the fitted state next to the database; workers load it without fitting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsdk import Recommender
from recsdk.recommender import state as state_module


def lists(rec: Recommender) -> list[list[tuple[str, str]]]:
    return [
        [(r.item_id, r.reason) for r in found]
        for found in (
            rec.recommend("u0", k=8),
            rec.recommend("u7", k=8, category="books"),
            rec.similar_items("k-new", k=5),
            rec.bought_together(["k0", "g0"], k=5),
            rec.trending(k=5),
        )
    ]


def test_a_new_recommender_serves_the_saved_state_without_fitting(
    rec: Recommender, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = lists(rec)
    folder = Path(str(rec.store.url.database) + ".recsdk")
    assert rec.model_path == folder
    assert (folder / "current").read_text() in {p.name for p in folder.iterdir()}

    def no_fit(*args: object) -> None:
        raise AssertionError("a worker must not fit")

    monkeypatch.setattr(state_module, "fit_state", no_fit)
    with Recommender(db_url) as worker:
        assert lists(worker) == expected
        similarity = worker._serving().similarity
        assert similarity is not None
        assert isinstance(similarity._state.neighbors, np.memmap)  # type: ignore[union-attr]


def test_another_process_serves_the_same_lists(rec: Recommender, db_url: str) -> None:
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from recsdk import Recommender\n"
        "from recommender.test_persistence import lists\n"
        "with Recommender(sys.argv[1], cache_ttl=0.001) as worker:\n"
        "    print(json.dumps(lists(worker)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, db_url, str(Path(__file__).parent.parent)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(out.stdout) == [[list(pair) for pair in found] for found in lists(rec)]


def test_reload_picks_up_a_newer_save(rec: Recommender, db_url: str) -> None:
    with Recommender(db_url, autosave=False) as worker:
        assert worker.reload() is False  # already the current version
        rec.track_many(
            [{"type": "view", "user_id": f"late{n}", "item_id": "b9"} for n in range(50)]
        )
        rec.fit()
        assert worker.trending(k=1).item_ids != ["b9"]
        assert worker.reload() is True
        assert worker.trending(k=1).item_ids == ["b9"]
    folder = rec.model_path
    assert folder is not None
    assert len([p for p in folder.iterdir() if p.is_dir()]) <= 2  # old versions pruned


def test_refresh_saves_and_keeps_purchases(rec: Recommender, db_url: str) -> None:
    rec.track("purchase", user_id="u5", item_id="b6", order_id="late")
    rec.refresh()
    with Recommender(db_url) as worker:
        assert worker._serving().watermark == rec._serving().watermark
        batch = worker.recommend_many(["u5"], k=30)
        assert "b6" not in batch.item_ids("u5")


def test_a_saved_state_that_cannot_be_read_is_logged_not_raised(
    rec: Recommender, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Path(str(rec.store.url.database) + ".recsdk")
    version = folder / (folder / "current").read_text()
    (version / "similarity.npz").write_bytes(b"not a zip file")
    with Recommender(db_url) as worker:  # a web worker still starts
        assert worker._state is None
        assert "could not load the state saved in" in caplog.text
        worker.fit()  # and serves once fitted
        assert len(worker.recommend("u0", k=3)) == 3


def test_explicit_paths_and_databases_without_a_file(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Recommender("sqlite://") as memory:  # no file: no default folder
        assert memory.model_path is None
        memory.track("view", user_id="u", item_id="i")
        memory.fit()
        memory.fit()
        with pytest.raises(ValueError, match="path"):
            memory.save()
    unsaved = [r for r in caplog.records if "is not saved" in r.getMessage()]
    assert len(unsaved) == 1  # said once, not at every fit
    explicit = tmp_path / "models" / "shop"
    with Recommender(db_url, model_path=explicit) as rec:
        rec.track("view", user_id="u", item_id="i")
        rec.fit()
    assert (explicit / "current").exists()
    assert not Path(db_url.removeprefix("sqlite:///") + ".recsdk").exists()
    with Recommender(db_url, model_path=explicit, autosave=False) as other:
        assert other._serving().watermark == 1
