"""The collector as a Flask extension: ``RecSDK(app)`` or ``RecSDK()`` + ``init_app(app)``.

Flask is imported only when this module is; install it with ``pip install "recsdk[flask]"``.
Settings are read from ``app.config`` (``RECSDK_DATABASE_URL``, ``RECSDK_PREFIX``,
``RECSDK_WRITE_KEYS``, ``RECSDK_RECOMMENDER``... see
:func:`recsdk.collector.settings.read_settings`).
"""

from __future__ import annotations

from typing import Any

import click
import flask

from recsdk import cli
from recsdk.collector.core import Collector, Request
from recsdk.collector.reads import ListSource
from recsdk.collector.settings import make_recommender, read_settings
from recsdk.store import EventStore

__all__ = ["RecSDK"]


class RecSDK:
    """Serves ``POST {RECSDK_PREFIX}/events`` in a Flask app, and the list endpoints.

    Parameters
    ----------
    app:
        The app to set up now; or call :meth:`init_app` later (application factories).
    store:
        The event store to use; by default one opened from ``RECSDK_DATABASE_URL``.
    recommender:
        A :class:`~recsdk.Recommender` for ``GET {prefix}/recommendations`` and
        ``GET {prefix}/similar/<item_id>``; by default the one ``RECSDK_RECOMMENDER`` names
        (see :func:`recsdk.collector.settings.make_recommender`), if any.
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        store: EventStore | None = None,
        recommender: ListSource | None = None,
    ):
        self._store = store
        self._recommender = recommender
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Open the store, make the collector and register the blueprint on ``app``."""
        settings = read_settings(app.config.get)
        store = self._store or EventStore(settings.database_url)
        recommender = self._recommender or make_recommender(settings.recommender, store)
        collector = Collector(store, settings.config, recommender)
        app.extensions["recsdk"] = collector
        blueprint = flask.Blueprint("recsdk", __name__, url_prefix=settings.prefix)
        blueprint.add_url_rule(
            "/<path:path>",  # url_for("recsdk.collector", path="recsdk.js")
            "collector",
            _view,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            provide_automatic_options=False,
        )
        app.register_blueprint(blueprint)
        app.cli.add_command(_command(store.url.render_as_string(hide_password=False)))

    @staticmethod
    def collector(app: flask.Flask | None = None) -> Collector:
        """The collector of ``app`` (the current app by default)."""
        collector: Collector = (app or flask.current_app).extensions["recsdk"]
        return collector


def _command(url: str) -> click.Command:
    """``flask recsdk ...``: the ``recsdk`` command on the store of the app."""

    @click.command(
        "recsdk",
        help="Export and erase shoppers' data in the recsdk event store (see docs/privacy.md).",
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def recsdk(arguments: tuple[str, ...]) -> None:
        status = cli.main(list(arguments), url=url, prog="flask recsdk")
        if status:
            raise SystemExit(status)

    return recsdk


def _view(path: str) -> Any:
    collector = RecSDK.collector()
    request = flask.request
    body = request.stream.read(collector.config.max_body_bytes + 1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    query = request.query_string.decode("latin-1")
    answer = collector.handle(
        Request(request.method, f"/{path}", headers, body, request.remote_addr, query)
    )
    response = flask.Response(answer.body, status=answer.status, headers=list(answer.headers))
    response.content_length = answer.content_length  # a HEAD's: the GET body's length
    return response
