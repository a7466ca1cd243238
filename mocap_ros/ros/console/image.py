"""The page's camera picture: scaled down, the 2D skeleton (and hands) drawn, JPEG."""

from __future__ import annotations

import cv2
import numpy as np

from mocap_ros.core.skeleton import HAND_PARENTS, PARENTS

BODY_COLOR = (40, 220, 60)
HAND_COLORS = ((60, 150, 255), (255, 100, 200))  # left, right (RGB)


def _points(flat: np.ndarray | list[float], n: int, scale: float, limit: int
            ) -> np.ndarray | None:
    a = np.asarray(flat, dtype=np.float64)
    if a.size != 2 * n or not np.all(np.isfinite(a)):
        return None
    return np.round(np.clip(a.reshape(n, 2) * scale, -limit, limit)).astype(int)


def camera_jpeg(rgb: np.ndarray, width: int, keypoints_2d: np.ndarray | list[float] | None = None,
                hands: tuple[np.ndarray | list[float] | None, ...] = (),
                quality: int = 70) -> bytes:
    """``rgb`` (H, W, 3) uint8 scaled to ``width`` (never up), with the body's 2D keypoints
    (x, y pairs in source pixels, SMPL order) and each hand's 21 keypoints drawn."""
    h, w = rgb.shape[:2]
    scale = min(1.0, width / float(w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else \
        np.ascontiguousarray(rgb).copy()
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    limit = 4 * max(size)  # cv2 wants int32 coordinates: keep lines drawable
    kp = _points(keypoints_2d, len(PARENTS), scale, limit) if keypoints_2d is not None \
        and len(keypoints_2d) else None
    if kp is not None:
        for j, p in enumerate(PARENTS):
            if p >= 0:
                cv2.line(bgr, tuple(kp[p]), tuple(kp[j]), BODY_COLOR[::-1], 2, cv2.LINE_AA)
    for hand, color in zip(hands, HAND_COLORS, strict=False):
        hk = _points(hand, len(HAND_PARENTS), scale, limit) if hand is not None else None
        if hk is None:
            continue
        for j, p in enumerate(HAND_PARENTS):
            if p >= 0:
                cv2.line(bgr, tuple(hk[p]), tuple(hk[j]), color[::-1], 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
