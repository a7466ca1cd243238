"""CSV rows for processed poses.

CSV (``csv_path``): one row per image, in bag order. Columns: ``index, topic,
bag_time_ns, stamp_sec, stamp_nanosec, stamp, frame_id, valid, reason, confidence,
preprocess_ms, inference_ms, postprocess_ms, total_ms, root_x, root_y, root_z`` (pelvis in
the camera optical frame, metres), then per joint in SMPL order ``<joint>_qx, _qy, _qz,
_qw`` (the local, parent-relative rotation as a unit quaternion; the pelvis's is relative
to the camera optical frame) and ``<joint>_rx, _ry, _rz`` (the same rotation as a rotation
vector: unit axis times angle in radians, angle in [0, pi]).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.core.skeleton import JOINT_NAMES
from mocap_ros.geometry.rotations import quat_to_rotvec

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def csv_header() -> list[str]:
    cols = ["index", "topic", "bag_time_ns", "stamp_sec", "stamp_nanosec", "stamp", "frame_id",
            "valid", "reason", "confidence", "preprocess_ms", "inference_ms", "postprocess_ms",
            "total_ms", "root_x", "root_y", "root_z"]
    for name in JOINT_NAMES:
        cols += [f"{name}_q{a}" for a in "xyzw"]
    for name in JOINT_NAMES:
        cols += [f"{name}_r{a}" for a in "xyz"]
    return cols


def csv_row(index: int, topic: str, bag_time: int, header: Any,
             result: BodyPoseResult) -> list[Any]:
    def g(v: float) -> str:
        return f"{float(v):.9g}"

    t = result.timings_ms
    sec, nsec = int(header.stamp.sec), int(header.stamp.nanosec)
    row: list[Any] = [index, topic, bag_time, sec, nsec, f"{sec}.{nsec:09d}",
                      header.frame_id, int(bool(result.valid)), result.reason,
                      g(result.confidence)]
    row += [g(t.get(k, 0.0)) for k in ("preprocess", "inference", "postprocess", "total")]
    row += [g(v) for v in result.joints_cam[0]]
    row += [g(v) for v in np.asarray(result.local_rotations).reshape(-1)]
    row += [g(v) for v in quat_to_rotvec(result.local_rotations).reshape(-1)]
    return row


