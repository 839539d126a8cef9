"""A FastAPI shop for the ASGI tests: the collector mounted beside the shop's own routes.

uvicorn serves ``fastapi_app:shop`` (mounted, at ``/recsdk``) or ``fastapi_app:collector``
(the collector alone, under its default prefix); the store's URL comes from the env.
"""

import os

from fastapi import FastAPI

from recsdk import EventStore
from recsdk.collector import CollectorConfig, asgi_app

store = EventStore(os.environ["RECSDK_TEST_DATABASE_URL"])
config = CollectorConfig(write_keys=["wk_asgi"], rate_limit=None)

shop = FastAPI()
shop.mount("/recsdk", asgi_app(store, prefix="", config=config))


@shop.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


collector = asgi_app(store, config=config)
