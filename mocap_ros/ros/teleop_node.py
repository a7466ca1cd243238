"""teleop_node: BodyPose in, robot joint commands out, at a fixed rate, never unsafely.

All decisions live in mocap_ros.teleop.TeleopController (pure, tested without ROS); this
node feeds it poses with their header stamps and the node clock (use_sim_time works),
arms it through the ~/enable SetBool service, and publishes what each control step returns.
Nothing is published while disabled and at rest.

Time: the control timer and the rate limiter run on the steady (wall) clock, whatever the
node clock is. Pose stamps, staleness and clock jumps are judged on the node clock (ROS
time, /clock under use_sim_time). So the velocity and acceleration limits hold in real time
for a real robot even when /clock runs faster than real time (`replay --rate 2`), and the
loop keeps commanding (and braking) when /clock pauses or jumps back. We chose this over
refusing use_sim_time for real robots: it needs no parameter that could be set wrong and
keeps a replayed recording usable as an operator. Its limit: a simulator running slower
than real time sees the limits scaled up in its own time (and a faster one scaled down).

Shutdown (SIGINT/SIGTERM) and ~/enable false brake the robot to rest within the
acceleration limit before the stream stops; a second signal leaves at once. No state ends
in a traceback: nothing is published once the context is shut down.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mocap_ros.core.config import TeleopSettings
from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import publish_unless_shut_down, run_node_until_signal
from mocap_ros.srv import LockOperator
from mocap_ros.teleop.controller import UNREACHABLE, TeleopController
from mocap_ros.teleop.filters import KalmanParams, OneEuroParams
from mocap_ros.teleop.gripper import (
    CommandGripper,
    Gripper,
    HandSample,
    JointsGripper,
    grippers_from_yaml,
    make_gripper,
)
from mocap_ros.teleop.robot_setup import TeleopRobot
from mocap_ros.teleop.safety import SafetyParams

# Poses: keep only the newest. A queue (depth 10) under CPU load fed teleop stale poses
# one by one while fresh ones waited behind them. Best effort is compatible with reliable
# and best-effort publishers alike; a lost pose is simply replaced by the next one.
POSE_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT)


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
        # The joint map, and the robot model / collision guard / task IK where the YAML
        # has a model section (retarget: task needs one).
        self.joint_map, self.robot = TeleopRobot.from_yaml(path, retarget=s.retarget or None)
        self.controller = TeleopController(
            self.joint_map, rate_hz=s.rate_hz, hold_mode=s.hold_mode,
            filter_params=OneEuroParams(min_cutoff=s.filter_min_cutoff, beta=s.filter_beta,
                                        d_cutoff=s.filter_d_cutoff)
            if s.filter_type == "one_euro" else
            KalmanParams(measurement_noise=s.filter_measurement_noise,
                         process_noise=s.filter_process_noise),
            safety_params=SafetyParams.from_settings(s),
            robot=self.robot,
        )
        self._setup_grippers(path)
        out_type = {"joint_state": JointState, "joint_trajectory": JointTrajectory,
                    "float64_multi_array": Float64MultiArray}[s.output_type]
        self.cmd_pub = self.create_publisher(out_type, "joint_commands", 10)
        self.status_pub = self.create_publisher(TeleopStatus, "teleop/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(BodyPose, "mocap/body_pose", self._on_pose, POSE_QOS)
        # Several drivers may publish joint_states (arm, gripper, head), each naming only
        # its own joints: positions are merged per joint, each with its own arrival time.
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 50)
        # A coroutine: with a lock service it answers only after the lock did, awaiting that
        # answer without blocking the executor (mocap_node may share it). Its own reentrant
        # group: a coroutine holds its group until it returns, and in the default group it
        # would hold the lock client's answer, the timeout timer and the control loop; and
        # a disable must not wait behind a pending enable. The nodes run on single-threaded
        # executors (ros/run.py, up.py), so nothing here runs in parallel with the loop.
        self.create_service(SetBool, "~/enable", self._on_enable_service,
                            callback_group=ReentrantCallbackGroup())
        # one operator (issue 15): see _operator_refusal
        self._lock_client = self.create_client(LockOperator, s.operator_lock_service) \
            if s.operator_lock_service else None
        self._operator_track: int | None = None  # the armed operator's BodyPose track_id
        self._operator_arming = 0  # sequence number of the lock request awaited (0: none)
        self._operator_seq = 0
        self._lock_outcome = ""  # teleop/status operator_lock
        self._lock_failed = False  # disabled by a failed lock: status reason says so
        self._operator_lost = False  # latched on operator_lost until resumed (policy)
        self._operator_back = 0  # consecutive poses of the operator, tracked, while lost
        self._joint_positions: dict[str, tuple[float, float]] = {}  # name: (steady s, rad)
        self._last_pose_stamp: float | None = None
        self._step_times: list[float] = []
        self.published = 0
        self.shutting_down = False  # brake_to_rest: ~/enable is refused from then on
        self.poses_received = 0
        self.last_pose_rx_s: float | None = None
        self._last_command: np.ndarray | None = None
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / s.rate_hz, self._step, clock=steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        sim = self.get_parameter("use_sim_time").value
        self.get_logger().info(
            f"teleop for {self.joint_map.robot!r} ({len(self.joint_map)} joints, "
            f"{path.name}, retarget: "
            + (self.robot.retarget if self.robot else "joint, no model: no collision guard")
            + "); DISABLED until ~/enable is called with data: true"
            + ("; use_sim_time: poses are judged on /clock, limits hold in real time"
               if sim else ""))

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _on_pose(self, msg: BodyPose) -> None:
        stamp = _stamp_s(msg.header.stamp)
        self._last_pose_stamp = stamp
        self.poses_received += 1
        self.last_pose_rx_s = self._now()  # node time the newest pose was taken in
        quats = np.array([[q.x, q.y, q.z, q.w] for q in msg.local_rotations], np.float64)
        if quats.shape != (24, 4):
            quats = np.full((24, 4), np.nan)  # malformed: the controller refuses it
        conf = np.asarray(msg.joint_confidence, np.float64)
        refusal = ""
        if msg.valid and msg.person_check != BodyPose.PERSON_CONFIRMED and (
                self.settings.require_person_check
                or msg.person_check == BodyPose.PERSON_NOT_FOUND):
            refusal = "unconfirmed"  # no person detector vouched for this body
        refusal = self._operator_refusal(msg) or refusal
        decision = self.controller.on_pose(stamp, self.last_pose_rx_s, bool(msg.valid),
                                           float(msg.confidence), quats,
                                           joint_confidence=conf if conf.size else None,
                                           refusal=refusal)
        if decision.accept:
            # the hands of a body the arm refuses (unconfirmed, another person, a jump...)
            # never reach the grippers: they hold, and keep the operator's open/closed state
            self._grippers_on_pose(msg, stamp)

    def _on_joint_states(self, msg: JointState) -> None:
        t = time.monotonic()
        for name, position in zip(msg.name, msg.position, strict=False):
            self._joint_positions[name] = (t, float(position))

    def _fresh_joint_positions(self) -> tuple[list[float] | None, list[str]]:
        """Measured positions of the map's joints, or None and the joints lacking a fresh
        joint_states entry."""
        t = time.monotonic()
        timeout = self.settings.joint_states_timeout
        missing = [n for n in self.joint_map.names if n not in self._joint_positions
                   or t - self._joint_positions[n][0] > timeout]
        if missing:
            return None, missing
        return [self._joint_positions[n][1] for n in self.joint_map.names], []

    def _measured(self, names: tuple[str, ...]) -> list[float] | None:
        """Fresh measured positions of ``names`` (None unless every one has one)."""
        t = time.monotonic()
        timeout = self.settings.joint_states_timeout
        if any(n not in self._joint_positions or t - self._joint_positions[n][0] > timeout
               for n in names):
            return None
        return [self._joint_positions[n][1] for n in names]

    async def _on_enable_service(self, request: SetBool.Request, response: SetBool.Response
                                 ) -> SetBool.Response:
        """~/enable. With operator_lock_service, enabling (and re-arming after operator_lost)
        waits for mocap_node's lock -- at most operator_lock_timeout -- and fails, disabled,
        when the lock does not lock on."""
        if request.data and self.shutting_down:
            return self._on_enable(request, response)  # refused: shutting down
        if not request.data or self._lock_client is None:
            return self._on_enable(request, response)
        if self.controller.enabled and not self._operator_lost:
            response.success, response.message = True, "already enabled"
            return response
        rearm = self.controller.enabled  # operator_lost: lock on afresh, still armed
        service = self.settings.operator_lock_service
        if not self._lock_client.service_is_ready():
            response.success = False
            response.message = (f"not {'re-armed' if rearm else 'enabled'}: operator lock "
                                f"service {service} is not available (mocap_node with "
                                "operator_lock: true)")
            self.get_logger().warning(response.message)
            return response
        if not rearm:
            # refuse before touching mocap_node's lock when enabling could not succeed
            why = self._enable_refusal()
            if why:
                response.success, response.message = False, f"not enabled: {why}"
                self.get_logger().warning(response.message)
                return response
        self._operator_seq += 1
        seq = self._operator_arming = self._operator_seq
        self._lock_outcome, self._lock_failed = "pending", False
        res = await self._call_lock()
        if seq != self._operator_arming or (rearm and not self.controller.enabled):
            # disabled (by ~/enable false or a shutdown), or another ~/enable, meanwhile
            if (res is not None and res.success and not self.controller.enabled
                    and self._operator_arming in (0, seq)):
                self._operator_release()  # mocap_node must not keep a lock nobody armed
            response.success = False
            response.message = "not enabled: superseded while waiting for the operator lock"
            return response
        self._operator_arming = 0
        if res is None or not res.success:
            why = (f"no answer from {service} within {self.settings.operator_lock_timeout:g} s"
                   if res is None else res.reason or "refused")
            self._operator_lock_failed(why)
            response.success = False
            response.message = (f"{'disabled' if rearm else 'not enabled'}: operator lock "
                                f"failed ({why})")
            self.get_logger().error(f"teleop {response.message}")
            return response
        if not rearm:
            self._on_enable(request, response, locked=True)
            if not response.success:
                self._operator_release()  # mocap_node must not keep a lock nobody armed
                return response
        self._operator_track = int(res.track_id)
        self._operator_lost, self._operator_back = False, 0
        self._lock_outcome = f"locked on track_id {res.track_id}"
        response.success = True
        response.message = ("re-armed after operator_lost" if rearm else response.message) \
            + f", operator track_id {res.track_id}"
        self.get_logger().info(f"teleop {response.message}")
        return response

    async def _call_lock(self) -> LockOperator.Response | None:
        """mocap_node's answer to lock, or None (no answer within operator_lock_timeout, or
        the call failed)."""
        assert self._lock_client is not None
        future = self._lock_client.call_async(LockOperator.Request(lock=True))
        woken = Future()

        def wake(*_: object) -> None:
            if not woken.done():
                woken.set_result(None)

        future.add_done_callback(wake)
        timer = self.create_timer(self.settings.operator_lock_timeout, wake,
                                  clock=Clock(clock_type=ClockType.STEADY_TIME))
        try:
            await woken
        finally:
            timer.cancel()
            self.destroy_timer(timer)
        if not future.done():
            self._lock_client.remove_pending_request(future)
            # a late answer would leave mocap_node locked on someone teleop never followed
            self._lock_client.call_async(LockOperator.Request(lock=False))
            return None
        try:
            return future.result()
        except Exception as exc:  # the service went away mid-call
            self.get_logger().warning(f"operator lock call failed: {exc}")
            return None

    def _operator_lock_failed(self, why: str) -> None:
        """The lock did not lock on: following an unlocked body would defeat the lock, so
        teleop is (or stays) disabled, and teleop/status says why."""
        self._operator_track, self._operator_lost, self._operator_back = None, False, 0
        self.controller.disable()
        self._grippers_disable()
        self._lock_outcome, self._lock_failed = f"failed: {why}", True

    def _enable_refusal(self) -> str:
        """Why enabling from here would be refused ("" when it would not)."""
        start, missing = self._fresh_joint_positions()
        if start is None and not self.controller.stopping and \
                not self.settings.allow_enable_without_joint_states:
            return (f"no joint_states in the last {self.settings.joint_states_timeout} s for "
                    f"{', '.join(missing)}; commands must start from where the robot is "
                    "(allow_enable_without_joint_states overrides this)")
        try:
            self._grippers_check_enable()
        except ValueError as exc:
            return str(exc)
        return ""

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response,
                   locked: bool = False) -> SetBool.Response:
        """Enable / disable without the operator lock (the lock's part is in
        _on_enable_service, which calls this with ``locked`` once the lock answered)."""
        if request.data and self.shutting_down:
            response.success, response.message = False, "not enabled: shutting down"
            self.get_logger().warning(f"teleop {response.message}")
            return response
        if request.data and self._lock_client is not None and not locked:
            response.success = False
            response.message = "not enabled: with an operator lock service, enable through " \
                "the ~/enable service (it waits for the lock)"
            return response
        self._lock_failed = False
        if not request.data:
            self._operator_release()
            self.controller.disable()
            self._grippers_disable()
            response.success = True
            response.message = "disabled" + (", braking to rest" if self.controller.stopping
                                             else "")
            self.get_logger().info(f"teleop {response.message}")
            return response
        if self.controller.enabled and self._operator_lost and self._lock_client is None:
            # the operator was lost: a new ~/enable is the operator's decision to follow
            # whoever mocap_node follows now (the controller stays armed; the gate treats
            # the first pose after the gap as a re-acquisition, at the rate limits)
            self._operator_arm()
            response.success, response.message = True, "re-armed after operator_lost"
            self.get_logger().info(f"teleop {response.message}")
            return response
        if self.controller.enabled:  # idempotent: a second enable changes nothing
            response.success, response.message = True, "already enabled"
            return response
        start, _ = self._fresh_joint_positions()
        braking = self.controller.stopping  # still commanding: it continues from there
        why = self._enable_refusal()
        if why:
            response.success, response.message = False, f"not enabled: {why}"
            self.get_logger().warning(response.message)
            return response
        try:
            self.controller.enable(self._now(), start, motion_s=time.monotonic())
            self._grippers_enable()
        except ValueError as exc:
            self.controller.disable()
            self._grippers_disable()
            response.success, response.message = False, f"not enabled: {exc}"
            self.get_logger().warning(response.message)
            return response
        if self._lock_client is None:
            self._operator_arm()
        response.success = True
        response.message = (
            "enabled, continuing the commanded motion" if braking else
            "enabled from " + ("joint_states" if start is not None else
                               "the last command / safe pose"))
        if self._lock_client is None:
            self.get_logger().info(f"teleop {response.message}")
        return response

    # ------------------------------------------------------------------ one operator
    def _operator_arm(self) -> None:
        """(Re-)arm without a lock service: forget the operator; the next tracked pose's
        track id becomes the operator's (_operator_refusal)."""
        self._operator_track = None
        self._operator_lost = False
        self._operator_back = 0

    def _operator_release(self) -> None:
        self._operator_track, self._operator_arming = None, 0
        self._lock_outcome = ""
        self._operator_lost, self._operator_back = False, 0
        if self._lock_client is not None and self._lock_client.service_is_ready():
            self._lock_client.call_async(LockOperator.Request(lock=False))

    def _operator_refusal(self, msg: BodyPose) -> str:
        """"operator_lost" when this pose must not be followed because it is not (or no
        longer) the operator who armed teleop; "operator_uncertain" when mocap_node's lock
        is unsure it is (not latched: the lock decides when that becomes operator_lost);
        "" when it may be judged as usual.

        The operator is the track id mocap_node's lock answered with (without a lock
        service: the first non-zero track id seen after ~/enable). A pose saying
        operator_lost for it, or a tracked pose of another track id, LATCHES operator_lost:
        from then on every pose is refused until a new ~/enable -- or, with operator_resume
        same_operator, until operator_resume_poses consecutive poses of the SAME track id in
        state tracking (mocap_node re-identified the operator)."""
        if not self.controller.enabled:
            return ""
        state, tid = msg.operator_state, int(msg.track_id)
        locked = self._lock_client is not None
        if self._operator_track is None and not locked and tid and msg.valid:
            self._operator_track = tid
        mine = self._operator_track is not None and tid == self._operator_track
        if msg.reason == "operator_lost" or state == "operator_lost":
            self._operator_lost = self._operator_lost or mine or self._operator_track is None
        elif tid and self._operator_track is not None and not mine and (
                state != "unlocked" or not locked):
            self._operator_lost = True  # someone else is being followed
        if locked and state == "unlocked":
            return "operator_lost"  # mocap_node no longer holds our lock (restarted?)
        if not self._operator_lost:
            return "operator_uncertain" if msg.reason == "operator_uncertain" else ""
        if self.settings.operator_resume == "same_operator" and mine and state == "tracking" \
                and msg.valid:
            self._operator_back += 1
            if self._operator_back >= self.settings.operator_resume_poses:
                self._operator_lost, self._operator_back = False, 0
                self.get_logger().info(f"operator track {tid} is back: resuming")
                return ""
        else:
            self._operator_back = 0
        return "operator_lost"

    # ------------------------------------------------------------------ control loop
    def _step(self) -> None:
        if not self.context.ok():
            return  # shutting down under us: publishing would raise
        now = self._now()
        motion = time.monotonic()
        self._step_times.append(motion)
        del self._step_times[:-100]
        out = self.controller.step(now, motion_s=motion)
        # "unreachable": the arm still follows fresh, valid poses (only off target), so
        # the fingers keep following too
        fingers = self._grippers_step(now, motion, out is not None and (
            out.status.tracking or out.status.reason == UNREACHABLE))
        status = TeleopStatus(enabled=self.controller.enabled, robot=self.joint_map.robot,
                              joint_names=list(self.joint_map.names))
        status.header.stamp = Time(nanoseconds=round(now * 1e9)).to_msg()
        status.pose_age = now - self._last_pose_stamp if self._last_pose_stamp is not None \
            else -1.0
        status.rate_hz = self._rate()
        status.operator_resume = self.settings.operator_resume
        info = self.controller.pose_timeout_info
        status.pose_timeout = info.timeout
        status.pose_timeout_auto = info.auto
        status.pose_timeout_note = info.note
        status.pose_age_p95 = info.age_p95 if np.isfinite(info.age_p95) else -1.0
        status.pose_period = info.period if np.isfinite(info.period) else -1.0

        status.operator_track_id = self._operator_track or 0
        status.operator_lock = self._lock_outcome
        if out is None:
            status.mode, status.tracking = "disabled", False
            status.reason = "operator_lock_failed" if self._lock_failed else "disabled"
            status.target_error = -1.0
            if fingers is not None and fingers[3]:  # the arm rests, fingers still brake
                n = len(self.joint_map)
                self._publish_command(fingers[0], fingers[1], fingers[2], status.header.stamp,
                                      arm=(self.controller.limiter.positions, np.zeros(n)))
            self._publish(self.status_pub, status)
            return
        status.mode = out.status.mode
        status.reason = out.status.reason or ""
        if self._lock_failed and not self.controller.enabled:
            status.reason = "operator_lock_failed"  # braking after the failed lock
        status.detail = out.status.detail
        status.tracking = out.status.tracking
        status.target_error = float(out.status.target_error)
        status.command = [float(v) for v in out.positions]
        if fingers is None:
            self._publish_command(out.positions, out.velocities, out.dt, status.header.stamp)
        else:
            self._publish_command(fingers[0], fingers[1], max(out.dt, fingers[2]),
                                  status.header.stamp, arm=(out.positions, out.velocities))
        self._publish(self.status_pub, status)

    def braking_time(self) -> float:
        """Seconds the output needs to come to rest from its current velocities."""
        lim = self.controller.limiter
        return float(np.max(np.abs(lim.velocities) / lim.max_acceleration, initial=0.0))

    def _publish(self, publisher: object, msg: object) -> bool:
        return publish_unless_shut_down(self, publisher, msg)

    def _rate(self) -> float:
        t = self._step_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def _publish_command(self, pos: np.ndarray, vel: np.ndarray, dt: float,
                         stamp: object,
                         arm: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``arm`` given: ``pos``/``vel`` are the finger joints' (`_finger_names`), published
        after the arm's joints in the same message."""
        names = list(self.joint_map.names)
        if arm is not None:
            names += self._finger_names()
            pos, vel = np.concatenate([arm[0], pos]), np.concatenate([arm[1], vel])
        kind = self.settings.output_type
        if kind == "joint_state":
            msg = JointState(name=names, position=[float(v) for v in pos],
                             velocity=[float(v) for v in vel])
            msg.header.stamp = stamp
        elif kind == "joint_trajectory":
            # time_from_start is the time this step really covered (what the limiter
            # integrated), so distance / time_from_start never exceeds the enforced
            # velocity limit; a step that did not move says one period. No velocities:
            # joint_trajectory_controller rejects a last point with non-zero velocity
            # unless allow_nonzero_velocity_at_trajectory_end is set, and interpolates
            # positions-only points linearly.
            span = dt if dt > 0.0 else 1.0 / self.settings.rate_hz
            ns = max(round(span * 1e9), 1)
            point = JointTrajectoryPoint(
                positions=[float(v) for v in pos],
                time_from_start=Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000))
            # stamp zero = "start now" for joint_trajectory_controller
            msg = JointTrajectory(joint_names=names, points=[point])
        else:
            msg = Float64MultiArray(data=[float(v) for v in pos])
        self._last_command = pos[:len(self.joint_map)].copy()
        if self._publish(self.cmd_pub, msg):
            self.published += 1

    # ------------------------------------------------------------------ grippers
    # mocap_ros.teleop.gripper holds every decision; these methods only wire it to ROS.
    def _setup_grippers(self, path: Path) -> None:
        s = self.settings
        specs = grippers_from_yaml(path, mirror=self.joint_map.mirror,
                                   arm_joint_names=self.joint_map.names) if s.grippers else ()
        self.grippers: list[Gripper] = [
            make_gripper(sp, min_confidence=s.min_confidence,
                         pose_timeout=self.controller.gate.pose_timeout,
                         rate_hz=s.rate_hz, clock_skew_tolerance=s.clock_skew_tolerance)
            for sp in specs]
        self._finger_grippers = [g for g in self.grippers if isinstance(g, JointsGripper)]
        self._gripper_clients: dict[int, object] = {}
        self.gripper_goals_sent = 0  # accepted by the action server
        self.gripper_goals_dropped = 0
        self.gripper_goals_rejected = 0  # refused by the server, or no answer to the request
        self._gripper_rejected: dict[str, str] = {}  # key: the last rejection, until accepted
        self._gripper_status: dict[str, str] = {}
        commanders = [g for g in self.grippers if isinstance(g, CommandGripper)]
        if commanders:
            try:
                from control_msgs.action import GripperCommand
                from rclpy.action import ActionClient
            except ImportError as exc:
                raise RuntimeError(
                    "a gripper_command gripper needs control_msgs (scripts/build_ros.sh builds "
                    f"a stand-in where the venv has none): {exc}") from exc
            self._gripper_action_type = GripperCommand
            for g in commanders:
                self._gripper_clients[id(g)] = ActionClient(self, GripperCommand, g.spec.action)
        for g in self.grippers:
            kind = g.spec.type + (f" on {g.spec.action}" if isinstance(g, CommandGripper)
                                  else f" ({len(g)} joints)")
            self.get_logger().info(f"gripper following the operator's {g.spec.hand} hand: "
                                   f"{kind}")

    def _finger_names(self) -> list[str]:
        return [n for g in self._finger_grippers for n in g.names]

    def fingers_stopping(self) -> bool:
        return any(g.stopping for g in self._finger_grippers)

    def _grippers_on_pose(self, msg: BodyPose, stamp: float) -> None:
        for g in self.grippers:
            h = msg.left_hand if g.spec.hand == "left" else msg.right_hand
            sample = HandSample(stamp=stamp, valid=bool(h.valid), confidence=float(h.confidence),
                                finger_curl=tuple(float(c) for c in h.finger_curl),
                                aperture=float(h.aperture), reason=h.reason)
            g.on_hand(sample, self.last_pose_rx_s)

    def _grippers_check_enable(self) -> None:
        """Raise ValueError (enable refused) when finger joints lack fresh joint_states."""
        if self.settings.allow_enable_without_joint_states:
            return
        for g in self._finger_grippers:
            if not g.enabled and not g.stopping and self._measured(g.names) is None:
                raise ValueError(
                    f"no joint_states in the last {self.settings.joint_states_timeout} s for "
                    f"the {g.spec.hand} hand's joints ({', '.join(g.names)}); commands must "
                    "start from where the fingers are")

    def _grippers_enable(self) -> None:
        motion = time.monotonic()
        for g in self.grippers:
            if isinstance(g, JointsGripper):
                g.enable(None if g.stopping else self._measured(g.names), motion_s=motion)
            else:
                g.enable(motion_s=motion)

    def _grippers_disable(self) -> None:
        for g in self.grippers:
            g.disable()

    def _grippers_step(self, now: float, motion: float, arm_tracking: bool
                       ) -> tuple[np.ndarray, np.ndarray, float, bool] | None:
        """Step every gripper: send due GripperCommand goals; return the finger joints'
        (positions, velocities, dt, any still commanded), None without finger joints. Every
        arm command carries every finger joint (a fixed layout for Float64MultiArray); one
        at rest and disabled repeats where it rests."""
        outs = []
        for g in self.grippers:
            # the hands come in the body's message: the same age budget (auto) applies
            g.gate.pose_timeout = self.controller.gate.pose_timeout
            out = g.step(now, motion, arm_tracking)
            key = f"gripper_{g.spec.key}"
            self._gripper_status[key] = "disabled" if out is None else (
                out.status.mode + (f" ({out.status.reason}"
                                   + (f": {out.status.detail}" if out.status.detail else "")
                                   + ")" if out.status.reason else ""))
            if isinstance(g, CommandGripper):
                if out is not None and out.goal is not None:
                    self._send_gripper_goal(g, *out.goal)
            else:
                outs.append((g, out))
        if not outs:
            return None
        pos, vel, dt = [], [], 0.0
        for g, o in outs:
            if o is None:  # at rest and disabled: repeat where it rests
                pos.append(g.limiter.positions.copy())
                vel.append(np.zeros(len(g)))
            else:
                pos.append(o.positions)
                vel.append(o.velocities)
                dt = max(dt, o.dt)
        active = any(o is not None for _, o in outs)
        return np.concatenate(pos), np.concatenate(vel), dt, active

    def _send_gripper_goal(self, g: CommandGripper, position: float, max_effort: float) -> None:
        client = self._gripper_clients[id(g)]
        if not client.server_is_ready():  # type: ignore[attr-defined]
            g.goal_not_sent()  # offered again at the next interval
            self.gripper_goals_dropped += 1
            self.get_logger().warning(
                f"gripper action {g.spec.action} not available: goal position {position:.4g} "
                "not sent", throttle_duration_sec=2.0)
            return
        goal = self._gripper_action_type.Goal()
        goal.command.position = float(position)
        goal.command.max_effort = float(max_effort)
        future = client.send_goal_async(goal)  # type: ignore[attr-defined]
        future.add_done_callback(lambda f: self._on_gripper_goal_response(g, position, f))

    def _on_gripper_goal_response(self, g: CommandGripper, position: float,
                                  future: object) -> None:
        """Counted as sent only once the server accepted it; a rejected goal is offered
        again (goal_not_sent), counted, and shown in the gripper's status."""
        key = f"gripper_{g.spec.key}"
        handle = future.result() if future.exception() is None else None  # type: ignore[attr-defined]
        if handle is not None and handle.accepted:
            self.gripper_goals_sent += 1
            self._gripper_rejected.pop(key, None)
            return
        g.goal_not_sent()
        self.gripper_goals_rejected += 1
        why = "rejected by the action server" if handle is not None else \
            f"no answer: {future.exception()}"  # type: ignore[attr-defined]
        self._gripper_rejected[key] = f"goal {position:.4g} {why}"
        self.get_logger().warning(f"gripper action {g.spec.action}: goal {position:.4g} {why}",
                                  throttle_duration_sec=2.0)

    def _gripper_diagnostics(self) -> list[KeyValue]:
        if not self.grippers:
            return []
        return [*(KeyValue(key=k, value=v + (f"; last goal {self._gripper_rejected[k]}"
                                             if k in self._gripper_rejected else ""))
                  for k, v in self._gripper_status.items()),
                KeyValue(key="gripper_goals_sent", value=str(self.gripper_goals_sent)),
                KeyValue(key="gripper_goals_dropped", value=str(self.gripper_goals_dropped)),
                KeyValue(key="gripper_goals_rejected",
                         value=str(self.gripper_goals_rejected))]

    def _publish_diagnostics(self) -> None:
        if not self.context.ok():
            return
        st = DiagnosticStatus(name="teleop_node: safety", hardware_id=self.joint_map.robot)
        enabled = self.controller.enabled
        st.level = DiagnosticStatus.OK
        st.message = "disabled" if not enabled else "enabled"
        st.values = [KeyValue(key="enabled", value=str(enabled)),
                     KeyValue(key="rate_hz", value=f"{self._rate():.1f}"),
                     KeyValue(key="commands_published", value=str(self.published)),
                     KeyValue(key="retarget",
                              value=self.robot.retarget if self.robot else "joint"),
                     KeyValue(key="collision_cuts", value=str(self.controller.collision_cuts))]
        info = self.controller.pose_timeout_info
        st.values += [KeyValue(key="pose_timeout", value=f"{info.timeout:.3f}"),
                      KeyValue(key="pose_timeout_mode", value="auto" if info.auto else "fixed"),
                      KeyValue(key="pose_age_p95", value=f"{info.age_p95:.3f}"),
                      KeyValue(key="pose_period", value=f"{info.period:.3f}"),
                      KeyValue(key="pose_timeout_needed", value=f"{info.needed:.3f}"),
                      KeyValue(key="pose_timeout_note", value=info.note)]
        if info.note == "estimator_too_slow" and enabled:
            # poses go stale between arrivals: the robot stutters; say so where it shows
            st.level = DiagnosticStatus.WARN
            st.message = (f"estimator too slow: poses need {info.needed:.2f} s, cap "
                          f"pose_timeout_max {info.timeout:.2f} s")
        st.values += self._gripper_diagnostics()
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._publish(self.diag_pub, arr)


def brake_to_rest(node: TeleopNode, executor: Executor,
                  give_up: Callable[[], bool] = lambda: False, margin_s: float = 3.0) -> bool:
    """Disable and keep stepping until the arm and the fingers are at rest (within their
    acceleration limits), before a shutdown; ``give_up`` (a second Ctrl-C) leaves at once.
    From here on ``~/enable`` is refused (callbacks are still served while braking). False,
    with an error logged, when it ended with the robot still commanded in motion (the
    deadline passed, or ``give_up``): the caller exits non-zero."""
    node.shutting_down = True
    node.controller.disable()
    node._grippers_disable()
    if node.controller.stopping:
        node.get_logger().info("shutting down: braking to rest first")
    # a bounded wait: braking time with room for control steps that run late on a loaded
    # computer (a robot stopped from speed is the worse outcome; 1 s of margin was not
    # enough on 2 busy cores)
    allowed = 3.0 * node.braking_time() + margin_s
    deadline = time.monotonic() + allowed
    while (node.context.ok() and (node.controller.stopping or node.fingers_stopping())
           and not give_up() and time.monotonic() < deadline):
        executor.spin_once(timeout_sec=0.02)
    if not (node.controller.stopping or node.fingers_stopping()):
        return True
    why = "a second signal" if give_up() else "the context shut down" \
        if not node.context.ok() else f"the braking deadline of {allowed:.1f} s passed"
    node.get_logger().error(
        f"shutting down with the robot still commanded in motion ({why}); last command "
        f"velocities {np.round(node.controller.limiter.velocities, 3).tolist()} rad/s")
    return False


def main(args: list[str] | None = None) -> int:
    """Exit code 1 with the reason on stderr when the node cannot start; 0 after SIGINT /
    SIGTERM (having braked to rest first) or an external shutdown."""
    # Our own signal handling (run_node_until_signal): rclpy's would shut the context down at
    # once, mid-motion (the robot stops from speed) and sometimes mid-publish (RCLError).
    return run_node_until_signal(TeleopNode, "teleop_node", args, on_stop=brake_to_rest)


if __name__ == "__main__":
    sys.exit(main())
