"""Person box -> 224x224 normalised network input, on the inference device.

The crop is FrankMocap's to the pixel (:mod:`mocap_ros.geometry.crop`: integer window,
zero canvas, cv2.resize's sample positions), done as one ``grid_sample`` per frame for all
boxes (:func:`crop_batch`, used by the pipeline and, through :func:`window_grid`, by the
fast path). :func:`frankmocap_crop` is the same crop in numpy/OpenCV, as FrankMocap does it:
the benchmark's baseline and the reference the torch crop is tested against.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mocap_ros.geometry.crop import (
    CROP_RES,
    CropBox,
)

IMG_RES = CROP_RES
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def window_grid(windows: torch.Tensor, height: int, width: int, factor: float | torch.Tensor = 1.0,
                out_res: int = IMG_RES) -> torch.Tensor:
    """``grid_sample`` grid (N, out, out, 2) reading FrankMocap's crop of each window
    (N, 4: x0, y0, x1, y1 in original-image pixels, float64) from a frame resized by
    ``factor`` to (height, width). Sample positions are cv2.resize's (INTER_LINEAR, clamped to
    the window, :func:`~mocap_ros.geometry.crop.resize_source_coords`); with
    ``align_corners=True`` and zero padding, taps outside the image read 0 as FrankMocap's
    zero canvas does. Torch ops only, so a CUDA graph can capture it with the windows in a
    device buffer."""
    w64 = windows.to(torch.float64)
    i = torch.arange(out_res, dtype=torch.float64, device=windows.device) + 0.5

    def axis(start: torch.Tensor, stop: torch.Tensor, pixels: int) -> torch.Tensor:
        size = (stop - start)[:, None]
        u = (i[None] * (size / out_res) - 0.5).clamp(min=0.0)
        u = torch.minimum(u, (size - 1.0).clamp(min=0.0))
        src = ((start[:, None] + u) + 0.5) * factor - 0.5  # into the resized frame
        return 2.0 * src / max(pixels - 1, 1) - 1.0

    gx = axis(w64[:, 0], w64[:, 2], width)
    gy = axis(w64[:, 1], w64[:, 3], height)
    n = windows.shape[0]
    grid = torch.stack((gx[:, None, :].expand(n, out_res, out_res),
                        gy[:, :, None].expand(n, out_res, out_res)), dim=-1)
    return grid.to(torch.float32)


def windows_tensor(boxes: list[CropBox], device: torch.device) -> torch.Tensor:
    """(N, 4) float64 FrankMocap windows of ``boxes``, on ``device``."""
    t = torch.tensor([b.window for b in boxes], dtype=torch.float64)
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
               out_res: int = IMG_RES, factor: float = 1.0) -> torch.Tensor:
    """Crop, zero-pad, resize and normalise ``boxes`` (original-image pixels) from one
    (1, 3, H, W) frame that was resized by ``factor``: FrankMocap's window and resize
    (:mod:`mocap_ros.geometry.crop`), up to OpenCV's fixed-point rounding."""
    _, _, h, w = frame.shape
    grid = window_grid(windows_tensor(boxes, frame.device), h, w, factor, out_res)
    src = frame.expand(len(boxes), -1, -1, -1)
    crops = F.grid_sample(src, grid.to(frame.dtype), mode="bilinear", padding_mode="zeros",
                          align_corners=True)
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
    """FrankMocap's crop on the CPU (``crop_bboxInfo``): the integer window into a zero
    canvas, then cv2.resize. Returns the out_res x out_res x 3 uint8 crop; the benchmark's
    baseline and the reference the torch crop is tested against."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box.window
    canvas = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1), 3), dtype=np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (out_res, out_res), interpolation=cv2.INTER_LINEAR)


def normalize_numpy(crop: np.ndarray) -> np.ndarray:
    """The seed's normalisation: float32 in [0, 1], ImageNet mean/std, CHW."""
    x = crop.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
