"""Nothing lost, nothing stored twice: real gunicorn (WSGI) and uvicorn (ASGI) servers killed
and restarted, faults injected by a proxy, preforked workers that exit. Bounded in time;
loopback only.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port, serve_wsgi

from recsdk import EventStore
from recsdk.collector import CollectorConfig, wsgi_app
from recsdk.tracking import Tracker

pytestmark = pytest.mark.timeout(600)

KEY = "wk_reliability"
APPS = Path(__file__).parent / "apps"
GUNICORN = Path(sys.executable).with_name("gunicorn")


class AppServer:
    """A server in a subprocess, which the test can kill and start again: gunicorn for a WSGI
    app, uvicorn for an ASGI one (``module:attribute`` in tests/apps)."""

    def __init__(
        self, app: str, env: dict[str, str], workers: int = 2, kind: str = "gunicorn"
    ) -> None:
        self.app = app
        self.env = {**os.environ, **env, "PYTHONPATH": str(APPS)}
        self.workers = workers
        self.kind = kind
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "uvicorn":
            return [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", str(self.workers),
                    "--log-level", "warning"]  # fmt: skip
        return [str(GUNICORN), "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
                "--graceful-timeout", "20", "--log-level", "warning", self.app]  # fmt: skip

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            start_new_session=True,  # its own process group: a kill takes the workers too
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start")

    def kill(self) -> None:
        """Stop the server and its workers for good, whatever state they are in."""
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGKILL)

    def stop(self, how: signal.Signals) -> None:
        """SIGKILL: a crash of the master and its workers; SIGTERM: a graceful stop."""
        assert self.process is not None
        if how == signal.SIGKILL:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.send_signal(how)
        self.process.wait(timeout=60)


class FaultyProxy:
    """Forwards to the collector, but answers some requests with faults instead."""

    def __init__(self, target: AppServer, stall: float, seed: int = 7) -> None:
        self.target = target
        self.stall = stall
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: dict[str, int] = {}
        self.client = httpx.Client(timeout=30)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            fault = self.random.choices(
                ["pass", "500", "429", "stall", "lost"], [0.88, 0.03, 0.03, 0.01, 0.05]
            )[0]
            self.faults[fault] = self.faults.get(fault, 0) + 1
        if fault == "500":
            start_response("500 Internal Server Error", [])
            return [b""]
        if fault == "429":
            start_response("429 Too Many Requests", [("Retry-After", "0")])
            return [b""]
        if fault == "stall":
            time.sleep(self.stall)  # past the client's timeout
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            "Content-Type": environ.get("CONTENT_TYPE", ""),
            "Content-Encoding": environ.get("HTTP_CONTENT_ENCODING", ""),
            "Authorization": environ.get("HTTP_AUTHORIZATION", ""),
        }
        try:
            answer = self.client.post(
                self.target.url + environ["PATH_INFO"], content=body, headers=headers
            )
        except httpx.HTTPError:  # the collector is down
            start_response("502 Bad Gateway", [])
            return [b""]
        if fault == "lost":  # stored, but the answer is lost on the way back
            start_response("502 Bad Gateway", [])
            return [b""]
        start_response(f"{answer.status_code} X", [("Content-Type", "application/json")])
        return [answer.content]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reliability.db'}"
        return
    from conftest import drop_tables, server_url

    url = server_url("postgresql")
    drop_tables(url)
    yield url
    drop_tables(url)


def test_kills_restarts_and_faults_lose_nothing(database_url: str) -> None:
    EventStore(database_url).close()  # the tables exist before the workers start
    server = AppServer("collector_app:app", {"RECSDK_TEST_DATABASE_URL": database_url})
    server.start()
    try:
        _send_through_faults(server, database_url)
    finally:
        server.kill()


def test_the_asgi_collector_too(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'reliability.db'}"
    EventStore(database_url).close()
    env = {"RECSDK_TEST_DATABASE_URL": database_url}
    server = AppServer("collector_app:asgi", env, kind="uvicorn")
    server.start()
    try:
        _send_through_faults(server, database_url)
    finally:
        server.kill()


def _send_through_faults(server: AppServer, database_url: str) -> None:
    # PostgreSQL takes longer per batch than SQLite: give its requests more time, or
    # abandoned attempts still holding their rows would make every retry time out too.
    timeout = 1.0 if database_url.startswith("sqlite") else 5.0
    proxy = FaultyProxy(server, stall=timeout + 0.5)
    try:
        per_thread, threads = 25_000, 4
        with serve_wsgi(proxy) as proxy_url:
            tracker = Tracker(
                f"{proxy_url}/recsdk", KEY, max_queue=per_thread * threads, timeout=timeout,
                max_retries=1000, batch_size=500,
            )  # fmt: skip

            def send(thread: int) -> None:
                for i in range(per_thread):
                    tracker.track("view", user_id=f"user-{i % 500}", item_id=f"sku-{thread}-{i}")

            senders = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
            for sender in senders:
                sender.start()
            for _ in range(2):  # twice: kill the server mid-stream, start it again
                time.sleep(2.0)
                server.stop(signal.SIGKILL)
                time.sleep(1.0)
                server.start()
            for sender in senders:
                sender.join()
            assert tracker.flush(timeout=300), tracker.stats()
            tracker.shutdown()
    finally:
        proxy.client.close()  # its connections to the collector
    stats = tracker.stats()
    print(f"\ntracker {stats}\nproxy faults {proxy.faults}")
    with EventStore(database_url) as store:
        counts = store.counts()
        assert counts.events == per_thread * threads
        assert counts.items == per_thread * threads  # every event once: one item each
    assert stats["dropped"] == 0
    assert stats["sent"] == per_thread * threads
    assert stats["retries"] > 0
    assert proxy.faults.get("lost", 0) > 0


def test_preforked_workers_that_exit_lose_nothing(tmp_path: Path) -> None:
    with EventStore(f"sqlite:///{tmp_path / 'shop.db'}") as store:
        collector = wsgi_app(store, config=CollectorConfig(write_keys=[KEY], rate_limit=None))
        with serve_wsgi(collector) as collector_url:
            shop = AppServer(
                "tracking_app:app", {"RECSDK_TEST_COLLECTOR": f"{collector_url}/recsdk"}, workers=3
            )
            shop.start()
            try:
                # A new connection per request, so that the workers share the requests.
                no_keepalive = httpx.Limits(max_keepalive_connections=0)
                with httpx.Client(timeout=10, limits=no_keepalive) as client:
                    for i in range(90):
                        assert client.get(f"{shop.url}/sku-{i}").status_code == 200
                assert store.counts().events == 0  # the workers hold their events...
                shop.stop(signal.SIGTERM)  # ...and send them as they exit
            finally:
                shop.kill()
        assert store.counts().events == 90  # (the readiness probe at / tracked no item)
