"""Every person MediaPipe can find in a frame, not only the first one.

Why this module exists: ``mocap_ros.estimation.detector.PersonDetector`` wraps MediaPipe's legacy
``mp.solutions.pose`` graph, which returns exactly ONE person per call (its detection
subgraph keeps only the best detection; checked on ``multi/crowdpose/103319.jpg``, two people
in view, one result). The Tasks API (``PoseLandmarker``, ``num_poses``) would find several in
one pass, but it needs a ``.task`` bundle, and building one from the two models in the wheel
fails at graph creation on our protobuf 6 (``PoseLandmarker.create_from_options`` ->
``TypeError: create(): incompatible function arguments``), so it is not used.

What is done instead (:func:`detect_people`): run the legacy graph in static-image mode,
take the person it returns, paint that person out (the convex hull of the landmarks, dilated,
filled with mid grey) and run again on the painted frame, until nobody is found, the
``max_people`` limit is reached, or the graph returns a person overlapping one already found
(it re-found the painted person). Cost: one graph pass per person plus one (~20-130 ms each
on 2 CPU cores, 640x480). Painting a hull rather than the whole box keeps most of a person
standing behind or beside the first one intact; people who overlap heavily can still be
missed (CrowdPose/OCHuman-style tangles).

The boxes are (x, y, w, h) float64 pixels from
:func:`mocap_ros.estimation.detector.box_from_landmarks`, the same form as
``PersonDetector.detect``; each :class:`PersonFound` also keeps its
:class:`~mocap_ros.estimation.detector.PoseLandmarks`, so the caller needs no second pass for the
2D joints (``mocap_ros.estimation.operator.candidate_from_landmarks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mocap_ros.estimation.detector import PoseLandmarks, box_from_landmarks
from mocap_ros.estimation.operator import box_iou


@dataclass
class PersonFound:
    """One person found in a frame."""

    box: np.ndarray  # (4,) float64 x, y, w, h pixels (PersonDetector.detect's form)
    landmarks: PoseLandmarks  # BlazePose's 33 landmarks in the ORIGINAL frame's pixels
    order: int  # 0 = found first (the graph's best detection), 1 = after painting out 0, ...


def paint_out(rgb: np.ndarray, landmarks: PoseLandmarks, dilate: float = 0.12,
              min_visibility: float = 0.3, fill: int = 128) -> np.ndarray:
    """A copy of ``rgb`` with one person painted out: the convex hull of its landmarks
    (visibility >= ``min_visibility``; all of them when fewer than 4 qualify), grown about its
    centre by ``dilate`` times the hull's larger side on every side, filled with grey
    ``fill`` (grey rather than black: black blobs look like dark clothing to the detector)."""
    xy = np.asarray(landmarks.image_xy, np.float64)
    sel = np.asarray(landmarks.visibility) >= min_visibility
    if sel.sum() < 4:
        sel = np.ones(len(xy), bool)
    pts = xy[sel & np.isfinite(xy).all(-1)]
    out = rgb.copy()
    if len(pts) < 3:
        return out
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(0)
    span = float(max(np.ptp(hull[:, 0]), np.ptp(hull[:, 1]), 1.0))
    d = hull - centre
    norm = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    grown = hull + d / norm * dilate * span
    cv2.fillConvexPoly(out, np.round(grown).astype(np.int32), (fill, fill, fill))
    return out


def detect_people(rgb: np.ndarray, pose: Any = None, max_people: int = 4,
                  margin: float = 0.15, min_visibility: float = 0.3,
                  duplicate_iou: float = 0.5, dilate: float = 0.12) -> list[PersonFound]:
    """All people (up to ``max_people``) MediaPipe BlazePose finds in one RGB frame.

    ``pose``: a callable rgb -> PoseLandmarks | None run on unrelated images each call, i.e.
    a ``MediaPipePose(static_image_mode=True)`` (video mode would "track" the painted-out
    person); None builds one (raises ``DetectorUnavailable`` without mediapipe) and closes
    it afterwards. Returns the people in the order found (the first is what
    ``PersonDetector`` alone would have returned); an empty list when nobody is found.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    if max_people < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    own = pose is None
    if own:
        from mocap_ros.estimation.detector import MediaPipePose

        pose = MediaPipePose(static_image_mode=True)
    found: list[PersonFound] = []
    try:
        image = rgb
        for order in range(max_people):
            lms = pose(image)
            if lms is None or not np.isfinite(lms.image_xy).all():
                break
            box = box_from_landmarks(lms.image_xy, lms.visibility, rgb.shape, margin,
                                     min_visibility)
            if box is None:
                break
            # the painted person found again (the paint left enough of it): stop, or this
            # would loop on the same person
            if any(box_iou(box, p.box) > duplicate_iou for p in found):
                break
            found.append(PersonFound(box=box, landmarks=lms, order=order))
            image = paint_out(image, lms, dilate=dilate, min_visibility=min_visibility)
    finally:
        if own:
            pose.close()
    return found


def detect_boxes(rgb: np.ndarray, pose: Any = None, max_people: int = 4) -> list[np.ndarray]:
    """Only the boxes of :func:`detect_people` (x, y, w, h float64 each)."""
    return [p.box for p in detect_people(rgb, pose=pose, max_people=max_people)]


class OperatorDetector:
    """A drop-in for :class:`~mocap_ros.estimation.detector.PersonDetector` that finds everyone and
    returns the person an :class:`~mocap_ros.estimation.operator.OperatorLock` chooses.

    ``detect(rgb)`` -> the chosen person's box or None; ``landmarks(rgb)`` -> its
    :class:`PoseLandmarks` or None -- so ``DetectorBox``/``BackgroundDetector`` (boxes) and
    ``LandmarksBackend`` (landmarks) use it unchanged. Each call is one frame for the lock
    (call one of the two per frame, not both). Why None was returned (``operator_lost``,
    ``operator_uncertain``, ``no_person``, ``outside_region``), the match score, the state
    and the track id are in ``.last`` (a ``LockUpdate``; None before the first frame).

    ``arm()`` (teleop enabled) locks on to the person followed in the latest frame (the
    selection policy's choice while unlocked); ``disarm()`` unlocks. Thread-safe: the frames
    may come on a detector thread while arm()/disarm() come from the ROS executor.
    """

    def __init__(self, lock: Any = None, pose: Any = None, max_people: int = 4,
                 margin: float = 0.15, min_visibility: float = 0.3) -> None:
        import threading

        from mocap_ros.estimation.operator import OperatorLock

        self.lock = lock if lock is not None else OperatorLock()
        self._own_pose = pose is None
        if pose is None:
            from mocap_ros.estimation.detector import MediaPipePose

            pose = MediaPipePose(static_image_mode=True)
        self.pose = pose
        self.max_people = max_people
        self.margin = margin
        self.min_visibility = min_visibility
        self._mutex = threading.Lock()
        # candidates, the chosen one, the frame's time (lock.clock)
        self._latest: tuple[list[Any], int | None, float] | None = None
        self.last_found: list[PersonFound] = []

    @property
    def last(self) -> Any:
        return self.lock.last

    def _frame(self, rgb: np.ndarray) -> PersonFound | None:
        from mocap_ros.estimation.operator import candidate_from_landmarks

        found = detect_people(rgb, self.pose, self.max_people, self.margin,
                              self.min_visibility)
        cands = [candidate_from_landmarks(p.box, p.landmarks, rgb, self.min_visibility)
                 for p in found]
        with self._mutex:
            t = self.lock.clock()
            idx, _, _ = self.lock.update(cands, rgb.shape, t)
            self._latest = (cands, idx, t)
            self.last_found = found
        return None if idx is None else found[idx]

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        p = self._frame(rgb)
        return None if p is None else p.box.copy()

    __call__ = detect

    def landmarks(self, rgb: np.ndarray) -> PoseLandmarks | None:
        p = self._frame(rgb)
        return None if p is None else p.landmarks

    def arm(self) -> int | None:
        """Lock on to the person followed in the latest frame -- or, when nobody was
        followed in it (the lock lost its operator), on the selection policy's choice among
        that frame's people: a new ~/enable is the operator's explicit decision. Returns the
        new track id, or None (no frame yet, or nobody to lock on to)."""
        from mocap_ros.estimation.operator import select_person

        with self._mutex:
            if self._latest is None:
                return None
            cands, idx, t = self._latest
            if idx is None:
                cfg = self.lock.config
                shape = cands[0].image.shape if cands and cands[0].image is not None \
                    else None
                idx = select_person(cands, cfg.policy, shape, cfg.region) if cands else None
            if idx is None:
                return None
            return int(self.lock.lock(cands[idx], t))

    def disarm(self) -> None:
        with self._mutex:
            self.lock.unlock()

    def close(self) -> None:
        if self._own_pose:
            self.pose.close()

    def __enter__(self) -> OperatorDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
