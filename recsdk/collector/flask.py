"""The collector as a Flask extension: ``RecSDK(app)`` or ``RecSDK()`` + ``init_app(app)``.

Flask is imported only when this module is; install it with ``pip install "recsdk[flask]"``.
Settings are read from ``app.config`` (``RECSDK_DATABASE_URL``, ``RECSDK_PREFIX``,
``RECSDK_WRITE_KEYS``... see :func:`recsdk.collector.settings.read_settings`).
"""

from __future__ import annotations

from typing import Any

import flask

from recsdk.collector.core import Collector, Request
from recsdk.collector.settings import read_settings
from recsdk.store import EventStore

__all__ = ["RecSDK"]


class RecSDK:
    """Serves ``POST {RECSDK_PREFIX}/events`` in a Flask app.

    Parameters
    ----------
    app:
        The app to set up now; or call :meth:`init_app` later (application factories).
    store:
        The event store to use; by default one opened from ``RECSDK_DATABASE_URL``.
    """

    def __init__(self, app: flask.Flask | None = None, *, store: EventStore | None = None):
        self._store = store
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Open the store, make the collector and register the blueprint on ``app``."""
        settings = read_settings(app.config.get)
        store = self._store or EventStore(settings.database_url)
        collector = Collector(store, settings.config)
        app.extensions["recsdk"] = collector
        blueprint = flask.Blueprint("recsdk", __name__, url_prefix=settings.prefix)
        blueprint.add_url_rule(
            "/<path:endpoint>",
            "collector",
            _view,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            provide_automatic_options=False,
        )
        app.register_blueprint(blueprint)

    @staticmethod
    def collector(app: flask.Flask | None = None) -> Collector:
        """The collector of ``app`` (the current app by default)."""
        collector: Collector = (app or flask.current_app).extensions["recsdk"]
        return collector


def _view(endpoint: str) -> Any:
    collector = RecSDK.collector()
    request = flask.request
    body = request.stream.read(collector.config.max_body_bytes + 1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    answer = collector.handle(
        Request(request.method, f"/{endpoint}", headers, body, request.remote_addr)
    )
    return flask.Response(answer.body, status=answer.status, headers=list(answer.headers))
