"""Where the person is: the box sources behind the configuration's ``bbox_mode``.

One interface, :class:`BoxSource`: per frame, ``next_box(rgb_shape, rgb)`` gives the box to
process (x, y, w, h float64 pixels, or None = the whole frame) and, after processing,
``update(result)`` feeds the frame's :class:`~mocap_ros.core.result.BodyPoseResult` back.

=============  ==============================================================================
bbox_mode      source
=============  ==============================================================================
full_frame     :class:`FullFrameBox`: always None (the pipeline pads the frame to a square)
roi            :class:`RoiBox`: a fixed box (a teleop camera on a tripod)
track          :class:`TrackBox`: the previous valid frame's projected 2D joints plus a margin,
               exponentially smoothed; when the person is lost (invalid result, too few
               joints in the image, box collapsing or leaving the image) it re-initialises
               from its ``reinit`` source (a :class:`DetectorBox`, else the full frame)
detector       :class:`DetectorBox`: MediaPipe's person box, on a background thread
               (:class:`~mocap_ros.estimation.detector.BackgroundDetector`) or every n frames inline
=============  ==============================================================================

Every source also says whether a person detector vouched for its last box
(``person_check``: :data:`~mocap_ros.core.result.PERSON_UNCHECKED` when no detector looked,
``PERSON_CONFIRMED`` or ``PERSON_NOT_FOUND``), which mocap_node puts in BodyPose so that teleop
never follows a body nobody confirmed. ``track`` re-confirms its track with the detector every
``confirm_every`` frames and drops it when the detector no longer sees a person there: HMR
regresses a body from any crop, so a track must not sustain itself on its own output.

Everything here but :func:`make_box_source`'s default detector is pure Python/numpy and
needs no mediapipe; any object with ``detect(rgb) -> box | None`` can be the detector.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mocap_ros.core.result import (
    PERSON_CONFIRMED,
    PERSON_NOT_FOUND,
    PERSON_UNCHECKED,
    BodyPoseResult,
)

Box = np.ndarray  # (4,) float64: x, y, w, h in pixels


class BoxSource(Protocol):
    person_check: int  # PERSON_* of the last next_box

    def next_box(self, rgb_shape: tuple[int, ...], rgb: np.ndarray | None = None
                 ) -> Box | None: ...

    def update(self, result: BodyPoseResult) -> None: ...


def _as_box(b: Any) -> Box:
    box = np.asarray(b, np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"a box must be 4 finite numbers x, y, w, h with w, h > 0; got {b!r}")
    return box


def clip_box(box: Box, image_shape: tuple[int, ...]) -> Box | None:
    """The part of ``box`` inside the image (H, W, ...), or None when nothing is."""
    h, w = image_shape[:2]
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(w), box[0] + box[2]), min(float(h), box[1] + box[3])
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


class FullFrameBox:
    """``full_frame``: no box; the whole frame is processed."""

    person_check = PERSON_UNCHECKED

    def next_box(self, rgb_shape: tuple[int, ...], rgb: np.ndarray | None = None) -> None:
        return None

    def update(self, result: BodyPoseResult) -> None:
        pass

    def close(self) -> None:
        pass


class RoiBox:
    """``roi``: the same configured box for every frame."""

    person_check = PERSON_UNCHECKED

    def __init__(self, roi: Any) -> None:
        self.box = _as_box(roi)

    def next_box(self, rgb_shape: tuple[int, ...], rgb: np.ndarray | None = None) -> Box:
        return self.box.copy()

    def update(self, result: BodyPoseResult) -> None:
        pass

    def close(self) -> None:
        pass


class DetectorBox:
    """``detector``: the person detector's box.

    ``detector``: anything with ``detect(rgb) -> box | None`` (a
    :class:`~mocap_ros.estimation.detector.PersonDetector`), or a ready
    :class:`~mocap_ros.estimation.detector.BackgroundDetector`.
    ``background=True`` (default) runs it on a BackgroundDetector thread: ``next_box`` hands
    the frame over and returns the newest finished box at once (a box of a frame a little
    older than this one; None until the first detection, or when the last one is older than
    ``max_age_s``). ``background=False`` runs it inline on one frame in ``every_n`` and holds
    the box in between (simpler, but that frame waits for the detector).
    """

    def __init__(self, detector: Any, every_n: int = 1, background: bool = True,
                 max_age_s: float | None = 1.0) -> None:
        from mocap_ros.estimation.detector import BackgroundDetector

        if every_n < 1:
            raise ValueError(f"every_n must be >= 1, got {every_n}")
        self.every_n = every_n
        self.max_age_s = max_age_s
        self.background: BackgroundDetector | None = None
        if isinstance(detector, BackgroundDetector):
            self.background = detector
        elif background:
            self.background = BackgroundDetector(detector, every_n=every_n)
        self.detector = detector
        self._count = 0
        self._box: Box | None = None
        self.person_check = PERSON_UNCHECKED

    def next_box(self, rgb_shape: tuple[int, ...], rgb: np.ndarray | None = None
                 ) -> Box | None:
        if rgb is None:
            raise ValueError("DetectorBox.next_box needs the frame (rgb)")
        if self.background is not None:
            self.background.submit(rgb)
            box = self.background.latest(self.max_age_s)
        else:
            if self._count % self.every_n == 0:
                found = self.detector.detect(rgb)
                self._box = None if found is None else np.asarray(found, np.float64)
            self._count += 1
            box = self._box
        box = None if box is None else clip_box(box, rgb_shape)
        self.person_check = PERSON_NOT_FOUND if box is None else PERSON_CONFIRMED
        return box

    def update(self, result: BodyPoseResult) -> None:
        pass

    def close(self) -> None:
        if self.background is not None:
            self.background.close()


class TrackBox:
    """``track``: follow the person from the previous valid frame's projected 2D joints.

    After a valid result, the next box is the bounds of ``result.keypoints_2d`` (the joints
    inside the image when at least ``min_joints_inside`` are), grown by ``margin`` times the
    larger side on every side, exponentially smoothed (``alpha``: weight of the new box,
    1 = no smoothing) and clipped to the image. The person is lost -- the track is dropped and
    the next box comes from ``reinit`` (a DetectorBox; None: the full frame) -- when a result
    is invalid, fewer than ``min_joints_inside`` joints project into the image, or the box
    collapses below ``min_size_px``.
    """

    def __init__(self, reinit: Any = None, margin: float = 0.2, alpha: float = 0.6,
                 min_size_px: float = 24.0, min_joints_inside: int = 4,
                 confirm_every: int = 5, min_overlap: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if confirm_every < 1:
            raise ValueError(f"confirm_every must be >= 1, got {confirm_every}")
        self.confirm_every = confirm_every
        self.min_overlap = min_overlap
        self._since_confirm = 0
        self.dropped_unconfirmed = 0  # tracks the detector no longer vouched for
        self.reinit = reinit if reinit is not None else FullFrameBox()
        self.margin = margin
        self.alpha = alpha
        self.min_size_px = min_size_px
        self.min_joints_inside = min_joints_inside
        self._box: Box | None = None  # smoothed, clipped track box; None = lost
        self._check = PERSON_UNCHECKED  # the last detector verdict this track rests on
        self._shape: tuple[int, ...] | None = None
        self.lost_count = 0  # times the track was lost (for diagnostics and tests)

    @property
    def tracking(self) -> bool:
        return self._box is not None

    def reset(self) -> None:
        self._box = None

    @property
    def person_check(self) -> int:
        return self._check

    def next_box(self, rgb_shape: tuple[int, ...], rgb: np.ndarray | None = None
                 ) -> Box | None:
        self._shape = tuple(rgb_shape[:2])
        has_detector = isinstance(self.reinit, DetectorBox)
        if self._box is not None:
            self._since_confirm += 1
            if has_detector and self._since_confirm >= self.confirm_every:
                self._since_confirm = 0
                found = self.reinit.next_box(rgb_shape, rgb)
                if found is None or box_overlap(found, self._box) < self.min_overlap:
                    # The detector sees nobody where the track is: drop it, and say so
                    # for this frame (not the full frame's phantom).
                    self._lose()
                    self.dropped_unconfirmed += 1
                    self._check = PERSON_NOT_FOUND
                    return found
                self._check = PERSON_CONFIRMED
            return self._box.copy()
        box = self.reinit.next_box(rgb_shape, rgb)
        self._since_confirm = 0
        self._check = self.reinit.person_check
        return box

    def _lose(self) -> None:
        if self._box is not None:
            self.lost_count += 1
        self._box = None

    def update(self, result: BodyPoseResult) -> None:
        shape = self._shape
        if not result.valid or shape is None:
            self._lose()
            return
        kp = np.asarray(result.keypoints_2d, np.float64)
        kp = kp[np.isfinite(kp).all(-1)]
        h, w = shape
        inside = kp[(kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)]
        if len(inside) < self.min_joints_inside:
            self._lose()
            return
        (x0, y0), (x1, y1) = inside.min(0), inside.max(0)
        m = self.margin * max(x1 - x0, y1 - y0, self.min_size_px)
        measured = np.array([x0 - m, y0 - m, x1 + m, y1 + m])  # corners
        if self._box is not None:
            prev = np.array([*self._box[:2], *(self._box[:2] + self._box[2:])])
            measured = self.alpha * measured + (1.0 - self.alpha) * prev
        box = clip_box(np.array([*measured[:2], *(measured[2:] - measured[:2])]), shape)
        if box is None or min(box[2], box[3]) < self.min_size_px:
            self._lose()
            return
        self._box = box
        self.reinit.update(result)

    def close(self) -> None:
        close = getattr(self.reinit, "close", None)
        if close is not None:
            close()


def uses_detector(source: Any) -> bool:
    """True when a person detector stands behind the source's boxes (``detector``, or
    ``track`` re-finding and re-confirming with one): no box then means nobody is there."""
    if isinstance(source, DetectorBox):
        return True
    return isinstance(source, TrackBox) and isinstance(source.reinit, DetectorBox)


def box_overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area (0..1): a detector box inside a generous
    track box still counts as the same person."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    small = min(a[2] * a[3], b[2] * b[3])
    return float(iw * ih / small) if small > 0 else 0.0


def make_box_source(config: Any, detector: Any = None) -> FullFrameBox | RoiBox | TrackBox | \
        DetectorBox:
    """The box source for ``config.bbox_mode`` (a MocapConfig or anything with its fields
    ``bbox_mode``, ``roi``, ``detector_every_n``).

    ``detector``: the person detector for ``detector`` (required: default a new
    :class:`~mocap_ros.estimation.detector.PersonDetector`, which raises
    ``DetectorUnavailable`` with the
    install command when mediapipe is missing) and for ``track``'s re-initialisation
    (optional: None re-initialises from the full frame).
    """
    mode = getattr(config, "bbox_mode", "full_frame")
    every_n = int(getattr(config, "detector_every_n", 1) or 1)
    if mode == "full_frame":
        return FullFrameBox()
    if mode == "roi":
        return RoiBox(config.roi)
    if mode == "detector":
        if detector is None:
            from mocap_ros.estimation.detector import PersonDetector

            detector = PersonDetector()
        return DetectorBox(detector, every_n=every_n)
    if mode == "track":
        # While tracking, the detector is asked once every ``every_n`` frames (to confirm);
        # while lost, on every frame it can keep up with (to re-find the person).
        reinit = DetectorBox(detector, every_n=1) if detector is not None else None
        return TrackBox(reinit=reinit, confirm_every=every_n)
    raise ValueError(f"bbox_mode={mode!r} is not one of full_frame, roi, track, detector")
