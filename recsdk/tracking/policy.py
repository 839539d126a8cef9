"""The pure parts of the tracking clients, shared by :class:`Tracker` and :class:`AsyncTracker`.

No I/O here: building and validating events, cutting batches, encoding them, deciding what
to retry and how long to wait. The two clients repeat only the I/O around these.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import attrs
import httpx

from recsdk.errors import InvalidEvent
from recsdk.tracking.validation import QueuedEvent, checked, wire_form

__all__ = [
    "Batch",
    "Delivery",
    "ErrorCallback",
    "Stats",
    "TrackerBase",
    "TrackerOptions",
    "backoff_delay",
    "retry_after",
    "verdict",
]

ErrorCallback = Callable[[str, list[dict[str, Any]]], None]
"""``on_error(reason, events)``: told about events that were dropped or rejected."""

MAX_BACKOFF: Final = 30.0

log = logging.getLogger("recsdk.tracking")


@attrs.frozen
class TrackerOptions:
    """How a tracking client batches, retries and bounds its memory.

    Parameters
    ----------
    max_queue:
        Events waiting to be sent, at most; beyond it new events are dropped and counted.
    batch_size, batch_bytes, flush_interval:
        A batch is sent when it has ``batch_size`` events or ``batch_bytes`` bytes of JSON,
        or ``flush_interval`` seconds after its first event.
    max_retries:
        Attempts after the first before a batch is given up (then ``on_error`` hears of it).
    timeout:
        Seconds for one HTTP request.
    shutdown_timeout:
        Seconds the exit handler waits to send what is left.
    """

    max_queue: int = 10_000
    batch_size: int = 100
    batch_bytes: int = 500 * 1024
    flush_interval: float = 0.5
    max_retries: int = 10
    timeout: float = 10.0
    shutdown_timeout: float = 5.0


@attrs.define
class Stats:
    """What a tracker did: events sent, dropped, rejected by the collector, retries."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    invalid: int = 0
    rejected: int = 0
    retries: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


@attrs.define
class Batch:
    """Events gathered for one request, within the count and byte limits.

    Each event is kept in its wire form and as its JSON text, made once, in the worker:
    ``track()`` itself only validates and queues (the id and the time are formatted here).
    """

    events: list[dict[str, Any]] = attrs.field(factory=list)
    parts: list[str] = attrs.field(factory=list)
    size: int = 0

    @classmethod
    def of(cls, events: list[QueuedEvent]) -> Batch:
        batch = cls()
        for event in events:
            batch.add(event)
        return batch

    def fits(self, event: QueuedEvent, options: TrackerOptions) -> bool:
        """Whether ``event`` may join (an empty batch takes any event)."""
        if not self.events:
            return True
        return len(self.events) < options.batch_size and self.size <= options.batch_bytes

    def add(self, event: QueuedEvent) -> None:
        wire = wire_form(event)
        part = json.dumps(wire, separators=(",", ":"), ensure_ascii=False)
        self.events.append(wire)
        self.parts.append(part)
        self.size += len(part) + 1

    def full(self, options: TrackerOptions) -> bool:
        return len(self.events) >= options.batch_size or self.size >= options.batch_bytes

    def encode(self, key: str | None = None) -> bytes:
        """The gzipped JSON body, stamped with the time of sending."""
        sent_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        extra = "" if key is None else f",{json.dumps('key')}:{json.dumps(key)}"
        text = f'{{"batch":[{",".join(self.parts)}],"sent_at":"{sent_at}"{extra}}}'
        # A lone surrogate (which no UTF-8 can hold) becomes its JSON escape, \udXXX,
        # instead of failing the whole batch.
        return gzip.compress(text.encode("utf-8", "backslashreplace"), 5)


class Delivery:
    """What to do after a request: done, retry (after how long) or give up."""

    DONE: Final = "done"
    RETRY: Final = "retry"
    GIVE_UP: Final = "give_up"


def verdict(status: int | None) -> str:
    """Retry network errors, 5xx, 408 and 429; give up on other 4xx; 2xx is done."""
    if status is None or status >= 500 or status in (408, 429):
        return Delivery.RETRY
    if 200 <= status < 300:
        return Delivery.DONE
    return Delivery.GIVE_UP


def backoff_delay(attempt: int, retry_after_seconds: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2...): capped exponential, full jitter.

    A ``Retry-After`` from the server is honoured (within the cap).
    """
    if retry_after_seconds is not None:
        return min(MAX_BACKOFF, max(0.0, retry_after_seconds))
    ceiling = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def answer_of(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """A collector's answer: status, JSON body (None if not JSON), headers."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body, dict(response.headers)


def rejected_events(answer: Any, events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The events a collector's 200 answer rejected, with the field and reason."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return []
    return [
        (event, f"{result.get('field')}: {result.get('reason')}")
        for event, result in zip(events, results, strict=False)
        if isinstance(result, dict) and result.get("status") == "rejected"
    ]


class TrackerBase:
    """What the sync and async clients share: options, counters, error reports, and the
    decisions after each request. No I/O.
    """

    def __init__(
        self,
        endpoint: str,
        write_key: str | None,
        on_error: ErrorCallback | None,
        options: Mapping[str, Any],
    ) -> None:
        self.url = endpoint.rstrip("/") + "/events"
        self.options = TrackerOptions(**options)
        self._headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if write_key:
            self._headers["Authorization"] = f"Bearer {write_key}"
        self._on_error = on_error
        self._stats = Stats()
        self._stats_lock = threading.Lock()
        self._deadline = float("inf")  # retries stop here (set by shutdown)

    def stats(self) -> dict[str, int]:
        """Counts: queued, sent, dropped, invalid, rejected, retries, failed_batches."""
        with self._stats_lock:
            return self._stats.as_dict()

    def _count(self, **counts: int) -> None:
        with self._stats_lock:
            for name, count in counts.items():
                setattr(self._stats, name, getattr(self._stats, name) + count)

    def _report(self, reason: str, events: list[dict[str, Any]]) -> None:
        if self._on_error is None:
            log.warning("recsdk tracker: %s (%d events)", reason, len(events))
            return
        try:
            self._on_error(reason, events)
        except Exception:
            log.exception("recsdk tracker: on_error raised")

    def track(self, type: str, **fields: Any) -> None:
        """Record an event: validate it, queue it, return at once. Never raises."""
        try:
            event = self._validated(type, fields)
            if event is not None and not self._enqueue(event):
                self._count(dropped=1)
                self._report("the queue is full; event dropped", [wire_form(event)])
        except Exception:  # never into the host app
            log.exception("recsdk tracker: could not track an event")

    def _enqueue(self, event: QueuedEvent) -> bool:
        """Queue a valid event for sending; False if the queue is full."""
        raise NotImplementedError

    def _validated(self, type: str, fields: Mapping[str, Any]) -> QueuedEvent | None:
        """The event to queue, or None (counted and reported) if it is invalid."""
        try:
            return checked(type, fields)
        except InvalidEvent as error:
            self._count(invalid=1)
            self._report(f"invalid event: {error}", [{"type": type, **fields}])
            return None

    def _settle(
        self,
        attempt: int,
        status: int | None,
        answer: Any,
        headers: Mapping[str, str],
        events: list[dict[str, Any]],
    ) -> float | None:
        """After request ``attempt`` (1, 2...): None when the batch is settled for good,
        else the seconds to wait before the next attempt.
        """
        outcome = verdict(status)
        if outcome == Delivery.DONE:
            rejected = rejected_events(answer, events)
            self._count(sent=len(events) - len(rejected), rejected=len(rejected))
            for event, reason in rejected:
                self._report(f"rejected by the collector: {reason}", [event])
            return None
        delay = backoff_delay(attempt, retry_after(headers))
        exhausted = attempt > self.options.max_retries
        if outcome == Delivery.GIVE_UP or exhausted or time.monotonic() + delay > self._deadline:
            self._count(failed_batches=1, dropped=len(events))
            said = answer.get("error") if isinstance(answer, dict) else None
            why = f": {str(said)[:200]}" if said else ""
            self._report(f"batch not delivered (last status {status}{why})", events)
            return None
        self._count(retries=1)
        return delay
