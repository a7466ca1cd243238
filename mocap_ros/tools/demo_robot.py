"""`mocap-ros demo --robot fr3|g1`: the whole loop in one process, over DDS, no robot.

sample frames (FramePlayer) -> mocap_node -> teleop_node (enabled here, once the simulated
robot publishes joint_states: the demo only) -> sim_robot. Prints the tracking error (robot
vs teleop command), the lag (the time shift that best lays the robot's motion onto the
command, and frame -> pose), contacts and limit counts; writes a picture: the last camera
frame with the estimated skeleton beside the robot (rendered off-screen, or drawn with cv2
from the body positions when no OpenGL works), and with ``video`` an MP4 of every pose.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from mocap_ros.core.skeleton import PARENTS
from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.robots.sim import SimRobot
from mocap_ros.ros.sim_robot import SimRobotNode, config_path
from mocap_ros.ros.teleop_node import TeleopNode
from mocap_ros.tools.demo import FramePlayer

PANEL_H = 480


class Recorder(Node):
    """Poses (with the frame they came from), teleop status and robot positions."""

    def __init__(self) -> None:
        super().__init__("demo_recorder")
        self.poses: list[tuple[BodyPose, float]] = []
        self.status: list[tuple[float, TeleopStatus]] = []
        self.create_subscription(BodyPose, "mocap/body_pose", self._on_pose, 50)
        self.create_subscription(TeleopStatus, "teleop/status", self._on_status, 50)

    def _on_pose(self, msg: BodyPose) -> None:
        self.poses.append((msg, time.monotonic()))

    def _on_status(self, msg: TeleopStatus) -> None:
        self.status.append((time.monotonic(), msg))


def draw_skeleton(rgb: np.ndarray, pose: BodyPose | None) -> np.ndarray:
    canvas = np.ascontiguousarray(rgb).copy()
    if pose is not None and pose.valid and len(pose.keypoints_2d) >= 2 * len(PARENTS):
        kp = np.asarray(pose.keypoints_2d, np.float64).reshape(-1, 2)
        limit = 4 * max(canvas.shape)
        kp = np.round(np.clip(kp, -limit, limit)).astype(int)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                cv2.line(canvas, tuple(kp[p]), tuple(kp[j]), (40, 220, 60), 3)
    return canvas


def draw_robot_cv2(sim: SimRobot, size: tuple[int, int]) -> np.ndarray:
    """Body origins joined to their parents, seen from the front (y right-left, z up)."""
    w, h = size
    canvas = np.full((h, w, 3), 40, np.uint8)
    pos, parent = sim.geom_positions()
    pts = pos[1:, 1:]  # (y, z) of every body but the world
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = 0.8 * min(w, h) / max(float(np.max(hi - lo)), 1e-6)
    centre = 0.5 * (lo + hi)

    def px(p: np.ndarray) -> tuple[int, int]:
        return (int(w / 2 - scale * (p[1] - centre[0])), int(h / 2 - scale * (p[2] - centre[1])))

    for b in range(2, len(pos)):
        cv2.line(canvas, px(pos[parent[b]]), px(pos[b]), (200, 200, 200), 4)
    for b in range(1, len(pos)):
        cv2.circle(canvas, px(pos[b]), 5, (60, 140, 250), -1)
    return canvas


def robot_panel(sim: SimRobot, size: tuple[int, int], use_gl: list[bool]) -> np.ndarray:
    if use_gl[0]:
        try:
            return sim.render(*size)
        except RuntimeError as exc:
            print(f"no off-screen OpenGL ({exc}); drawing the robot with cv2 instead")
            use_gl[0] = False
    return draw_robot_cv2(sim, size)


def composite(frame: np.ndarray, pose: BodyPose | None, sim: SimRobot, use_gl: list[bool],
              caption: str) -> np.ndarray:
    left = draw_skeleton(frame, pose)
    scale = PANEL_H / left.shape[0]
    left = cv2.resize(left, (int(left.shape[1] * scale), PANEL_H))
    right = robot_panel(sim, (PANEL_H * 4 // 3, PANEL_H), use_gl)
    out = np.hstack([left, right])
    cv2.putText(out, caption, (10, PANEL_H - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (255, 255, 255), 2)
    return out


def best_lag(t_cmd: np.ndarray, cmd: np.ndarray, t_q: np.ndarray, q: np.ndarray) -> float:
    """Seconds (1 ms steps, up to 0.5 s) by which q trails the command."""
    if t_cmd.size < 10 or np.ptp(cmd) < 1e-3:
        return float("nan")
    shifts = np.arange(0.0, 0.5, 0.001)
    errs = [float(np.mean((np.interp(t_q, t_cmd + s, cmd) - q) ** 2)) for s in shifts]
    return float(shifts[int(np.argmin(errs))])


def run_robot_demo(assets_dir: str, robot: str = "fr3", frames: int = 60, rate_hz: float = 15.0,
                   out: str = "demo_robot.png", video: str | None = None,
                   overrides: dict | None = None) -> int:
    from mocap_ros.ros.mocap_node import MocapNode
    from mocap_ros.tools.frames import bench_frames

    imgs, _ = bench_frames(frames)
    rclpy.init()
    params = {"assets_dir": assets_dir, **(overrides or {})}
    mocap = MocapNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    teleop = TeleopNode(parameter_overrides=[
        Parameter("robot_config", value=str(config_path(f"teleop_{robot}.yaml")))])
    sim = SimRobotNode(parameter_overrides=[Parameter("robot", value=robot)])
    player, rec = FramePlayer(imgs, rate_hz), Recorder()
    nodes = (mocap, teleop, sim, player, rec)
    ex = MultiThreadedExecutor(num_threads=3)
    for n in nodes:
        ex.add_node(n)
    names = list(teleop.joint_map.names)
    idx = [sim.names.index(n) for n in names]
    print(f"mocap_ros robot demo: {frames} frames at {rate_hz:g} Hz -> mocap_node -> "
          f"teleop_node ({teleop.joint_map.robot}, enabled by the demo) -> sim_robot ({robot})")
    trace_t: list[float] = []
    trace_q: list[np.ndarray] = []
    use_gl = [True]
    writer = None
    t0 = time.monotonic()
    try:
        deadline = t0 + frames / rate_hz + 60.0
        last_sent = None
        while time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.01)
            trace_t.append(time.monotonic())
            trace_q.append(sim.sim.positions[idx])
            if not teleop.controller.enabled and rec.poses and sim.commands_received == 0:
                resp = teleop._on_enable(SetBool.Request(data=True), SetBool.Response())
                print(f"teleop: {resp.message}")
            if player.sent:
                last_sent = max(player.sent.values())
            if video and rec.poses and (writer is None or len(rec.poses) > writer[1]):
                msg = rec.poses[-1][0]
                key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
                i = sorted(player.sent).index(key) if key in player.sent else None
                if i is not None:
                    img = composite(imgs[i], msg, sim.sim, use_gl, f"{robot} pose {i}")
                    if writer is None:
                        vw = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), rate_hz,
                                             (img.shape[1], img.shape[0]))
                        writer = [vw, 0]
                    writer[0].write(img[..., ::-1])
                    writer[1] = len(rec.poses)
            if player.done and last_sent is not None and time.monotonic() - last_sent > 2.0:
                break
        stamps = sorted(player.sent)
        last_pose = rec.poses[-1][0] if rec.poses else None
        li = len(imgs) - 1
        if last_pose is not None:
            key = (last_pose.header.stamp.sec, last_pose.header.stamp.nanosec)
            li = stamps.index(key) if key in stamps else li
        contacts = sim.contact_report()
        limits = sim.monitor.summary()
        pic = composite(imgs[li], last_pose, sim.sim, use_gl,
                        f"{robot}: frame {li}, contacts {contacts['ticks_with_contact']}")
    finally:
        if writer is not None:
            writer[0].release()
        ex.shutdown()
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out, pic[..., ::-1])
    # tracking: the robot vs the teleop command at each status message
    st = [(t, np.array(m.command)) for t, m in rec.status if len(m.command) == len(names)]
    tq, q = np.array(trace_t), np.array(trace_q)
    lat = [(arr - player.sent[(m.header.stamp.sec, m.header.stamp.nanosec)]) * 1e3
           for m, arr in rec.poses if (m.header.stamp.sec, m.header.stamp.nanosec) in player.sent]
    print(f"poses received {len(rec.poses)} of {len(player.sent)} frames"
          + (f"; frame -> pose median {statistics.median(lat):.0f} ms" if lat else ""))
    if st:
        tc = np.array([t for t, _ in st])
        cmd = np.array([c for _, c in st])
        at = np.array([np.interp(tc, tq, q[:, j]) for j in range(len(names))]).T
        err = np.abs(at - cmd)
        moving = int(np.argmax(np.ptp(cmd, axis=0)))
        lag = best_lag(tc, cmd[:, moving], tq, q[:, moving])
        print(f"tracking error robot vs command: RMS {np.sqrt(np.mean(err ** 2)):.4f} rad, "
              f"max {err.max():.4f} rad over {len(st)} commands")
        print(f"robot lag behind the command ({names[moving]}, moved "
              f"{np.ptp(cmd[:, moving]):.3f} rad): "
              + ("n/a (no motion)" if np.isnan(lag) else f"{lag * 1e3:.0f} ms"))
    else:
        print("teleop sent no commands (no valid pose reached it)")
    print(f"contacts: {contacts['ticks_with_contact']} ticks with contact, pairs "
          f"{contacts['pairs'] or 'none'}; limits: {limits['velocity_exceeded']} commands over "
          f"velocity, {limits['acceleration_exceeded']} over acceleration "
          f"(of {limits['commands']})")
    print(f"picture: {out}" + (f"; video: {video}" if video else "")
          + ("" if use_gl[0] else " (robot drawn with cv2: no off-screen OpenGL)"))
    return 0 if rec.poses else 1
