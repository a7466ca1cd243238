"""Quaternion helpers in numpy (float64) for host-side code: teleop, bags, messages.

Quaternions are (x, y, z, w), Hamilton convention, active rotations: ``quat_rotate(q, v)``
returns R(q) @ v and ``quat_mul(a, b)`` is the rotation "first b, then a" (R(a) @ R(b)).
All functions broadcast over leading dimensions. The torch (device-side, batched)
counterparts used inside the pipeline are in ``mocap_ros.rotations``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

IDENTITY: FloatArray = np.array([0.0, 0.0, 0.0, 1.0])
_EPS = 1e-12


def wrap_angle(a: ArrayLike) -> FloatArray:
    """Wrap angles to (-pi, pi]."""
    a = np.asarray(a, dtype=np.float64)
    w = np.mod(a + np.pi, 2.0 * np.pi) - np.pi
    # np.mod maps +pi to -pi; keep the half-open interval (-pi, pi].
    return np.where(w <= -np.pi, w + 2.0 * np.pi, w)


def quat_normalize(q: ArrayLike) -> FloatArray:
    """Unit quaternion; a zero or non-finite input gives NaNs (never a silent identity)."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # Scale by the largest component first so huge (finite) inputs cannot overflow.
        m = np.max(np.abs(q), axis=-1, keepdims=True)
        qs = q / m
        n = np.linalg.norm(qs, axis=-1, keepdims=True)
        out = qs / n
    ok = np.isfinite(m) & (m > 0) & (m * n > _EPS)
    return np.where(ok, out, np.nan)


def quat_conj(q: ArrayLike) -> FloatArray:
    """Conjugate (the inverse, for unit quaternions)."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_mul(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Hamilton product a * b (apply b first, then a)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_rotate(q: ArrayLike, v: ArrayLike) -> FloatArray:
    """Rotate vector(s) v by unit quaternion(s) q."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = q[..., :3]
    w = q[..., 3:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q: ArrayLike) -> FloatArray:
    """Unit quaternion(s) -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def matrix_to_quat(R: ArrayLike) -> FloatArray:
    """Rotation matrix (3, 3) -> unit quaternion with w >= 0 (Shepperd's method)."""
    m = np.asarray(R, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"matrix_to_quat expects one 3x3 matrix, got shape {m.shape}")
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    k = int(np.argmax([tr, m[0, 0], m[1, 1], m[2, 2]]))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + tr)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    out = quat_normalize(np.array(q))
    return out if out[3] >= 0 else -out


def quat_from_axis_angle(axis: ArrayLike, angle: ArrayLike) -> FloatArray:
    """Rotation by `angle` (rad, right-handed) about `axis` (normalised here)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def quat_from_rotvec(rv: ArrayLike) -> FloatArray:
    """Rotation vector (axis * angle) -> quaternion."""
    rv = np.asarray(rv, dtype=np.float64)
    theta = np.linalg.norm(rv, axis=-1, keepdims=True)
    half = 0.5 * theta
    # sin(theta/2)/theta, with its Taylor series near 0.
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(theta > 1e-8, np.sin(half) / theta, 0.5 - theta * theta / 48.0)
    return np.concatenate([rv * k, np.cos(half)], axis=-1)


def quat_to_rotvec(q: ArrayLike) -> FloatArray:
    """Quaternion -> rotation vector with angle in [0, pi] (sign of q canonicalised)."""
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., 3:] < 0, -q, q)
    v = q[..., :3]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., 3:])
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(s > 1e-12, angle / s, 2.0)
    return v * k


def swing_twist(q: ArrayLike, axis: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Decompose q = swing * twist with twist about the unit `axis`.

    Returns (swing quaternion, twist angle in (-pi, pi]). The swing's rotation axis is
    perpendicular to `axis`. Unique while the swing angle is below pi; at exactly pi (the
    axis is turned onto its opposite) the twist is undefined and 0 is returned.
    """
    q = np.asarray(q, dtype=np.float64)
    a = np.asarray(axis, dtype=np.float64)
    proj = np.sum(q[..., :3] * a, axis=-1)
    twist_angle = wrap_angle(2.0 * np.arctan2(proj, q[..., 3]))
    degenerate = np.hypot(proj, q[..., 3]) < 1e-12
    twist_angle = np.where(degenerate, 0.0, twist_angle)
    twist = quat_from_axis_angle(np.broadcast_to(a, q[..., :3].shape), twist_angle)
    swing = quat_mul(q, quat_conj(twist))
    return swing, twist_angle


def euler_yxz(q: ArrayLike) -> tuple[float, float, float]:
    """Intrinsic Y-X'-Z'' angles (a, b, c) with R(q) = Ry(a) @ Rx(b) @ Rz(c).

    b is in [-pi/2, pi/2]; the decomposition is singular at |b| = pi/2.
    """
    R = quat_to_matrix(q)
    a = float(np.arctan2(R[0, 2], R[2, 2]))
    b = float(np.arcsin(np.clip(-R[1, 2], -1.0, 1.0)))
    c = float(np.arctan2(R[1, 0], R[1, 1]))
    return a, b, c


def mirror_x(q: ArrayLike) -> FloatArray:
    """Conjugate a rotation by the reflection x -> -x (left/right mirror in SMPL's frame).

    A rotation by theta about (ax, ay, az) becomes a rotation by theta about
    (ax, -ay, -az), i.e. the quaternion (x, -y, -z, w). Mirroring the right arm's local
    rotations this way turns it into an equivalent left arm.
    """
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, 1.0])
