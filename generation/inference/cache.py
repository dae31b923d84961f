"""A per-process cache of loaded models.

GPU workers run jobs in one long-lived process (RQ ``SimpleWorker``), so a model loaded for the
first job stays in memory for the next ones. Loading the same key twice would waste seconds (and
GPU memory), so ``get`` holds a lock per key while the loader runs. ``load_counts`` lets workers,
tests and benchmarks prove that a model was loaded once for N jobs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any


class ModelCache:
    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.load_counts: Counter[str] = Counter()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        if key in self._items:
            return self._items[key]
        with self._lock_for(key):
            if key not in self._items:
                self._items[key] = loader()
                self.load_counts[key] += 1
            return self._items[key]

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def evict(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def stats(self) -> dict[str, int]:
        return dict(self.load_counts)


#: the process-wide cache every loader in this package uses
models = ModelCache()
