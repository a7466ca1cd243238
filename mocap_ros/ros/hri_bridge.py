"""hri_bridge: mocap_node's output on the REP-155 (ROS4HRI) body topics.

A separate node rather than a ``rep155`` mode of mocap_node: it needs nothing mocap_node has
that is not already on its topics (BodyPose, and People2D with the operator lock on), so
mocap_node keeps one job and one latency budget, the bridge can run on another machine or
on a recorded bag, and it can be started and stopped without touching the estimator.

In (remap as needed): ``mocap/body_pose`` (mocap_ros/BodyPose: the followed person, 3D),
``mocap/people`` (mocap_ros/People2D: everyone found, 2D; only with the operator lock on),
``camera_info`` (image size when there is no People2D), ``image_raw`` (only with
``publish_cropped``).

Out, per REP-155 (rep-0155.rst) and hri_fullbody 2.1.0 (see docs/rep155.md):

* ``/humans/bodies/tracked`` hri_msgs/IdsList -- the bodies in the current frame;
* ``/humans/bodies/<id>/roi`` hri_msgs/NormalizedRegionOfInterest2D, ``skeleton2d``
  hri_msgs/Skeleton2D, ``cropped`` sensor_msgs/Image (optional) -- every body;
* ``/humans/bodies/<id>/joint_states`` sensor_msgs/JointState (the human kinematic model's
  20 joints, ``<joint>_<id>``), ``position`` geometry_msgs/PointStamped (mid-hips, sensor
  frame, m), ``velocity`` geometry_msgs/TwistStamped (frame ``body_<id>``, m/s), and TF
  ``<sensor frame> -> body_<id>`` and the body's links (``l_elbow_<id>``, ... as
  robot_state_publisher would from human_description's URDF; ``publish_links``) -- the
  followed body (the only one with 3D).

Body ids (mocap_ros.estimation.rep155.BodyIds): ``t<track_id>`` for the person the operator
lock follows, ``b<k>`` per continuous run without a lock, ``p<k>`` for everyone else.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from geometry_msgs.msg import PointStamped, Quaternion, TransformStamped, TwistStamped
from hri_msgs.msg import (
    IdsList,
    NormalizedPointOfInterest2D,
    NormalizedRegionOfInterest2D,
    Skeleton2D,
)
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState

from mocap_ros.core.config import HriBridgeSettings
from mocap_ros.estimation import rep155
from mocap_ros.geometry.rotations import matrix_to_quat
from mocap_ros.io.images import ImageDecodeError, raw_to_rgb, rgb_to_raw
from mocap_ros.msg import BodyPose, People2D
from mocap_ros.ros.mocap_node import _TfPublisher
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import run_node

NS = "/humans/bodies"
N_LANDMARKS = 33


def _stamp_s(header: object) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9  # type: ignore[attr-defined]


def _transform(header: object, parent: str, child: str, t: np.ndarray, r: np.ndarray
               ) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = header.stamp  # type: ignore[attr-defined]
    tf.header.frame_id = parent
    tf.child_frame_id = child
    tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = \
        (float(v) for v in t)
    x, y, z, w = (float(v) for v in matrix_to_quat(r))
    tf.transform.rotation = Quaternion(x=x, y=y, z=z, w=w)
    return tf


class _Body:
    """One body's publishers (created on first sight, destroyed after it is gone)."""

    def __init__(self, node: Node, bid: str, cropped: bool) -> None:
        q = QoSProfile(depth=10)
        p = f"{NS}/{bid}"
        self.roi = node.create_publisher(NormalizedRegionOfInterest2D, f"{p}/roi", q)
        self.skeleton = node.create_publisher(Skeleton2D, f"{p}/skeleton2d", q)
        self.cropped = node.create_publisher(Image, f"{p}/cropped", q) if cropped else None
        self.joints: object | None = None  # 3D publishers: the followed body only
        self.last_seen = time.monotonic()
        self.last_position: tuple[float, np.ndarray] | None = None  # stamp, mid-hips

    def add_3d(self, node: Node, bid: str) -> None:
        if self.joints is None:
            q = QoSProfile(depth=10)
            p = f"{NS}/{bid}"
            self.joints = node.create_publisher(JointState, f"{p}/joint_states", q)
            self.position = node.create_publisher(PointStamped, f"{p}/position", q)
            self.velocity = node.create_publisher(TwistStamped, f"{p}/velocity", q)

    def destroy(self, node: Node) -> None:
        for pub in (self.roi, self.skeleton, self.cropped, self.joints,
                    getattr(self, "position", None), getattr(self, "velocity", None)):
            if pub is not None:
                node.destroy_publisher(pub)


class HriBridge(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("hri_bridge", **kwargs)
        self.settings: HriBridgeSettings = declare_dataclass(self, HriBridgeSettings)
        self.ids = rep155.BodyIds(iou=self.settings.iou, max_missed=self.settings.max_missed)
        self.bodies: dict[str, _Body] = {}
        self._size: tuple[int, int] | None = None  # image width, height (camera_info)
        self._images: deque[Image] = deque(maxlen=5)
        self._followed: tuple[float, str | None] | None = None  # stamp, id of that frame
        self._pending_people: People2D | None = None
        self._last_frame = time.monotonic()
        self._tracked_empty_sent = False
        self.tracked_pub = self.create_publisher(IdsList, f"{NS}/tracked", QoSProfile(depth=10))
        self.tf = _TfPublisher(self)
        self.create_subscription(BodyPose, "mocap/body_pose", self._on_pose, 10)
        self.create_subscription(People2D, "mocap/people", self._on_people, 10)
        sensor = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                            history=qos_profile_sensor_data.history)
        self.create_subscription(CameraInfo, "camera_info", self._on_info, sensor)
        if self.settings.publish_cropped:
            self.create_subscription(Image, "image_raw", self._images.append, sensor)
        self.create_timer(min(0.5, self.settings.stale_s / 2), self._expire)
        self.stats = {"frames": 0, "no_image_size": 0, "bad_3d": 0, "bad_people": 0}

    # ------------------------------------------------------------------ inputs
    def _on_info(self, msg: CameraInfo) -> None:
        if msg.width > 0 and msg.height > 0:
            self._size = (int(msg.width), int(msg.height))

    def _people_stream(self) -> bool:
        """True when mocap_node publishes People2D (operator lock on): then the frame's
        body list waits for it; else BodyPose alone makes the frame."""
        return self.count_publishers("mocap/people") > 0

    def _on_pose(self, msg: BodyPose) -> None:
        self.stats["frames"] += 1
        self._last_frame = time.monotonic()
        bid = self.ids.followed(msg.valid, int(msg.track_id))
        self._followed = (_stamp_s(msg.header), bid)
        pending, self._pending_people = self._pending_people, None
        if pending is not None and abs(_stamp_s(pending.header) - self._followed[0]) < 1e-6:
            self._on_people(pending)  # it overtook this BodyPose (two topics, no order)
        if bid is None:
            if not self._people_stream():
                self._publish_tracked(msg.header, [])
            return
        body = self._body(bid)
        self._publish_3d(bid, body, msg)
        if self._people_stream():
            return  # 2D and the body list come with this frame's People2D
        size = self._size
        if size is None:
            self.stats["no_image_size"] += 1
            self.get_logger().warning("no camera_info yet: the image size is unknown, so roi "
                                      "and skeleton2d (normalised) are not published",
                                      throttle_duration_sec=5.0)
        else:
            kp = np.asarray(msg.keypoints_2d, np.float64).reshape(-1, 2)
            conf = np.asarray(msg.joint_confidence, np.float64) if msg.joint_confidence \
                else None
            self._publish_2d(body, msg.header, np.asarray(msg.bbox, np.float64),
                             rep155.skeleton2d_from_smpl(kp, conf, *size), size, msg.confidence)
        self._publish_tracked(msg.header, [bid])

    def _on_people(self, msg: People2D) -> None:
        n = len(msg.boxes) // 4
        if len(msg.boxes) != 4 * n or len(msg.landmarks) != 3 * N_LANDMARKS * n \
                or msg.width == 0 or msg.height == 0:
            self.stats["bad_people"] += 1
            self.get_logger().warning("dropped a malformed People2D message",
                                      throttle_duration_sec=5.0)
            return
        self._last_frame = time.monotonic()
        size = (int(msg.width), int(msg.height))
        self._size = size
        boxes = np.asarray(msg.boxes, np.float64).reshape(n, 4)
        lms = np.asarray(msg.landmarks, np.float64).reshape(n, N_LANDMARKS, 3)
        if self._followed is None or abs(self._followed[0] - _stamp_s(msg.header)) > 1e-6:
            # this frame's BodyPose has not arrived yet: it says who is followed
            self._pending_people = msg
            return
        followed_id = self._followed[1]
        others = [i for i in range(n) if i != msg.followed or followed_id is None]
        ids = dict(zip(others, self.ids.others([boxes[i] for i in others]), strict=True))
        if followed_id is not None and 0 <= msg.followed < n:
            ids[msg.followed] = followed_id
        for i, bid in sorted(ids.items()):
            skel = rep155.skeleton2d_from_blazepose(lms[i, :, :2], lms[i, :, 2], *size)
            self._publish_2d(self._body(bid), msg.header, boxes[i], skel, size,
                             float(np.mean(lms[i, :, 2])))
        tracked = [ids[i] for i in sorted(ids)]
        if followed_id is not None and followed_id not in tracked:
            tracked.append(followed_id)  # its 3D went out with the BodyPose
        self._publish_tracked(msg.header, tracked)

    # ------------------------------------------------------------------ outputs
    def _body(self, bid: str) -> _Body:
        body = self.bodies.get(bid)
        if body is None:
            body = self.bodies[bid] = _Body(self, bid, self.settings.publish_cropped)
        body.last_seen = time.monotonic()
        return body

    def _publish_tracked(self, header: object, ids: list[str]) -> None:
        self.tracked_pub.publish(IdsList(header=header, ids=ids))
        self._tracked_empty_sent = not ids
        now = time.monotonic()
        for bid in [b for b, body in self.bodies.items()
                    if b not in ids and now - body.last_seen > 2 * self.settings.stale_s]:
            self.bodies.pop(bid).destroy(self)

    def _expire(self) -> None:
        """No frame for stale_s (camera or mocap_node stopped): nobody is tracked any more."""
        if not self._tracked_empty_sent and \
                time.monotonic() - self._last_frame > self.settings.stale_s:
            header = IdsList().header
            header.stamp = self.get_clock().now().to_msg()
            self._publish_tracked(header, [])

    def _publish_2d(self, body: _Body, header: object, box: np.ndarray, skel: np.ndarray,
                    size: tuple[int, int], confidence: float) -> None:
        roi = rep155.normalized_roi(box, *size)
        if roi is not None:
            body.roi.publish(NormalizedRegionOfInterest2D(
                header=header, xmin=roi[0], ymin=roi[1], xmax=roi[2], ymax=roi[3],
                c=float(np.clip(confidence, 0.0, 1.0))))
        out = Skeleton2D(header=header)
        out.skeleton = [NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(c))
                        for x, y, c in skel]
        body.skeleton.publish(out)
        if body.cropped is not None and roi is not None:
            crop = self._crop(header, roi)
            if crop is not None:
                body.cropped.publish(crop)

    def _crop(self, header: object, roi: tuple[float, float, float, float]) -> Image | None:
        stamp = _stamp_s(header)
        img = next((m for m in reversed(self._images)
                    if abs(_stamp_s(m.header) - stamp) < 1e-6), None)
        if img is None:
            return None
        try:
            rgb = raw_to_rgb(img.data, img.width, img.height, img.encoding, img.step,
                             img.is_bigendian)
        except ImageDecodeError as exc:
            self.get_logger().warning(f"cropped: undecodable image ({exc})",
                                      throttle_duration_sec=5.0)
            return None
        h, w = rgb.shape[:2]
        x0, y0 = int(roi[0] * w), int(roi[1] * h)
        x1, y1 = max(x0 + 1, int(np.ceil(roi[2] * w))), max(y0 + 1, int(np.ceil(roi[3] * h)))
        part = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        data, step = rgb_to_raw(part, "rgb8")
        return Image(header=header, height=part.shape[0], width=part.shape[1],
                     encoding="rgb8", is_bigendian=0, step=step, data=data)

    def _publish_3d(self, bid: str, body: _Body, msg: BodyPose) -> None:
        joints = np.array([[p.x, p.y, p.z] for p in msg.joints], np.float64)
        frame = rep155.body_frame(joints) if joints.shape == (24, 3) else None
        q = rep155.human_joint_state(joints) if frame is not None else None
        if frame is None or q is None or not np.isfinite(q).all():
            self.stats["bad_3d"] += 1
            return
        origin, rot = frame
        body.add_3d(self, bid)
        body.joints.publish(JointState(
            header=msg.header, name=[f"{n}_{bid}" for n in rep155.HUMAN_JOINT_NAMES],
            position=q.tolist()))
        body_frame = f"body_{bid}"
        tf = _transform(msg.header, msg.header.frame_id, body_frame, origin, rot)
        tfs = [tf]
        if self.settings.publish_links:
            for parent, child, t, r in rep155.human_link_transforms(q, self.settings.body_height):
                tfs.append(_transform(msg.header, f"{parent}_{bid}", f"{child}_{bid}", t, r))
        self.tf.send(tfs)
        pos = PointStamped(header=msg.header)
        pos.point.x, pos.point.y, pos.point.z = (float(v) for v in origin)
        body.position.publish(pos)
        stamp = _stamp_s(msg.header)
        if body.last_position is not None and stamp > body.last_position[0]:
            v = rot.T @ ((origin - body.last_position[1]) / (stamp - body.last_position[0]))
            tw = TwistStamped()
            tw.header.stamp = msg.header.stamp
            tw.header.frame_id = body_frame
            tw.twist.linear.x, tw.twist.linear.y, tw.twist.linear.z = (float(c) for c in v)
            body.velocity.publish(tw)
        body.last_position = (stamp, origin)


def main(args: list[str] | None = None) -> int:
    return run_node(HriBridge, "hri_bridge", args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
