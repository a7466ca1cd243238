"""Operator's anatomical joint angles from SMPL local rotations, and the exact inverse.

Input: 24 parent-relative quaternions (x, y, z, w) in SMPL joint order (see
``mocap_ros.core.skeleton``). SMPL's rest frame: +y up, +x to the body's LEFT, +z forward (out
of the chest); the rest pose is a T-pose (arms along +-x, palms down, elbow creases
forward). Joint 0 (the global root orientation in the camera frame) is never used: every
angle here is relative to the body itself.

Output: radians, keyed by the names in ``ANGLE_NAMES``.

Sign conventions (the same MOVEMENT gives the same value on both sides)
-----------------------------------------------------------------------
Per side (prefix ``left_`` / ``right_``), zero = anatomical neutral: upper arm hanging at
the side, elbow straight, forearm mid-prone (palm facing the thigh, thumb forward), wrist
straight.

=====================  ==============================================================
shoulder_flexion       + = arm raised forward (90 deg: pointing forward), - = extension
shoulder_abduction     + = arm raised sideways away from the body (90 deg: T-pose)
shoulder_rotation      + = external rotation (elbow bent 90 deg: forearm turns outward)
elbow_flexion          + = bending, 0 = straight
forearm_pronation      + = pronation (elbow bent, thumb up: palm turns down)
wrist_flexion          + = palmar flexion (hand bends toward the palm)
wrist_deviation        + = ulnar deviation (hand bends toward the little finger)
torso_yaw              + = upper body turned to the operator's LEFT (relative to pelvis)
torso_pitch            + = upper body leaning forward (spine flexion, relative to pelvis)
head_yaw               + = head turned to the operator's LEFT (relative to the chest)
head_pitch             + = looking down (relative to the chest)
=====================  ==============================================================

Left and right use one code path: the right arm's local rotations are mirrored through the
body's sagittal plane (``_quat.mirror_x``: a rotation about (ax, ay, az) becomes one about
(ax, -ay, -az)), which turns the right arm into a left arm doing the mirror movement. The
axes below are written for the LEFT side, in SMPL's rest frame; for the right side, flip
the y and z components of each axis.

Decomposition per joint, and why
--------------------------------
Shoulder (3 DoF). The upper arm's orientation in the chest (spine3) frame is
``Q = collar * shoulder`` (SMPL moves the arm with both; teleop should not care which one
the estimator used). Its rotation relative to the anatomical neutral (arm hanging; for the
left arm the rest T-pose turned by -90 deg about +z) is ``A = Q * H^-1``, expressed in the
chest frame. A is split by swing-twist about the vertical axis (the hanging arm's axis):
``A = S * T``. Twist T about +y is ``shoulder_rotation`` (left: +y turns the forward
pointing forearm outward). The swing S is the shortest rotation taking the hanging arm to
its current direction; its rotation vector s = (sx, 0, sz) gives
``shoulder_flexion = -sx`` (rotation about -x raises the arm forward) and
``shoulder_abduction = sz`` (rotation about +z raises the left arm sideways).
Why: the only singularity of this chart is the arm pointing straight UP (swing of 180 deg,
the edge of the human range). Euler charts (pitch-roll-yaw, as on many humanoid
shoulders) are singular with the arm horizontal sideways -- exactly SMPL's T-pose, i.e.
what an uncertain estimator returns -- and flip branches when the arm is raised sideways
past the horizontal. Cost: for pure forward or pure sideways raises the values equal the
plane elevation; on a diagonal they are the components of the elevation (45 deg between
forward and sideways at elevation e gives e*cos45 each), so a pitch-roll-yaw robot
following them 1:1 is exact in the pure planes and approximate in between (about 3 deg
error at 45 deg elevation, about 24 deg at 90 deg on the diagonal).

Elbow (1 DoF + twist). The elbow local rotation is split by swing-twist about the forearm
axis (+x). The swing's component about -y is ``elbow_flexion`` (left forearm +x bends
toward +z, forward, as in SMPL). The swing's other component (carrying angle,
hyper-adduction) is discarded; the twist is passed on to pronation.

Forearm and wrist. The hand relative to the forearm's non-twisted frame is
``M = Twist_elbow * wrist``. Swing-twist of M about the forearm axis (+x) gives
``forearm_pronation`` = twist angle (left: +x turns the thumb from forward to down).
The remaining wrist swing is taken in the pronated frame, ``W = T^-1 * M`` (pronation
happens proximal to the wrist, so flexion/deviation axes travel with the hand); its
rotation vector w = (0, wy, wz) gives ``wrist_flexion = -wz`` (the palm faces -y in the
T-pose, so flexion turns the hand toward -y: rotation about -z) and
``wrist_deviation = wy`` (the thumb points forward, so ulnar = toward -z: rotation about
+y). Singular only for 180-deg swings, outside any human range.

Torso and head. Intrinsic Y-X'-Z'' Euler angles of the spine chain
(spine1 * spine2 * spine3, relative to the pelvis) and of the neck chain (neck * head,
relative to spine3): yaw about the vertical first (matching yaw-first robot waists and
pan-tilt heads), then pitch about the turned lateral axis; the roll is discarded. The
singularity lies at pitch = +-90 deg, beyond the human range of both chains.

Inverse. ``angles_to_local_rotations`` builds: collar = identity,
shoulder = S(flexion, abduction) * T(rotation) * H, elbow = pure hinge, wrist =
T(pronation) * W(flexion, deviation), spine1 = Ry(yaw) Rx(pitch), neck likewise; all other
joints identity. It is the exact inverse of the forward map while the shoulder's swing
(sqrt(flexion^2 + abduction^2)), elbow flexion and the wrist swing stay below pi, twists
lie in (-pi, pi] and |pitch| < pi/2.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.core.skeleton import JOINT_INDEX, NUM_JOINTS
from mocap_ros.geometry.rotations import (
    FloatArray,
    euler_yxz,
    mirror_x,
    quat_conj,
    quat_from_axis_angle,
    quat_from_rotvec,
    quat_mul,
    quat_normalize,
    quat_to_rotvec,
    swing_twist,
)

SIDES: tuple[str, str] = ("left", "right")
ARM_ANGLES: tuple[str, ...] = (
    "shoulder_flexion",
    "shoulder_abduction",
    "shoulder_rotation",
    "elbow_flexion",
    "forearm_pronation",
    "wrist_flexion",
    "wrist_deviation",
)
BODY_ANGLES: tuple[str, ...] = ("torso_yaw", "torso_pitch", "head_yaw", "head_pitch")
ANGLE_NAMES: tuple[str, ...] = (
    tuple(f"{side}_{a}" for side in SIDES for a in ARM_ANGLES) + BODY_ANGLES
)
ANGLE_INDEX: dict[str, int] = {n: i for i, n in enumerate(ANGLE_NAMES)}

# The SMPL joints whose estimates decide each angle: the joint's own rotation is read from
# the position of its child, so both count (and the parent frame it is measured in). A robot
# map that follows an angle trusts these joints, and teleop gates on their confidence only:
# an operator at a desk has no legs in view, which must not stop an arm.
_ARM_JOINTS = {  # side: (collar, shoulder, elbow, wrist, hand)
    "left": (13, 16, 18, 20, 22), "right": (14, 17, 19, 21, 23)}


def _angle_joints() -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for side, (collar, shoulder, elbow, wrist, hand) in _ARM_JOINTS.items():
        for a in ARM_ANGLES:
            if a.startswith("shoulder"):
                joints = (9, collar, shoulder, elbow)
            elif a == "elbow_flexion":
                joints = (shoulder, elbow, wrist)
            elif a == "forearm_pronation":
                joints = (elbow, wrist, hand)
            else:  # wrist flexion / deviation
                joints = (wrist, hand)
            out[f"{side}_{a}"] = joints
    for a in BODY_ANGLES:
        out[a] = (0, 1, 2, 9, 16, 17) if a.startswith("torso") else (9, 12, 15, 16, 17)
    return out


ANGLE_JOINTS: dict[str, tuple[int, ...]] = _angle_joints()

# Angles whose meaning flips under a left/right mirror: turning to the operator's left is
# turning to the mirror image's right. Side-prefixed anatomical angles keep their sign
# (they are defined mirror-symmetrically); pitch angles lie in the sagittal plane.
MIRROR_NEGATED: frozenset[str] = frozenset({"torso_yaw", "head_yaw"})

# Plausible range of each angle (radians, per side; zero and sign as in the table above).
# Human ranges of motion (e.g. AAOS norms: shoulder flexion 180 deg, extension 60, abduction
# 180, rotation 70-90 each way, elbow 150, pronation/supination 80-90 each way, wrist
# flexion 80 / extension 70, ulnar 30 / radial 20 deviation, trunk rotation 30-45, neck
# rotation 80) widened by roughly 20-30 deg for estimator noise. A pose outside them is a
# misdetection (e.g. a forearm "twisted" past +-pi), never motion to follow: the safety
# gate refuses it as "out_of_range" (only for the angles the robot map follows).
# An arm raised overhead may pass vertical a little (shoulder flexion/abduction up to ~200
# deg with the spine's help); the chart's swing flips there (see continue_overhead).
OVERHEAD_PAST = 0.35
# Swings of at least this magnitude are near the chart's singularity (arm straight up).
OVERHEAD_NEAR = np.pi - 0.5

ANATOMICAL_RANGES: dict[str, tuple[float, float]] = {
    **{
        f"{side}_{name}": bounds
        for side in ("left", "right")
        for name, bounds in (
            # the upper bounds go OVERHEAD_PAST past vertical: reachable only by continuing a
            # near-vertical pose (`continue_overhead`); the chart itself stops at pi
            ("shoulder_flexion", (-1.45, np.pi + OVERHEAD_PAST)),
            ("shoulder_abduction", (-0.9, np.pi + OVERHEAD_PAST)),
            ("shoulder_rotation", (-1.95, 1.95)),
            ("elbow_flexion", (-0.45, 3.0)),
            ("forearm_pronation", (-2.0, 2.0)),
            ("wrist_flexion", (-1.65, 1.75)),
            ("wrist_deviation", (-0.8, 1.0)),
        )
    },
    "torso_yaw": (-1.25, 1.25),
    "torso_pitch": (-0.9, 1.6),
    "head_yaw": (-1.8, 1.8),
    "head_pitch": (-1.3, 1.2),
}

_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
# Left upper arm hanging at the side: the T-pose turned by -90 deg about +z.
_HANG = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), -0.5 * np.pi)
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])

_CHAIN = {
    "left": ("left_collar", "left_shoulder", "left_elbow", "left_wrist"),
    "right": ("right_collar", "right_shoulder", "right_elbow", "right_wrist"),
}


def mirrored_name(name: str) -> tuple[str, float]:
    """The angle that plays `name`'s role in the mirror image, and the sign to apply."""
    if name.startswith("left_"):
        return "right_" + name[len("left_") :], 1.0
    if name.startswith("right_"):
        return "left_" + name[len("right_") :], 1.0
    return name, (-1.0 if name in MIRROR_NEGATED else 1.0)


def _left_arm_angles(
    collar: FloatArray, shoulder: FloatArray, elbow: FloatArray, wrist: FloatArray
) -> dict[str, float]:
    """Anatomical angles of a LEFT arm chain (right arms arrive here mirrored)."""
    A = quat_mul(quat_mul(collar, shoulder), quat_conj(_HANG))
    swing, rotation = swing_twist(A, _Y)
    s = quat_to_rotvec(swing)

    e_swing, e_twist = swing_twist(elbow, _X)
    e = quat_to_rotvec(e_swing)

    M = quat_mul(quat_from_axis_angle(_X, e_twist), wrist)
    _, pronation = swing_twist(M, _X)
    W = quat_mul(quat_from_axis_angle(_X, -pronation), M)
    w = quat_to_rotvec(W)
    return {
        "shoulder_flexion": float(-s[0]),
        "shoulder_abduction": float(s[2]),
        "shoulder_rotation": float(rotation),
        "elbow_flexion": float(-e[1]),
        "forearm_pronation": float(pronation),
        "wrist_flexion": float(-w[2]),
        "wrist_deviation": float(w[1]),
    }


def continue_overhead(angles: Mapping[str, float], previous: Mapping[str, float] | None
                      ) -> dict[str, float]:
    """``angles`` with each shoulder's swing continued across the chart's one singularity.

    The swing (flexion, abduction) is the shortest rotation from the hanging arm, so an arm
    a few degrees past straight up reads as the opposite swing: +185 deg of flexion arrives
    as -175. Where ``previous`` (the last accepted pose) had that shoulder near the
    singularity (|swing| >= OVERHEAD_NEAR) and the new swing, also near it, points the other
    way, it is expressed the other way round: magnitude 2 pi - |s| on the previous side (the
    same rotation; the twist is unchanged). Nothing else changes; with no previous pose, or
    one away from the singularity, nothing is continued (the range check then refuses it).
    """
    out = dict(angles)
    if previous is None:
        return out
    for side in ("left", "right"):
        f, a = f"{side}_shoulder_flexion", f"{side}_shoulder_abduction"
        if not all(k in angles and k in previous for k in (f, a)):
            continue
        new = np.array([angles[f], angles[a]], dtype=np.float64)
        old = np.array([previous[f], previous[a]], dtype=np.float64)
        mag_new, mag_old = float(np.linalg.norm(new)), float(np.linalg.norm(old))
        if mag_new >= OVERHEAD_NEAR and mag_old >= OVERHEAD_NEAR and float(new @ old) < 0.0:
            cont = new * (1.0 - 2.0 * np.pi / mag_new)
            out[f], out[a] = float(cont[0]), float(cont[1])
    return out


def _left_arm_rotations(a: Mapping[str, float]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Inverse of `_left_arm_angles` (collar = identity): shoulder, elbow, wrist locals."""
    swing = quat_from_rotvec(np.array([-a["shoulder_flexion"], 0.0, a["shoulder_abduction"]]))
    twist = quat_from_axis_angle(_Y, a["shoulder_rotation"])
    shoulder = quat_mul(quat_mul(swing, twist), _HANG)
    elbow = quat_from_rotvec(np.array([0.0, -a["elbow_flexion"], 0.0]))
    wrist_swing = quat_from_rotvec(np.array([0.0, a["wrist_deviation"], -a["wrist_flexion"]]))
    wrist = quat_mul(quat_from_axis_angle(_X, a["forearm_pronation"]), wrist_swing)
    return shoulder, elbow, wrist


def _as_local_rotations(local_rotations: ArrayLike) -> FloatArray:
    q = np.asarray(local_rotations, dtype=np.float64)
    if q.shape != (NUM_JOINTS, 4):
        raise ValueError(f"local_rotations must have shape ({NUM_JOINTS}, 4), got {q.shape}")
    return quat_normalize(q)


def local_rotations_to_angles(local_rotations: ArrayLike) -> dict[str, float]:
    """(24, 4) SMPL local quaternions (x, y, z, w) -> {angle name: radians}.

    Quaternions need not be normalised. Non-finite or zero quaternions give NaN angles
    (callers must treat such a pose as invalid); a wrong shape raises ValueError.
    """
    q = _as_local_rotations(local_rotations)
    out: dict[str, float] = {}
    for side in SIDES:
        chain = [q[JOINT_INDEX[name]] for name in _CHAIN[side]]
        if side == "right":
            chain = [mirror_x(c) for c in chain]
        for k, v in _left_arm_angles(*chain).items():
            out[f"{side}_{k}"] = v
    spine = quat_mul(
        quat_mul(q[JOINT_INDEX["spine1"]], q[JOINT_INDEX["spine2"]]), q[JOINT_INDEX["spine3"]]
    )
    neck = quat_mul(q[JOINT_INDEX["neck"]], q[JOINT_INDEX["head"]])
    out["torso_yaw"], out["torso_pitch"], _ = euler_yxz(spine)
    out["head_yaw"], out["head_pitch"], _ = euler_yxz(neck)
    return {name: out[name] for name in ANGLE_NAMES}


def angles_to_local_rotations(angles: Mapping[str, float]) -> FloatArray:
    """{angle name: radians} -> (24, 4) SMPL local quaternions; missing names count as 0.

    Unknown names raise ValueError. See the module docstring for the ranges in which this
    is the exact inverse of `local_rotations_to_angles`.
    """
    unknown = sorted(set(angles) - set(ANGLE_NAMES))
    if unknown:
        raise ValueError(f"unknown angle names: {unknown}")
    a = {name: float(angles.get(name, 0.0)) for name in ANGLE_NAMES}
    q = np.tile(_IDENTITY, (NUM_JOINTS, 1))
    for side in SIDES:
        shoulder, elbow, wrist = _left_arm_rotations({k: a[f"{side}_{k}"] for k in ARM_ANGLES})
        if side == "right":
            shoulder, elbow, wrist = mirror_x(shoulder), mirror_x(elbow), mirror_x(wrist)
        _, s_name, e_name, w_name = _CHAIN[side]
        q[JOINT_INDEX[s_name]] = shoulder
        q[JOINT_INDEX[e_name]] = elbow
        q[JOINT_INDEX[w_name]] = wrist
    q[JOINT_INDEX["spine1"]] = _yaw_pitch(a["torso_yaw"], a["torso_pitch"])
    q[JOINT_INDEX["neck"]] = _yaw_pitch(a["head_yaw"], a["head_pitch"])
    return q


def angles_to_vector(angles: Mapping[str, float]) -> FloatArray:
    """Dict -> array in ANGLE_NAMES order (missing names are NaN)."""
    return np.array([float(angles.get(n, np.nan)) for n in ANGLE_NAMES], dtype=np.float64)


def _yaw_pitch(yaw: float, pitch: float) -> FloatArray:
    return quat_mul(quat_from_axis_angle(_Y, yaw), quat_from_axis_angle(_X, pitch))
