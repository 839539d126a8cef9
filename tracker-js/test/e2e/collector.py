"""The real recsdk collector for tracker-js's browser tests, on 127.0.0.1.

Serves ``recsdk.collector.wsgi_app`` over a SQLite file with wsgiref (one thread a request);
its list endpoints (``GET /recsdk/recommendations``, ``GET /recsdk/similar/<item_id>``) answer
from ``Lists``, a stand-in recommender over a small catalog (``--need-key`` sets
``recommendations_need_key``). Beside it, for the tests only:

- ``GET /recsdk/recsdk.js``: the built tracker, as the collector will serve it;
- ``GET /__test/events``: what the store holds (events, identity links, the collector's stats,
  the list requests seen with their status, and each POST of events), as JSON.

Prints ``{"port": N}`` once it listens. ``--delay`` holds each POST to /recsdk/events that long.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa

from recsdk import EventStore
from recsdk.collector import CollectorConfig, wsgi_app
from recsdk.events import TypeCode
from recsdk.store import tables as t

TRACKER = Path(__file__).resolve().parents[2] / "dist" / "recsdk.min.js"
CATALOG = [
    {
        "item_id": f"sku-{n}",
        "title": f"Mug <{n}>",
        "url": f"/product/sku-{n}",
        "image_url": f"/img/{n}.png",
        "price": 9.5 + n,
        "category": "kitchen",
    }
    for n in range(1, 7)
]


class Lists:
    """A stand-in recommender for the collector's list endpoints: the first ``k`` items of
    ``CATALOG`` (less the item asked about), each answer with a new rec_id, noted in the
    request's record (``note``, per thread: one thread a request)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def _answer(self, k: int, similar_to: str | None = None) -> Any:
        items = [i for i in CATALOG if i["item_id"] != similar_to][:k]
        answer = {
            "rec_id": str(uuid.uuid4()),
            "items": [
                {**item, "score": 1 - n / 10, "reason": "because you viewed Red mug"}
                for n, item in enumerate(items)
            ],
        }
        note = getattr(self.local, "note", None)
        if note is not None:
            note["rec_id"] = answer["rec_id"]
        return SimpleNamespace(to_dict=lambda: answer)

    def recommend(self, user_id: Any = None, k: int = 10, **_: Any) -> Any:
        return self._answer(k)

    def similar_items(self, item_id: str, k: int = 10, **_: Any) -> Any:
        return self._answer(k, item_id)

    def invalidate(self, user_id: Any = None, anonymous_id: Any = None) -> None:
        pass


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def dump(store: EventStore) -> dict[str, Any]:
    subject = t.users.alias("subject")
    visitor = t.users.alias("visitor")
    e = t.events.c
    query = (
        sa.select(
            e.id,
            e.event_id,
            e.type,
            e.custom_type,
            subject.c.external_id.label("subject"),
            subject.c.anonymous,
            visitor.c.external_id.label("visitor"),
            t.items.c.external_id.label("item_id"),
            e.order_id,
            e.rec_id,
            e.session_id,
            e.ts,
            e.price,
            e.quantity,
            e.currency,
            e.properties,
            e.context,
        )
        .select_from(t.events)
        .join(subject, subject.c.id == e.user_ix)
        .outerjoin(visitor, visitor.c.id == e.anonymous_ix)
        .outerjoin(t.items, t.items.c.id == e.item_ix)
        .order_by(e.id)
    )
    anonymous = t.users.alias("anonymous")
    user = t.users.alias("user")
    links = (
        sa.select(anonymous.c.external_id, user.c.external_id)
        .select_from(t.identity_links)
        .join(anonymous, anonymous.c.id == t.identity_links.c.anonymous_ix)
        .join(user, user.c.id == t.identity_links.c.user_ix)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        link_rows = conn.execute(links).all()
    events = []
    for row in rows:
        digits = bytes(row.event_id).hex()
        events.append(
            {
                "row": row.id,
                "event_id": digits,
                "type": row.custom_type or TypeCode(row.type).name,
                "user_id": None if row.anonymous else row.subject,
                "anonymous_id": row.subject if row.anonymous else row.visitor,
                "item_id": row.item_id,
                "order_id": row.order_id,
                "rec_id": row.rec_id,
                "session_id": row.session_id,
                "ts": row.ts,
                "price": row.price,
                "quantity": row.quantity,
                "currency": row.currency,
                "properties": json.loads(row.properties) if row.properties else None,
                "context": json.loads(row.context) if row.context else None,
            }
        )
    return {"events": events, "links": [list(r) for r in link_rows]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--origin", action="append", default=[])
    parser.add_argument("--key", default="pk_test")
    parser.add_argument("--drop-bots", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--need-key", action="store_true")
    args = parser.parse_args()

    store = EventStore(f"sqlite:///{args.db}")
    config = CollectorConfig(
        public_keys=[args.key],
        allowed_origins=args.origin,
        drop_bots=args.drop_bots,
        rate_limit=None,
        recommendations_need_key=args.need_key,
    )
    lists = Lists()
    collector = wsgi_app(store, prefix="/recsdk", config=config, recommender=lists)
    rec_requests: list[dict[str, Any]] = []
    posts: list[dict[str, Any]] = []
    lock = threading.Lock()

    def answer(
        start_response: Any, status: str, body: bytes, kind: str, origin: str
    ) -> list[bytes]:
        headers = [("Content-Type", kind), ("Content-Length", str(len(body)))]
        if origin in args.origin:
            headers.append(("Access-Control-Allow-Origin", origin))
        start_response(status, headers)
        return [body]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        origin = environ.get("HTTP_ORIGIN", "")
        if path == "/__test/events":
            with lock:
                state = {**dump(store), "recs": list(rec_requests), "posts": list(posts)}
            state["stats"] = collector.collector.stats()  # type: ignore[attr-defined]
            return answer(
                start_response, "200 OK", json.dumps(state).encode(), "application/json", origin
            )
        if path == "/recsdk/recsdk.js":
            return answer(start_response, "200 OK", TRACKER.read_bytes(), "text/javascript", origin)
        if path == "/recsdk/recommendations" or path.startswith("/recsdk/similar/"):
            # The collector answers; note what was asked, its status and the list's rec_id.
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            note: dict[str, Any] = {"path": path, "query": query, "rec_id": None}
            lists.local.note = note

            def noting(status: str, headers: Any, *rest: Any) -> Any:
                note["status"] = int(status.split()[0])
                return start_response(status, headers, *rest)

            try:
                body = b"".join(collector(environ, noting))
            finally:
                lists.local.note = None
            with lock:
                rec_requests.append(note)
            return [body]
        if path == "/recsdk/events" and environ["REQUEST_METHOD"] == "POST":
            # Note how each batch came (Sec-Fetch-Mode: "cors" for fetch, "no-cors" for a
            # beacon), then hand the body on to the collector untouched.
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                batch = json.loads(body)["batch"]
                page_url = batch[0]["context"]["page_url"]
            except (ValueError, KeyError, IndexError, TypeError):
                batch, page_url = [], ""
            with lock:
                posts.append(
                    {
                        "mode": environ.get("HTTP_SEC_FETCH_MODE"),
                        "events": len(batch),
                        "page_url": page_url,
                        "types": [e.get("type") if isinstance(e, dict) else None for e in batch],
                        "ids": [e.get("event_id") if isinstance(e, dict) else None for e in batch],
                    }
                )
            if args.delay:
                time.sleep(args.delay)
        return collector(environ, start_response)

    server = make_server(
        "127.0.0.1", args.port, app, server_class=Server, handler_class=QuietHandler
    )
    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    finally:
        store.close()


if __name__ == "__main__":
    main()
