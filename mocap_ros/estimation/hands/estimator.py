"""Both hands of the tracked body: ROIs from the body's arms, MediaPipe's hand landmark model,
left/right from the body, keypoints in pixels and metres, palm frame, curls, aperture.

Flow per frame (:meth:`HandEstimator.estimate`), per side (``left``/``right`` = the PERSON's,
as SMPL and BlazePose name them):

1. :func:`roi_from_arm`: a square, rotated ROI from that side's body joints in pixels
   (wrist, elbow, and the knuckles when known -- BlazePose's index/pinky landmarks, or SMPL's
   hand joint): centred ``0.9 x palm`` past the wrist along the hand, side ``3.4 x palm``,
   rotated so the fingers point up in the crop (MediaPipe's convention). ``palm`` is the
   wrist -> knuckles pixel distance, at least 0.4 x the forearm (knuckle landmarks are noisy
   and foreshorten; 3.4 rather than MediaPipe's ~2 because a foreshortened palm shrinks the
   ROI: at 2.6 x palm the model lost 4 FreiHAND photos with a 31 px palm, presence
   0.01-0.20, at 3.4 x all had >= 0.86). With tracking on, the previous frame's ROI
   around the found hand (MediaPipe's own, from the landmarks) is used instead while it
   stays near the body's wrist: one landmark pass per hand per frame either way.
2. :class:`~.mediapipe_graph.HandLandmarkGraph` on that ROI -> 21 landmarks (pixels), 21 world
   landmarks (metres, hand-centred, camera axes), presence score, the model's handedness.
3. Checks, in order (``reason`` of an invalid hand): ``no_wrist`` (the body's wrist missing or
   below ``min_wrist_visibility``), ``out_of_view`` (the body's wrist, or the ROI's centre,
   outside the image: BlazePose invents landmarks off the frame), ``too_small`` (the hand
   would need a ROI under ``min_roi_px``, see :data:`MIN_ROI_PX`), ``not_found`` (no model
   output), ``low_presence`` (presence < ``min_presence``),
   ``far_from_wrist`` (the found wrist further than ``max_wrist_offset`` x ROI size from the
   body's wrist: the crop caught the other hand or a distractor), ``non_finite``,
   ``duplicate`` (both sides found the same image hand, e.g. hands together, or both
   wrists dragged onto one hand after a scene cut: :func:`same_image_hand`; the loser is
   the side the model's handedness rejects, else the less present, else the one whose body
   wrist is further from the found wrist), ``no_depth``.
4. Left/right is the body's: each ROI comes from one of the body's wrists. The model's own
   handedness guess is only reported (``handedness_agrees``); it assumes a MIRRORED (selfie)
   image, so on a plain camera image its "Left" is the person's right hand
   (``mirrored=False``, the default, accounts for that).
5. Metres (camera frame, REP-103 optical axes: x right, y down, z forward): the world
   landmarks are metric and already in camera axes (checked on the real photos: their z
   correlates positively with MediaPipe's image depth, r = 0.54-0.93, and the pinhole fit
   below reprojects better with +z than with -z on 7 of 10 photos). With the body's wrist in
   metres they are ROOTED there: ``keypoints_cam = world - world[0] + wrist_cam`` (so body and
   hand agree at the wrist); without it they are placed by the same weighted pinhole
   least squares the landmarks backend uses for the body (``solve_root_translation``).
6. Orientation, curls and aperture from the metric keypoints (:mod:`.geometry`).

Standalone hands (no body, e.g. close-ups): :meth:`HandEstimator.detect` runs MediaPipe's palm
detector for the ROIs; the side then comes from the model's handedness (flagged by
``side_source="model"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mocap_ros.core.result import HandResult
from mocap_ros.estimation.hands import geometry as geo
from mocap_ros.estimation.hands.mediapipe_graph import (
    HandLandmarkGraph,
    HandRoi,
    PalmDetectionGraph,
    RawHand,
    rotation_from_direction,
)

if TYPE_CHECKING:
    from mocap_ros.core.result import BodyPoseResult
    from mocap_ros.estimation.detector import PoseLandmarks
    from mocap_ros.geometry.camera import Intrinsics

SIDES = geo.SIDES
# BlazePose landmark indices per side: (wrist, elbow, pinky, index).
_BLAZEPOSE_ARM = {"left": (15, 13, 17, 19), "right": (16, 14, 18, 20)}
# SMPL joint indices per side: (wrist, elbow, hand).
_SMPL_ARM = {"left": (20, 18, 22), "right": (21, 19, 23)}

# Smallest hand the landmark model resolves, as the side of the ROI the hand needs
# (3.4 x palm, unclamped): a hand below it gets no pass (reason too_small), saving a model
# run (~7-14 ms on a 2-core EPYC) that cannot give a usable hand. Measured on the 10 real
# hand photos with an arm (../shared/real_images/hands), each downscaled so that the hand
# needs a ROI of S px (full model, one pass): valid hands / PCK@0.2 of the valid ones
# S=96: 10/10, 0.92; 48: 7/10, 0.90; 24: 6/10, 0.92; 20: 4/10, 0.81; 16: 4/10, 0.71;
# 12: 2/10, 0.48. Below 24 px the hands that are still found miss the project's
# accuracy floor (PCK 0.85, test_hands_real.py) and most are not found at all; 24 px is
# also the smallest ROI roi_from_arm makes (a smaller hand only fills part of it).
MIN_ROI_PX = 24.0


def same_image_hand(a: HandResult, b: HandResult, max_wrist_offset: float = 0.15,
                    min_containment: float = 0.5) -> bool:
    """Whether two valid hand results are one hand in the image: their wrists within
    ``max_wrist_offset`` x the smaller ROI, or the box of one's 21 keypoints lying at least
    ``min_containment`` inside the other's (intersection over the SMALLER box's area; a
    second pass on the same hand may come back shrunk inside it, as on OneHand10K 33.jpg
    after a cut from a body photo: wrists 19-20 px apart, the smaller hand's box inside the
    larger). Two hands side by side share little of their boxes; hands clasped into one
    blob cannot be told apart in 2D and count as one (one side is then dropped)."""
    ka, kb = np.asarray(a.keypoints_2d, np.float64), np.asarray(b.keypoints_2d, np.float64)
    size = min(a.roi.size, b.roi.size) if a.roi is not None and b.roi is not None else 0.0
    if np.linalg.norm(ka[0] - kb[0]) < max_wrist_offset * size:
        return True
    lo_a, hi_a, lo_b, hi_b = ka.min(0), ka.max(0), kb.min(0), kb.max(0)
    # a few pixels of margin: a thin (edge-on) hand has a box of almost no area
    pad = 0.05 * max(float(np.max(hi_a - lo_a)), float(np.max(hi_b - lo_b)), 1.0)
    lo_a, hi_a, lo_b, hi_b = lo_a - pad, hi_a + pad, lo_b - pad, hi_b + pad
    inter = float(np.prod(np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)))
    smaller = min(float(np.prod(hi_a - lo_a)), float(np.prod(hi_b - lo_b)))
    return inter >= min_containment * smaller


def _duplicate_loser(out: dict[str, HandResult], arms: dict[str, ArmObservation]) -> str:
    """The side that gives up a hand both sides found: the one the hand model says it is
    not (when it says one and not the other), else the clearly less present one (presence
    0.1 lower), else the one whose body wrist is further from the found wrist (after a
    scene cut the body's wrists may be dragged, so they decide last)."""
    agree = {s: out[s].handedness_agrees for s in SIDES}
    if agree["left"] is True and agree["right"] is not True:
        return "right"
    if agree["right"] is True and agree["left"] is not True:
        return "left"
    conf = {s: float(out[s].confidence) for s in SIDES}
    if abs(conf["left"] - conf["right"]) >= 0.1:
        return "left" if conf["left"] < conf["right"] else "right"
    d = {s: float(np.linalg.norm(out[s].keypoints_2d[0] - np.asarray(arms[s].wrist_px)))
         for s in SIDES}
    return "left" if d["left"] > d["right"] else "right"


@dataclass
class ArmObservation:
    """What the body tells about one arm (pixels; metres in the camera frame where known)."""

    wrist_px: np.ndarray  # (2,)
    elbow_px: np.ndarray | None = None  # (2,)
    knuckles_px: np.ndarray | None = None  # (2,) mid-knuckles (or SMPL's hand joint)
    visibility: float = 1.0  # the wrist's visibility / confidence in [0, 1]
    wrist_cam: np.ndarray | None = None  # (3,) metres, camera frame: the hand is rooted here


def roi_from_arm(arm: ArmObservation, min_size_px: float = 24.0) -> HandRoi | None:
    """The hand ROI from one arm (module doc, step 1); None when the joints are not finite
    or give no direction."""
    w = np.asarray(arm.wrist_px, np.float64)
    if w.shape != (2,) or not np.isfinite(w).all():
        return None
    fore = None
    if arm.elbow_px is not None:
        e = np.asarray(arm.elbow_px, np.float64)
        if e.shape == (2,) and np.isfinite(e).all() and np.linalg.norm(w - e) > 1e-6:
            fore = w - e
    knk = None
    if arm.knuckles_px is not None:
        k = np.asarray(arm.knuckles_px, np.float64)
        if k.shape == (2,) and np.isfinite(k).all() and np.linalg.norm(k - w) > 1e-6:
            knk = k - w
    lf = float(np.linalg.norm(fore)) if fore is not None else 0.0
    lk = float(np.linalg.norm(knk)) if knk is not None else 0.0
    # The knuckles give the hand's own direction unless they collapsed onto the wrist.
    if knk is not None and (fore is None or lk > 0.15 * lf):
        d = knk / lk
    elif fore is not None:
        d = fore / lf
    else:
        return None
    palm = max(lk, 0.4 * lf, min_size_px / 3.4)
    c = w + 0.9 * palm * d
    return HandRoi(float(c[0]), float(c[1]), 3.4 * palm, rotation_from_direction(d[0], d[1]))


def arms_from_pose_landmarks(lms: PoseLandmarks, joints_cam: np.ndarray | None = None
                             ) -> dict[str, ArmObservation]:
    """Both arms from BlazePose landmarks
    (``mocap_ros.estimation.detector.PoseLandmarks``); wrist metres
    from the body's SMPL joints in the camera frame (24, 3) when given (the landmarks
    backend's ``joints_cam``)."""
    out = {}
    for side, (wr, el, pk, ix) in _BLAZEPOSE_ARM.items():
        xy = lms.image_xy
        cam = None if joints_cam is None else np.asarray(joints_cam)[_SMPL_ARM[side][0]]
        out[side] = ArmObservation(
            wrist_px=xy[wr], elbow_px=xy[el], knuckles_px=(xy[pk] + xy[ix]) / 2.0,
            visibility=float(lms.visibility[wr]), wrist_cam=cam)
    return out


def arms_from_body_result(result: BodyPoseResult) -> dict[str, ArmObservation]:
    """Both arms from any backend's BodyPoseResult (SMPL joints: keypoints_2d, joints_cam);
    the HMR path. Visibility: the body's confidence (0 when the body is invalid)."""
    vis = float(result.confidence) if result.valid else 0.0
    out = {}
    for side, (wr, el, hd) in _SMPL_ARM.items():
        kp = np.asarray(result.keypoints_2d, np.float64)
        out[side] = ArmObservation(wrist_px=kp[wr], elbow_px=kp[el], knuckles_px=kp[hd],
                                   visibility=vis,
                                   wrist_cam=np.asarray(result.joints_cam, np.float64)[wr])
    return out


class HandEstimator:
    """Both hands from the body's arms (module doc). Not thread-safe; frames in order.

    ``graph``: a :class:`HandLandmarkGraph` (or any callable ``(rgb, HandRoi) -> RawHand |
    None``); default: a new one (raises ``HandsUnavailable`` without mediapipe).
    ``track``: reuse the previous frame's ROI around the found hand while it stays within
    ``max_wrist_offset`` ROI sizes of the body's wrist. ``refine``: a second landmark pass on
    MediaPipe's ROI around the first result (better keypoints for a badly placed body ROI,
    twice the cost; for single images). ``mirrored``: the image is a selfie view (only the
    model's handedness comparison depends on it). ``min_roi_px``: no pass for a hand smaller
    than this (:data:`MIN_ROI_PX`; 0: always try).
    """

    def __init__(self, graph: Any = None, *, min_presence: float = 0.5,
                 min_wrist_visibility: float = 0.3, max_wrist_offset: float = 0.5,
                 track: bool = True, refine: bool = False, mirrored: bool = False,
                 focal_length: float = 0.0, fallback_hfov_deg: float = 60.0,
                 min_roi_px: float = MIN_ROI_PX) -> None:
        self.graph = graph if graph is not None else HandLandmarkGraph()
        self._palms: PalmDetectionGraph | None = None
        self.min_presence = float(min_presence)
        self.min_wrist_visibility = float(min_wrist_visibility)
        self.max_wrist_offset = float(max_wrist_offset)
        self.min_roi_px = float(min_roi_px)
        self.track = track
        self.refine = refine
        self.mirrored = mirrored
        self.focal_length = focal_length
        self.fallback_hfov_deg = fallback_hfov_deg
        self._prev: dict[str, HandRoi | None] = {s: None for s in SIDES}

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Forget the tracked ROIs (a new, unrelated sequence follows)."""
        self._prev = {s: None for s in SIDES}

    def close(self) -> None:
        for g in (self.graph, self._palms):
            close = getattr(g, "close", None)
            if close is not None:
                close()
        self._palms = None

    def __enter__(self) -> HandEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers
    def _intrinsics(self, K: Any, width: int, height: int) -> Intrinsics:
        from mocap_ros.geometry.camera import Intrinsics

        return Intrinsics.given_or_fallback(K, width, height, self.focal_length,
                                            self.fallback_hfov_deg)

    def _model_side(self, raw: RawHand) -> str | None:
        """The person's side the model guesses (its labels assume a mirrored image)."""
        if raw.model_label not in ("Left", "Right"):
            return None
        same = raw.model_label.lower()
        return same if self.mirrored else ("right" if same == "left" else "left")

    def _run(self, rgb: np.ndarray, roi: HandRoi) -> RawHand | None:
        raw = self.graph(rgb, roi)
        if self.refine and raw is not None and raw.roi_next is not None \
                and raw.roi_next.is_finite():
            again = self.graph(rgb, raw.roi_next)
            if again is not None and again.presence >= raw.presence:
                raw = again
        return raw

    def _finish(self, side: str, raw: RawHand, K: Intrinsics,
                wrist_cam: np.ndarray | None, side_source: str) -> HandResult:
        world = raw.world
        if not (np.isfinite(world).all() and np.isfinite(raw.image_xy).all()):
            return HandResult.invalid(side, "non_finite", raw.roi)
        rooted = wrist_cam is not None and np.isfinite(wrist_cam).all()
        if rooted:
            cam = world - world[0] + np.asarray(wrist_cam, np.float64)
        else:
            from mocap_ros.geometry.camera import solve_root_translation

            T = solve_root_translation(world, raw.image_xy, np.ones(len(world)), K)
            if T is None:
                return HandResult.invalid(side, "no_depth", raw.roi)
            cam = world + T
        R = geo.palm_frame(world, side)
        quat = geo.rotmat_to_quat_xyzw(R)
        curls = geo.finger_curls(world)
        aperture = float(geo.grip_aperture(world))
        if not (np.isfinite(cam).all() and np.isfinite(quat).all() and np.isfinite(curls).all()
                and math.isfinite(aperture)):
            return HandResult.invalid(side, "non_finite", raw.roi)
        guess = self._model_side(raw)
        f32 = np.float32
        return HandResult(
            side=side, valid=True, reason="", confidence=float(raw.presence),
            keypoints_2d=raw.image_xy.astype(f32), keypoints_cam=cam.astype(f32),
            orientation=quat.astype(f32), finger_curls=curls.astype(f32), aperture=aperture,
            roi=raw.roi, rooted_at_body_wrist=bool(rooted), side_source=side_source,
            handedness_agrees=None if guess is None else guess == side)

    # ------------------------------------------------------------------ the API
    def estimate(self, rgb: np.ndarray, arms: dict[str, ArmObservation], K: Any = None
                 ) -> dict[str, HandResult]:
        """Both hands: ``arms`` maps 'left'/'right' to the body's :class:`ArmObservation`
        (a missing side -> invalid ``no_wrist``). K: 3x3 intrinsics / Intrinsics / None."""
        import time

        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 \
                or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got "
                             f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")
        h, w = rgb.shape[:2]
        intr = self._intrinsics(K, w, h)
        out: dict[str, HandResult] = {}
        raws: dict[str, RawHand] = {}
        for side in SIDES:
            t0 = time.perf_counter()
            res, raw = self._one_side(rgb, side, arms.get(side), intr)
            res.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
            out[side] = res
            if raw is not None and res.valid:
                raws[side] = raw
        # Both ROIs on the same image hand (hands together / crossed, or after a scene cut
        # BlazePose's smoothing drags both wrists onto one hand): never publish it twice.
        if len(raws) == 2 and same_image_hand(out["left"], out["right"]):
            loser = _duplicate_loser(out, arms)
            out[loser] = HandResult.invalid(loser, "duplicate", out[loser].roi)
            self._prev[loser] = None
        return out

    def _one_side(self, rgb: np.ndarray, side: str, arm: ArmObservation | None,
                  K: Intrinsics) -> tuple[HandResult, RawHand | None]:
        h, w = rgb.shape[:2]
        if arm is None or not (arm.visibility >= self.min_wrist_visibility):
            self._prev[side] = None
            return HandResult.invalid(side, "no_wrist"), None
        # Passes that cannot succeed are skipped (speed, issue 13): a wrist off the image (an
        # invented landmark) or a hand too small for the model.
        wrist = np.asarray(arm.wrist_px, np.float64)
        if wrist.shape == (2,) and np.isfinite(wrist).all() and not (
                0.0 <= wrist[0] < w and 0.0 <= wrist[1] < h):
            self._prev[side] = None
            return HandResult.invalid(side, "out_of_view"), None
        need = roi_from_arm(arm, min_size_px=0.0)  # the ROI the hand itself needs
        if need is not None and need.size < self.min_roi_px:
            self._prev[side] = None
            return HandResult.invalid(side, "too_small", need), None
        roi = roi_from_arm(arm)
        if roi is None:
            self._prev[side] = None
            return HandResult.invalid(side, "no_wrist"), None
        prev = self._prev.get(side)
        if self.track and prev is not None and prev.is_finite() and \
                np.hypot(prev.cx - roi.cx, prev.cy - roi.cy) < 0.5 * max(prev.size, roi.size):
            roi = prev
        if not (0.0 <= roi.cx < w and 0.0 <= roi.cy < h):
            self._prev[side] = None
            return HandResult.invalid(side, "out_of_view", roi), None
        raw = self._run(rgb, roi)
        self._prev[side] = None
        if raw is None:
            return HandResult.invalid(side, "not_found", roi), None
        if raw.presence < self.min_presence:
            return HandResult.invalid(side, "low_presence", roi), raw
        if np.linalg.norm(raw.image_xy[0] - wrist) > self.max_wrist_offset * roi.size:
            return HandResult.invalid(side, "far_from_wrist", roi), raw
        res = self._finish(side, raw, K, arm.wrist_cam, "body")
        if res.valid:
            self._prev[side] = raw.roi_next
        return res, raw

    def estimate_from_pose_landmarks(self, rgb: np.ndarray, lms: PoseLandmarks,
                                     joints_cam: np.ndarray | None = None, K: Any = None
                                     ) -> dict[str, HandResult]:
        """The landmarks backend's path: arms from BlazePose (+ its SMPL joints in metres)."""
        return self.estimate(rgb, arms_from_pose_landmarks(lms, joints_cam), K)

    def estimate_from_body_result(self, rgb: np.ndarray, result: BodyPoseResult, K: Any = None
                                  ) -> dict[str, HandResult]:
        """Any backend (HMR included): arms from the result's SMPL joints."""
        if not result.valid:
            self.reset()
            return {s: HandResult.invalid(s, "no_wrist") for s in SIDES}
        return self.estimate(rgb, arms_from_body_result(result), K)

    def detect(self, rgb: np.ndarray, K: Any = None, max_hands: int = 2) -> list[HandResult]:
        """Hands without a body: palm detector ROIs, side from the model (``side_source``
        "model"); best palm score first. Positioned by the pinhole fit (not rooted)."""
        h, w = rgb.shape[:2]
        if self._palms is None:
            self._palms = PalmDetectionGraph()
        intr = self._intrinsics(K, w, h)
        results = []
        for roi, _score in self._palms(rgb)[:max_hands]:
            raw = self._run(rgb, roi)
            if raw is None:
                continue
            side = self._model_side(raw) or "right"
            if raw.presence < self.min_presence:
                results.append(HandResult.invalid(side, "low_presence", roi))
                continue
            results.append(self._finish(side, raw, intr, None, "model"))
        return results
