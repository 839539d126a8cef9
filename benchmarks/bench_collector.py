"""Collector benchmark: events/s over HTTP against a minimal endpoint, and track() latency.

Run: ``python benchmarks/bench_collector.py`` (``--events``, ``--senders``, ``--repeat``,
``--calls`` change the sizes). Needs gunicorn (in the dev extra's environment).

1. Throughput: gunicorn with 2 sync workers serves recsdk's collector on 127.0.0.1, a fresh
   SQLite file per run; in the same run, in turns, gunicorn with 2 workers serves the
   reference endpoint of ``collector_apps.py`` (parse the JSON, ``executemany`` into a
   plain table with the store's pragmas; no validation, no dedupe, no index). The same
   sender processes post the same batches of 100 events (httpx, keep-alive) to each; the
   figure is the best of ``--repeat`` runs. After each run the store must hold exactly the
   events sent. The same collector as an ASGI app under uvicorn (2 workers) runs beside
   them, for FastAPI shops.
2. ``track()`` latency in the calling thread: a ``recsdk.Tracker`` pointed at the real
   collector, each call timed with ``perf_counter_ns``, beside a bare
   ``queue.Queue.put_nowait`` of a dict and a bare ``recsdk.Event(...)``; then a flush, and
   the store must hold every tracked event.

Targets (issue 5, ../shared/ANCHORS.md): the collector >= 0.8x the reference endpoint;
``track()`` p50 <= 10 us. Machines differ, so compare the ratios this benchmark prints.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import httpx

from recsdk import Event, EventStore, Tracker
from recsdk.events import new_event_id

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from collector_apps import WRITE_KEY  # noqa: E402

GUNICORN = Path(sys.executable).with_name("gunicorn")
BATCH = 100
RECSDK_APP = "collector_apps:recsdk_collector()"
RECSDK_ASGI_APP = "collector_apps:recsdk_collector_asgi"
REFERENCE_APP = "collector_apps:reference_endpoint()"

# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(app: str, database: Path, workers: int = 2) -> Iterator[str]:
    """Serve ``app`` from benchmarks/ on a free port; yield its base URL."""
    port = free_port()
    command = [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "--log-level", "warning", app]  # fmt: skip
    with serving(command, port, database) as url:
        yield url


@contextmanager
def uvicorn(factory: str, database: Path, workers: int = 2) -> Iterator[str]:
    """Serve the ASGI app ``factory`` makes, from benchmarks/, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--workers", str(workers),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
    with serving(command, port, database) as url:
        yield url


@contextmanager
def serving(command: list[str], port: int, database: Path) -> Iterator[str]:
    """Run ``command`` (a server of an app in benchmarks/) until the block ends."""
    env = {**os.environ, "RECSDK_BENCH_DATABASE": str(database), "PYTHONPATH": str(HERE)}
    process = subprocess.Popen(command, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url + "/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not start at {url}")


# ---------------------------------------------------------------------------- the load


def shop_event(rng: random.Random, moment: str) -> dict[str, Any]:
    """A valid event in the wire format: mostly views, some cart adds and order lines."""
    user, item = rng.randrange(20_000), rng.randrange(5_000)
    event: dict[str, Any] = {
        "event_id": new_event_id(),
        "type": "view",
        "user_id": f"user-{user}",
        "item_id": f"sku-{item}",
        "timestamp": moment,
        "properties": {"source": rng.choice(["search", "home", "category"]), "position": 3},
    }
    draw = rng.random()
    if draw < 0.05:
        event.update(type="purchase", order_id=f"o-{user}-{item}", price=19.5, quantity=1)
    elif draw < 0.20:
        event.update(type="add_to_cart", quantity=rng.randint(1, 3))
    return event


def request_bodies(n_events: int, seed: int) -> list[bytes]:
    """Batches of ``BATCH`` new events (new ids each time), as JSON request bodies."""
    rng = random.Random(seed)
    moment = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    bodies = []
    for start in range(0, n_events, BATCH):
        batch = [shop_event(rng, moment) for _ in range(min(BATCH, n_events - start))]
        bodies.append(json.dumps({"batch": batch, "sent_at": moment}).encode())
    return bodies


def send_share(
    url: str, bodies: list[bytes], ready: Any, go: ProcessEvent, done: Any
) -> None:  # pragma: no cover - runs in a sender process
    """One sender: post its bodies one after the other; report the events accepted."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {WRITE_KEY}"}
    accepted = 0
    with httpx.Client(timeout=60) as client:
        ready.put(None)
        go.wait()
        for body in bodies:
            response = client.post(url, content=body, headers=headers)
            response.raise_for_status()
            accepted += int(response.json()["accepted"])
    done.put(accepted)


def load(url: str, bodies: list[bytes], senders: int) -> float:
    """Seconds for ``senders`` processes to post every body; every event must be accepted."""
    context = multiprocessing.get_context("spawn")
    ready, done, go = context.Queue(), context.Queue(), context.Event()
    shares = [bodies[i::senders] for i in range(senders)]
    processes = [
        context.Process(target=send_share, args=(url, share, ready, go, done)) for share in shares
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    accepted = sum(done.get(timeout=600) for _ in processes)
    seconds = time.perf_counter() - start
    for process in processes:
        process.join()
    expected = sum(len(json.loads(body)["batch"]) for body in bodies)
    if accepted != expected:
        raise AssertionError(f"{accepted} events accepted of {expected} sent")
    return seconds


def run_recsdk(folder: Path, bodies: list[bytes], senders: int, n_events: int) -> float:
    return _run_collector(folder, lambda db: gunicorn(RECSDK_APP, db), bodies, senders, n_events)


def run_recsdk_asgi(folder: Path, bodies: list[bytes], senders: int, n_events: int) -> float:
    return _run_collector(
        folder, lambda db: uvicorn(RECSDK_ASGI_APP, db), bodies, senders, n_events
    )


def _run_collector(
    folder: Path,
    serve: Callable[[Path], AbstractContextManager[str]],
    bodies: list[bytes],
    senders: int,
    n_events: int,
) -> float:
    database = folder / f"recsdk-{time.monotonic_ns()}.db"
    EventStore(f"sqlite:///{database}").close()  # the tables exist before the workers start
    with serve(database) as url:
        seconds = load(url + "/recsdk/events", bodies, senders)
    with EventStore(f"sqlite:///{database}") as store:
        stored = store.counts().events
    if stored != n_events:
        raise AssertionError(f"the store holds {stored} events; {n_events} were sent")
    return seconds


def run_reference(folder: Path, bodies: list[bytes], senders: int, n_events: int) -> float:
    database = folder / f"reference-{time.monotonic_ns()}.db"
    with gunicorn(REFERENCE_APP, database) as url:
        seconds = load(url + "/events", bodies, senders)
    with sqlite3.connect(database) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM events").fetchone()
    if stored != n_events:
        raise AssertionError(f"the reference holds {stored} events; {n_events} were sent")
    return seconds


def compare_throughput(n_events: int, senders: int, repeat: int) -> None:
    print(
        f"\n1. {n_events:,} events in batches of {BATCH} over HTTP on loopback, gunicorn 2 sync "
        f"workers, {senders} sender processes, SQLite (best of {repeat}, in turns)"
    )
    runners = {
        "recsdk collector": run_recsdk,
        "reference endpoint": run_reference,
        "recsdk ASGI": run_recsdk_asgi,
    }
    best = dict.fromkeys(runners, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(repeat):
            bodies = request_bodies(n_events, seed=attempt)  # new event ids each run
            order = list(runners) if attempt % 2 == 0 else list(reversed(runners))
            for name in order:
                seconds = runners[name](Path(tmp), bodies, senders, n_events)
                best[name] = min(best[name], seconds)
                print(f"   run {attempt + 1}: {name:<19} {n_events / seconds / 1000:7.1f}k/s")
    collector, reference = best["recsdk collector"], best["reference endpoint"]
    print(f"  recsdk collector (validate, enrich, dedupe, store)  {rate(n_events, collector)}")
    print(f"  reference (parse JSON + executemany, nothing else)  {rate(n_events, reference)}")
    print(f"  collector / reference: {reference / collector:.2f}x   (target: >= 0.8x)")
    asgi = best["recsdk ASGI"]
    print(f"  the same collector as ASGI, uvicorn 2 workers       {rate(n_events, asgi)}")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1000:8.1f}k events/s"


# ---------------------------------------------------------------------------- track()


def track_calls(n_calls: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """What a shop's request handlers track: views with properties, cart adds, order lines."""
    rng = random.Random(seed)
    calls = []
    for _ in range(n_calls):
        event = shop_event(rng, "")
        del event["event_id"], event["timestamp"]  # the tracker makes both
        calls.append((event.pop("type"), event))
    return calls


def latencies(call: Callable[[str, dict[str, Any]], Any], calls: Sequence[Any]) -> list[int]:
    """Nanoseconds of each call, in the calling thread."""
    clock = time.perf_counter_ns
    spent = []
    for kind, fields in calls:
        start = clock()
        call(kind, fields)
        spent.append(clock() - start)
    return spent


def percentiles(spent: list[int]) -> str:
    ordered = sorted(spent)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000

    return f"p50 {at(0.50):6.2f} us   p90 {at(0.90):6.2f} us   p99 {at(0.99):6.2f} us"


def measure_track(n_calls: int) -> None:
    print(f"\n2. track() latency in the calling thread, {n_calls:,} calls (views, carts, orders)")
    calls = track_calls(n_calls, seed=99)
    bare_queue: queue.Queue[dict[str, Any]] = queue.Queue(n_calls)
    baseline = latencies(
        lambda kind, fields: bare_queue.put_nowait({"type": kind, **fields}), calls
    )
    bare_event = latencies(lambda kind, fields: Event(kind, **fields), calls)
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "track.db"
        EventStore(f"sqlite:///{database}").close()
        with gunicorn(RECSDK_APP, database) as url:
            tracker = Tracker(f"{url}/recsdk", WRITE_KEY, max_queue=n_calls)
            tracked = latencies(lambda kind, fields: tracker.track(kind, **fields), calls)
            delivered = tracker.flush(timeout=300)
            tracker.shutdown()
        with EventStore(f"sqlite:///{database}") as store:
            stored = store.counts().events
    stats = tracker.stats()
    print(f"  Tracker.track() (validate + enqueue)   {percentiles(tracked)}")
    print(f"  queue.Queue.put_nowait of a dict        {percentiles(baseline)}")
    print(f"  recsdk.Event(...) alone (validation)   {percentiles(bare_event)}")
    ratio = median(tracked) / median(baseline)
    print(f"  track() p50 / put_nowait p50: {ratio:.1f}x   (target: track() p50 <= 10 us)")
    print(f"  delivered: {stored:,} stored of {n_calls:,} tracked; tracker stats {stats}")
    if not delivered or stored != n_calls or stats["dropped"]:
        raise AssertionError("tracked events were lost")


def median(spent: list[int]) -> int:
    return sorted(spent)[len(spent) // 2]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4, help="concurrent sender processes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100_000, help="track() calls to time")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_throughput:
        compare_throughput(args.events, args.senders, args.repeat)
    measure_track(args.calls)


if __name__ == "__main__":
    main()
