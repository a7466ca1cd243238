"""A one-item mailbox: the producer always replaces, the consumer always gets the newest.

This is what keeps latency bounded under overload: a frame that arrives while another is
being processed replaces the pending one (counted as dropped) instead of queueing.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.replaced = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced one that was never taken (a drop)."""
        with self._cond:
            dropped = self._item is not None
            if dropped:
                self.replaced += 1
            self._item = item
            self._cond.notify()
            return dropped

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, or None after ``timeout`` seconds or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
