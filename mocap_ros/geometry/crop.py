"""The person-box crop window, FrankMocap's convention to the pixel.

FrankMocap (``bodymocap/utils/imutils.py``: ``bbox_from_bbr``, ``get_transform``,
``transform``, ``crop_bboxInfo``) turns a person box (x, y, w, h) into

1. a centre ``c = (x, y) + (w, h) / 2`` and a scale ``s = max(w, h) / 200 * 1.2``, so the
   window is ``h_win = 200 * s`` pixels high (computed in that order: the float rounding of
   ``/ 200 * 1.2 * 200`` is part of the convention);
2. a 3x3 image->crop matrix ``[[224/h_win, 0, 224 (0.5 - c_x/h_win)], [0, 224/h_win, ...]]``,
   inverted in floating point; the crop's corners (0, 0) and (224, 224) map back to the
   image and are truncated toward zero (``astype(int)``): the window is
   ``[trunc(c - h_win/2), trunc(c + h_win/2))`` on each axis. Float noise can make it one
   pixel wider than high (box [230, 100, 250, 250] starts at 204.99999999999997 -> 204: a
   301x300 window);
3. a zero canvas of the window's size, the image's overlap copied in, then ``cv2.resize``
   to 224x224 (INTER_LINEAR: source position ``(i + 0.5) * size / 224 - 0.5``, clamped to
   the canvas, so the window's own edge pixels repeat past its border);
4. back to the image: ``x_img = x_crop / boxScale_o2n + top_left`` with
   ``boxScale_o2n = 224 / window height`` (both axes, even for a 301x300 window) and
   ``top_left`` the window's integer corner.

:class:`CropBox` keeps the continuous box (centre and side, what person boxes and the
bbox field report); :attr:`CropBox.window` is FrankMocap's integer window derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

CROP_RES = 224  # HMR's input size
BOX_SCALE = 1.2  # FrankMocap: scale = max(w, h) / 200 * 1.2


def frankmocap_window(cx: float, cy: float, side: float, res: int = CROP_RES
                      ) -> tuple[int, int, int, int]:
    """FrankMocap's integer crop window (x0, y0, x1, y1), end-exclusive, for a square of
    ``side`` pixels centred on (cx, cy): the inverted 3x3 transform, then truncation."""
    h = float(side)
    if not (np.isfinite(h) and h > 0 and np.isfinite(cx) and np.isfinite(cy)):
        raise ValueError(f"crop window needs a finite centre and side > 0, got "
                         f"({cx}, {cy}, {side})")
    t = np.array([[res / h, 0.0, res * (-float(cx) / h + 0.5)],
                  [0.0, res / h, res * (-float(cy) / h + 0.5)],
                  [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(t)
    ul = (inv @ np.array([0.0, 0.0, 1.0]))[:2].astype(int)
    br = (inv @ np.array([float(res), float(res), 1.0]))[:2].astype(int)
    return int(ul[0]), int(ul[1]), int(br[0]), int(br[1])


def resize_source_coords(start: float, size: int, out: int) -> np.ndarray:
    """Pixel-centre source coordinates (float64, in the image) that cv2.resize's INTER_LINEAR
    reads for ``out`` output pixels from a ``size``-pixel window starting at ``start``:
    ``(i + 0.5) * size / out - 0.5`` clamped to the window (edge pixels repeat)."""
    i = np.arange(out, dtype=np.float64)
    u = (i + 0.5) * (size / out) - 0.5
    return start + np.clip(u, 0.0, max(size - 1, 0))


@dataclass(frozen=True)
class CropBox:
    """A square person crop in image pixels: continuous centre (cx, cy) and side length."""

    cx: float
    cy: float
    side: float

    @property
    def top_left(self) -> tuple[float, float]:
        """The continuous square's corner (what the BodyPose bbox reports)."""
        return self.cx - self.side / 2.0, self.cy - self.side / 2.0

    @cached_property
    def window(self) -> tuple[int, int, int, int]:
        """FrankMocap's integer window (x0, y0, x1, y1), end-exclusive."""
        return frankmocap_window(self.cx, self.cy, self.side)

    @property
    def window_height(self) -> int:
        """Pixels the crop's 224 rows cover; FrankMocap scales both axes by it."""
        _, y0, _, y1 = self.window
        return max(y1 - y0, 1)

    @property
    def scale_o2n(self) -> float:
        """FrankMocap's boxScale_o2n: network pixels per image pixel."""
        return CROP_RES / self.window_height


def crop_box_from_bbox(bbox: tuple[float, float, float, float] | np.ndarray,
                       scale: float = BOX_SCALE) -> CropBox:
    """Person bbox (x, y, w, h) -> FrankMocap's square crop around its centre (same float
    operations as ``bbox_from_bbr`` and ``get_transform``, so the window matches)."""
    x, y, w, h = (float(v) for v in bbox)
    s = max(w, h) / 200.0 * scale
    return CropBox(x + 0.5 * w, y + 0.5 * h, 200.0 * s)


def full_frame_box(width: int, height: int) -> CropBox:
    """The whole frame, padded to a square (no margin): nothing the camera sees is cut off."""
    return CropBox(width / 2.0, height / 2.0, float(max(width, height)))
