"""Task-space retargeting: operator wrist (and elbow, forearm) -> robot targets. Pure numpy.

Input: SMPL joint positions in the camera optical frame (``BodyPoseResult.joints_cam``,
(24, 3) metres, x right, y down, z forward; order `mocap_ros.core.skeleton.JOINT_NAMES`).

1. The operator's body frame is built from the pose itself (x forward, y to the operator's
   left, z up: left = left shoulder - right shoulder, up = neck - pelvis made orthogonal),
   so the camera's placement and the operator's facing direction do not matter.
2. The wrist relative to the shoulder, in that frame, minus its rest value (arm hanging:
   straight down by the measured arm length) is the operator's hand displacement.
3. It is scaled by robot reach / operator arm length (upper arm + forearm, measured from
   the same pose), turned into the robot base frame by the configured rotation
   (``TaskMap.rotation``: base <- operator body; identity = the robot's forward is the
   operator's forward) and added to the robot's end-effector position at home. So the
   operator's rest pose gives the robot's home, and "arm raised sideways" moves the hand
   sideways.
4. Orientation: the home orientation swung so that the tool axis follows the operator's
   forearm direction (elbow -> wrist) as it turns away from its rest direction (down).
   That shortest swing is singular with the forearm pointing straight UP (a wave), where
   a small move turns the target half a turn about the tool axis (issue 24), so
   `orientation_weight` fades the IK's orientation task out near there: the tool then
   follows position only and keeps its twist. (A swing routed through "forward", whose
   singular direction is "straight back", avoids the flip too, but turns the FR3's wrist
   differently on sideways raises, into its forearm-flange boundary: guard cuts.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.core.skeleton import JOINT_INDEX, NUM_JOINTS

MIN_ARM_LENGTH = 0.2  # m: shorter means a broken pose, not a person


class RetargetError(ValueError):
    """The pose cannot be retargeted (bad shape, non-finite, degenerate body)."""


@dataclass(frozen=True)
class TaskMap:
    """Per-arm mapping from the operator's body frame to the robot's base frame."""

    home_position: np.ndarray  # (3,) robot end effector at home, base frame
    home_quat: np.ndarray  # (4,) xyzw, robot end effector at home
    reach: float  # m: robot hand travel that corresponds to a full operator arm length
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # base <- body
    tool_axis: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    home_elbow: np.ndarray | None = None  # (3,) robot elbow at home, for the elbow hint

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation, dtype=float)
        if r.shape != (3, 3) or not np.allclose(r @ r.T, np.eye(3), atol=1e-6):
            raise RetargetError("TaskMap.rotation must be a 3x3 rotation matrix")
        if abs(np.linalg.det(r) - 1.0) > 1e-6:
            raise RetargetError("TaskMap.rotation must be proper (det +1), not a reflection")
        if not (np.isfinite(self.reach) and self.reach > 0):
            raise RetargetError(f"TaskMap.reach must be > 0, got {self.reach}")


def _joints(joints_cam: ArrayLike) -> np.ndarray:
    j = np.asarray(joints_cam, dtype=float)
    if j.shape != (NUM_JOINTS, 3):
        raise RetargetError(f"joints must have shape ({NUM_JOINTS}, 3), got {j.shape}")
    if not np.all(np.isfinite(j)):
        raise RetargetError("joints must be finite")
    return j


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-6:
        raise RetargetError(f"degenerate pose: {what} has no direction")
    return v / n


def body_frame(joints_cam: ArrayLike) -> np.ndarray:
    """3x3 matrix whose columns are the operator's forward, left, up in camera coordinates."""
    j = _joints(joints_cam)
    left = _unit(j[JOINT_INDEX["left_shoulder"]] - j[JOINT_INDEX["right_shoulder"]], "shoulders")
    up_raw = j[JOINT_INDEX["neck"]] - j[JOINT_INDEX["pelvis"]]
    up = _unit(up_raw - float(up_raw @ left) * left, "spine")
    forward = np.cross(left, up)
    return np.column_stack([forward, left, up])


def arm_length(joints_cam: ArrayLike, side: str) -> float:
    """Upper arm + forearm of one side, metres, measured on this pose."""
    j = _joints(joints_cam)
    s, e, w = (j[JOINT_INDEX[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
    length = float(np.linalg.norm(e - s) + np.linalg.norm(w - e))
    if length < MIN_ARM_LENGTH:
        raise RetargetError(f"{side} arm is {length:.3f} m long: not a usable pose")
    return length


def _check_side(side: str) -> None:
    if side not in ("left", "right"):
        raise RetargetError(f"side must be 'left' or 'right', got {side!r}")


def arm_vectors_body(joints_cam: ArrayLike, side: str) -> dict[str, np.ndarray]:
    """Elbow and wrist relative to the shoulder, and the forearm direction, body frame."""
    _check_side(side)
    j = _joints(joints_cam)
    R = body_frame(j)
    s, e, w = (j[JOINT_INDEX[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
    return {
        "elbow": R.T @ (e - s),
        "wrist": R.T @ (w - s),
        "forearm": R.T @ _unit(w - e, f"{side} forearm"),
    }


def target_position(joints_cam: ArrayLike, side: str, tmap: TaskMap) -> np.ndarray:
    """Robot end-effector target (base frame) for the operator's `side` wrist."""
    length = arm_length(joints_cam, side)
    v = arm_vectors_body(joints_cam, side)
    rest = np.array([0.0, 0.0, -length])
    disp = v["wrist"] - rest
    return np.asarray(tmap.home_position, float) + tmap.rotation @ (disp * tmap.reach / length)


def elbow_position(joints_cam: ArrayLike, side: str, tmap: TaskMap) -> np.ndarray | None:
    """Robot elbow hint (base frame), or None when the map has no home elbow."""
    if tmap.home_elbow is None:
        return None
    length = arm_length(joints_cam, side)
    v = arm_vectors_body(joints_cam, side)
    upper = float(np.linalg.norm(v["elbow"]))
    disp = v["elbow"] - np.array([0.0, 0.0, -upper])
    return np.asarray(tmap.home_elbow, float) + tmap.rotation @ (disp * tmap.reach / length)


def _quat_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest rotation (xyzw) taking unit vector a to unit vector b."""
    c = float(np.clip(a @ b, -1.0, 1.0))
    if c < -1.0 + 1e-9:  # opposite: any axis orthogonal to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return np.array([*axis, 0.0])
    xyz = np.cross(a, b)
    q = np.array([*xyz, 1.0 + c])
    return q / np.linalg.norm(q)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    u = np.array([x, y, z])
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


# Operator body frame (x forward, y left, z up): the forearm's rest direction (hanging).
_REST_DIR = np.array([0.0, 0.0, -1.0])
# Forearm within the first angle (rad) of straight up (where the swing from hanging is
# singular): orientation weight 0; beyond the second: 1 (smooth in between).
ORIENTATION_FADE = (np.radians(30.0), np.radians(60.0))


def _tool_quat(fore_body: np.ndarray, tmap: TaskMap) -> np.ndarray:
    """Target orientation (xyzw, base frame): the home orientation swung by the shortest
    rotation taking the rest forearm direction to `fore_body`, both turned into the base."""
    rot = np.asarray(tmap.rotation, float)
    swing = _quat_between(rot @ _REST_DIR, rot @ _unit(np.asarray(fore_body, float), "forearm"))
    q = _quat_mul(swing, np.asarray(tmap.home_quat, float))
    return q / np.linalg.norm(q)


def orientation_weight(fore_body: ArrayLike) -> float:
    """In [0, 1]: how much the tool orientation target may count for this forearm direction
    (body frame): 0 within ORIENTATION_FADE[0] of straight up, where the target's twist
    about the tool axis is undefined and flips, 1 beyond ORIENTATION_FADE[1]."""
    fore = _unit(np.asarray(fore_body, dtype=float), "forearm")
    angle = float(np.arccos(np.clip(-fore @ _REST_DIR, -1.0, 1.0)))
    lo, hi = ORIENTATION_FADE
    s = min(max((angle - lo) / (hi - lo), 0.0), 1.0)
    return s * s * (3.0 - 2.0 * s)


def target_orientation(joints_cam: ArrayLike, side: str, tmap: TaskMap) -> np.ndarray:
    """Robot end-effector target orientation (xyzw, base frame) from the forearm direction.

    The forearm's swing away from its rest direction (straight down) is applied to the
    robot's home orientation; the twist about the forearm is left to the posture task
    (see `orientation_weight` for where this target is ill-defined).
    """
    return _tool_quat(arm_vectors_body(joints_cam, side)["forearm"], tmap)


def tool_direction(quat_xyzw: ArrayLike, tool_axis: ArrayLike = (0.0, 0.0, 1.0)) -> np.ndarray:
    """The tool axis of an orientation, in the base frame (for checks and status)."""
    return _rotate(np.asarray(quat_xyzw, float), np.asarray(tool_axis, float))


# ------------------------------------------------------------------ per-arm features
# The controller filters these 6 numbers per arm (wrist and elbow relative to the shoulder,
# body frame, divided by the arm length) instead of the targets: they are scale-free, so
# the operator's size cancels, and every target below is a smooth function of them.
FEATURES_PER_ARM = 6


def arm_features(joints_cam: ArrayLike, side: str, *, mirror: bool = False) -> np.ndarray:
    """(6,): wrist and elbow relative to the shoulder in the body frame, / arm length.

    With ``mirror`` the other arm is read and reflected through the sagittal plane (body
    y negated): the robot's `side` moves like the mirror image of the operator.
    """
    _check_side(side)
    src = ("right" if side == "left" else "left") if mirror else side
    length = arm_length(joints_cam, src)
    v = arm_vectors_body(joints_cam, src)
    out = np.concatenate([v["wrist"], v["elbow"]]) / length
    if mirror:
        out[[1, 4]] *= -1.0
    return out


def targets_from_features(
    features: ArrayLike, tmap: TaskMap
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(position, quaternion xyzw, elbow hint or None) in the base frame from `arm_features`.

    Same mapping as `target_position` / `target_orientation` / `elbow_position`: the rest
    pose (wrist straight below the shoulder by one arm length) gives the home pose.
    """
    f = np.asarray(features, dtype=float).reshape(-1)
    if f.shape != (FEATURES_PER_ARM,) or not np.all(np.isfinite(f)):
        raise RetargetError("arm features must be 6 finite numbers")
    wrist, elbow = f[:3], f[3:]
    rot = np.asarray(tmap.rotation, float)
    pos = np.asarray(tmap.home_position, float) + rot @ ((wrist - [0.0, 0.0, -1.0]) * tmap.reach)
    quat = _tool_quat(_unit(wrist - elbow, "forearm"), tmap)
    hint = None
    if tmap.home_elbow is not None:
        upper = float(np.linalg.norm(elbow))
        disp = elbow - np.array([0.0, 0.0, -upper])
        hint = np.asarray(tmap.home_elbow, float) + rot @ (disp * tmap.reach)
    return pos, quat, hint
