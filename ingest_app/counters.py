"""Per-process counts of what the collector accepted and rejected (no request data in them)."""

from __future__ import annotations

import threading
from collections import Counter


class IngestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._store_failures = 0

    def accepted(self, route: str) -> None:
        with self._lock:
            self._accepted[route] += 1

    def rejected(self, code: str) -> None:
        with self._lock:
            self._rejected[code] += 1

    def store_failed(self) -> None:
        with self._lock:
            self._store_failures += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "accepted": dict(self._accepted),
                "rejected": dict(self._rejected),
                "store_failures": self._store_failures,
            }
