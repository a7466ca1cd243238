"""What mocap_node's /diagnostics judge: recent problems and frames lost before the callback.

Pure Python (no rclpy) so the rules are tested without DDS; times are ``time.monotonic()``
seconds, stamps are the images' header stamps in seconds.

* Warnings are judged over a recent window (``diagnostics_window``): one bad frame an hour
  ago is history, kept as a lifetime total, not a WARN for the rest of the node's life.
* Frames lost *before* the callback (DDS drops best-effort samples, e.g. most 900 KB images
  over shared memory under load) never reach the node's counters. They are estimated two
  ways: (1) camera drivers publish camera_info with every image, with the same stamp, and
  the small camera_info messages get through: an info stamp with no image of that stamp
  after a grace period is a lost frame; (2) without a per-frame camera_info, gaps in the
  image stamps' cadence: a gap of k nominal periods means k - 1 frames lost. The nominal
  period is a low percentile of the stamp differences (the median would itself be a gap
  once half the frames are lost).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

# camera_info can arrive before its image; an info stamp counts as lost only after this long
GRACE_S = 0.5
# the nominal period is this percentile of stamp differences (robust to losses above 50 %)
_PERIOD_PERCENTILE = 0.1
_MAX_STAMPS = 4096  # per window; a 1 kHz camera for 4 s
_MIN_DIFFS = 4  # stamp differences needed before the cadence says anything
LOSS_WARN_FRACTION = 0.1


@dataclass(frozen=True)
class ArrivalReport:
    """Frames expected vs received over the window, and the lifetime estimate of losses."""

    source: str  # "camera_info", "stamps" or "none"
    expected: int
    received: int
    lost: int
    lost_total: int
    rate_hz: float  # images received per second over the window
    expected_rate_hz: float  # from the nominal period of the stamps (0: unknown)

    @property
    def lost_fraction(self) -> float:
        return self.lost / self.expected if self.expected else 0.0


class EventWindow:
    """Timestamps of one kind of event over the last ``window_s``, plus the lifetime count."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.total = 0
        self._times: deque[float] = deque()

    def add(self, now: float, n: int = 1) -> None:
        self.total += n
        self._times.extend([now] * min(n, _MAX_STAMPS))
        while len(self._times) > _MAX_STAMPS:
            self._times.popleft()

    def recent(self, now: float) -> int:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times)


class ArrivalMonitor:
    """Estimates frames lost before the image callback (see module docstring)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._images: deque[tuple[float, float]] = deque()  # (arrival, stamp)
        self._image_stamps: set[float] = set()
        self._infos: deque[tuple[float, float]] = deque()  # (arrival, stamp), not yet judged
        self._info_stamps: deque[float] = deque()  # recent info stamps, for the cadence
        self._last_image_stamp: float | None = None
        self._lost_by_info = EventWindow(window_s)
        self._judged_by_info = EventWindow(window_s)
        self._matched_by_info = EventWindow(window_s)
        self._lost_by_cadence = EventWindow(window_s)
        self._started: float | None = None

    # -- input
    def image(self, now: float, stamp: float) -> None:
        period = self.nominal_period()
        last = self._last_image_stamp
        if period and last is not None and stamp > last:
            gap = round((stamp - last) / period) - 1
            if gap > 0:
                self._lost_by_cadence.add(now, gap)
        if last is None or stamp > last:
            self._last_image_stamp = stamp
        self._images.append((now, stamp))
        self._image_stamps.add(stamp)
        self._trim(now)

    def camera_info(self, now: float, stamp: float) -> None:
        if not self._info_stamps or stamp != self._info_stamps[-1]:
            self._infos.append((now, stamp))
            self._info_stamps.append(stamp)
            while len(self._info_stamps) > _MAX_STAMPS:
                self._info_stamps.popleft()
        self._trim(now)

    # -- estimates
    def nominal_period(self) -> float:
        """Nominal frame period from the stamps (camera_info's if any, else the images')."""
        stamps = list(self._info_stamps) or [s for _, s in self._images]
        diffs = sorted(b - a for a, b in itertools.pairwise(stamps) if b > a)
        if len(diffs) < _MIN_DIFFS:
            return 0.0
        return diffs[int(_PERIOD_PERCENTILE * (len(diffs) - 1))]

    def report(self, now: float) -> ArrivalReport:
        self._trim(now)
        received = sum(1 for arrival, _ in self._images if now - arrival <= self.window_s)
        period = self.nominal_period()
        expected_rate = 1.0 / period if period else 0.0
        span = min(self.window_s, now - self._started) if self._started is not None else 0.0
        rate = received / span if span > 0 else 0.0
        if self._matched_by_info.recent(now):
            lost = self._lost_by_info.recent(now)
            expected = self._judged_by_info.recent(now)
            return ArrivalReport("camera_info", expected, expected - lost, lost,
                                 self._lost_by_info.total, rate, expected_rate)
        if period:
            lost = self._lost_by_cadence.recent(now)
            return ArrivalReport("stamps", received + lost, received, lost,
                                 self._lost_by_cadence.total, rate, expected_rate)
        return ArrivalReport("none", received, received, 0, 0, rate, expected_rate)

    def _judge_infos(self, now: float) -> None:
        while self._infos and now - self._infos[0][0] > GRACE_S:
            _, stamp = self._infos.popleft()
            self._judged_by_info.add(now)
            if stamp in self._image_stamps:
                self._matched_by_info.add(now)
            else:
                self._lost_by_info.add(now)

    def _trim(self, now: float) -> None:
        if self._started is None:
            self._started = now
        # judged on every input, so an image is still remembered when its info is judged
        self._judge_infos(now)
        keep = self.window_s + GRACE_S
        while self._images and (now - self._images[0][0] > keep
                                or len(self._images) > _MAX_STAMPS):
            _, stamp = self._images.popleft()
            self._image_stamps.discard(stamp)
        while len(self._infos) > _MAX_STAMPS:
            self._infos.popleft()
