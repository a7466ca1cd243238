"""Short test videos with a real person in them (skimage's astronaut photo, shifted per frame)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_person_video(path: Path, n: int = 10, fps: float = 15.0, size: int = 256) -> Path:
    from skimage import data

    img = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (size, size))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    assert writer.isOpened(), f"OpenCV cannot write mp4v to {path}"
    for i in range(n):
        writer.write(np.roll(img, 2 * i, axis=1))
    writer.release()
    return path
