"""BodyPose and TF content as plain data, without ROS.

The rclpy conversion (``mocap_ros.ros.convert``) and the bag writer
(``mocap_ros.io.bags.types.BagMessages``) both fill their messages from
:func:`body_pose_content` and :func:`transform_content`, so the node and the bags agree.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from mocap_ros.core.result import BodyPoseResult, HandResult
from mocap_ros.core.skeleton import HAND_KEYPOINT_NAMES, JOINT_NAMES, PARENTS
from mocap_ros.geometry.rotations import quat_to_matrix

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# =========================================================================== shared content
def body_pose_content(result: BodyPoseResult) -> dict[str, Any]:
    """The values of every ``mocap_ros/msg/BodyPose`` field but ``header``, ROS-free.

    Vectors are tuples of Python floats (quaternions ``(x, y, z, w)``, points ``(x, y, z)``)
    for the ``geometry_msgs`` fields; the ``float32[]`` fields are float32 numpy arrays
    (rclpy wants ``.tolist()`` of them, rosbags the arrays). ``root_position`` and
    ``root_orientation`` fill ``root_pose``.
    """
    t = result.timings_ms

    def quats(a: np.ndarray) -> list[tuple[float, ...]]:
        return [tuple(float(v) for v in q) for q in a]

    return {
        "valid": bool(result.valid),
        "reason": str(result.reason),
        "confidence": float(result.confidence),
        "joint_names": list(result.joint_names),
        "local_rotations": quats(result.local_rotations),
        "global_rotations": quats(result.global_rotations),
        "root_position": tuple(float(v) for v in result.joints_cam[0]),
        "root_orientation": tuple(float(v) for v in result.global_rotations[0]),
        "joints": [tuple(float(v) for v in p) for p in result.joints_cam],
        "keypoints_2d": np.asarray(result.keypoints_2d, np.float32).reshape(-1),
        "betas": np.asarray(result.betas, np.float32).reshape(-1),
        "camera": np.asarray(result.camera, np.float32).reshape(3),
        "bbox": np.asarray(result.bbox, np.float32).reshape(4),
        "preprocess_ms": float(t.get("preprocess", 0.0)),
        "inference_ms": float(t.get("inference", 0.0)),
        "postprocess_ms": float(t.get("postprocess", 0.0)),
        "total_ms": float(t.get("total", 0.0)),
        "n_iter": int(result.n_iter),
        "precision": str(result.precision),
        "device": str(result.device),
        "backend": str(result.backend),
        "joint_confidence": (np.zeros(0, np.float32) if result.joint_confidence is None
                             else np.asarray(result.joint_confidence, np.float32).reshape(-1)),
        "person_check": int(result.person_check),
        "person_score": float(result.person_score),
        "track_id": int(result.track_id),
        "operator_match": float(result.operator_match),
        "operator_state": str(result.operator_state),
        "left_hand": hand_pose_content(result.left_hand),
        "right_hand": hand_pose_content(result.right_hand),
    }


def hand_pose_content(hand: HandResult | None) -> dict[str, Any]:
    """The values of a ``mocap_ros/msg/HandPose``; ``None`` (hands off) is an invalid hand
    with reason ``disabled``. Keypoints are always 21 (zeros when invalid)."""
    if hand is None:
        hand = HandResult.invalid("", "disabled")
    return {
        "valid": bool(hand.valid),
        "reason": str(hand.reason),
        "confidence": float(hand.confidence),
        "keypoints": [tuple(float(v) for v in p) for p in np.asarray(hand.keypoints_cam)],
        "keypoints_2d": np.asarray(hand.keypoints_2d, np.float32).reshape(-1),
        "orientation": tuple(float(v) for v in np.asarray(hand.orientation).reshape(4)),
        "finger_curl": np.asarray(hand.finger_curls, np.float32).reshape(5),
        "aperture": float(hand.aperture),
    }


def transform_content(result: BodyPoseResult, camera_frame: str,
                      prefix: str = "mocap_") -> list[dict[str, Any]]:
    """The TF tree of a pose: camera frame -> ``<prefix>pelvis`` -> every joint under its parent.

    One dict per joint (SMPL order): ``parent`` and ``child`` frame ids, ``translation``
    ``(x, y, z)`` metres and ``rotation`` ``(x, y, z, w)``. A child's translation is its offset
    from the parent in the parent's frame, ``R_parent^T (p_child - p_parent)`` (the bone
    vector); its rotation is the local (parent-relative) rotation. The pelvis is placed at
    its camera-frame position with its global rotation.
    """
    out = []
    glob = result.global_rotations
    for j, name in enumerate(JOINT_NAMES):
        p = PARENTS[j]
        if p < 0:
            parent = camera_frame
            offset, rot = result.joints_cam[0], glob[0]
        else:
            parent = prefix + JOINT_NAMES[p]
            offset = quat_to_matrix(glob[p]).T @ (result.joints_cam[j] - result.joints_cam[p])
            rot = result.local_rotations[j]
        out.append({
            "parent": parent,
            "child": prefix + name,
            "translation": tuple(float(v) for v in offset[:3]),
            "rotation": tuple(float(v) for v in rot[:4]),
        })
    return out


def hand_transform_content(result: BodyPoseResult, camera_frame: str,
                           prefix: str = "mocap_") -> list[dict[str, Any]]:
    """TF frames for the keypoints of each VALID hand: ``<prefix><side>_hand_<keypoint>``
    (e.g. ``mocap_right_hand_index_tip``; keypoint names as
    ``core.skeleton.HAND_KEYPOINT_NAMES``), parent the camera frame, at the
    keypoint's camera-frame position, oriented as the palm (the hand's orientation), so a
    tool frame can be taken at any fingertip. Same dict layout as :func:`transform_content`.
    Hands off or invalid: no frames."""
    out = []
    for side, hand in (("left", result.left_hand), ("right", result.right_hand)):
        if hand is None or not hand.valid:
            continue
        rot = tuple(float(v) for v in np.asarray(hand.orientation).reshape(4))
        for name, p in zip(HAND_KEYPOINT_NAMES, np.asarray(hand.keypoints_cam), strict=True):
            out.append({"parent": camera_frame, "child": f"{prefix}{side}_hand_{name}",
                        "translation": tuple(float(v) for v in p), "rotation": rot})
    return out
