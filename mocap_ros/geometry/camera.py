"""HMR's weak-perspective camera -> image pixels and a metric camera-frame translation.

HMR predicts cam = (s, tx, ty) for the 224x224 crop. We follow FrankMocap's 2D mapping
(``convert_smpl_to_bbox`` + ``convert_bbox_to_oriIm``), so our keypoints equal FrankMocap's:

    x_crop = (s * X + tx) * 112 + 112          (crop pixels; X from the body model, metres)
    x_img  = x_crop / boxScale_o2n + top_left  (boxScale_o2n = 224 / window height)

i.e. x_img = x0 + side / 2 + (s * X + tx) * side / 2 (and the same for y), with FrankMocap's
integer crop window (x0, y0) and its height ``side`` (:mod:`mocap_ros.geometry.crop`).
SPIN's s * (X + t) is the
other common convention; it shifts the body by (s - 1) * t and does not match FrankMocap.

The body model's output is already in camera axes (HMR's root rotation includes the flip
to x right, y down, z forward: REP-103's optical frame), so a metric root translation T
makes X + T the joints in the camera frame. Matching the pinhole projection
f * (X + T) / T_z + c to the mapping above for a body of small depth extent gives

    T_z = 2 f / (s * side),  T_x = (cx_box + tx * side / 2 - c_x) * T_z / f_x,  T_y likewise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mocap_ros.geometry.crop import CropBox


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (from CameraInfo.k, or a fallback)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_k(cls, K: np.ndarray | list[float]) -> Intrinsics:
        k = np.asarray(K, dtype=np.float64).reshape(3, 3)
        if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):
            raise ValueError(f"intrinsics K must be finite with positive fx, fy; got {k.tolist()}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))

    @classmethod
    def fallback(cls, width: int, height: int, focal_length: float = 0.0,
                 hfov_deg: float = 60.0) -> Intrinsics:
        """Centred principal point; focal from the parameter, else from a horizontal FOV."""
        f = focal_length if focal_length > 0 else (width / 2.0) / math.tan(
            math.radians(hfov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0)

    @classmethod
    def given_or_fallback(cls, K: Intrinsics | np.ndarray | list[float] | None, width: int,
                          height: int, focal_length: float = 0.0,
                          hfov_deg: float = 60.0) -> Intrinsics:
        """``K`` (an Intrinsics or a 3x3 matrix) when given, else ``fallback``."""
        if K is None:
            return cls.fallback(width, height, focal_length, hfov_deg)
        return K if isinstance(K, Intrinsics) else cls.from_k(K)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)

    def scaled(self, factor: float) -> Intrinsics:
        return Intrinsics(self.fx * factor, self.fy * factor, self.cx * factor, self.cy * factor)


def weak_perspective_to_image(points: np.ndarray, cam: np.ndarray, box: CropBox) -> np.ndarray:
    """FrankMocap's 2D mapping of body-model points (..., J, 3) to image pixels (..., J, 2)."""
    s, tx, ty = (np.asarray(cam, np.float64)[..., i, None] for i in range(3))
    x0, y0 = box.window[:2]
    half = box.window_height / 2.0
    u = x0 + half + (s * points[..., 0] + tx) * half
    v = y0 + half + (s * points[..., 1] + ty) * half
    return np.stack((u, v), axis=-1)


def root_translation(cam: np.ndarray, box: CropBox, K: Intrinsics) -> np.ndarray:
    """Metric translation (..., 3) that puts the body model's origin in the camera frame."""
    cam = np.asarray(cam, np.float64)
    s, tx, ty = cam[..., 0], cam[..., 1], cam[..., 2]
    x0, y0 = box.window[:2]
    side = float(box.window_height)
    with np.errstate(divide="ignore", invalid="ignore"):
        tz = (K.fx + K.fy) / (s * side)  # = 2 f / (s * side) with f the mean focal
        x = (x0 + side / 2.0 + tx * side / 2.0 - K.cx) * tz / K.fx
        y = (y0 + side / 2.0 + ty * side / 2.0 - K.cy) * tz / K.fy
    return np.stack((x, y, tz), axis=-1)


def project(points_cam: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) to pixels (..., 2)."""
    z = points_cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K.fx * points_cam[..., 0] / z + K.cx
        v = K.fy * points_cam[..., 1] / z + K.cy
    return np.stack((u, v), axis=-1)


# The landmarks backend places its body and the hands with it (moved here from
# estimation/landmarks/ik.py so that estimation/hands need not import the landmarks backend).
def solve_root_translation(joints: np.ndarray, uv: np.ndarray, weights: np.ndarray,
                           K: Intrinsics, refinements: int = 2) -> np.ndarray | None:
    """Translation T (3,) such that the pinhole projection of ``joints + T`` (N, 3, camera
    frame) best fits the pixels ``uv`` (N, 2), weighted (N,). Linear least squares (the
    derivation: :mod:`mocap_ros.estimation.landmarks.ik`'s doc), then ``refinements``
    re-weighted solves that turn the algebraic error into the
    reprojection error. None when it is under-determined or puts a point behind the camera.
    """
    X = np.asarray(joints, np.float64)
    uv = np.asarray(uv, np.float64)
    w = np.clip(np.asarray(weights, np.float64), 0.0, None)
    keep = np.isfinite(X).all(-1) & np.isfinite(uv).all(-1) & (w > 0)
    if keep.sum() < 2:
        return None
    X, uv, w = X[keep], uv[keep], w[keep]
    du, dv = uv[:, 0] - K.cx, uv[:, 1] - K.cy
    n = len(X)
    A = np.zeros((2 * n, 3))
    A[:n, 0] = K.fx
    A[:n, 2] = -du
    A[n:, 1] = K.fy
    A[n:, 2] = -dv
    b = np.concatenate((du * X[:, 2] - K.fx * X[:, 0], dv * X[:, 2] - K.fy * X[:, 1]))
    depth = np.ones(n)
    T = None
    for _ in range(1 + refinements):
        r = np.sqrt(w) / depth
        rr = np.concatenate((r, r))
        sol, _, rank, _ = np.linalg.lstsq(A * rr[:, None], b * rr, rcond=None)
        if rank < 3 or not np.isfinite(sol).all():
            return None
        depth = X[:, 2] + sol[2]
        if (depth <= 1e-3).any():
            return None
        T = sol
    return T
