"""The pipeline's output for one person in one frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mocap_ros.core.skeleton import JOINT_NAMES


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
