"""The ``recsdk`` command on a real SQLite file: export, erase a shopper, erase old events."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from recsdk import Event, EventStore
from recsdk.cli import main

NOW = datetime.now(timezone.utc)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with EventStore(url) as store:
        store.add_many(
            [
                Event("view", user_id="u1", item_id="mug", timestamp=NOW - timedelta(days=400)),
                Event("view", user_id="u1", anonymous_id="a1", item_id="bowl", timestamp=NOW),
                Event("view", user_id="u2", item_id="mug", timestamp=NOW),
            ]
        )
    return url


def counts(url: str) -> int:
    with EventStore(url) as store:
        return store.counts().events


def test_export_user_prints_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-user", "--anonymous-id", "a1", "--url", url]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["user_id"] == "u1"
    assert [e["item_id"] for e in exported["events"]] == ["mug", "bowl"]


def test_erase_user(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["erase-user", "--user-id", "u1", "--url", url]) == 0
    assert capsys.readouterr().out == "erased 2 events\n"
    assert counts(url) == 1


def test_erase_before_days_or_a_moment(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["erase-before", "--days", "365", "--url", url]) == 0
    assert capsys.readouterr().out == "erased 1 event\n"
    moment = (NOW + timedelta(minutes=1)).isoformat()
    assert main(["erase-before", "--before", moment, "--url", url]) == 0
    assert capsys.readouterr().out == "erased 2 events\n"
    assert counts(url) == 0


def test_the_url_comes_from_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSDK_DATABASE_URL", url)
    assert main(["erase-user", "--user-id", "u2"]) == 0
    assert counts(url) == 2


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["erase-before", "--days", "-1"], 2, "--days: must be a number of days >= 0"),
        (["erase-before", "--days", "1e9"], 2, "--days: 1000000000.0 days reach before year 1"),
        (["erase-before", "--before", "soon"], 2, "moment: 'soon' is not an ISO 8601"),
        (["erase-user", "--user-id", ""], 2, "user_id: must not be empty"),
    ],
)
def test_bad_values_are_named(
    url: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    status: int,
    message: str,
) -> None:
    assert main([*argv, "--url", url]) == status
    assert message in capsys.readouterr().err
    assert counts(url) == 3


def test_a_missing_or_wrong_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    assert main(["erase-user", "--user-id", "u1", "--url", f"sqlite:///{missing}"]) == 1
    assert f"no database at {missing}" in capsys.readouterr().err
    assert not missing.exists()  # not made by asking
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["erase-user", "--user-id", "u1", "--url", f"sqlite:///{empty}"]) == 1
    assert "has no recsdk tables" in capsys.readouterr().err
    assert main(["erase-user", "--user-id", "u1", "--url", "not a url"]) == 2
    assert "Could not parse" in capsys.readouterr().err


def test_arguments_are_checked_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["erase-user", "--user-id", "u1", "--anonymous-id", "a1"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_python_dash_m_recsdk_runs_it(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "recsdk", "export-user", "--user-id", "u2", "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout)["events"][0]["item_id"] == "mug"


def test_a_reader_that_stops_early_gets_no_traceback(url: str) -> None:
    """``recsdk export-user ... | head``: the command stops quietly when the pipe closes."""
    with EventStore(url) as store:
        store.add_many([Event("view", user_id="u2", item_id=f"i{n}") for n in range(3000)])
    command = [sys.executable, "-m", "recsdk", "export-user", "--user-id", "u2", "--url", url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as done:
        assert done.stdout is not None
        assert done.stderr is not None
        done.stdout.read(100)  # the export has begun: then the reader goes away
        done.stdout.close()
        errors = done.stderr.read().decode()
        assert done.wait(timeout=60) == 1
    assert errors == ""
