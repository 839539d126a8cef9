"""recsdk.datasets: the synthetic shop and the public-data loaders."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from recsdk.datasets import load_movielens, load_online_retail, synthetic_shop

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_synthetic_shop_shape_and_reproducibility() -> None:
    a = synthetic_shop(2000, 300, 30_000, n_categories=20, seed=5)
    b = synthetic_shop(2000, 300, 30_000, n_categories=20, seed=5)
    c = synthetic_shop(2000, 300, 30_000, n_categories=20, seed=6)
    assert len(a) == 30_000
    assert a.users.dtype == np.int32
    assert a.items.dtype == np.int32
    assert a.timestamps.dtype == np.float64
    assert a.item_categories.dtype == np.int32
    assert a.items.max() < 300
    assert a.users.max() < 2000
    assert np.all(np.diff(a.timestamps) >= 0)
    assert a.timestamps[0] >= 1735689600
    assert a.timestamps[-1] < 1735689600 + 365 * 86400
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.users, b.users)
    assert not np.array_equal(a.items, c.items)


def test_synthetic_shop_structure() -> None:
    shop = synthetic_shop(3000, 500, 60_000, n_categories=25, seed=1)
    counts = np.bincount(shop.items, minlength=500)
    top = np.sort(counts)[::-1]
    assert top[0] > 20 * np.median(counts)  # Zipf: a few items dominate
    # Each user favours a few categories: far more than 1/25 of events in their top 3.
    cats = shop.item_categories[shop.items]
    per_user = np.zeros((3000, 25))
    np.add.at(per_user, (shop.users, cats), 1)
    active = per_user.sum(1) >= 20
    share = np.sort(per_user[active], 1)[:, -3:].sum(1) / per_user[active].sum(1)
    assert share.mean() > 0.5
    assert len(synthetic_shop(5, 3, 0)) == 0


def test_movielens_loader(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("10\t5\t4\t300\n7\t5\t2\t100\n10\t9\t5\t200\n")
    log = load_movielens(path)
    assert log.user_ids.tolist() == ["7", "10"]
    assert log.item_ids[log.items].tolist() == ["5", "9", "5"]
    assert log.timestamps.tolist() == [100, 200, 300]
    assert log.values.tolist() == [2, 5, 4]
    assert set(log.types.tolist()) == {8}
    assert load_movielens(tmp_path).n_users == 2


def test_online_retail_loader(tmp_path: Path) -> None:
    rows = [
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536366,71053,LANTERN,2,2010-12-01 08:28:00,3.39,,United Kingdom",
        "C536379,85123A,HEART,-1,2010-12-01 09:41:00,2.55,17850.0,United Kingdom",
        "536367,22632,WARMER,-5,2010-12-01 09:00:00,1.85,13047.0,United Kingdom",
        "536368,22632,WARMER,3,2010-12-01 08:30:00,1.85,13047.0,United Kingdom",
    ]
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    log = load_online_retail(path)
    assert len(log) == 2
    assert log.user_ids.tolist() == ["13047", "17850"]
    assert log.item_names.tolist() == ["WARMER", "HEART"]
    full = load_online_retail(path, keep_anonymous=True, keep_cancellations=True)
    assert len(full) == 4
    assert sorted(full.types.tolist()) == [6, 6, 6, 10]
    assert np.all(np.diff(full.timestamps) >= 0)


@pytest.mark.skipif(not (DATA / "ml-100k").exists(), reason="../shared/data/ml-100k absent")
def test_real_movielens() -> None:
    log = load_movielens(DATA / "ml-100k" / "u.data")
    assert (len(log), log.n_users, log.n_items) == (100_000, 943, 1682)
