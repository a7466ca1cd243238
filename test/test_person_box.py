"""Box sources for bbox_mode: full_frame, roi, track, detector.

Each mode is tested on its own with fakes (pure); ``track`` is also run end to end with the
landmarks backend on a synthetic sequence (the astronaut moving across a 640x480 canvas,
with blank frames in between), which needs mediapipe (FAILS without it).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from mocap_ros.core.config import MocapConfig
from mocap_ros.core.result import BodyPoseResult
from mocap_ros.estimation.person_box import (
    DetectorBox,
    FullFrameBox,
    RoiBox,
    TrackBox,
    clip_box,
    make_box_source,
)

SHAPE = (480, 640, 3)


def _result(keypoints: np.ndarray | None, valid: bool = True) -> BodyPoseResult:
    r = BodyPoseResult.invalid("no_person")
    if valid:
        r.valid, r.reason, r.confidence = True, "", 1.0
        r.keypoints_2d = np.asarray(keypoints, np.float32)
    return r


def _person(cx: float, cy: float, size: float = 100.0) -> np.ndarray:
    """24 keypoints spread over a size x 2*size body around (cx, cy)."""
    t = np.linspace(0.0, 1.0, 24)
    return np.stack((cx + size * (t - 0.5) * np.cos(7 * t), cy + 2 * size * (t - 0.5)), -1)


class _FakeDetector:
    def __init__(self, box=(10.0, 20.0, 100.0, 200.0)):
        self.box = None if box is None else np.asarray(box, np.float64)
        self.calls = 0

    def detect(self, rgb):
        self.calls += 1
        return None if self.box is None else self.box.copy()


def _contains(box, pts, slack=0.0):
    x, y, w, h = box
    pts = np.asarray(pts)
    return bool(((pts[:, 0] >= x - slack) & (pts[:, 0] <= x + w + slack)
                 & (pts[:, 1] >= y - slack) & (pts[:, 1] <= y + h + slack)).all())


# ------------------------------------------------------------------ the simple modes
def test_full_frame_gives_no_box():
    src = FullFrameBox()
    assert src.next_box(SHAPE) is None
    src.update(_result(_person(100, 100)))
    assert src.next_box(SHAPE) is None


def test_roi_is_fixed_and_validated():
    src = RoiBox([10, 20, 30, 40])
    np.testing.assert_allclose(src.next_box(SHAPE), [10, 20, 30, 40])
    src.update(_result(_person(300, 300)))
    np.testing.assert_allclose(src.next_box(SHAPE), [10, 20, 30, 40])
    for bad in ([0, 0, 0, 10], [0, 0, 10], [0, 0, np.nan, 10]):
        with pytest.raises(ValueError):
            RoiBox(bad)


def test_clip_box():
    np.testing.assert_allclose(clip_box(np.array([-10, -10, 50, 50.0]), SHAPE), [0, 0, 40, 40])
    assert clip_box(np.array([700, 10, 50, 50.0]), SHAPE) is None


def test_detector_box_inline_every_n():
    fake = _FakeDetector()
    src = DetectorBox(fake, every_n=3, background=False)
    frame = np.zeros(SHAPE, np.uint8)
    boxes = [src.next_box(SHAPE, frame) for _ in range(7)]
    assert fake.calls == 3  # frames 0, 3, 6
    for b in boxes:
        np.testing.assert_allclose(b, [10, 20, 100, 200])
    fake.box = None
    assert [src.next_box(SHAPE, frame) is None for _ in range(3)] == [False, False, True]
    with pytest.raises(ValueError):
        src.next_box(SHAPE)  # needs the frame


def test_detector_box_background_returns_at_once():
    class Gated(_FakeDetector):
        """detect() cannot finish before the test opens the gate (10 s: a failure)."""

        def __init__(self):
            super().__init__()
            self.gate = threading.Event()
            self.gate_timed_out = False

        def detect(self, rgb):
            self.gate_timed_out |= not self.gate.wait(10.0)
            return super().detect(rgb)

    fake = Gated()
    src = DetectorBox(fake, every_n=1)
    frame = np.zeros(SHAPE, np.uint8)
    # returns before any detection can have finished: nothing yet, so the full frame
    assert src.next_box(SHAPE, frame) is None
    assert fake.calls == 0 and not fake.gate_timed_out
    fake.gate.set()
    assert src.background.wait_idle(5.0)
    np.testing.assert_allclose(src.next_box(SHAPE, frame), [10, 20, 100, 200])
    src.close()


# ------------------------------------------------------------------ track (pure)
def test_track_follows_a_moving_person_and_smooths():
    src = TrackBox(margin=0.2, alpha=1.0)
    assert src.next_box(SHAPE) is None  # nothing yet: the full frame
    for k in range(20):
        kp = _person(150 + 15 * k, 240)
        box = src.next_box(SHAPE)
        if k > 0:
            # the box from frame k-1 still contains frame k's person (15 px step, margin)
            assert _contains(box, kp), (k, box)
        src.update(_result(kp))
        assert src.tracking
    # smoothing: alpha < 1 lags behind a jump, alpha = 1 does not
    lag = TrackBox(alpha=0.5)
    lag.next_box(SHAPE)
    lag.update(_result(_person(200, 240)))
    b0 = lag.next_box(SHAPE)
    lag.update(_result(_person(260, 240)))
    b1 = lag.next_box(SHAPE)
    np.testing.assert_allclose(b1[0] - b0[0], 30.0, atol=1e-6)  # half of the 60 px jump


def test_track_is_lost_on_invalid_results_and_reinitialised_from_the_detector():
    fake = _FakeDetector()
    src = TrackBox(reinit=DetectorBox(fake, background=False))
    frame = np.zeros(SHAPE, np.uint8)
    np.testing.assert_allclose(src.next_box(SHAPE, frame), fake.box)  # from the detector
    src.update(_result(_person(300, 240)))
    tracked = src.next_box(SHAPE, frame)
    assert fake.calls == 1 and _contains(tracked, _person(300, 240))
    src.update(_result(None, valid=False))  # person lost
    assert not src.tracking and src.lost_count == 1
    np.testing.assert_allclose(src.next_box(SHAPE, frame), fake.box)
    assert fake.calls == 2


def test_track_is_lost_when_the_box_leaves_the_image_or_collapses():
    src = TrackBox(min_joints_inside=4, min_size_px=24)
    src.next_box(SHAPE)
    src.update(_result(_person(300, 240)))
    assert src.tracking
    src.update(_result(_person(2000, 240)))  # every joint outside the image
    assert not src.tracking
    src2 = TrackBox(min_size_px=24, margin=0.0)
    src2.next_box(SHAPE)
    src2.update(_result(np.full((24, 2), 100.0)))  # all joints on one pixel: collapsed
    assert not src2.tracking
    # a box pushed into a corner: only a sliver remains in the image -> lost
    src3 = TrackBox(min_size_px=24, margin=0.0)
    src3.next_box(SHAPE)
    kp = np.concatenate((np.full((20, 2), -500.0), [[630, 470], [635, 475], [639, 479],
                                                     [632, 478]]))
    src3.update(_result(kp))
    assert not src3.tracking


def test_make_box_source_for_every_mode():
    fake = _FakeDetector()
    assert isinstance(make_box_source(MocapConfig()), FullFrameBox)
    roi = make_box_source(MocapConfig(bbox_mode="roi", roi=[1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(roi.next_box(SHAPE), [1, 2, 3, 4])
    det = make_box_source(MocapConfig(bbox_mode="detector", detector_every_n=2), fake)
    assert isinstance(det, DetectorBox) and det.background.every_n == 2
    det.close()
    track = make_box_source(MocapConfig(bbox_mode="track"))
    assert isinstance(track, TrackBox) and isinstance(track.reinit, FullFrameBox)
    track = make_box_source(MocapConfig(bbox_mode="track"), fake)
    assert isinstance(track.reinit, DetectorBox)
    track.close()
    with pytest.raises(ValueError):
        make_box_source(SimpleNamespace(bbox_mode="nope"))


# ------------------------------------------------------------------ track, end to end
def test_track_follows_the_astronaut_and_recovers_after_blank_frames():
    import cv2
    from skimage import data

    from mocap_ros.estimation.detector import DetectorUnavailable, PersonDetector
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend
    from mocap_ros.estimation.landmarks.ik import LM

    try:
        ref_det = PersonDetector(static_image_mode=True)
    except DetectorUnavailable as e:
        pytest.fail(f"mediapipe is required (make setup installs it): {e}")
    patch = cv2.resize(data.astronaut(), (300, 300))

    # 60 frames: the person walks right 4 px a frame, is gone for frames 25-29 (blank), and
    # comes back further right, walking on.
    xs, frames = [], []
    for k in range(60):
        canvas = np.full(SHAPE, 60, np.uint8)
        x = 10 + 4 * k if k < 25 else 40 + 4 * k
        if 25 <= k < 30:
            xs.append(None)
        else:
            canvas[150:450, x:x + 300] = patch
            xs.append(x)
        frames.append(canvas)
    # Reference: MediaPipe on its own on the first frame, shifted with the person.
    ref = ref_det.landmarks(frames[0])
    ref_det.close()
    head_shoulders = ref.image_xy[[*range(11), LM["left_shoulder"], LM["right_shoulder"]]]

    track = TrackBox()
    with LandmarksBackend(None) as backend:
        results, boxes = [], []
        for frame in frames:
            box = track.next_box(frame.shape, frame)
            r = backend.process(frame, bbox=box)
            track.update(r)
            results.append(r)
            boxes.append(box)

    for k, (x, r, box) in enumerate(zip(xs, results, boxes, strict=True)):
        if x is None:
            assert not r.valid and r.reason == "no_person", k
            continue
        assert r.valid, (k, r.reason)
        truth = head_shoulders + np.array([x - xs[0], 0.0])
        # where the box came from the track (not the full frame), it held the person
        if box is not None:
            assert _contains(box, truth, slack=2.0), (k, box)
        # and the pose is where the person is
        got = r.keypoints_2d[[16, 17]]  # shoulders
        want = truth[-2:]
        assert np.linalg.norm(got - want, axis=-1).max() < 25.0, (k, got, want)
    # tracking ran (boxes) before the gap and again after it
    assert all(b is not None for b in boxes[2:25])
    assert boxes[25] is not None and boxes[26] is None  # lost after the first blank frame
    assert boxes[30] is None  # re-found in the full frame
    assert all(b is not None for b in boxes[31:])
    assert track.lost_count == 1


def test_track_with_a_detector_drops_a_phantom_track_hmr_would_sustain():
    """Issue 10 item 14. HMR returns a confident body from any crop, person or not: fed its
    own output, a track would follow an empty scene forever. With a detector behind it, the
    track is re-confirmed every ``confirm_every`` frames, dropped when the detector sees
    nobody there, and says so (PERSON_NOT_FOUND) instead of handing out the full frame."""
    import cv2
    from skimage import data

    from mocap_ros.core.result import PERSON_CONFIRMED, PERSON_NOT_FOUND
    from mocap_ros.estimation.detector import DetectorUnavailable, PersonDetector
    from mocap_ros.estimation.person_box import uses_detector

    try:
        detector = PersonDetector(static_image_mode=True)
    except DetectorUnavailable as e:
        pytest.fail(f"mediapipe is required (make setup installs it): {e}")
    patch = cv2.resize(data.astronaut(), (300, 300))
    person = np.full(SHAPE, 60, np.uint8)
    person[150:450, 100:400] = patch
    empty = np.full(SHAPE, 60, np.uint8)
    frames = [person] * 6 + [empty] * 12

    def phantom(box):  # what HMR does: a body filling whatever crop it is given
        if box is None:
            box = np.array([0.0, 0.0, SHAPE[1], SHAPE[0]])
        x, y, w, h = box
        return _result(_person(x + w / 2, y + h / 2, size=min(w, h / 2) * 0.8))

    track = TrackBox(reinit=DetectorBox(detector, background=False), confirm_every=3)
    assert uses_detector(track)
    checks, boxes = [], []
    try:
        for frame in frames:
            box = track.next_box(frame.shape, frame)
            checks.append(track.person_check)
            boxes.append(box)
            if box is not None:  # mocap_node publishes no_person for a missing box
                track.update(phantom(box))
            else:
                track.update(BodyPoseResult.invalid("no_person"))
    finally:
        detector.close()
    assert all(c == PERSON_CONFIRMED for c in checks[:6]), checks
    # the person left at frame 6: within one confirmation period nobody is reported ...
    gone = next(i for i, c in enumerate(checks) if c == PERSON_NOT_FOUND)
    assert 6 <= gone < 6 + 3, checks
    # ... and from then on no box and no confirmation, however confident the phantom
    assert all(b is None for b in boxes[gone:]) and set(checks[gone:]) == {PERSON_NOT_FOUND}
    assert track.dropped_unconfirmed == 1
