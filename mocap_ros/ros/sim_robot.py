"""sim_robot: a MuJoCo robot that takes teleop_node's commands the way a real controller would.

Subscribes ``joint_commands`` in the type of ``command_type`` (JointState: positions by name,
velocities used as feed-forward when given; JointTrajectory: interpolated linearly from the
setpoint at arrival through its points at their ``time_from_start``, like
joint_trajectory_controller with positions-only points; Float64MultiArray: positions in
``joint_order``). Joints a command does not name keep their setpoint. Publishes
``joint_states`` (position, velocity, effort) at ``publish_rate_hz``, advancing the physics to
the clock before each: the steady (wall) clock, or ROS time (/clock) under use_sim_time.

Reports, every ``diagnostics_period``: ``sim/contacts`` (std_msgs/String, JSON: count and
pairs with depth), ``sim/limit_violations`` (std_msgs/String, JSON: `LimitMonitor.summary`,
the number of commands implying more than the velocity or acceleration limits) and
/diagnostics (WARN on contacts or exceeded limits). ``sim/image`` (rgb8) at
``render_rate_hz`` when > 0; a node asked to render without a working off-screen OpenGL
refuses to start and says which MUJOCO_GL to set.

Ctrl-C / SIGTERM: exits 0 without a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from mocap_ros.core.config import SimSettings
from mocap_ros.robots.model import SHIPPED, load_robot
from mocap_ros.robots.sim import CommandBuffer, LimitMonitor, SimRobot
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import publish_unless_shut_down, run_node_until_signal
from mocap_ros.teleop.retarget import RobotJointMap

# A command arriving after this long a pause (s) starts from rest as far as the limit check
# is concerned (teleop publishes nothing while disabled and at rest).
RESTART_GAP = 0.5
# Most physics time one tick may simulate (s): a stalled process skips ahead, never spirals.
MAX_CATCH_UP = 0.2


def config_path(name: str) -> Path:
    """A file of config/ from the installed share/ (ROS) or the source checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        p = Path(get_package_share_directory("mocap_ros")) / "config" / name
        if p.exists():
            return p
    except Exception:  # not in an ament index: the checkout
        pass
    return Path(__file__).resolve().parents[2] / "config" / name


def _duration_s(d: object) -> float:
    return d.sec + d.nanosec * 1e-9  # type: ignore[attr-defined]


class SimRobotNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("sim_robot", **kwargs)
        s: SimSettings = declare_dataclass(self, SimSettings)
        self.settings = s
        self.sim = SimRobot(load_robot(s.robot), bandwidth_hz=s.bandwidth_hz,
                            damping_ratio=s.damping_ratio, floor=s.floor,
                            floor_height=s.floor_height)
        self.names = list(self.sim.joint_names)
        self._index = {n: i for i, n in enumerate(self.names)}
        limits = self._limits_map()
        vmax = np.array([self.sim.robot.velocity_limits.get(n, np.inf) for n in self.names])
        amax = np.full(len(self.names), s.default_acceleration_limit)
        order: list[str] = []
        if limits is not None:
            for n, v, a in zip(limits.names, limits.velocity_limits,
                               limits.acceleration_limits, strict=True):
                if n in self._index:
                    vmax[self._index[n]], amax[self._index[n]] = v, a
            order = [n for n in limits.names if n in self._index]
        if s.joint_order.strip():
            order = [n.strip() for n in s.joint_order.split(",") if n.strip()]
        unknown = [n for n in order if n not in self._index]
        if unknown:
            raise ValueError(f"joint_order names joints {unknown} that {s.robot} lacks "
                             f"(it has {', '.join(self.names)})")
        self.array_order = order or self.names
        self.monitor = LimitMonitor(tuple(self.names), vmax, amax, tolerance=s.limit_tolerance)
        self.command = CommandBuffer(self.sim.home)
        self.commands_received = 0
        self.commands_dropped = 0
        self._last_command_t: float | None = None
        self._contact_steps = 0
        self._contact_pairs: dict[tuple[str, str], float] = {}
        self.contacts_now: list = []
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._t0 = time.monotonic()
        self._sim_time = bool(self.get_parameter("use_sim_time").value)
        self._clock_origin: float | None = None

        msg_type = {"joint_state": JointState, "joint_trajectory": JointTrajectory,
                    "float64_multi_array": Float64MultiArray}[s.command_type]
        handler = {"joint_state": self._on_joint_state,
                   "joint_trajectory": self._on_trajectory,
                   "float64_multi_array": self._on_array}[s.command_type]
        self.create_subscription(msg_type, "joint_commands", handler, 10)
        self.state_pub = self.create_publisher(JointState, "joint_states", 10)
        self.contacts_pub = self.create_publisher(String, "sim/contacts", 10)
        self.limits_pub = self.create_publisher(String, "sim/limit_violations", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.image_pub = None
        if s.render_rate_hz > 0.0:
            self.sim.render(s.render_width, s.render_height)  # fails here, named, if no GL
            self.image_pub = self.create_publisher(Image, "sim/image", 2)
            self.create_timer(1.0 / s.render_rate_hz, self._render, clock=self._steady)
        self.create_timer(1.0 / s.publish_rate_hz, self._tick, clock=self._steady)
        self.create_timer(s.diagnostics_period, self._report, clock=self._steady)
        self.get_logger().info(
            f"sim_robot {s.robot!r}: {len(self.names)} joints, position control at "
            f"{s.bandwidth_hz:g} Hz bandwidth, commands: {s.command_type} on joint_commands, "
            f"joint_states at {s.publish_rate_hz:g} Hz"
            + (", following /clock" if self._sim_time else ", real time")
            + (f", sim/image at {s.render_rate_hz:g} Hz" if self.image_pub else ""))

    def _limits_map(self) -> RobotJointMap | None:
        s = self.settings
        if s.limits_config:
            return RobotJointMap.from_yaml(s.limits_config)
        if s.robot in SHIPPED:
            p = config_path(f"teleop_{s.robot}.yaml")
            if p.exists():
                return RobotJointMap.from_yaml(p)
        return None

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """Simulation time the physics should have reached (s)."""
        if self._sim_time:
            t = self.get_clock().now().nanoseconds * 1e-9
            if self._clock_origin is None or t + 1e-9 < self._clock_origin + self.sim.time - 1.0:
                # first /clock, or a clock jumping back (a restarted bag): re-anchor
                self._clock_origin = t - self.sim.time
            return t - self._clock_origin
        return time.monotonic() - self._t0

    def _stamp(self) -> object:
        return self.get_clock().now().to_msg()

    # ------------------------------------------------------------------ commands
    def _check(self, full: np.ndarray, dt: float | None) -> None:
        self.commands_received += 1
        if dt is None:
            self.monitor.reset_motion(self.command.sample(self.now())[0])
            self.monitor.observe(full, 0.0)
        else:
            self.monitor.observe(full, dt)

    def _arrival_dt(self) -> float | None:
        t = self.now()
        last, self._last_command_t = self._last_command_t, t
        if last is None or t - last > RESTART_GAP:
            return None
        return t - last

    def _full(self, names: list[str], values: list[float]) -> np.ndarray | None:
        if len(names) != len(values) or not names:
            return None
        q, _ = self.command.sample(self.now())
        for n, v in zip(names, values, strict=True):
            i = self._index.get(n)
            if i is None or not np.isfinite(v):
                return None
            q[i] = v
        return q

    def _drop(self, why: str) -> None:
        self.commands_dropped += 1
        self.get_logger().warning(f"command dropped: {why}", throttle_duration_sec=2.0)

    def _on_joint_state(self, msg: JointState) -> None:
        q = self._full(list(msg.name), list(msg.position))
        if q is None:
            self._drop(f"JointState names {list(msg.name)} / positions do not match "
                       f"{self.names} (or are not finite)")
            return
        vel = None
        if len(msg.velocity) == len(msg.name) and np.all(np.isfinite(msg.velocity)):
            vel = np.zeros(len(self.names))
            for n, v in zip(msg.name, msg.velocity, strict=True):
                vel[self._index[n]] = v
        self._check(q, self._arrival_dt())
        self.command.set_stream(q, vel)

    def _on_array(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.array_order):
            self._drop(f"Float64MultiArray has {len(msg.data)} values, joint_order has "
                       f"{len(self.array_order)}")
            return
        q = self._full(list(self.array_order), list(msg.data))
        if q is None:
            self._drop("Float64MultiArray values are not finite")
            return
        self._check(q, self._arrival_dt())
        self.command.set_stream(q)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        names = list(msg.joint_names)
        if not msg.points:
            self._drop("JointTrajectory without points")
            return
        now = self.now()
        times, points = [], []
        prev_t = 0.0
        for p in msg.points:
            t = _duration_s(p.time_from_start)
            q = self._full(names, list(p.positions))
            if q is None or t <= prev_t:
                self._drop("JointTrajectory point with unknown joints, non-finite positions "
                           "or time_from_start not increasing from 0")
                return
            times.append(t)
            points.append(q)
            prev_t = t
        gap = self._arrival_dt()
        prev = 0.0
        for k, (t, q) in enumerate(zip(times, points, strict=True)):
            # each point: reached (t - previous t) after the previous point; the first one
            # after the previous message's last point (None: from rest at the setpoint)
            self._check(q, (t - prev) if (k > 0 or gap is not None) else None)
            prev = t
        self.command.set_trajectory(now, times, points)

    # ------------------------------------------------------------------ loop
    def _tick(self) -> None:
        if not self.context.ok():
            return
        target = self.now()
        if target < self.sim.time - 1e-9:
            return  # /clock paused or behind: nothing to simulate
        if target - self.sim.time > MAX_CATCH_UP:
            self.sim.data.time = target - MAX_CATCH_UP
        self.sim.step_until(target, self.command)
        contacts = self.sim.contacts()
        self.contacts_now = contacts
        if contacts:
            self._contact_steps += 1
            for c in contacts:
                key = (c.geom1, c.geom2)
                self._contact_pairs[key] = max(self._contact_pairs.get(key, 0.0), c.depth)
        msg = JointState(name=self.names, position=self.sim.positions.tolist(),
                         velocity=self.sim.velocities.tolist(),
                         effort=self.sim.efforts.tolist())
        msg.header.stamp = self._stamp()
        self._publish(self.state_pub, msg)

    def _render(self) -> None:
        if not self.context.ok() or self.image_pub is None:
            return
        s = self.settings
        rgb = self.sim.render(s.render_width, s.render_height)
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                    step=3 * rgb.shape[1], data=rgb.tobytes())
        msg.header.stamp = self._stamp()
        msg.header.frame_id = "sim_camera"
        self._publish(self.image_pub, msg)

    def contact_report(self) -> dict[str, object]:
        return {"now": len(self.contacts_now), "ticks_with_contact": self._contact_steps,
                "pairs": [[a, b, round(d, 5)] for (a, b), d in self._contact_pairs.items()],
                "current": [[c.geom1, c.geom2, round(c.depth, 5)] for c in self.contacts_now]}

    def _report(self) -> None:
        if not self.context.ok():
            return
        contacts = self.contact_report()
        limits = {**self.monitor.summary(), "dropped": self.commands_dropped}
        self._publish(self.contacts_pub, String(data=json.dumps(contacts)))
        self._publish(self.limits_pub, String(data=json.dumps(limits)))
        st = DiagnosticStatus(name="sim_robot", hardware_id=self.settings.robot)
        bad = contacts["ticks_with_contact"] or limits["velocity_exceeded"] or \
            limits["acceleration_exceeded"]
        st.level = DiagnosticStatus.WARN if bad else DiagnosticStatus.OK
        st.message = (f"{contacts['now']} contacts now, {contacts['ticks_with_contact']} ticks "
                      f"with contact; {limits['velocity_exceeded']} commands over the velocity "
                      f"and {limits['acceleration_exceeded']} over the acceleration limits")
        st.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("sim_time", f"{self.sim.time:.3f}"), ("commands", self.commands_received),
            ("dropped", self.commands_dropped), ("contacts_now", contacts["now"]),
            ("contact_pairs", json.dumps(contacts["pairs"])),
            ("velocity_exceeded", limits["velocity_exceeded"]),
            ("acceleration_exceeded", limits["acceleration_exceeded"]),
            ("peak_velocity_ratio", limits["peak_velocity_ratio"]),
            ("peak_acceleration_ratio", limits["peak_acceleration_ratio"]))]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self._stamp()
        self._publish(self.diag_pub, arr)

    def _publish(self, publisher: object, msg: object) -> None:
        publish_unless_shut_down(self, publisher, msg)

    def destroy_node(self) -> None:
        self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Exit 1 with the reason on stderr when the node cannot start; 0 on SIGINT/SIGTERM."""
    return run_node_until_signal(SimRobotNode, "sim_robot", args)


if __name__ == "__main__":
    sys.exit(main())
