"""Sample frames for demos, tests and the benchmark: a real photograph that ships with
scikit-image (``skimage.data.astronaut``), placed at varying places in 640x480 frames."""

from __future__ import annotations

import numpy as np
import torch


def bench_frames(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[tuple]]:
    """640x480 RGB frames of a real photo at varying places, with the person's box."""
    from skimage import data

    rng = np.random.default_rng(seed)
    person = data.astronaut()  # 512x512 RGB, ships with scikit-image
    frames, boxes = [], []
    for _ in range(n):
        frame = np.zeros((480, 640, 3), np.uint8)
        size = int(rng.integers(300, 420))
        patch = np.asarray(
            torch.nn.functional.interpolate(
                torch.from_numpy(person).permute(2, 0, 1)[None].float(), size=(size, size),
                mode="bilinear", align_corners=False)[0].permute(1, 2, 0).clamp(0, 255).byte())
        x, y = int(rng.integers(0, 640 - size)), int(rng.integers(0, 480 - size))
        frame[y:y + size, x:x + size] = patch
        frames.append(frame)
        boxes.append((x + size * 0.15, y + size * 0.1, size * 0.7, size * 0.9))
    return frames, boxes
