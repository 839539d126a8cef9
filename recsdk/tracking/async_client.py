"""The asyncio tracking client: :class:`AsyncTracker`, for async web apps (FastAPI...).

The same batching, retry and validation rules as :class:`~recsdk.tracking.client.Tracker`
(they live in :mod:`recsdk.tracking.policy`); only the I/O differs: an
:class:`httpx.AsyncClient` and a task on the running event loop instead of a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

import httpx

from recsdk.tracking.policy import Batch, ErrorCallback, TrackerBase, answer_of
from recsdk.tracking.validation import QueuedEvent

__all__ = ["AsyncTracker"]

log = logging.getLogger("recsdk.tracking")


class AsyncTracker(TrackerBase):
    """Sends server-side events to a recsdk collector from asyncio code.

    ``track()`` is a plain (non-async) call that queues and returns at once; call it from
    the event loop's thread. ``await flush()`` sends what is queued; ``await aclose()``
    flushes and stops (call it on the app's shutdown).

    Parameters are those of :class:`~recsdk.tracking.client.Tracker`, with an
    ``httpx.AsyncBaseTransport`` as ``transport``.
    """

    def __init__(
        self,
        endpoint: str,
        write_key: str | None = None,
        *,
        on_error: ErrorCallback | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, write_key, on_error, options)
        self._transport = transport
        # Events and flush markers (futures), in order.
        self._queue: asyncio.Queue[Any] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def _enqueue(self, event: QueuedEvent) -> bool:
        try:
            self._ensure_worker().put_nowait(event)
        except asyncio.QueueFull:
            return False
        self._count(queued=1)
        return True

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued; return whether it all went within ``timeout``."""
        if self._queue is None or self._worker is None or self._worker.done():
            return True
        sent = asyncio.get_running_loop().create_future()
        await self._queue.put(sent)  # the worker settles it after what was queued before
        try:
            await asyncio.wait_for(asyncio.shield(sent), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush (waiting at most ``timeout``, default ``shutdown_timeout``), then stop."""
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        done = await self.flush(timeout)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._client is not None:
            await self._client.aclose()
        self._queue = self._worker = self._client = None
        return done

    def _ensure_worker(self) -> asyncio.Queue[Any]:
        if self._queue is None:
            self._queue = asyncio.Queue(self.options.max_queue)
        if self._worker is None or self._worker.done():
            self._client = self._client or httpx.AsyncClient(
                timeout=self.options.timeout, transport=self._transport
            )
            self._worker = asyncio.get_running_loop().create_task(self._run(self._queue))
        return self._queue

    async def _run(self, queue: asyncio.Queue[Any]) -> None:
        """Gather events into batches; send a batch when full, due, or at a flush marker."""
        batch = Batch()
        due: float | None = None
        while True:
            wait = None if due is None else max(0.0, due - time.monotonic())
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except asyncio.TimeoutError:
                item = None
            if item is not None and not isinstance(item, asyncio.Future):
                if not batch.fits(item, self.options):
                    await self._deliver(batch)
                    batch, due = Batch(), None
                batch.add(item)
                due = due or time.monotonic() + self.options.flush_interval
                if not batch.full(self.options):
                    continue
            await self._deliver(batch)
            batch, due = Batch(), None
            if isinstance(item, asyncio.Future) and not item.done():
                item.set_result(None)

    async def _deliver(self, batch: Batch) -> None:
        if not batch.events:
            return
        try:
            await self._send(batch)
        except Exception:
            log.exception("recsdk tracker: unexpected error while sending")

    async def _send(self, batch: Batch) -> None:
        body = batch.encode()
        for attempt in itertools.count(1):
            delay = self._settle(attempt, *await self._post(body), batch.events)
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def _post(self, body: bytes) -> tuple[int | None, Any, dict[str, str]]:
        assert self._client is not None
        try:
            return answer_of(await self._client.post(self.url, content=body, headers=self._headers))
        except httpx.HTTPError as error:
            log.warning("recsdk tracker: %s", error)
            return None, None, {}
