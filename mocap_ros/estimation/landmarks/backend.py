"""The landmarks backend: MediaPipe BlazePose (video mode) + the IK of
:mod:`mocap_ros.estimation.landmarks.ik` + forward kinematics + a least-squares root
translation, giving the same :class:`~mocap_ros.core.result.BodyPoseResult` as the HMR
backend, so BodyPose, TF and teleop work unchanged. No licensed files: the BlazePose models
ship inside the ``mediapipe==0.10.14`` wheel.
"""


from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mocap_ros.core.result import PERSON_CONFIRMED, PERSON_NOT_FOUND, HandResult
from mocap_ros.estimation.confidence import landmark_joint_confidence
from mocap_ros.estimation.hands.wrist import apply_hand_orientation
from mocap_ros.estimation.landmarks.ik import (
    JOINT_LANDMARKS,
    USED_LANDMARKS,
    lift_landmarks,
    solve_landmark_ik,
    solve_root_translation,
    straighten_elbow_depth,
)
from mocap_ros.geometry.rotations import matrix_to_quat

if TYPE_CHECKING:
    from mocap_ros.core.result import BodyPoseResult
    from mocap_ros.estimation.detector import PersonDetector
    from mocap_ros.geometry.camera import Intrinsics


# JOINT_LANDMARKS as two index arrays (a joint with one landmark lists it twice): the mean
# of a pair is (a + b) / 2 and of a single landmark (a + a) / 2 = a, exactly as .mean(0)
# (every joint has one or two landmarks; test_landmarks_fast.py checks against .mean(0)).
_JL_A = np.array([v[0] for v in JOINT_LANDMARKS.values()])
_JL_B = np.array([v[-1] for v in JOINT_LANDMARKS.values()])


# ---------------------------------------------------------------- the backend
class LandmarksBackend:
    """MediaPipe BlazePose + IK, an :class:`~mocap_ros.core.estimator.Estimator` like HMR's
    :class:`~mocap_ros.estimation.hmr.pipeline.MocapPipeline`.

    ``config``: a :class:`~mocap_ros.core.config.MocapConfig` or anything with its fields
    ``focal_length``, ``fallback_hfov_deg`` and ``min_confidence`` (missing ones: defaults).
    ``detector``: a :class:`~mocap_ros.estimation.detector.PersonDetector` (or anything with a
    ``landmarks(rgb)`` method returning ``PoseLandmarks | None``); default: a new one in
    video mode (tracking between frames), which raises ``DetectorUnavailable`` without
    mediapipe. ``lift``: solve the IK on the image-consistent landmarks (module doc; default)
    rather than on the world landmarks alone. ``straight_elbows`` (with ``lift``): where the
    image shows an arm straight, the elbow's depth follows the shoulder-wrist line instead of
    the world head's kink (:func:`~mocap_ros.estimation.landmarks.ik.straighten_elbow_depth`;
    default). Not thread-safe: one caller at a time.

    Hands (``config.hands``): after the body, a
    :class:`~mocap_ros.estimation.hands.estimator.HandEstimator` (``hand_estimator``, default
    a new one from the config's ``hands_*`` thresholds) finds both hands from BlazePose's
    arms, rooted at the IK's wrists; each valid hand's palm orientation replaces the SMPL
    wrist/hand rotation (:func:`~mocap_ros.estimation.hands.wrist.apply_hand_orientation`).
    Hands off: ``left_hand``/``right_hand`` stay None (BodyPose: invalid, ``disabled``).
    """

    name = "landmarks"
    backend = name  # the BodyPose backend field
    precision = "fp32"

    def __init__(self, config: Any = None, detector: PersonDetector | Any | None = None,
                 lift: bool = True, hand_estimator: Any = None,
                 straight_elbows: bool = True) -> None:
        self.lift = lift
        self.straight_elbows = straight_elbows
        self.config = config
        self.focal_length = float(getattr(config, "focal_length", 0.0) or 0.0)
        self.fallback_hfov_deg = float(getattr(config, "fallback_hfov_deg", 60.0) or 60.0)
        self.min_confidence = float(getattr(config, "min_confidence", 0.0) or 0.0)
        if detector is None:
            from mocap_ros.estimation.detector import PersonDetector

            detector = PersonDetector()
        self.detector = detector
        self.device = "cpu"
        self.hands = hand_estimator
        if self.hands is None and bool(getattr(config, "hands", False)):
            from mocap_ros.estimation.hands.estimator import MIN_ROI_PX, HandEstimator
            from mocap_ros.estimation.hands.mediapipe_graph import (
                HAND_MODEL_COMPLEXITY,
                HandLandmarkGraph,
            )

            model = str(getattr(config, "hands_model", "full"))
            self.hands = HandEstimator(
                graph=HandLandmarkGraph(HAND_MODEL_COMPLEXITY[model]),
                min_presence=float(getattr(config, "hands_min_presence", 0.5)),
                min_wrist_visibility=float(getattr(config, "hands_min_wrist_visibility", 0.3)),
                min_roi_px=float(getattr(config, "hands_min_roi_px", MIN_ROI_PX)),
                focal_length=self.focal_length, fallback_hfov_deg=self.fallback_hfov_deg)

    def close(self) -> None:
        for part in (self.detector, self.hands):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> LandmarksBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _intrinsics(self, K: Any, width: int, height: int) -> Intrinsics:
        from mocap_ros.geometry.camera import Intrinsics

        return Intrinsics.given_or_fallback(K, width, height, self.focal_length,
                                            self.fallback_hfov_deg)

    def process(self, rgb: np.ndarray, bbox: Any = None, K: Any = None) -> BodyPoseResult:
        """One HxWx3 uint8 RGB frame -> BodyPoseResult (backend "landmarks").

        ``bbox`` (x, y, w, h), when given, limits the search to that box: the pixels outside
        it are blanked (coordinates stay the image's, so MediaPipe's tracking stays valid).
        ``K``: 3x3 intrinsics or Intrinsics; None: the configured fallback.
        The result's bbox is the given box, else the person box from the landmarks.
        """
        from mocap_ros.core.result import BodyPoseResult
        from mocap_ros.estimation.detector import box_from_landmarks
        from mocap_ros.geometry.camera import project
        from mocap_ros.io.images import validate_frame

        t0 = time.perf_counter()
        validate_frame(rgb)
        height, width = rgb.shape[:2]
        intr = self._intrinsics(K, width, height)
        meta = {"precision": self.precision, "n_iter": 1, "device": self.device,
                "backend": self.backend}
        image = rgb
        box = None
        if bbox is not None:
            box = np.asarray(bbox, np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise ValueError(f"bbox must be 4 finite numbers (x, y, w, h), got {bbox!r}")
            image = _mask_outside(rgb, box)
        t1 = time.perf_counter()
        lms = self.detector.landmarks(image)
        t2 = time.perf_counter()

        hands_ms = 0.0

        def timed(result: BodyPoseResult) -> BodyPoseResult:
            t3 = time.perf_counter()
            # inference = the networks (pose, and the hands when on); postprocess = the rest
            # (placement, lift, IK, the wrist update): the backend's own cost (issue 13).
            result.timings_ms = {"preprocess": (t1 - t0) * 1e3,
                                 "inference": (t2 - t1) * 1e3 + hands_ms,
                                 "postprocess": (t3 - t2) * 1e3 - hands_ms,
                                 "total": (t3 - t0) * 1e3}
            if self.hands is not None:
                result.timings_ms["hands"] = hands_ms
                if result.left_hand is None:  # the body was not usable: nor are the hands
                    self.hands.reset()
                    result.left_hand = HandResult.invalid("left", "no_wrist")
                    result.right_hand = HandResult.invalid("right", "no_wrist")
            return result

        if lms is None:
            return timed(BodyPoseResult.invalid("no_person", box, person_check=PERSON_NOT_FOUND,
                                                **meta))
        if box is None:
            box = box_from_landmarks(lms.image_xy, lms.visibility, (height, width))
            if box is None:
                box = np.array([0, 0, width, height], np.float64)
        if not (np.isfinite(lms.world).all() and np.isfinite(lms.image_xy).all()):
            return timed(BodyPoseResult.invalid("non_finite_output", box, **meta))
        # Place MediaPipe's world frame (hip-centred) in the camera frame: the mapped
        # landmarks are exactly the FK joints' positions, so T is fitted on them directly.
        # (each joint's landmark mean / min with fixed index arrays: 3 calls, not 48)
        world_pts = (lms.world[_JL_A] + lms.world[_JL_B]) / 2.0
        uv = (lms.image_xy[_JL_A] + lms.image_xy[_JL_B]) / 2.0
        wts = np.minimum(lms.visibility[_JL_A], lms.visibility[_JL_B])
        T = solve_root_translation(world_pts, uv, np.maximum(wts, 1e-3), intr)
        if T is None:
            return timed(BodyPoseResult.invalid("no_depth", box, **meta))
        cam_pts = lift_landmarks(lms.image_xy, lms.world, T, intr) if self.lift else None
        if cam_pts is not None and self.straight_elbows:
            cam_pts = straighten_elbow_depth(cam_pts, lms.world, lms.image_xy, lms.visibility,
                                             intr)
        if cam_pts is not None:
            ik = solve_landmark_ik(cam_pts, lms.visibility)
            joints_cam = ik.joints + ik.pelvis_world
        else:
            ik = solve_landmark_ik(lms.world, lms.visibility)
            joints_cam = ik.joints + ik.pelvis_world + T
        kp2d = project(joints_cam, intr)
        confidence = float(np.clip(np.mean(lms.visibility[list(USED_LANDMARKS)]), 0.0, 1.0))
        # a joint at or behind the camera plane projects to inf: never publish that
        if not (np.isfinite(joints_cam).all() and np.isfinite(ik.local_rotmats).all()
                and np.isfinite(kp2d).all() and (joints_cam[:, 2] > 0).all()):
            return timed(BodyPoseResult.invalid("non_finite_output", box, **meta))
        quats = matrix_to_quat(np.stack((ik.local_rotmats, ik.global_rotmats)))
        valid = confidence >= self.min_confidence and confidence > 0.0
        f32 = np.float32
        result = BodyPoseResult(
            valid=valid, reason="" if valid else "low_confidence", confidence=confidence,
            local_rotations=quats[0].astype(f32), global_rotations=quats[1].astype(f32),
            joints_cam=joints_cam.astype(f32), keypoints_2d=kp2d.astype(f32),
            betas=np.zeros(10, f32), camera=np.zeros(3, f32),
            root_translation=joints_cam[0].astype(f32), bbox=np.asarray(box, f32), **meta,
            # MediaPipe's own person detector found this body
            person_check=PERSON_CONFIRMED, person_score=1.0,
            joint_confidence=landmark_joint_confidence(lms.visibility, lms.image_xy,
                                                       (height, width)),
        )
        if self.hands is not None and valid:
            th = time.perf_counter()
            hands = self.hands.estimate_from_pose_landmarks(image, lms, joints_cam, intr)
            hands_ms = (time.perf_counter() - th) * 1e3
            result.left_hand, result.right_hand = hands["left"], hands["right"]
            apply_hand_orientation(result, hands, intr)
        return timed(result)


def _mask_outside(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A copy of the frame with everything outside the box (x, y, w, h) set to black."""
    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, math.floor(box[0]))), int(max(0, math.floor(box[1])))
    x1 = int(min(w, math.ceil(box[0] + box[2])))
    y1 = int(min(h, math.ceil(box[1] + box[3])))
    out = np.zeros_like(rgb)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
    return out


def measure_fps(frames: Iterable[np.ndarray], backend: LandmarksBackend | None = None,
                warmup: int = 3) -> dict[str, float]:
    """Run the landmarks backend over ``frames`` (in order, video mode) and time it.

    Returns fps (frames / wall time of the timed frames), mean/p50/p95 ms per frame, the mean
    MediaPipe (``inference``) and IK + placement (``postprocess``) ms, and the fraction of
    valid results. The first ``warmup`` frames are run but not timed."""
    frames = list(frames)
    own = backend is None
    be = backend or LandmarksBackend()
    try:
        for f in frames[:warmup]:
            be.process(f)
        timed = frames[warmup:] or frames
        totals, infer, post, valid = [], [], [], 0
        t0 = time.perf_counter()
        for f in timed:
            t = time.perf_counter()
            r = be.process(f)
            totals.append((time.perf_counter() - t) * 1e3)
            infer.append(r.timings_ms.get("inference", 0.0))
            post.append(r.timings_ms.get("postprocess", 0.0))
            valid += int(r.valid)
        wall = time.perf_counter() - t0
    finally:
        if own:
            be.close()
    arr = np.asarray(totals)
    return {"fps": len(timed) / wall, "frames": float(len(timed)), "mean_ms": float(arr.mean()),
            "p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "inference_ms": float(np.mean(infer)), "postprocess_ms": float(np.mean(post)),
            "valid_fraction": valid / len(timed)}
