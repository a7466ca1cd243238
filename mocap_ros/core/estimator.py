"""The Estimator protocol: what mocap_node, offline processing and the benchmark need of a
pose backend (HMR or landmarks), so none of them asks which one it has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mocap_ros.core.result import BodyPoseResult


@runtime_checkable
class Estimator(Protocol):
    """One RGB frame in, one :class:`BodyPoseResult` out.

    ``name``: the backend (``"hmr"`` or ``"landmarks"``); ``device``: where it runs (a
    ``torch.device`` or ``"cpu"``); ``precision``: ``fp32``/``fp16``/``bf16``; ``config``:
    the MocapConfig it was built from. ``process`` raises ValueError for a frame that is not
    an HxWx3 uint8 image; everything else (nobody in view, a bad box, NaN outputs) is a
    result with ``valid=False`` and a ``reason``.
    """

    name: str
    device: Any
    precision: str
    config: Any

    def process(self, rgb: np.ndarray, bbox: Any = None, K: Any = None) -> BodyPoseResult: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchEstimator(Estimator, Protocol):
    """An estimator that can put several frames through one forward pass (HMR)."""

    def process_batch(self, frames: Sequence[np.ndarray], bboxes: Any = None,
                      Ks: Any = None) -> list[BodyPoseResult]: ...
