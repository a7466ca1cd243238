"""JSON lines for processed poses: one object per frame, the BodyPose fields.

Each line holds ``index``, ``stamp`` (seconds, the video's timestamp), ``stamp_sec`` /
``stamp_nanosec``, ``frame_id``, ``source`` (file name for image folders), then every field of
``mocap_ros/msg/BodyPose`` under its message name (``valid``, ``reason``, ``confidence``,
``joint_names``, ``local_rotations`` as ``[x, y, z, w]``, ``joints``, ``keypoints_2d`` as
flat ``[x0, y0, x1, y1, ...]``, ``bbox``, the timings, ``left_hand``/``right_hand``, ...), with
``root_pose`` as ``{"position": [x, y, z], "orientation": [x, y, z, w]}``. Non-finite floats
are written as null (JSON has no NaN).
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.io.messages import body_pose_content


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def pose_record(result: BodyPoseResult, index: int, stamp: float, frame_id: str,
                source: str = "") -> dict[str, Any]:
    """The JSON object of one frame (see the module docstring)."""
    c = body_pose_content(result)
    root = {"position": c.pop("root_position"), "orientation": c.pop("root_orientation")}
    sec = math.floor(stamp)
    nsec = min(round((stamp - sec) * 1e9), 999_999_999)
    record = {"index": index, "stamp": stamp, "stamp_sec": sec, "stamp_nanosec": nsec,
              "frame_id": frame_id, "source": source, **c, "root_pose": root}
    return _plain(record)


class JsonlWriter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.rows = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self.rows += 1
