"""BodyPoseResult -> ROS messages: BodyPose, TF transforms and an RViz skeleton."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from mocap_ros.msg import BodyPose
from mocap_ros.result import BodyPoseResult
from mocap_ros.skeleton import JOINT_NAMES, PARENTS


def _quat(q: np.ndarray) -> Quaternion:
    return Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def _point(p: np.ndarray) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def to_body_pose(result: BodyPoseResult, header: Header) -> BodyPose:
    """Every field of the result; the header (stamp, frame_id) is the source image's."""
    msg = BodyPose()
    msg.header = header
    msg.valid = bool(result.valid)
    msg.reason = result.reason
    msg.confidence = float(result.confidence)
    msg.joint_names = list(result.joint_names)
    msg.local_rotations = [_quat(q) for q in result.local_rotations]
    msg.global_rotations = [_quat(q) for q in result.global_rotations]
    msg.root_pose = Pose(position=_point(result.joints_cam[0]),
                         orientation=_quat(result.global_rotations[0]))
    msg.joints = [_point(p) for p in result.joints_cam]
    msg.keypoints_2d = result.keypoints_2d.astype(np.float32).reshape(-1).tolist()
    msg.betas = result.betas.astype(np.float32).tolist()
    msg.camera = result.camera.astype(np.float32).tolist()
    msg.bbox = result.bbox.astype(np.float32).tolist()
    t = result.timings_ms
    msg.preprocess_ms = float(t.get("preprocess", 0.0))
    msg.inference_ms = float(t.get("inference", 0.0))
    msg.postprocess_ms = float(t.get("postprocess", 0.0))
    msg.total_ms = float(t.get("total", 0.0))
    msg.n_iter = int(result.n_iter)
    msg.precision = result.precision
    msg.device = result.device
    msg.backend = result.backend
    return msg


def _rotmat_from_quat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def to_transforms(result: BodyPoseResult, header: Header, prefix: str) -> list[TransformStamped]:
    """camera frame -> <prefix>pelvis -> every joint under its parent (REP-103 metres).

    A child's translation is its offset from the parent expressed in the parent's frame,
    R_parent^T (p_child - p_parent): the shape-dependent bone vector; its rotation is the
    local (parent-relative) rotation.
    """
    out = []
    glob = result.global_rotations
    for j, name in enumerate(JOINT_NAMES):
        tf = TransformStamped()
        tf.header.stamp = header.stamp
        p = PARENTS[j]
        if p < 0:
            tf.header.frame_id = header.frame_id
            offset, rot = result.joints_cam[0], glob[0]
        else:
            tf.header.frame_id = prefix + JOINT_NAMES[p]
            offset = _rotmat_from_quat(glob[p]).T @ (result.joints_cam[j] - result.joints_cam[p])
            rot = result.local_rotations[j]
        tf.child_frame_id = prefix + name
        tf.transform.translation.x = float(offset[0])
        tf.transform.translation.y = float(offset[1])
        tf.transform.translation.z = float(offset[2])
        tf.transform.rotation = _quat(rot)
        out.append(tf)
    return out


def to_markers(result: BodyPoseResult, header: Header, lifetime_s: float = 0.5) -> MarkerArray:
    """Bones as a LINE_LIST and joints as a SPHERE_LIST in the camera frame."""
    arr = MarkerArray()
    bones = Marker(header=header, ns="mocap_skeleton", id=0, type=Marker.LINE_LIST,
                   action=Marker.ADD)
    bones.scale.x = 0.02
    bones.color.r, bones.color.g, bones.color.b, bones.color.a = 0.1, 0.8, 0.2, 1.0
    bones.pose.orientation.w = 1.0
    for j, p in enumerate(PARENTS):
        if p >= 0:
            bones.points += [_point(result.joints_cam[p]), _point(result.joints_cam[j])]
    joints = Marker(header=header, ns="mocap_skeleton", id=1, type=Marker.SPHERE_LIST,
                    action=Marker.ADD)
    joints.scale.x = joints.scale.y = joints.scale.z = 0.04
    joints.color.r, joints.color.g, joints.color.b, joints.color.a = 0.9, 0.3, 0.1, 1.0
    joints.pose.orientation.w = 1.0
    joints.points = [_point(p) for p in result.joints_cam]
    for m in (bones, joints):
        m.lifetime.sec = int(lifetime_s)
        m.lifetime.nanosec = int((lifetime_s % 1) * 1e9)
    arr.markers = [bones, joints]
    return arr
