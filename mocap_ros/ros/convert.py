"""BodyPoseResult -> ROS messages: BodyPose, TF transforms and an RViz skeleton."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.core.skeleton import HAND_PARENTS, PARENTS
from mocap_ros.io.messages import (
    body_pose_content,
    hand_transform_content,
    transform_content,
)
from mocap_ros.msg import BodyPose, HandPose, People2D


def _quat(q: np.ndarray) -> Quaternion:
    return Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def _point(p: np.ndarray) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def to_body_pose(result: BodyPoseResult, header: Header) -> BodyPose:
    """Every field of the result; the header (stamp, frame_id) is the source image's."""
    c = body_pose_content(result)
    msg = BodyPose(header=header, valid=c["valid"], reason=c["reason"],
                   confidence=c["confidence"], joint_names=c["joint_names"],
                   preprocess_ms=c["preprocess_ms"], inference_ms=c["inference_ms"],
                   postprocess_ms=c["postprocess_ms"], total_ms=c["total_ms"],
                   n_iter=c["n_iter"], precision=c["precision"], device=c["device"],
                   backend=c["backend"])
    msg.local_rotations = [Quaternion(x=x, y=y, z=z, w=w) for x, y, z, w in c["local_rotations"]]
    msg.global_rotations = [Quaternion(x=x, y=y, z=z, w=w)
                            for x, y, z, w in c["global_rotations"]]
    (px, py, pz), (qx, qy, qz, qw) = c["root_position"], c["root_orientation"]
    msg.root_pose = Pose(position=Point(x=px, y=py, z=pz),
                         orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
    msg.joints = [Point(x=x, y=y, z=z) for x, y, z in c["joints"]]
    msg.keypoints_2d = c["keypoints_2d"].tolist()
    msg.betas = c["betas"].tolist()
    msg.camera = c["camera"].tolist()
    msg.bbox = c["bbox"].tolist()
    msg.joint_confidence = c["joint_confidence"].tolist()
    msg.person_check = c["person_check"]
    msg.person_score = c["person_score"]
    msg.track_id = c["track_id"]
    msg.operator_match = c["operator_match"]
    msg.operator_state = c["operator_state"]
    msg.left_hand = _hand_pose(c["left_hand"])
    msg.right_hand = _hand_pose(c["right_hand"])
    return msg


def _hand_pose(c: dict) -> HandPose:
    x, y, z, w = c["orientation"]
    return HandPose(valid=c["valid"], reason=c["reason"], confidence=c["confidence"],
                    keypoints=[Point(x=px, y=py, z=pz) for px, py, pz in c["keypoints"]],
                    keypoints_2d=c["keypoints_2d"].tolist(),
                    orientation=Quaternion(x=x, y=y, z=z, w=w),
                    finger_curl=c["finger_curl"].tolist(), aperture=c["aperture"])


def to_transforms(result: BodyPoseResult, header: Header, prefix: str) -> list[TransformStamped]:
    """camera frame -> <prefix>pelvis -> every joint under its parent (see transform_content)."""
    return _stamped(transform_content(result, header.frame_id, prefix), header)


def to_hand_transforms(result: BodyPoseResult, header: Header, prefix: str
                       ) -> list[TransformStamped]:
    """camera frame -> <prefix><side>_hand_<keypoint> for each valid hand
    (see hand_transform_content); empty when the hands are off or invalid."""
    return _stamped(hand_transform_content(result, header.frame_id, prefix), header)


def _stamped(content: list[dict], header: Header) -> list[TransformStamped]:
    out = []
    for t in content:
        tf = TransformStamped()
        tf.header.stamp = header.stamp
        tf.header.frame_id = t["parent"]
        tf.child_frame_id = t["child"]
        v = tf.transform.translation
        v.x, v.y, v.z = t["translation"]
        x, y, z, w = t["rotation"]
        tf.transform.rotation = Quaternion(x=x, y=y, z=z, w=w)
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
    arr.markers = [bones, joints]
    # Hands: one LINE_LIST per side (ids 2, 3), always sent so a hand that turns invalid is
    # cleared (DELETE) rather than left frozen in RViz until its lifetime ends.
    for k, (hand, rgb) in enumerate(((result.left_hand, (0.2, 0.6, 1.0)),
                                     (result.right_hand, (1.0, 0.4, 0.8)))):
        m = Marker(header=header, ns="mocap_hands", id=2 + k, type=Marker.LINE_LIST,
                   action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.scale.x = 0.006
        m.color.r, m.color.g, m.color.b, m.color.a = (*rgb, 1.0)
        if hand is not None and hand.valid:
            kp = np.asarray(hand.keypoints_cam)
            for j, p in enumerate(HAND_PARENTS):
                if p >= 0:
                    m.points += [_point(kp[p]), _point(kp[j])]
        else:
            m.action = Marker.DELETE
        arr.markers.append(m)
    for m in arr.markers:
        m.lifetime.sec = int(lifetime_s)
        m.lifetime.nanosec = int((lifetime_s % 1) * 1e9)
    return arr


def to_people2d(found: list, followed: int | None, track_id: int, header: Header, width: int,
                height: int) -> People2D:
    """Everyone the operator detector found in a frame (estimation.people.PersonFound: box
    and BlazePose landmarks, original image pixels) as one People2D message."""
    msg = People2D(header=header, width=int(width), height=int(height),
                   followed=-1 if followed is None else int(followed),
                   followed_track_id=int(track_id))
    boxes = [np.asarray(p.box, np.float32).reshape(4) for p in found]
    lms = [np.column_stack([p.landmarks.image_xy, p.landmarks.visibility]).astype(np.float32)
           .reshape(-1) for p in found]
    msg.boxes = np.concatenate(boxes).tolist() if boxes else []
    msg.landmarks = np.concatenate(lms).tolist() if lms else []
    return msg
