"""Rendered frames for watching results: the image with the skeleton, joint names and the
person box; a small 3D view of the skeleton (front and side, drawn with OpenCV); per-frame
timing. Written to an MP4 (``.mp4``/``.avi``/``.mkv``: OpenCV's mp4v/MJPG writer) or to a folder
of PNGs (any other path).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.core.skeleton import JOINT_NAMES, PARENTS

VIDEO_SUFFIXES = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG",
                  ".mkv": "MJPG"}
_LEFT, _RIGHT, _MID = (255, 160, 40), (40, 120, 255), (80, 220, 80)  # BGR


def _side_color(j: int) -> tuple[int, int, int]:
    name = JOINT_NAMES[j] if j < len(JOINT_NAMES) else ""
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float,
          color: tuple[int, int, int] = (255, 255, 255), thickness: int = 1) -> None:
    # a dark shadow first: readable on any background
    cv2.putText(img, text, (org[0] + 1, org[1] + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                thickness, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def draw_skeleton_2d(img: np.ndarray, result: BodyPoseResult, names: bool = True) -> None:
    h, w = img.shape[:2]
    unit = max(1, round(min(h, w) / 240))
    x, y, bw, bh = (float(v) for v in np.asarray(result.bbox, np.float64).reshape(4))
    if np.isfinite([x, y, bw, bh]).all() and bw > 0 and bh > 0:
        cv2.rectangle(img, (round(x), round(y)), (round(x + bw), round(y + bh)), (0, 255, 255),
                      unit, cv2.LINE_AA)
    if not result.valid:
        return
    kp = np.asarray(result.keypoints_2d, np.float64).reshape(-1, 2)
    ok = np.isfinite(kp).all(axis=1) & (np.abs(kp) < 1e5).all(axis=1)
    pts = np.round(np.where(ok[:, None], kp, 0)).astype(int)
    for j, p in enumerate(PARENTS):
        if p >= 0 and j < len(pts) and ok[j] and ok[p]:
            cv2.line(img, tuple(pts[p]), tuple(pts[j]), _side_color(j), 2 * unit, cv2.LINE_AA)
    for j in range(len(pts)):
        if not ok[j]:
            continue
        cv2.circle(img, tuple(pts[j]), 2 * unit, _side_color(j), -1, cv2.LINE_AA)
        if names and j < len(JOINT_NAMES):
            _text(img, JOINT_NAMES[j], (pts[j][0] + 3 * unit, pts[j][1] - 2 * unit),
                  0.2 * unit, (235, 235, 235))


def skeleton_views(result: BodyPoseResult, size: int) -> np.ndarray:
    """A (size, 2*size, 3) image: the skeleton from the front (x right, y down) and from the
    side (z forward to the right), pelvis-centred, 1 m = 0.4 * size pixels."""
    panel = np.full((size, 2 * size, 3), 32, np.uint8)
    cv2.line(panel, (size, 0), (size, size), (90, 90, 90), 1)
    _text(panel, "front", (4, 14), 0.4)
    _text(panel, "side", (size + 4, 14), 0.4)
    if not result.valid:
        _text(panel, "no pose", (size // 2, size // 2), 0.5, (0, 0, 255))
        return panel
    joints = np.asarray(result.joints_cam, np.float64).reshape(-1, 3)
    if not np.isfinite(joints).all():
        return panel
    rel = joints - joints[0]
    scale = 0.4 * size
    for axis, x0 in ((0, size // 2), (2, size + size // 2)):
        u = np.round(x0 + rel[:, axis] * scale).astype(int)
        v = np.round(size * 0.55 + rel[:, 1] * scale).astype(int)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                cv2.line(panel, (u[p], v[p]), (u[j], v[j]), _side_color(j), 2, cv2.LINE_AA)
        for j in range(len(u)):
            cv2.circle(panel, (u[j], v[j]), 2, _side_color(j), -1, cv2.LINE_AA)
    return panel


def render_frame(bgr: np.ndarray, result: BodyPoseResult, index: int, stamp: float,
                 wall_ms: float | None = None) -> np.ndarray:
    """The frame (BGR) with the 2D skeleton, joint names, person box, the 3D views in the
    bottom-right corner and a line of text: frame, time, validity, confidence, timings."""
    img = np.ascontiguousarray(bgr).copy()
    h, w = img.shape[:2]
    draw_skeleton_2d(img, result)
    size = max(48, min(h // 3, w // 6))
    if h >= size and w >= 2 * size:
        img[h - size:, w - 2 * size:] = skeleton_views(result, size)
    t = result.timings_ms
    status = f"conf {result.confidence:.2f}" if result.valid else f"invalid: {result.reason}"
    line1 = f"frame {index}  t={stamp:.3f}s  {result.backend}  {status}"
    line2 = (f"pre {t.get('preprocess', 0):.1f}  inf {t.get('inference', 0):.1f}  post "
             f"{t.get('postprocess', 0):.1f}  total {t.get('total', 0):.1f} ms"
             + (f"  (frame {wall_ms:.1f} ms)" if wall_ms is not None else ""))
    # as large as fits the width (both lines), at most 0.4 per 600 px of height
    scale = max(0.5, h / 600) * 0.6
    for line in (line1, line2):
        (tw, _), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if tw > w - 12:
            scale *= (w - 12) / tw
    (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    step = round(th * 1.8) + 2
    band = img[:2 * step + step // 2]
    band[:] = band // 3  # a dark band: the text stays readable on any picture
    _text(img, line1, (6, step), scale, (255, 255, 255) if result.valid else (80, 80, 255))
    _text(img, line2, (6, 2 * step), scale)
    return img


class RenderWriter:
    """Frames to a video file or a folder of numbered PNGs. Every frame of a video gets the
    first frame's size (letterboxed), as video files need one size."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 30.0
        self.video = self.path.suffix.lower() in VIDEO_SUFFIXES
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        if self.video:
            if self.path.exists():
                raise FileExistsError(f"render output {self.path} exists already")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            if self.path.exists() and any(self.path.iterdir()):
                raise FileExistsError(f"render folder {self.path} exists and is not empty")
            self.path.mkdir(parents=True, exist_ok=True)

    def write(self, img: np.ndarray) -> None:
        if not self.video:
            cv2.imwrite(str(self.path / f"frame_{self.frames:06d}.png"), img)
            self.frames += 1
            return
        if self._writer is None:
            h, w = img.shape[:2]
            w, h = w - w % 2, h - h % 2  # codecs want even sizes
            self._size = (w, h)
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write {self.path}")
        assert self._size is not None
        self._writer.write(_fit(img, self._size))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    ih, iw = img.shape[:2]
    if (iw, ih) == (w, h):
        return img
    if (iw - iw % 2, ih - ih % 2) == (w, h):
        return np.ascontiguousarray(img[:h, :w])
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    out = np.zeros((h, w, 3), np.uint8)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return out
