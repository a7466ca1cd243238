"""The estimator's output for one person in one frame: the body and, when asked, the hands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mocap_ros.core.skeleton import JOINT_NAMES

# BodyPose.person_check (msg/BodyPose.msg's constants)
PERSON_UNCHECKED, PERSON_CONFIRMED, PERSON_NOT_FOUND = 0, 1, 2


@dataclass
class HandResult:
    """One hand in one frame. float32 arrays; REP-103 camera optical frame, metres."""

    side: str  # "left" | "right" (the person's)
    valid: bool
    reason: str  # "" when valid (module doc lists the causes)
    confidence: float  # the model's presence score in [0, 1] (0 when invalid)
    keypoints_2d: np.ndarray  # (21, 2) pixels, geometry.HAND_KEYPOINT_NAMES order
    keypoints_cam: np.ndarray  # (21, 3) metres, camera frame (rooted at the body's wrist)
    orientation: np.ndarray  # (4,) x, y, z, w: the palm frame in the camera frame
    finger_curls: np.ndarray  # (5,) [0, 1] thumb, index, middle, ring, pinky
    aperture: float  # [0, 1] grip aperture (geometry.grip_aperture)
    roi: Any = None  # the ROI the model ran on (estimation.hands' HandRoi)
    rooted_at_body_wrist: bool = False
    side_source: str = "body"  # "body" | "model"
    handedness_agrees: bool | None = None  # the model's guess vs the side (None: no guess)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def invalid(cls, side: str, reason: str, roi: Any = None) -> HandResult:
        """Well-formed and finite, and says it must not be used."""
        return cls(side=side, valid=False, reason=reason, confidence=0.0,
                   keypoints_2d=np.zeros((21, 2), np.float32),
                   keypoints_cam=np.zeros((21, 3), np.float32),
                   orientation=np.array([0, 0, 0, 1], np.float32),
                   finger_curls=np.zeros(5, np.float32), aperture=0.0, roi=roi)


@dataclass
class BodyPoseResult:
    """All arrays are float32 numpy on the host; frames follow REP-103 (camera optical frame:
    x right, y down, z forward, metres). Quaternions are (x, y, z, w)."""

    valid: bool
    reason: str  # "" when valid, else a short machine-readable cause
    confidence: float
    local_rotations: np.ndarray  # (24, 4) parent-relative; joint 0 = root in the camera frame
    global_rotations: np.ndarray  # (24, 4) in the camera optical frame
    joints_cam: np.ndarray  # (24, 3) metres, camera optical frame
    keypoints_2d: np.ndarray  # (24, 2) image pixels (FrankMocap's 2D mapping)
    betas: np.ndarray  # (10,)
    camera: np.ndarray  # (3,) HMR's (s, tx, ty) in the crop
    root_translation: np.ndarray  # (3,) body-model origin in the camera frame
    bbox: np.ndarray  # (4,) x, y, w, h pixels of the crop square actually used
    timings_ms: dict[str, float] = field(default_factory=dict)
    precision: str = "fp32"
    n_iter: int = 1
    device: str = "cpu"
    backend: str = "hmr"
    joint_names: tuple[str, ...] = JOINT_NAMES
    vertices: np.ndarray | None = None  # (V, 3) model frame + root_translation, when asked
    # (24,) per-joint confidence in [0, 1]; None: not estimated (BodyPose gets an empty array)
    joint_confidence: np.ndarray | None = None
    person_check: int = PERSON_UNCHECKED  # did a person detector confirm this body?
    person_score: float = 0.0  # the detector's score for this body
    track_id: int = 0  # the followed person (0 = none)
    operator_match: float = 0.0  # similarity to the locked operator (0 without a lock)
    operator_state: str = "unlocked"  # unlocked | tracking | uncertain | operator_lost
    left_hand: HandResult | None = None  # None: hands not estimated
    right_hand: HandResult | None = None

    @property
    def root_position(self) -> np.ndarray:
        """Pelvis position in the camera frame."""
        return self.joints_cam[0]

    @classmethod
    def invalid(cls, reason: str, bbox: np.ndarray | None = None, **kw: object) -> BodyPoseResult:
        """A well-formed, finite result that says it must not be used."""
        n = len(JOINT_NAMES)
        ident = np.tile(np.array([0, 0, 0, 1], np.float32), (n, 1))
        return cls(
            valid=False, reason=reason, confidence=0.0,
            local_rotations=ident, global_rotations=ident.copy(),
            joints_cam=np.zeros((n, 3), np.float32), keypoints_2d=np.zeros((n, 2), np.float32),
            betas=np.zeros(10, np.float32), camera=np.zeros(3, np.float32),
            root_translation=np.zeros(3, np.float32),
            bbox=np.zeros(4, np.float32) if bbox is None else np.asarray(bbox, np.float32),
            **kw,  # type: ignore[arg-type]
        )
