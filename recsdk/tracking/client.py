"""The synchronous tracking client: :class:`Tracker`, safe inside any web worker.

``track()`` validates and enqueues, and returns at once; a background thread batches, gzips,
posts to the collector and retries. It never raises into the caller, keeps a bounded queue,
restarts its thread in forked children (gunicorn, uwsgi) and sends what is left at exit.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import math
import os
import threading
import time
import weakref
from typing import Any

import httpx

from recsdk.tracking.policy import Batch, ErrorCallback, TrackerBase, answer_of
from recsdk.tracking.validation import QueuedEvent

__all__ = ["Tracker"]

log = logging.getLogger("recsdk.tracking")

_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


class Tracker(TrackerBase):
    """Sends server-side events to a recsdk collector.

    Parameters
    ----------
    endpoint:
        The collector's base URL, e.g. ``"https://shop.example/recsdk"`` (events go to
        ``{endpoint}/events``).
    write_key:
        The collector's secret write key (sent as ``Authorization: Bearer``).
    on_error:
        Called as ``on_error(reason, events)`` when events are dropped (queue full, invalid,
        rejected by the collector, or undeliverable after every retry). Never raises into
        the tracker: its own errors are logged.
    sync_mode:
        Send each event in the calling thread before ``track()`` returns: for tests and
        serverless functions. Still never raises.
    transport:
        An httpx transport, e.g. to route requests in tests.
    **options:
        Fields of :class:`~recsdk.tracking.policy.TrackerOptions` (``max_queue``,
        ``batch_size``, ``flush_interval``...).
    """

    def __init__(
        self,
        endpoint: str,
        write_key: str | None = None,
        *,
        on_error: ErrorCallback | None = None,
        sync_mode: bool = False,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, write_key, on_error, options)
        self.sync_mode = sync_mode
        self._transport = transport
        self._start_fresh()
        _trackers.add(self)

    def _start_fresh(self, pending: list[QueuedEvent] | None = None) -> None:
        """(Re)make what a process cannot share: the queue, locks, client, worker."""
        self._pid = os.getpid()
        # A deque under one lock, rather than a queue.Queue: track() takes a single lock
        # (for the bound and the counters), and wakes the worker only when a batch starts
        # or fills, not for every event.
        self._pending: collections.deque[QueuedEvent] = collections.deque(pending or ())
        self._lock = threading.Lock()
        self._stats_lock = self._lock  # counters too: a lock copied by fork may be held
        self._progress = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._enqueued = len(self._pending)
        self._finished = 0
        self._drain = False  # send everything waiting (a flush, or shutdown)
        self._stopping = False
        self._client = httpx.Client(timeout=self.options.timeout, transport=self._transport)
        self._worker: threading.Thread | None = None

    # -- the caller's side ----------------------------------------------------------------

    def _enqueue(self, event: QueuedEvent) -> bool:
        if self.sync_mode:
            self._send(Batch.of([event]))
            return True
        if self._worker is None or self._pid != os.getpid():
            self._ensure_worker()
        with self._lock:
            waiting = len(self._pending)
            if waiting >= self.options.max_queue:
                return False
            self._pending.append(event)
            self._enqueued += 1
            self._stats.queued += 1
        if waiting == 0 or waiting + 1 == self.options.batch_size:
            self._wake.set()  # a batch starts (its interval runs from now) or is full
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything tracked so far; return whether it all went within ``timeout``."""
        if self.sync_mode or self._pid != os.getpid():
            return True
        with self._lock:
            target = self._enqueued
            self._drain = True
        self._ensure_worker()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while self._finished < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._progress.wait(left)
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Send what is left (waiting at most ``timeout``), then stop the worker."""
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        done = self.flush(timeout)
        worker = self._worker
        if worker is not None and self._pid == os.getpid():
            with self._lock:
                self._stopping = True
            self._wake.set()
            worker.join(max(0.0, self._deadline - time.monotonic()))
            if not worker.is_alive():
                self._worker = None  # a later track() starts a new one
        self._client.close()
        _trackers.discard(self)
        return done

    # -- the worker -----------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():  # a forked child without the fork hook (rare)
            self._after_fork()
        worker = self._worker
        if worker is not None and worker.is_alive():
            return
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._stopping = False
                if self._client.is_closed:
                    self._client = httpx.Client(
                        timeout=self.options.timeout, transport=self._transport
                    )
                self._worker = threading.Thread(
                    target=self._run, name="recsdk-tracker", daemon=True
                )
                self._worker.start()
        _trackers.add(self)

    def _run(self) -> None:
        """Sleep until a batch is full, due, or asked for; send; repeat until stopped."""
        due = math.inf  # when the oldest waiting event must be sent
        while True:
            self._wake.clear()  # before reading the state: a later wake-up is kept
            with self._lock:
                waiting, drain, stopping = len(self._pending), self._drain, self._stopping
                self._drain = False
            now = time.monotonic()
            if waiting and due == math.inf:
                due = now + self.options.flush_interval
            if drain or stopping or (waiting and now >= due):
                self._send_waiting(waiting)
                due = math.inf
            elif waiting >= self.options.batch_size:
                self._send_waiting(waiting - waiting % self.options.batch_size)
                continue
            if stopping:
                return
            self._wake.wait(None if due == math.inf else max(0.0, due - now))

    def _send_waiting(self, count: int) -> None:
        """Send the ``count`` oldest waiting events, in batches within the limits."""
        batch = Batch()
        for _ in range(count):
            event = self._pending.popleft()
            if not batch.fits(event, self.options):
                self._deliver(batch)
                batch = Batch()
            batch.add(event)
        self._deliver(batch)

    def _deliver(self, batch: Batch) -> None:
        if not batch.events:
            return
        try:
            self._send(batch)
        except Exception:
            log.exception("recsdk tracker: unexpected error while sending")
        with self._progress:
            self._finished += len(batch.events)
            self._progress.notify_all()

    def _send(self, batch: Batch) -> None:
        """Post one batch, retrying as the policy says; account for every event."""
        body = batch.encode()
        for attempt in itertools.count(1):
            delay = self._settle(attempt, *self._post(body), batch.events)
            if delay is None:
                return
            time.sleep(delay)

    def _post(self, body: bytes) -> tuple[int | None, Any, dict[str, str]]:
        try:
            return answer_of(self._client.post(self.url, content=body, headers=self._headers))
        except httpx.HTTPError as error:
            log.warning("recsdk tracker: %s", error)
            return None, None, {}

    def _after_fork(self) -> None:
        """In a forked child: keep the queued events, remake the rest, start over."""
        self._start_fresh(list(self._pending))


def _after_fork_in_child() -> None:
    for tracker in list(_trackers):
        tracker._after_fork()


def _shutdown_all() -> None:
    for tracker in list(_trackers):
        try:
            tracker.shutdown()
        except Exception:
            log.exception("recsdk tracker: flush at exit failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_shutdown_all)
