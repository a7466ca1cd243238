"""Progress bar and the summary of an offline processing run."""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# =========================================================================== progress
class Progress:
    """A one-line progress bar on a stream (stderr): count, bar, frames/s, ETA.

    On a terminal it redraws in place (at most 10 times a second); otherwise it prints a line
    every 10 % so logs stay short.
    """

    def __init__(self, total: int, label: str = "process", stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30) -> None:
        self.total, self.label, self.width = max(int(total), 0), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0
        self._last_draw = 0.0
        self._next_pct = 10

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        fps = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = round(frac * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            eta = (self.total - self.done) / fps if fps > 0 else float("nan")
            eta_s = f"ETA {eta:4.0f}s" if math.isfinite(eta) else "ETA    ?"
            return (f"{self.label}: {self.done}/{self.total} [{bar}] {frac * 100:3.0f}% "
                    f"{fps:5.1f} frames/s {eta_s}")
        return f"{self.label}: {self.done} {fps:5.1f} frames/s"

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self._last_draw = now
        elif self.total and self.done * 100 >= self._next_pct * self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            while self._next_pct * self.total <= self.done * 100:
                self._next_pct += 10

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()


# =========================================================================== processing
@dataclass
class ProcessSummary:
    """What :func:`process_bag` did."""

    in_path: str
    out_path: str
    storage: str
    image_topics: list[str]
    images: int = 0  # images seen (= poses written)
    valid: int = 0
    invalid: int = 0  # processed, but the pose says valid=false (reason in the message)
    bad_images: int = 0  # undecodable images (a valid=false pose each)
    tf_messages: int = 0
    messages_copied: int = 0
    wall_s: float = 0.0
    processing_s: float = 0.0  # time spent in decode + pipeline
    csv_path: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    skipped_topics: list[str] = field(default_factory=list)
    complete: bool = False  # False when the input ended in an error

    @property
    def fps(self) -> float:
        """Images per second of wall time (model loading and bag I/O included)."""
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def processing_fps(self) -> float:
        """Images per second of decoding + pipeline alone."""
        return self.images / self.processing_s if self.processing_s > 0 else 0.0

    def text(self) -> str:
        lines = [
            f"{'processed' if self.complete else 'PARTIALLY processed'} {self.in_path} -> "
            f"{self.out_path} ({self.storage})",
            f"  image topics: {', '.join(self.image_topics)}",
            f"  images: {self.images} (valid poses {self.valid}, invalid {self.invalid}, "
            f"undecodable {self.bad_images}); /tf messages: {self.tf_messages}; "
            f"messages copied: {self.messages_copied}",
            f"  {self.wall_s:.2f} s wall ({self.fps:.2f} frames/s); decode + pipeline "
            f"{self.processing_s:.2f} s ({self.processing_fps:.2f} frames/s)",
        ]
        if self.csv_path:
            lines.append(f"  CSV: {self.csv_path}")
        if self.stats:
            lines.append("  counters: " + ", ".join(f"{k}={v}" for k, v in
                                                    sorted(self.stats.items())))
        if self.skipped_topics:
            lines.append("  NOT copied (no message definition): "
                         + ", ".join(self.skipped_topics))
        return "\n".join(lines)


