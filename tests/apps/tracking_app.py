"""A shop's app for gunicorn: each request tracks an event, sent only when the worker exits."""

import os

from recsdk.tracking import Tracker

tracker = Tracker(os.environ["RECSDK_TEST_COLLECTOR"], "wk_reliability", flush_interval=3600)


def app(environ, start_response):  # type: ignore[no-untyped-def]
    tracker.track("view", user_id=f"pid-{os.getpid()}", item_id=environ["PATH_INFO"].strip("/"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
