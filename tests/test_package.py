"""The public surface: names, laziness of heavy imports, typing marker."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

import recsdk


def test_all_is_complete() -> None:
    # Its order is ruff's (RUF022), checked by the lint step.
    assert len(set(recsdk.__all__)) == len(recsdk.__all__)
    for name in recsdk.__all__:
        assert getattr(recsdk, name) is not None
    assert set(recsdk.__all__) <= set(dir(recsdk))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        recsdk.Nope  # noqa: B018


def test_import_loads_neither_sqlalchemy_nor_numba() -> None:
    code = (
        "import sys, recsdk\n"
        "event = recsdk.Event('view', user_id='u', item_id='i')\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'numba', 'numpy', 'httpx') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_store_loads_on_first_use() -> None:
    code = "import sys, recsdk\nrecsdk.EventStore\nprint('sqlalchemy' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_package_ships_its_typing_marker_and_schema() -> None:
    files = resources.files("recsdk")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("schema/event.schema.json").is_file()


def test_the_recommender_loads_on_first_use() -> None:
    code = (
        "import sys, recsdk\n"
        "print('recsdk.recommender' in sys.modules, 'cachetools' in sys.modules)\n"
        "recsdk.Recommender, recsdk.Recommendation, recsdk.Recommendations\n"
        "print('recsdk.recommender' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
