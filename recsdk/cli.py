"""The ``recsdk`` command: the store's privacy calls, for a shell or a scheduled job.

    recsdk export-user --user-id u-42 > u-42.json
    recsdk erase-user --anonymous-id 7f3c...
    recsdk erase-before --days 365

Every command takes ``--url`` (default: ``$RECSDK_DATABASE_URL``, else ``recsdk.db`` in the
working directory, as the collector's settings read it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from recsdk.errors import RecsdkError, StoreError, ValidationError

if TYPE_CHECKING:
    from recsdk.store import EventStore

__all__ = ["main"]

DEFAULT_URL = "sqlite:///recsdk.db"


def main(argv: Sequence[str] | None = None, *, url: str | None = None, prog: str = "recsdk") -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``url`` is the database when the command line names none (the Flask and Django
    commands pass their app's ``RECSDK_DATABASE_URL``); ``prog`` names the command in help.
    """
    default = url or os.environ.get("RECSDK_DATABASE_URL", DEFAULT_URL)
    args = _parser(default, prog).parse_args(argv)
    import sqlalchemy as sa  # loads only for a command that runs

    from recsdk.store import EventStore

    try:
        missing = _missing_sqlite_file(args.url)
        if missing:
            raise StoreError(f"no database at {missing}")
        with EventStore(args.url, create=False) as store:
            return int(args.run(store, args))
    except (ValidationError, sa.exc.ArgumentError) as error:
        return _fail(args.command, error, status=2)
    except (RecsdkError, sa.exc.SQLAlchemyError, ImportError) as error:
        return _fail(args.command, error, status=1)
    except BrokenPipeError:  # the reader went away (``recsdk export-user ... | head``)
        _discard_stdout()
        return 1


def _discard_stdout() -> None:
    """Send what is left of standard output nowhere, so that Python's flush at exit does
    not fail on the closed pipe again (and print a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # a stream without a file (a framework's, a test's)
        pass


def _fail(command: str, error: Exception, *, status: int) -> int:
    print(f"recsdk {command}: {error}", file=sys.stderr)
    return status


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite URL's file when there is none (opening would make it)."""
    from recsdk.store.engines import normalize_url

    parsed = normalize_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return None
    return None if os.path.exists(path) else path


def _parser(url: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Export and erase shoppers' data in a recsdk event store."
    )
    parser.set_defaults(url=url)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shown = _redacted(url)

    export = _command(commands, "export-user", "print a shopper's ids and events as JSON", shown)
    _shopper_arguments(export)
    export.set_defaults(run=_export_user)

    erase = _command(commands, "erase-user", "delete a shopper's events and identity links", shown)
    _shopper_arguments(erase)
    erase.set_defaults(run=_erase_user)

    before = _command(commands, "erase-before", "delete events older than a cutoff", shown)
    cutoff = before.add_mutually_exclusive_group(required=True)
    cutoff.add_argument("--days", type=float, help="events older than this many days")
    cutoff.add_argument("--before", help="events before this time (ISO 8601, naive is UTC)")
    before.set_defaults(run=_erase_before)
    return parser


def _command(commands: Any, name: str, summary: str, url: str) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=summary)
    command.add_argument(
        "--url",
        default=argparse.SUPPRESS,  # the parser's default, which main() chose
        help=f"the store's database URL (default: {url})",
    )
    return command


def _redacted(url: str) -> str:
    """A URL fit for help text: its password hidden."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _shopper_arguments(command: argparse.ArgumentParser) -> None:
    who = command.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the shop's id of the user")
    who.add_argument("--anonymous-id", help="a visitor's anonymous id")


def _export_user(store: EventStore, args: argparse.Namespace) -> int:
    export = store.export_user(args.user_id, anonymous_id=args.anonymous_id)
    json.dump(export.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


def _erase_user(store: EventStore, args: argparse.Namespace) -> int:
    erased = store.erase_user(args.user_id, anonymous_id=args.anonymous_id)
    print(_erased(erased))
    return 0


def _erase_before(store: EventStore, args: argparse.Namespace) -> int:
    moment = args.before if args.days is None else _days_ago(args.days)
    print(_erased(store.erase_before(moment)))
    return 0


def _erased(count: int) -> str:
    return f"erased {count} event{'' if count == 1 else 's'}"


def _days_ago(days: float) -> datetime:
    if not days >= 0:  # (NaN too)
        raise ValidationError("--days", f"must be a number of days >= 0, not {days}")
    try:
        return datetime.now(timezone.utc) - timedelta(days=days)
    except OverflowError:
        raise ValidationError("--days", f"{days} days reach before year 1") from None
