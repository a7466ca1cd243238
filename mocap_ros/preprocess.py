"""Person box -> 224x224 normalised network input.

Two implementations of FrankMocap's crop (square of side 1.2*max(w, h) around the box
centre, zero padding past the image, resized to 224, ImageNet normalisation):

- ``crop_batch``: torch, one affine ``grid_sample`` for crop + pad + resize, on whatever
  device the frame is on. This is what the pipeline uses.
- ``frankmocap_crop``: numpy/OpenCV, the seed's way (integer crop into a zero canvas, then
  cv2.resize), kept as the benchmark baseline and as the reference the torch path is
  tested against.

Box coordinates are continuous pixel-edge coordinates: pixel (i, j) covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

IMG_RES = 224
BOX_SCALE = 1.2  # FrankMocap: scale = max(w, h) / 200 * 1.2, i.e. side = 1.2 * max(w, h)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CropBox:
    """A square crop in image pixels: centre (cx, cy) and side length."""

    cx: float
    cy: float
    side: float

    @property
    def top_left(self) -> tuple[float, float]:
        return self.cx - self.side / 2.0, self.cy - self.side / 2.0

    @property
    def scale_o2n(self) -> float:
        """FrankMocap's boxScale_o2n: network pixels per image pixel."""
        return IMG_RES / self.side


def crop_box_from_bbox(bbox: tuple[float, float, float, float] | np.ndarray,
                       scale: float = BOX_SCALE) -> CropBox:
    """Person bbox (x, y, w, h) -> FrankMocap's square crop around its centre."""
    x, y, w, h = (float(v) for v in bbox)
    return CropBox(x + w / 2.0, y + h / 2.0, scale * max(w, h))


def full_frame_box(width: int, height: int) -> CropBox:
    """The whole frame, padded to a square (no margin): nothing the camera sees is cut off."""
    return CropBox(width / 2.0, height / 2.0, float(max(width, height)))


def validate_frame(rgb: object) -> np.ndarray:
    """Reject what is not an HxWx3 uint8 image with a ValueError that names the problem."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"image dtype must be uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image shape must be (H, W, 3), got {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"image is empty: shape {rgb.shape}")
    return rgb


def _affine_thetas(boxes: list[CropBox], width: int, height: int,
                   device: torch.device) -> torch.Tensor:
    # grid_sample (align_corners=False) reads normalised x_n = 2u/W - 1 for edge coordinate
    # u; an output pixel at normalised xo samples u = cx + xo * side / 2.
    t = torch.tensor(
        [[[b.side / width, 0.0, 2.0 * b.cx / width - 1.0],
          [0.0, b.side / height, 2.0 * b.cy / height - 1.0]] for b in boxes],
        dtype=torch.float32,
    )
    return t.to(device, non_blocking=True)


class Normalizer:
    """uint8-valued RGB -> ImageNet-normalised, as one fused multiply-add per channel."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(device, dtype)
        self.bias = (-mean / std).view(1, 3, 1, 1).to(device, dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, x, self.scale)


def frame_to_tensor(rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) tensor of ``dtype`` on ``device`` (one upload, as uint8)."""
    arr = np.ascontiguousarray(rgb)
    if not arr.flags.writeable:  # e.g. a view of an immutable bytes message buffer
        arr = arr.copy()
    t = torch.from_numpy(arr).to(device, non_blocking=True)
    return t.permute(2, 0, 1).unsqueeze(0).to(dtype)


def crop_batch(frame: torch.Tensor, boxes: list[CropBox], normalizer: Normalizer,
               out_res: int = IMG_RES) -> torch.Tensor:
    """Crop, zero-pad, resize and normalise ``boxes`` from one (1, 3, H, W) frame.

    Bilinear sampling at the same source positions as cv2.resize's INTER_LINEAR, so the
    result matches FrankMocap's crop up to OpenCV's fixed-point rounding.
    """
    _, _, h, w = frame.shape
    theta = _affine_thetas(boxes, w, h, frame.device).to(frame.dtype)
    grid = F.affine_grid(theta, [len(boxes), 3, out_res, out_res], align_corners=False)
    src = frame.expand(len(boxes), -1, -1, -1)
    crops = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return normalizer(crops)


def resize_short_side(frame: torch.Tensor, short: int) -> tuple[torch.Tensor, float]:
    """Downscale (antialiased) so the short side is ``short``; returns (frame, factor)."""
    _, _, h, w = frame.shape
    if short <= 0 or min(h, w) <= short:
        return frame, 1.0
    factor = short / min(h, w)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    out = F.interpolate(frame.float(), size=size, mode="bilinear", antialias=True,
                        align_corners=False).to(frame.dtype)
    return out, factor


def frankmocap_crop(rgb: np.ndarray, box: CropBox, out_res: int = IMG_RES) -> np.ndarray:
    """The seed's crop on the CPU: integer window into a zero canvas, then cv2.resize.

    Returns the 224x224x3 uint8 crop. The window is rounded to whole pixels, as the seed's
    transform() rounds, so it can differ from ``crop_batch`` by up to half a source pixel.
    """
    h, w = rgb.shape[:2]
    side = max(1, round(box.side))
    x0 = round(box.cx - side / 2.0)
    y0 = round(box.cy - side / 2.0)
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (out_res, out_res), interpolation=cv2.INTER_LINEAR)


def normalize_numpy(crop: np.ndarray) -> np.ndarray:
    """The seed's normalisation: float32 in [0, 1], ImageNet mean/std, CHW."""
    x = crop.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
