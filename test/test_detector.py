"""The person detector (MediaPipe BlazePose) and its background thread.

Tests that need mediapipe FAIL (not skip) when it is missing: ``make setup`` installs it
from requirements-mediapipe.txt. The thread logic is tested with fake detectors.
"""

from __future__ import annotations

import importlib.metadata
import sys
import threading
import time

import numpy as np
import pytest

from mocap_ros.estimation.detector import (
    BackgroundDetector,
    DetectorUnavailable,
    box_from_landmarks,
)
from mocap_ros.estimation.landmarks.ik import LM, NUM_LANDMARKS


def _require_mediapipe() -> None:
    from mocap_ros.estimation.detector import _import_pose_module

    try:
        _import_pose_module()
    except DetectorUnavailable as e:
        pytest.fail(f"mediapipe is required (make setup installs it): {e}")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


# ------------------------------------------------------------------ installation
def test_mediapipe_is_installed_without_opencv_contrib():
    """make setup installs mediapipe with --no-deps: its declared opencv-contrib-python
    would clobber opencv-python-headless's cv2."""
    _require_mediapipe()
    assert importlib.metadata.version("mediapipe") == "0.10.14"
    for dist in ("opencv-contrib-python", "opencv-python", "jax", "sounddevice"):
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.version(dist)
    import cv2

    assert cv2.resize(np.zeros((4, 4, 3), np.uint8), (2, 2)).shape == (2, 2, 3)


def test_without_mediapipe_construction_fails_with_the_install_command(monkeypatch):
    import mocap_ros.estimation.detector as det

    monkeypatch.setattr(det, "_POSE_CLASS", None)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(DetectorUnavailable) as err:
        det.PersonDetector()
    msg = str(err.value)
    assert "pip install --no-deps -r requirements-mediapipe.txt" in msg
    assert "make setup" in msg
    assert not det.mediapipe_available()
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    with pytest.raises(DetectorUnavailable):
        LandmarksBackend(None)


# ------------------------------------------------------------------ boxes from landmarks
def test_box_from_landmarks_uses_visible_points_with_margin_and_clips():
    xy = np.zeros((NUM_LANDMARKS, 2))
    vis = np.zeros(NUM_LANDMARKS)
    xy[:5] = [[100, 100], [200, 100], [100, 300], [200, 300], [150, 200]]
    vis[:5] = 1.0
    xy[5:] = [1000, 1000]  # invisible ones are ignored
    box = box_from_landmarks(xy, vis, (480, 640), margin=0.1)
    np.testing.assert_allclose(box, [80, 80, 140, 240])
    # clipped to the image
    box = box_from_landmarks(xy - 95, vis, (480, 640), margin=0.1)
    np.testing.assert_allclose(box, [0, 0, 125, 225])
    # fewer than 4 visible: all landmarks count
    vis[:] = 0.0
    vis[0] = 1.0
    box = box_from_landmarks(xy, vis, (2000, 2000), margin=0.0)
    np.testing.assert_allclose(box, [100, 100, 900, 900])
    # entirely outside
    assert box_from_landmarks(xy + 5000, np.ones(NUM_LANDMARKS), (480, 640)) is None


# ------------------------------------------------------------------ MediaPipe
def test_person_detector_finds_the_astronaut(astronaut):
    _require_mediapipe()
    from mocap_ros.estimation.detector import PersonDetector

    with PersonDetector(static_image_mode=True) as det:
        lms = det.landmarks(astronaut)
        box = det.detect(astronaut)
        blank = det.detect(np.full((480, 640, 3), 200, np.uint8))
    assert lms is not None and box is not None
    assert lms.image_xy.shape == (33, 2) and lms.world.shape == (33, 3)
    x, y, w, h = box
    assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    for i in (*range(11), LM["left_shoulder"], LM["right_shoulder"]):  # head, shoulders
        u, v = lms.image_xy[i]
        assert x <= u <= x + w and y <= v <= y + h, i
    # Her left shoulder (BlazePose's left = the person's) is on the image's right.
    assert lms.image_xy[LM["left_shoulder"], 0] > lms.image_xy[LM["right_shoulder"], 0]
    # World landmarks: hip-centred, y down, z away from the camera (nose nearer than hips).
    np.testing.assert_allclose((lms.world[23] + lms.world[24]) / 2, 0.0, atol=0.02)
    assert lms.world[LM["nose"], 1] < -0.3
    assert lms.world[LM["nose"], 2] < 0.0
    assert blank is None


def test_background_detector_with_mediapipe(astronaut):
    _require_mediapipe()
    from mocap_ros.estimation.detector import PersonDetector

    with BackgroundDetector(PersonDetector()) as bg:
        assert bg.latest() is None
        bg.submit(astronaut)
        assert bg.wait_idle(60.0)
        box = bg.latest()
    assert box is not None and bg.error is None
    assert box[2] > 100 and box[3] > 100


# ------------------------------------------------------------------ the thread (fakes)
class _SlowDetector:
    """Returns a box naming the frame it saw (its first pixel), after a delay."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.seen: list[int] = []
        self.closed = False

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        self.seen.append(int(rgb[0, 0, 0]))
        time.sleep(self.delay)
        return np.array([rgb[0, 0, 0], 0.0, 10.0, 10.0])

    def close(self) -> None:
        self.closed = True


def _frame(i: int) -> np.ndarray:
    return np.full((8, 8, 3), i, np.uint8)


class _GatedDetector(_SlowDetector):
    """detect() blocks until the test opens the gate (or 10 s pass, which the test treats
    as a failure): whatever the caller does meanwhile did not wait for a detection."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.inside = False
        self.gate_timed_out = False

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        self.inside = True
        self.entered.set()
        self.gate_timed_out |= not self.gate.wait(10.0)
        self.inside = False
        return super().detect(rgb)


def test_background_detector_never_blocks_and_takes_the_newest_frame():
    fake = _GatedDetector()
    bg = BackgroundDetector(fake)
    bg.submit(_frame(1))
    assert fake.entered.wait(5.0)  # the thread took frame 1 and is held inside detect()
    for i in range(2, 6):
        bg.submit(_frame(i))
        assert bg.latest() is None  # nothing finished yet, and no waiting for it
    # all four submits and reads returned while detect() could not finish: none waited
    assert fake.inside and not fake.gate_timed_out
    fake.gate.set()
    assert bg.wait_idle(5.0)
    # frame 1 was taken at once; 2-4 were replaced while it ran; 5 is the newest
    assert fake.seen == [1, 5]
    assert bg.latest()[0] == 5
    assert bg.last_detection.frame_index == 4
    bg.close()
    assert fake.closed


def test_background_detector_every_n_and_max_age():
    fake = _SlowDetector(0.0)
    bg = BackgroundDetector(fake, every_n=3)
    queued = [bg.submit(_frame(i)) for i in range(7)]
    assert queued == [True, False, False, True, False, False, True]
    assert bg.wait_idle(5.0)
    assert set(fake.seen) <= {0, 3, 6} and 6 in fake.seen
    assert bg.latest(max_age_s=60.0) is not None
    time.sleep(0.05)
    assert bg.latest(max_age_s=0.01) is None
    bg.close()
    with pytest.raises(ValueError):
        BackgroundDetector(fake, every_n=0)


def test_background_detector_survives_detector_errors():
    calls = []

    def flaky(rgb):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return None

    bg = BackgroundDetector(flaky)
    bg.submit(_frame(1))
    assert bg.wait_idle(5.0)
    assert isinstance(bg.error, RuntimeError)
    bg.submit(_frame(2))
    assert bg.wait_idle(5.0)
    assert len(calls) == 2 and bg.latest() is None  # nobody found, thread still alive
    bg.close()
    assert not any(t.name == "mocap-person-detector" and t.is_alive()
                   for t in threading.enumerate() if t is bg._thread)


def test_background_detector_closes_the_detector_only_after_its_thread_stopped():
    """Issue 21 item 6: close() that gives up waiting for a detection still running must not
    close the detector under it (a use-after-free with MediaPipe): the thread closes it when
    that detection ends. Before the fix close() closed it after a timed-out join."""
    fake = _GatedDetector()
    bg = BackgroundDetector(fake)
    bg.submit(_frame(1))
    assert fake.entered.wait(5.0)  # held inside detect()
    bg.close(timeout=0.05)
    assert fake.inside and not fake.closed, "closed under a running detection"
    fake.gate.set()
    bg._thread.join(5.0)
    assert not bg._thread.is_alive() and fake.closed
