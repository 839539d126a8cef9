"""The collector endpoint: validates events sent over HTTP and stores each exactly once.

:mod:`recsdk.collector.core` holds the framework-free part; :func:`wsgi_app` serves it as a
plain WSGI application. Flask and Django front ends come in their own modules and import
their framework only when used.
"""

from recsdk.collector.core import Collector, CollectorConfig, Request, Response
from recsdk.collector.wsgi import wsgi_app

__all__ = ["Collector", "CollectorConfig", "Request", "Response", "wsgi_app"]
