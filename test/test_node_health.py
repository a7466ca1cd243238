"""mocap_node's diagnostics rules without DDS: windows, and frames lost before the callback."""

from __future__ import annotations

import itertools

import numpy as np

from mocap_ros.ros.node_health import GRACE_S, ArrivalMonitor, EventWindow


def test_event_window_forgets_old_events_but_keeps_the_total() -> None:
    w = EventWindow(10.0)
    w.add(0.0)
    assert w.recent(5.0) == 1
    assert w.recent(10.5) == 0 and w.total == 1
    w.add(11.0, 3)
    assert w.recent(12.0) == 3 and w.total == 4


def _camera(monitor: ArrivalMonitor, n: int, delivered: np.ndarray, fps: float = 30.0,
            info: bool = True) -> float:
    """n frames at fps: camera_info always arrives, the image only where ``delivered``."""
    t = 0.0
    for i in range(n):
        t = i / fps
        stamp = 1000.0 + i / fps
        if info:
            monitor.camera_info(t, stamp)
        if delivered[i]:
            monitor.image(t + 0.002, stamp)
    return t


def test_lost_images_are_counted_against_camera_info_stamps() -> None:
    rng = np.random.default_rng(0)
    delivered = rng.random(300) < 0.47  # the 8546 of 18000
    m = ArrivalMonitor(window_s=5.0)
    t = _camera(m, 300, delivered)
    r = m.report(t + GRACE_S + 0.1)
    assert r.source == "camera_info"
    # every frame of the last 5 s was judged; losses are exactly the undelivered ones
    window = slice(300 - r.expected, 300)
    assert 140 <= r.expected <= 151
    assert r.lost == int((~delivered[window]).sum())
    assert r.lost_total == int((~delivered).sum())
    assert 0.45 < r.lost_fraction < 0.62
    assert abs(r.expected_rate_hz - 30.0) < 0.01


def test_without_camera_info_the_stamp_cadence_finds_the_gaps() -> None:
    rng = np.random.default_rng(1)
    delivered = rng.random(300) < 0.47
    m = ArrivalMonitor(window_s=5.0)
    t = _camera(m, 300, delivered, info=False)
    now = t + 0.1
    r = m.report(now)
    assert r.source == "stamps"
    # each gap is counted by the image that closes it: those that arrived in the last 5 s
    idx = np.flatnonzero(delivered)
    closing = [(j, i) for i, j in itertools.pairwise(idx) if now - (j / 30 + 0.002) <= 5]
    assert r.lost == sum(j - i - 1 for j, i in closing) > 50
    assert r.received == len([j for j in idx if now - (j / 30 + 0.002) <= 5.0])
    assert abs(r.expected_rate_hz - 30.0) < 0.01


def test_a_clean_stream_reports_no_loss_and_unrelated_camera_info_is_ignored() -> None:
    m = ArrivalMonitor(window_s=5.0)
    t = _camera(m, 200, np.ones(200, bool))
    r = m.report(t + GRACE_S + 0.1)
    assert r.source == "camera_info" and r.lost == 0 and r.expected > 100
    # camera_info from a static publisher (own stamps at 1 Hz): never matches an image, so
    # the estimate falls back to the images' own cadence instead of calling everything lost
    m = ArrivalMonitor(window_s=5.0)
    for i in range(150):
        if i % 30 == 0:
            m.camera_info(i / 30, 5.0 + i / 30)
        m.image(i / 30, 1000.0 + i / 30)
    r = m.report(150 / 30 + GRACE_S)
    assert r.source == "stamps" and r.lost == 0
