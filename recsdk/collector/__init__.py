"""The collector endpoint: validates events sent over HTTP and stores each exactly once.

:mod:`recsdk.collector.core` holds the framework-free part; :func:`wsgi_app` serves it as a
plain WSGI application and :func:`asgi_app` as an ASGI one (FastAPI, Starlette). Flask and
Django front ends come in their own modules and import their framework only when used.
"""

from recsdk.collector.asgi import asgi_app
from recsdk.collector.core import Collector, CollectorConfig, Request, Response
from recsdk.collector.wsgi import wsgi_app

__all__ = ["Collector", "CollectorConfig", "Request", "Response", "asgi_app", "wsgi_app"]
