"""The README's main job: a camera stand-in publishes frames over DDS, mocap_node processes
them, and a listener reports rate, latency, drops and a pose summary."""

from __future__ import annotations

import statistics
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from mocap_ros.estimation.factory import resolve_backend
from mocap_ros.io.images import rgb_to_raw
from mocap_ros.msg import BodyPose


class FramePlayer(Node):
    """Publishes a list of RGB frames as sensor_msgs/Image (and CameraInfo) at a fixed rate."""

    def __init__(self, frames: list[np.ndarray], rate_hz: float, frame_id: str = "camera_optical",
                 encoding: str = "bgr8", topic: str = "image_raw") -> None:
        super().__init__("frame_player")
        self.frames, self.encoding, self.frame_id = frames, encoding, frame_id
        self.pub = self.create_publisher(Image, topic, qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
        self.sent: dict[tuple[int, int], float] = {}  # stamp -> monotonic publish time
        self.index = 0
        self.timer = self.create_timer(1.0 / rate_hz, self.tick)

    def tick(self) -> None:
        if self.index >= len(self.frames):
            self.timer.cancel()
            return
        rgb = self.frames[self.index]
        self.index += 1
        data, step = rgb_to_raw(rgb, self.encoding)
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=self.encoding, step=step,
                    data=data)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.frame_id
        info = CameraInfo(header=msg.header, width=rgb.shape[1], height=rgb.shape[0])
        f = 0.9 * rgb.shape[1]
        info.k = [f, 0.0, rgb.shape[1] / 2, 0.0, f, rgb.shape[0] / 2, 0.0, 0.0, 1.0]
        self.info_pub.publish(info)
        self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
        self.pub.publish(msg)

    @property
    def done(self) -> bool:
        return self.index >= len(self.frames)


class PoseListener(Node):
    def __init__(self) -> None:
        super().__init__("pose_listener")
        self.poses: list[tuple[BodyPose, float]] = []
        self.create_subscription(BodyPose, "mocap/body_pose", self.on_pose, 50)

    def on_pose(self, msg: BodyPose) -> None:
        self.poses.append((msg, time.monotonic()))


def run_dds_demo(assets_dir: str, frames: int = 60, rate_hz: float = 15.0,
                 overrides: dict | None = None) -> int:
    from mocap_ros.ros.mocap_node import MocapNode
    from mocap_ros.tools.frames import bench_frames

    imgs, _ = bench_frames(frames)
    rclpy.init()
    params = {"assets_dir": assets_dir, **(overrides or {})}
    node = MocapNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    player, listener = FramePlayer(imgs, rate_hz), PoseListener()
    ex = MultiThreadedExecutor(num_threads=3)
    for n in (node, player, listener):
        ex.add_node(n)
    synthetic = getattr(getattr(node.estimator, "models", None), "synthetic", False)
    print(f"mocap_ros demo over DDS: {frames} frames 640x480 bgr8 at {rate_hz:.0f} Hz -> "
          f"mocap_node ({resolve_backend(node.config)} on {node.estimator.device}, "
          f"{node.estimator.precision}, n_iter={node.config.n_iter})"
          + (" [SYNTHETIC weights: poses are not real]" if synthetic else ""))
    t0 = time.monotonic()
    try:
        deadline = t0 + frames / rate_hz + 30.0
        while time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
            if player.done and time.monotonic() - player.sent[max(player.sent)] > 1.5:
                break
    finally:
        elapsed = time.monotonic() - t0
        stats = dict(node.stats)
        ex.shutdown()
        for n in (node, player, listener):
            n.destroy_node()
        rclpy.try_shutdown()
    lat = [(arr - player.sent[(m.header.stamp.sec, m.header.stamp.nanosec)]) * 1e3
           for m, arr in listener.poses
           if (m.header.stamp.sec, m.header.stamp.nanosec) in player.sent]
    got = len(listener.poses)
    print(f"published {len(player.sent)} frames, received {got} poses in {elapsed:.1f} s "
          f"({got / max(elapsed, 1e-9):.1f} poses/s); dropped under load "
          f"{stats.get('dropped_overload', 0)}, malformed {stats.get('bad_frames', 0)}")
    if lat:
        print(f"frame publish -> pose received: median {statistics.median(lat):.1f} ms, "
              f"max {max(lat):.1f} ms")
    if listener.poses:
        m = listener.poses[-1][0]
        p = m.root_pose.position
        print(f"last pose: valid={m.valid} conf={m.confidence:.2f} frame={m.header.frame_id} "
              f"pelvis=({p.x:+.2f}, {p.y:+.2f}, {p.z:+.2f}) m, {len(m.joints)} joints, "
              f"inference {m.inference_ms:.1f} ms, total {m.total_ms:.1f} ms")
    return 0 if got else 1
