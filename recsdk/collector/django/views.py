"""The view that hands Django requests to the collector's core."""

from __future__ import annotations

import threading

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from recsdk.collector.core import Collector, Request
from recsdk.collector.settings import make_recommender, read_settings
from recsdk.store import EventStore

__all__ = ["collector_view", "get_collector"]

_lock = threading.Lock()
_collector: Collector | None = None


def get_collector() -> Collector:
    """The process's collector, made from the ``RECSDK_*`` settings on first use."""
    global _collector
    with _lock:
        if _collector is None:
            options = read_settings(lambda name, default: getattr(settings, name, default))
            store = EventStore(options.database_url)
            recommender = make_recommender(options.recommender, store)
            _collector = Collector(store, options.config, recommender)
        return _collector


@csrf_exempt  # events come from pages and servers that hold no CSRF token; keys guard it
def collector_view(request: HttpRequest, endpoint: str) -> HttpResponse:
    collector = get_collector()
    body = request.read(collector.config.max_body_bytes + 1)
    headers = {name.lower(): value for name, value in request.headers.items()}
    answer = collector.handle(
        Request(
            request.method or "GET",
            f"/{endpoint}",
            headers,
            body,
            request.META.get("REMOTE_ADDR"),
            request.META.get("QUERY_STRING", ""),
        )
    )
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    response["Content-Length"] = str(answer.content_length)  # a HEAD's: the GET body's length
    return response
