"""teleop_node: BodyPose in, robot joint commands out, at a fixed rate, never unsafely.

All decisions live in mocap_ros.teleop.TeleopController (pure, tested without ROS); this
node feeds it poses with their header stamps and the node clock (use_sim_time works),
arms it through the ~/enable SetBool service, and publishes what each control step returns.
Nothing is published while disabled.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mocap_ros.core.config import TeleopSettings
from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import run_node
from mocap_ros.teleop.controller import TeleopController
from mocap_ros.teleop.filters import OneEuroParams
from mocap_ros.teleop.retarget import RobotJointMap
from mocap_ros.teleop.safety import SafetyParams


def default_robot_config() -> Path:
    """teleop_generic.yaml from the installed share/ (ROS) or the source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        p = Path(get_package_share_directory("mocap_ros")) / "config" / "teleop_generic.yaml"
        if p.exists():
            return p
    except Exception:  # not in an ament index: fall back to the checkout
        pass
    return Path(__file__).resolve().parents[2] / "config" / "teleop_generic.yaml"


def _stamp_s(stamp: object) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class TeleopNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("teleop_node", **kwargs)
        s: TeleopSettings = declare_dataclass(self, TeleopSettings)
        self.settings = s
        path = Path(s.robot_config) if s.robot_config else default_robot_config()
        self.joint_map = RobotJointMap.from_yaml(path)
        self.controller = TeleopController(
            self.joint_map, rate_hz=s.rate_hz, hold_mode=s.hold_mode,
            filter_params=OneEuroParams(min_cutoff=s.filter_min_cutoff, beta=s.filter_beta,
                                        d_cutoff=s.filter_d_cutoff),
            safety_params=SafetyParams(pose_timeout=s.pose_timeout,
                                       clock_skew_tolerance=s.clock_skew_tolerance,
                                       min_confidence=s.min_confidence, max_jump=s.max_jump,
                                       jump_window=s.jump_window),
        )
        out_type = {"joint_state": JointState, "joint_trajectory": JointTrajectory,
                    "float64_multi_array": Float64MultiArray}[s.output_type]
        self.cmd_pub = self.create_publisher(out_type, "joint_commands", 10)
        self.status_pub = self.create_publisher(TeleopStatus, "teleop/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(BodyPose, "mocap/body_pose", self._on_pose, 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self._joint_states: tuple[float, dict[str, float]] | None = None
        self._last_pose_stamp: float | None = None
        self._step_times: list[float] = []
        self.published = 0
        self._last_command: np.ndarray | None = None
        self.create_timer(1.0 / s.rate_hz, self._step)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"teleop for {self.joint_map.robot!r} ({len(self.joint_map)} joints, "
            f"{path.name}); DISABLED until ~/enable is called with data: true")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _on_pose(self, msg: BodyPose) -> None:
        stamp = _stamp_s(msg.header.stamp)
        self._last_pose_stamp = stamp
        quats = np.array([[q.x, q.y, q.z, q.w] for q in msg.local_rotations], np.float64)
        if quats.shape != (24, 4):
            quats = np.full((24, 4), np.nan)  # malformed: the controller refuses it
        self.controller.on_pose(stamp, self._now(), bool(msg.valid), float(msg.confidence),
                                quats)

    def _on_joint_states(self, msg: JointState) -> None:
        self._joint_states = (time.monotonic(), dict(zip(msg.name, msg.position, strict=False)))

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response
                   ) -> SetBool.Response:
        if not request.data:
            self.controller.disable()
            response.success, response.message = True, "disabled"
            self.get_logger().info("teleop disabled")
            return response
        start = None
        if self._joint_states is not None and \
                time.monotonic() - self._joint_states[0] <= self.settings.joint_states_timeout:
            names = self._joint_states[1]
            if all(n in names for n in self.joint_map.names):
                start = [names[n] for n in self.joint_map.names]
        if start is None and not self.settings.allow_enable_without_joint_states:
            response.success = False
            response.message = (
                "not enabled: no joint_states in the last "
                f"{self.settings.joint_states_timeout} s naming every joint "
                f"({', '.join(self.joint_map.names)}); commands must start from where the "
                "robot is (allow_enable_without_joint_states overrides this)")
            self.get_logger().warning(response.message)
            return response
        try:
            self.controller.enable(self._now(), start)
        except ValueError as exc:
            response.success, response.message = False, f"not enabled: {exc}"
            return response
        response.success = True
        response.message = "enabled from " + ("joint_states" if start is not None else
                                              "the last command / safe pose")
        self.get_logger().info(f"teleop {response.message}")
        return response

    # ------------------------------------------------------------------ control loop
    def _step(self) -> None:
        now = self._now()
        self._step_times.append(time.monotonic())
        del self._step_times[:-100]
        out = self.controller.step(now)
        status = TeleopStatus(enabled=self.controller.enabled, robot=self.joint_map.robot,
                              joint_names=list(self.joint_map.names))
        status.header.stamp = self.get_clock().now().to_msg()
        status.pose_age = now - self._last_pose_stamp if self._last_pose_stamp is not None \
            else -1.0
        status.rate_hz = self._rate()
        if out is None:
            status.mode, status.reason, status.tracking = "disabled", "disabled", False
            self.status_pub.publish(status)
            return
        status.mode = out.status.mode
        status.reason = out.status.reason or ""
        status.tracking = out.status.tracking
        status.command = [float(v) for v in out.positions]
        self._publish_command(out.positions, out.velocities, status.header.stamp)
        self.status_pub.publish(status)

    def _rate(self) -> float:
        t = self._step_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def _publish_command(self, pos: np.ndarray, vel: np.ndarray, stamp: object) -> None:
        names = list(self.joint_map.names)
        kind = self.settings.output_type
        if kind == "joint_state":
            msg = JointState(name=names, position=[float(v) for v in pos],
                             velocity=[float(v) for v in vel])
            msg.header.stamp = stamp
        elif kind == "joint_trajectory":
            period = 1.0 / self.settings.rate_hz
            point = JointTrajectoryPoint(
                positions=[float(v) for v in pos], velocities=[float(v) for v in vel],
                time_from_start=Duration(sec=int(period), nanosec=int(period % 1 * 1e9)))
            # stamp zero = "start now" for joint_trajectory_controller
            msg = JointTrajectory(joint_names=names, points=[point])
        else:
            msg = Float64MultiArray(data=[float(v) for v in pos])
        self._last_command = pos.copy()
        self.cmd_pub.publish(msg)
        self.published += 1

    def _publish_diagnostics(self) -> None:
        st = DiagnosticStatus(name="teleop_node: safety", hardware_id=self.joint_map.robot)
        enabled = self.controller.enabled
        st.level = DiagnosticStatus.OK
        st.message = "disabled" if not enabled else "enabled"
        st.values = [KeyValue(key="enabled", value=str(enabled)),
                     KeyValue(key="rate_hz", value=f"{self._rate():.1f}"),
                     KeyValue(key="commands_published", value=str(self.published))]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopNode, "teleop_node", args)

if __name__ == "__main__":
    sys.exit(main())
