"""One policy for every in-process cache: bounded, locked, least recently used out first, and
what an entry owns (a temporary folder) removed when it goes.

The caches it serves are keyed by content or by a file's version (path, size, mtime): never by
a name a request gives. ``get_or_make`` builds a missing entry outside the lock, so a slow build
(unpacking a zip, hashing a split) holds up no other key; two callers racing for one key may both
build it, and the second result is the one discarded.
"""
from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    def __init__(self, max_items: int, on_evict: Callable[[V], None] | None = None):
        if max_items < 1:
            raise ValueError("a cache holds at least one entry")
        self.max_items, self.on_evict = max_items, on_evict
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, key: Hashable, value: V) -> V:
        """Store ``value`` (replacing the key's old entry) and evict beyond the bound."""
        evicted = []
        with self._lock:
            if key in self._items and self._items[key] is not value:
                evicted.append(self._items.pop(key))
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                evicted.append(self._items.popitem(last=False)[1])
        for old in evicted:  # outside the lock: removing a folder can take a while
            if self.on_evict is not None:
                self.on_evict(old)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        hit = self.get(key)
        if hit is not None:
            return hit
        value = make()
        with self._lock:
            raced = self._items.get(key)
        if raced is not None:  # another caller built it meanwhile: keep theirs, drop ours
            if self.on_evict is not None and raced is not value:
                self.on_evict(value)
            return self.get(key)
        return self.put(key, value)

    def clear(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for old in items:
            if self.on_evict is not None:
                self.on_evict(old)


def remove_folder(path: Path) -> None:
    """``on_evict`` for entries that are temporary folders."""
    shutil.rmtree(path, ignore_errors=True)
