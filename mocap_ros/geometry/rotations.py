"""Quaternion helpers in numpy (float64) for host-side code: teleop, bags, messages.

Quaternions are (x, y, z, w), Hamilton convention, active rotations: ``quat_rotate(q, v)``
returns R(q) @ v and ``quat_mul(a, b)`` is the rotation "first b, then a" (R(a) @ R(b)).
All functions broadcast over leading dimensions. The torch (device-side, batched)
counterparts used inside the pipeline are in ``mocap_ros.geometry.torch_rotations``.
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
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) (x, y, z, w), w >= 0
    (Shepperd's method: the best-conditioned of four formulas per matrix)."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"matrix_to_quat expects (..., 3, 3) matrices, got shape {R.shape}")
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    cands = np.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                      1 - m00 - m11 + m22), axis=-1)
    best = np.argmax(cands, axis=-1)
    s = 2.0 * np.sqrt(np.maximum(np.take_along_axis(cands, best[..., None], -1)[..., 0], 1e-12))
    a = R[..., 2, 1] - R[..., 1, 2]
    b = R[..., 0, 2] - R[..., 2, 0]
    c = R[..., 1, 0] - R[..., 0, 1]
    d = R[..., 0, 1] + R[..., 1, 0]
    e = R[..., 0, 2] + R[..., 2, 0]
    f = R[..., 1, 2] + R[..., 2, 1]
    q4 = s * s / 4.0
    allq = np.stack((
        np.stack((a, b, c, q4), -1), np.stack((q4, d, e, a), -1),
        np.stack((d, q4, f, b), -1), np.stack((e, f, q4, c), -1),
    ), axis=-2) / s[..., None, None]
    q = np.take_along_axis(allq, best[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:] < 0, -q, q)


def skew(v: ArrayLike) -> FloatArray:
    """Cross-product matrices [v]x (..., 3, 3) of vectors (..., 3): skew(a) @ b == a x b."""
    v = np.asarray(v, dtype=np.float64)
    z = np.zeros_like(v[..., 0])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack((z, -w, y, w, z, -x, -y, x, z), axis=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(axis: ArrayLike, angle: ArrayLike) -> FloatArray:
    """Rodrigues: unit axes (..., 3), angles (...) -> rotation matrices (..., 3, 3)."""
    K = skew(axis)
    angle = np.asarray(angle, dtype=np.float64)
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


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
