"""A collector for the reliability tests, as a WSGI app for gunicorn (``app``) and an ASGI app
for uvicorn (``asgi``): the store's URL comes from the env."""

import os

from recsdk import EventStore
from recsdk.collector import CollectorConfig, asgi_app, wsgi_app

store = EventStore(os.environ["RECSDK_TEST_DATABASE_URL"])
config = CollectorConfig(write_keys=["wk_reliability"], rate_limit=None)
app = wsgi_app(store, config=config)
asgi = asgi_app(store, config=config)
