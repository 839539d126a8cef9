"""A periodic background task (refit, reload) that survives gunicorn's fork.

Threads do not survive ``fork()``: a task started in a master process that then forks its
workers would be silently dead in each of them. :meth:`Periodic.ensure` is called on the
recommender's public paths; it (re)starts the thread when none runs in this process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

log = logging.getLogger("recsdk.recommender")


class Periodic:
    """Runs ``task`` every ``interval`` seconds in a daemon thread; errors are logged."""

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        if interval <= 0:
            raise ValueError(f"{name}: the interval must be positive, not {interval}")
        self.name = name
        self.interval = interval
        self._task = task
        self._pid = -1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure(self) -> None:
        """Start the thread unless it already runs in this process."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, name=f"recsdk-{self.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            try:
                self._task()
            except Exception:  # keep serving the previous state; say why
                log.exception("recsdk recommender: %s failed", self.name)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread (for good) and wait for a running task up to ``timeout``."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)
