"""Group commit: one background writer thread per process makes envelopes durable in batches.

Request threads hand their envelope to the writer and block until the batch holding it has been
written and fsynced (or uploaded); only then do they answer 2xx. While one batch is being
flushed the next one fills up, so a single fsync acknowledges many requests: throughput grows
with load instead of being capped by the disk's fsync latency.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import Any

from deactivation.raw_store import RawStore, RawStoreError

log = logging.getLogger(__name__)

#: How long a request waits for its batch. The SDK gives up after 30 s, so answering later is useless.
ACK_TIMEOUT_S = 25.0


class _Batch:
    """Envelopes committed together; every request in it wakes on the same event."""

    __slots__ = ("done", "error", "items")

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommitWriter:
    """Durably writes envelopes through a RawStore, at most `batch_max` per commit."""

    def __init__(self, store: RawStore, batch_max: int) -> None:
        self.store = store
        self.batch_max = batch_max
        self._lock = threading.Condition()
        self._ready: deque[_Batch] = deque()
        self._filling: _Batch | None = None
        self._thread: threading.Thread | None = None
        self._owner_pid = 0
        self._closed = False

    def write(self, route: str, envelope: dict[str, Any]) -> None:
        """Return once the envelope is durable; raise RawStoreError if it may not be."""
        batch = self._enqueue(route, envelope)
        if not batch.done.wait(ACK_TIMEOUT_S):
            raise RawStoreError(f"the store did not confirm the write within {ACK_TIMEOUT_S:.0f}s")
        if batch.error is not None:
            raise RawStoreError(str(batch.error)) from batch.error

    def _enqueue(self, route: str, envelope: dict[str, Any]) -> _Batch:
        with self._lock:
            if self._closed:
                raise RawStoreError("the writer is shut down")
            self._ensure_thread()
            batch = self._filling
            if batch is None or len(batch.items) >= self.batch_max:
                batch = self._filling = _Batch()
                self._ready.append(batch)
                self._lock.notify()
            batch.items.append((route, envelope))
            return batch

    def _ensure_thread(self) -> None:
        # Started lazily, in the process that serves: a thread started before a server forks
        # its workers would not exist in them.
        if self._thread is None or self._owner_pid != os.getpid():
            self._ready.clear()
            self._filling = None
            self._owner_pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="raw-store-writer", daemon=True)
            self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._owner_pid == os.getpid()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            self._lock.notify()
            thread = self._thread if self._owner_pid == os.getpid() else None
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._ready and not self._closed:
                    self._lock.wait()
                if not self._ready:
                    return
                batch = self._ready.popleft()
                if batch is self._filling:
                    self._filling = None
            self._commit(batch)

    def _commit(self, batch: _Batch) -> None:
        by_route: dict[str, list[dict[str, Any]]] = {}
        for route, envelope in batch.items:
            by_route.setdefault(route, []).append(envelope)
        try:
            for route, envelopes in by_route.items():
                self.store.write_envelopes(route, envelopes)
        except Exception as exc:  # any failure means: do not acknowledge this batch
            log.error(
                "raw store write failed (%s); %d envelopes not acknowledged",
                type(exc).__name__,
                len(batch.items),
            )
            batch.error = exc
        finally:
            batch.done.set()
