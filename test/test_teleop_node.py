"""teleop_node over real DDS: angles to commands, and every safety rule."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from mocap_ros.core.skeleton import JOINT_NAMES
from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.ros.teleop_node import TeleopNode
from mocap_ros.teleop.angles import ANATOMICAL_RANGES, ANGLE_NAMES, angles_to_local_rotations
from mocap_ros.teleop.retarget import RobotJointMap

from ros_helpers import make_executor, ros_context, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
CONFIG = Path(__file__).resolve().parents[1] / "config"
PERIOD = 1 / 50


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Operator:
    """Publishes BodyPose from anatomical angles; records commands and status."""

    def __init__(self, ctx, out_type=JointState):
        self.node = rclpy.create_node("operator", context=ctx)
        self.pub = self.node.create_publisher(BodyPose, "mocap/body_pose", 10)
        self.commands: list[tuple[float, list[float]]] = []
        self.messages: list = []  # the command messages themselves, in arrival order
        self.status: list[TeleopStatus] = []
        self.node.create_subscription(out_type, "joint_commands", self._on_cmd, 100)
        self.node.create_subscription(TeleopStatus, "teleop/status", self.status.append, 100)
        self.enable_client = self.node.create_client(SetBool, "teleop_node/enable")

    def _on_cmd(self, msg):
        if isinstance(msg, JointState):
            pos = list(msg.position)
        elif isinstance(msg, JointTrajectory):
            pos = list(msg.points[0].positions)
        else:
            pos = list(msg.data)
        self.messages.append(msg)
        self.commands.append((time.monotonic(), pos))

    def pose(self, angles=None, valid=True, confidence=1.0, age=0.0, quats=None, stamp=None,
             person_check=BodyPose.PERSON_CONFIRMED, joint_confidence=None):
        """Publish one pose stamped ``stamp`` (default: now - age); returns the stamp."""
        msg = BodyPose(valid=valid, confidence=confidence, joint_names=list(JOINT_NAMES),
                       person_check=person_check)
        if joint_confidence is not None:
            msg.joint_confidence = [float(c) for c in joint_confidence]
        q = quats if quats is not None else angles_to_local_rotations(angles or {})
        msg.local_rotations = [type(BodyPose().root_pose.orientation)(
            x=float(a[0]), y=float(a[1]), z=float(a[2]), w=float(a[3])) for a in q]
        now = self.node.get_clock().now().nanoseconds * 1e-9 - age if stamp is None else stamp
        msg.header.stamp.sec = int(now)
        msg.header.stamp.nanosec = int((now % 1) * 1e9)
        msg.header.frame_id = "camera"
        self.pub.publish(msg)
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def enable(self, ex, on=True):
        assert self.enable_client.wait_for_service(timeout_sec=10.0)
        fut = self.enable_client.call_async(SetBool.Request(data=on))
        assert wait_for(fut.done, ex, timeout=10.0)
        assert fut.result().success, fut.result().message
        return fut.result()

    def stream(self, ex, seconds, **pose_kw):
        """Publish a pose at 30 Hz for ``seconds`` while spinning."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pose(**pose_kw)
            wait_for(lambda: False, ex, timeout=1 / 30)


def make_teleop(ctx, config="teleop_generic.yaml", **params):
    # these tests have no robot publishing joint_states: they opt in to starting from the
    # safe pose (test_enable_needs_fresh_joint_states covers the default)
    params = {"robot_config": str(CONFIG / config), "allow_enable_without_joint_states": True,
              **params}
    return TeleopNode(context=ctx,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


ARM = {"left_shoulder_flexion": 0.6, "left_shoulder_abduction": 0.3, "left_elbow_flexion": 1.0,
       "right_shoulder_flexion": 0.2, "right_shoulder_abduction": 0.5,
       "right_elbow_flexion": 0.7, "torso_yaw": 0.1, "head_pitch": 0.15}


@pytest.mark.parametrize("config,mirror", [("teleop_generic.yaml", True),
                                           ("teleop_generic.yaml", False),
                                           ("teleop_fr3.yaml", False), ("teleop_g1.yaml", False)])
def test_commands_converge_to_scaled_operator_angles(ctx, tmp_path, config, mirror):
    import yaml

    data = yaml.safe_load((CONFIG / config).read_text())
    data["mirror"] = mirror
    data["retarget"] = "joint"  # this test is about the per-joint maps (FR3 ships in task)
    cfg = tmp_path / config
    cfg.write_text(yaml.safe_dump(data))
    jmap = RobotJointMap.from_yaml(cfg)
    angles = dict.fromkeys(ANGLE_NAMES, 0.0) | ARM
    expected = jmap.command(angles)
    node = make_teleop(ctx, str(cfg))
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 0.5, angles=angles)
        # hold the pose until the rate-limited output settles
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            op.stream(ex, 0.3, angles=angles)
            if op.commands and np.allclose(op.commands[-1][1], expected, atol=math.radians(1)):
                break
        got = np.array(op.commands[-1][1])
        assert np.all(np.abs(got - expected) <= math.radians(1.0)), (jmap.names, got, expected)
        assert op.status[-1].tracking and op.status[-1].mode == "tracking"
        assert op.status[-1].target_error == -1.0  # joint mode: no tool target
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_disabled_publishes_nothing_and_enable_disable_via_service(ctx):
    node = make_teleop(ctx)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.stream(ex, 1.0, angles=ARM)
        assert op.commands == []
        assert op.status and all(s.mode == "disabled" and not s.enabled for s in op.status)
        op.enable(ex)
        op.stream(ex, 0.5, angles=ARM)
        assert op.commands
        op.enable(ex, on=False)
        # it brakes to rest first (mode "stopping"), then goes silent
        assert wait_for(lambda: op.status[-1].mode == "disabled", ex, timeout=10.0)
        n = len(op.commands)
        op.stream(ex, 0.5, angles=ARM)
        assert len(op.commands) == n
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def settle(op, ex, angles, timeout=30.0):
    """Stream ``angles`` until the robot is at rest on them (however loaded the machine)."""
    def at_rest():
        return (len(op.commands) > 2 and op.status and op.status[-1].tracking
                and op.commands[-1][1] == op.commands[-2][1] == op.commands[-3][1])
    end = time.monotonic() + timeout
    while not at_rest() and time.monotonic() < end:
        op.stream(ex, 0.2, angles=angles)
    assert at_rest()


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


@pytest.mark.parametrize(
    "bad,reason",
    [
        (dict(valid=False), "invalid"),
        (dict(confidence=0.1), "low_confidence"),
        (dict(age=1.0), "stale"),
        (dict(angles=ARM | {"left_elbow_flexion": 2.4, "right_elbow_flexion": 2.4}), "jump"),
        (dict(quats=np.full((24, 4), np.nan)), "invalid"),
        (dict(angles=ARM | {"left_forearm_pronation": 2.9}), "out_of_range"),
        # issue 10 item 13: a body no person detector vouched for is never followed
        (dict(person_check=BodyPose.PERSON_UNCHECKED), "unconfirmed"),
        (dict(person_check=BodyPose.PERSON_NOT_FOUND), "unconfirmed"),
        # item 12: an occluded elbow decides, whatever the whole-body confidence says
        (dict(joint_confidence=[0.95] * 18 + [0.1] + [0.95] * 5), "low_confidence"),
    ],
)
def test_bad_poses_hold_within_one_control_period(ctx, bad, reason):
    node = make_teleop(ctx)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        settle(op, ex, ARM)
        n_before = len(op.commands)
        stamp = op.pose(**({"angles": ARM} | bad))
        assert wait_for(lambda: node._last_pose_stamp == stamp, ex, timeout=5.0)
        taken_in = node.last_pose_rx_s
        # the first control step after the node took the pose in already holds, for the
        # pose's reason (order of the node's own stamps, no wall-clock budget)
        assert wait_for(lambda: any(_stamp(s) > taken_in for s in op.status), ex, timeout=5.0)
        first = next(s for s in op.status if _stamp(s) > taken_in)
        assert first.reason == reason and not first.tracking
        assert wait_for(lambda: len(op.commands) >= n_before + 10, ex, timeout=5.0)
        before = np.array(op.commands[n_before - 1][1])
        later = np.array([c for _, c in op.commands[n_before:]])
        # the robot was at rest on the good pose: holding keeps it there, it does not
        # move toward the refused pose
        assert np.abs(later - before).max() < 0.02
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_legs_out_of_view_do_not_stop_the_arms(ctx):
    """An operator at a desk: the legs' confidence is ~0, the arms' high, the whole-body
    confidence under the threshold; the arm map follows (issue 10 item 12)."""
    conf = [0.95] * 24
    for j in (4, 5, 7, 8, 10, 11):  # knees, ankles, feet
        conf[j] = 0.02
    node = make_teleop(ctx)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        for _ in range(200):
            op.pose(angles=ARM, confidence=0.3, joint_confidence=conf)
            ex.spin_once(timeout_sec=0.02)
            if op.status and op.status[-1].tracking:
                break
        assert op.status[-1].tracking and op.status[-1].reason == ""
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_stopped_stream_goes_stale(ctx):
    timeout = 0.25
    node = make_teleop(ctx, pose_timeout=timeout)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 1.0, angles=ARM)
        assert any(s.tracking for s in op.status)
        assert wait_for(lambda: op.status[-1].reason == "stale", ex, timeout=5.0)
        # every status agrees with its own pose age: tracking only on fresh data, stale
        # as soon as the newest pose is older than pose_timeout
        for s in op.status:
            if not s.enabled:
                continue
            if s.tracking:
                assert 0.0 <= s.pose_age <= timeout + 1e-9
            if s.pose_age > timeout + 1e-9:
                assert s.reason == "stale" and not s.tracking
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def _random_angles(rng: np.random.Generator) -> dict[str, float]:
    """Any angles inside the anatomical ranges (the gate refuses the others)."""
    return {n: float(rng.uniform(lo, hi)) for n, (lo, hi) in ANATOMICAL_RANGES.items()}


@pytest.mark.parametrize("out_type,kind", [(JointTrajectory, "joint_trajectory"),
                                           (JointState, "joint_state"),
                                           (Float64MultiArray, "float64_multi_array")])
def test_limits_never_exceeded_for_random_poses(ctx, out_type, kind):
    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    node = make_teleop(ctx, "teleop_g1.yaml", output_type=kind, max_jump=6.0)
    op = Operator(ctx, out_type)
    ex = make_executor(ctx, node, op.node)
    rng = np.random.default_rng(7)
    try:
        op.enable(ex)
        sent = 0
        while sent < 60 or len(op.commands) < 100:
            op.pose(angles=_random_angles(rng))
            sent += 1
            wait_for(lambda: False, ex, timeout=1 / 30)
        cmds = np.array([c for _, c in op.commands])
        assert np.all(cmds >= jmap.lower - 1e-9) and np.all(cmds <= jmap.upper + 1e-9)
        steps = np.abs(np.diff(cmds, axis=0))
        assert np.any(steps > 0)  # it did move
        vmax = jmap.velocity_limits
        if kind == "joint_trajectory":
            eps = np.finfo(np.float32).eps  # joint_trajectory_controller's own threshold
            tfs = []
            for msg in op.messages:
                (point,) = msg.points
                # zero end velocity (or none): accepted by joint_trajectory_controller
                # with its default allow_nonzero_velocity_at_trajectory_end: false
                assert all(abs(v) <= eps for v in point.velocities)
                tfs.append(point.time_from_start.sec + point.time_from_start.nanosec * 1e-9)
            tfs = np.array(tfs)
            assert np.all(tfs > 0) and np.all(tfs <= 2 * PERIOD + 1e-9)
            # the speed the controller is told (distance / time_from_start) never exceeds
            # the enforced velocity limit: time_from_start is the time the step covered
            assert np.all(steps <= vmax * tfs[1:, None] + 1e-9)
        elif kind == "joint_state":
            stamps = np.array([_stamp(m) for m in op.messages])
            dts = np.diff(stamps)
            assert np.all(dts > 0)
            # the stamps are the node clock at each step: moves fit the time between them
            # (+5 ms: the stamp is read beside the steady motion clock, and a busy machine
            # can preempt between the two reads; joint_trajectory above checks exactly)
            assert np.all(steps <= vmax * (dts[:, None] + 5e-3) + 1e-9)
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_enable_needs_fresh_joint_states(ctx):
    node = make_teleop(ctx, allow_enable_without_joint_states=False)
    op = Operator(ctx)
    js_pub = op.node.create_publisher(JointState, "joint_states", 10)
    ex = make_executor(ctx, node, op.node)
    try:
        assert op.enable_client.wait_for_service(timeout_sec=10.0)
        fut = op.enable_client.call_async(SetBool.Request(data=True))
        assert wait_for(fut.done, ex, timeout=10.0)
        assert not fut.result().success and "joint_states" in fut.result().message
        op.stream(ex, 0.5, angles=ARM)
        assert op.commands == [] and not node.controller.enabled
        # a robot that reports where it is can be enabled, and starts exactly there
        where = [0.1 * (i % 3) for i in range(len(node.joint_map.names))]
        where = list(np.clip(where, node.joint_map.lower, node.joint_map.upper))
        msg = JointState(name=list(node.joint_map.names), position=where)
        assert wait_for(lambda: node._joint_positions, ex, timeout=10.0,
                        on_tick=lambda: js_pub.publish(msg))
        assert op.enable(ex).message == "enabled from joint_states"
        assert wait_for(lambda: op.commands, ex, timeout=5.0)
        assert np.allclose(op.commands[0][1], where, atol=1e-9)
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


FAR = {"left_elbow_flexion": 2.3, "right_elbow_flexion": 2.3, "left_shoulder_flexion": 1.2,
       "right_shoulder_flexion": 1.2}


def _velocities(msgs) -> np.ndarray:
    """Per JointTrajectory command: the velocity it commands, distance / time_from_start
    (the node says exactly how long each step took, so no wall clock is needed)."""
    pos = np.array([m.points[0].positions for m in msgs])
    tfs = np.array([m.points[0].time_from_start.sec + m.points[0].time_from_start.nanosec
                    * 1e-9 for m in msgs])
    return np.diff(pos, axis=0) / tfs[1:, None], tfs[1:]


def _stream_until_moving(op, ex, speed=0.5, timeout=20.0) -> None:
    """Stream FAR until the commands move faster than ``speed`` rad/s (any joint)."""
    def fast():
        return len(op.messages) > 1 and np.max(np.abs(_velocities(op.messages[-2:])[0])) > speed
    end = time.monotonic() + timeout
    while not fast() and time.monotonic() < end:
        op.stream(ex, 0.05, angles=FAR)
    assert fast(), "moving fast"


def _accel_ok(jmap, msgs) -> None:
    """Velocity changes between consecutive commands fit the acceleration limit."""
    v, tfs = _velocities(msgs)
    dv = np.abs(np.diff(v, axis=0))
    assert np.all(dv <= jmap.acceleration_limits * tfs[1:, None] + 1e-6), dv.max(axis=0)


def test_enable_is_idempotent_and_disable_brakes_then_goes_silent(ctx):
    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_generic.yaml")
    node = make_teleop(ctx, output_type="joint_trajectory")
    op = Operator(ctx, JointTrajectory)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        _stream_until_moving(op, ex)
        assert op.enable(ex).message == "already enabled"
        op.stream(ex, 0.1, angles=FAR)
        n = len(op.messages)
        op.enable(ex, on=False)
        assert wait_for(lambda: op.status and op.status[-1].mode == "disabled", ex, timeout=5.0)
        wait_for(lambda: False, ex, timeout=0.2)
        msgs = op.messages
        _accel_ok(jmap, msgs)  # no velocity step on the second enable, nor on disable
        assert len(msgs) > n + 3, "braking from speed takes several commands"
        assert np.all(_velocities(msgs[-2:])[0] == 0.0), "comes to rest, then silent"
        assert any(s.mode == "stopping" for s in op.status)
        done = len(op.messages)
        op.stream(ex, 0.3, angles=FAR)
        assert len(op.messages) == done
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_joint_states_from_several_publishers_merge_per_joint(ctx):
    node = make_teleop(ctx, allow_enable_without_joint_states=False, joint_states_timeout=0.3)
    op = Operator(ctx)
    arm_pub = op.node.create_publisher(JointState, "joint_states", 10)
    head_pub = op.node.create_publisher(JointState, "joint_states", 10)
    ex = make_executor(ctx, node, op.node)
    names = list(node.joint_map.names)
    where = np.clip([0.05 * (i % 4) for i in range(len(names))], node.joint_map.lower,
                    node.joint_map.upper)
    arm = JointState(name=names[:-2], position=list(where[:-2]))  # e.g. an arm driver
    head = JointState(name=names[-2:], position=list(where[-2:]))  # a second driver
    try:
        assert op.enable_client.wait_for_service(timeout_sec=10.0)
        # both publish; each message names only its own joints
        wait_for(lambda: False, ex, timeout=1.0,
                 on_tick=lambda: (arm_pub.publish(arm), head_pub.publish(head)))
        assert op.enable(ex).message == "enabled from joint_states"
        assert wait_for(lambda: op.commands, ex, timeout=5.0)
        assert np.allclose(op.commands[0][1], where, atol=1e-9)
        op.enable(ex, on=False)
        wait_for(lambda: False, ex, timeout=0.2)
        # per-joint freshness: the head driver stops, the arm keeps publishing
        wait_for(lambda: False, ex, timeout=0.8, on_tick=lambda: arm_pub.publish(arm))
        fut = op.enable_client.call_async(SetBool.Request(data=True))
        assert wait_for(fut.done, ex, timeout=10.0)
        assert not fut.result().success
        assert names[-1] in fut.result().message and names[0] not in fut.result().message
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_pose_queue_keeps_only_the_newest(ctx):
    node = make_teleop(ctx)
    op = Operator(ctx)
    node_ex = make_executor(ctx, node)
    op_ex = make_executor(ctx, op.node)
    try:
        assert wait_for(lambda: node.poses_received > 0, node_ex, op_ex, timeout=10.0,
                        on_tick=lambda: op.pose(angles=ARM))
        # teleop is busy (not spinning) while ten poses arrive
        before = node.poses_received
        stamps = []
        for k in range(10):
            stamps.append(op.pose(angles=ARM, age=0.1 - 0.01 * k))
        assert wait_for(lambda: False, op_ex, timeout=0.5) is False  # let DDS deliver them
        for _ in range(20):
            node_ex.spin_once(timeout_sec=0.01)
        # it then reads the newest pose only, never the queued stale ones
        assert node._last_pose_stamp == stamps[-1]
        assert node.poses_received == before + 1
    finally:
        node_ex.shutdown()
        op_ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_sim_time_faster_than_real_time_keeps_real_time_limits_and_clock_jumps(ctx):
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_generic.yaml")
    node = make_teleop(ctx, use_sim_time=True, pose_timeout=1.0, output_type="joint_state")
    op = Operator(ctx)
    clock_pub = op.node.create_publisher(Clock, "/clock", 10)
    ex = make_executor(ctx, node, op.node)
    m0 = time.monotonic()
    base = [1000.0]

    def sim() -> float:  # /clock runs 4x faster than real time (`replay --rate 4`)
        return base[0] + 4.0 * (time.monotonic() - m0)

    def tick() -> None:
        t = sim()
        clock_pub.publish(Clock(clock=Time(sec=int(t), nanosec=int(t % 1 * 1e9))))

    def stream_until(done, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            tick()
            op.pose(angles=FAR, stamp=sim() - 0.1)
            wait_for(lambda: False, ex, timeout=0.01)
        return done()

    def moved() -> float:
        return float(np.max(np.abs(np.array(op.commands[-1][1]) - op.commands[0][1]))) \
            if op.commands else 0.0

    try:
        assert wait_for(lambda: node._now() > base[0], ex, timeout=10.0, on_tick=tick,
                        tick_period=0.01)
        t_enable = time.monotonic()
        op.enable(ex)
        assert stream_until(lambda: moved() > 0.3), "it did move"
        p0 = np.array(op.commands[0][1])
        for t_rx, p in op.commands:
            # a command received t_rx - t_enable seconds (real time) after enabling cannot
            # have moved further than the velocity limit allows in that real time
            assert np.all(np.abs(np.array(p) - p0) <= jmap.velocity_limits * (t_rx - t_enable)
                          + 1e-6)
        # `replay --loop`: /clock jumps 10 s back while the arm moves
        n = len(op.status)
        base[0] -= 10.0
        # fresh poses on the new time base are followed again, after a clock_jump hold
        assert stream_until(lambda: any(s.reason == "clock_jump" for s in op.status[n:])
                            and op.status[-1].tracking)
        after = op.status[n:]
        # it braked to rest (clock_jump) before following again
        jump = next(i for i, s in enumerate(after) if s.reason == "clock_jump")
        resumed = next(i for i, s in enumerate(after) if i > jump and s.tracking)
        assert after[resumed - 1].reason == "clock_jump"
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_ctrl_c_while_moving_brakes_and_exits_cleanly(ctx):
    import os
    import signal
    import subprocess
    import sys

    from ros_helpers import DOMAIN_ID

    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_generic.yaml")
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mocap_ros.ros.teleop_node", "--ros-args",
         "-p", f"robot_config:={CONFIG / 'teleop_generic.yaml'}",
         "-p", "allow_enable_without_joint_states:=true", "-p", "output_type:=joint_trajectory"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    op = Operator(ctx, JointTrajectory)
    ex = make_executor(ctx, op.node)
    try:
        op.enable(ex)
        _stream_until_moving(op, ex)
        n = len(op.messages)
        proc.send_signal(signal.SIGINT)
        assert wait_for(lambda: proc.poll() is not None, ex, timeout=20.0)
        wait_for(lambda: False, ex, timeout=0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, _ = proc.communicate(timeout=30)
        ex.shutdown()
        op.node.destroy_node()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "RCLError" not in out, out
    msgs = op.messages
    assert len(msgs) > n + 3, "brakes over several commands before going silent"
    assert np.all(_velocities(msgs[-2:])[0] == 0.0), "at rest when it exits"
    _accel_ok(jmap, msgs[n - 1:])


def test_ros_helpers_honour_ros_domain_id():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MOCAP_ROS_TEST_DOMAIN_ID"}
    env["ROS_DOMAIN_ID"] = "42"
    code = "import ros_helpers; print(ros_helpers.DOMAIN_ID)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).parent, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "42", out


def test_dead_estimator_reads_stale_not_its_last_refusal(ctx):
    node = make_teleop(ctx, pose_timeout=0.25)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 0.3, angles=ARM)
        # the estimator loses confidence, then dies (mocap_node killed)
        end = time.monotonic() + 10.0
        while op.status[-1].reason != "low_confidence" and time.monotonic() < end:
            op.stream(ex, 0.1, angles=ARM, confidence=0.1)
        assert op.status[-1].reason == "low_confidence"
        assert wait_for(lambda: op.status[-1].pose_age > 0.5, ex, timeout=10.0)
        assert op.status[-1].reason == "stale"
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_task_mode_over_dds_commands_are_collision_free_and_within_limits(ctx):
    """FR3 in task mode (its shipped default): a stream of BodyPose moving the operator's
    right arm forward, sideways and bending the elbow; every JointTrajectory command is
    inside the enforced limits, keeps every checked geom pair the collision margin apart
    (an independent CollisionChecker), and keeps the velocity and acceleration limits."""
    from mocap_ros.robots.collision import CollisionChecker
    from mocap_ros.teleop.robot_setup import TeleopRobot

    jmap, robot = TeleopRobot.from_yaml(CONFIG / "teleop_fr3.yaml")
    assert robot is not None and robot.retarget == "task"
    checker = CollisionChecker(robot.robot, margin=robot.margin)
    node = make_teleop(ctx, "teleop_fr3.yaml", output_type="joint_trajectory")
    assert node.robot is not None and node.robot.retarget == "task"
    op = Operator(ctx, JointTrajectory)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        start = time.monotonic()
        while time.monotonic() - start < 6.0:
            s = time.monotonic() - start
            angles = {"right_shoulder_flexion": 0.9 * math.sin(0.7 * s) + 0.4,
                      "right_shoulder_abduction": 0.6 * max(0.0, math.sin(0.5 * s)),
                      "right_elbow_flexion": 0.8 + 0.6 * math.sin(1.1 * s)}
            op.pose(angles=angles)
            wait_for(lambda: False, ex, timeout=1 / 30)
        cmds = np.array([m.points[0].positions for m in op.messages])
        assert len(cmds) > 100
        assert np.all(cmds >= jmap.lower - 1e-9) and np.all(cmds <= jmap.upper + 1e-9)
        dist = [checker.min_distance(robot.to_model(q), robot.margin + 1e-3)[0] for q in cmds]
        assert min(dist) >= robot.margin - 1e-9
        assert np.ptp(cmds, axis=0).max() > 0.3  # it followed the operator
        assert any(st.tracking for st in op.status)
        # the tool's distance to its target travels on the status (issue 24)
        for st in op.status:
            if st.tracking:
                assert 0.0 <= st.target_error < 1.0
            if st.mode == "limited":
                assert st.reason == "unreachable" and st.target_error > 0.05
        v, _ = _velocities(op.messages)
        assert np.all(np.abs(v) <= jmap.velocity_limits + 1e-6)
        cuts = node.controller.collision_cuts
        assert cuts == 0  # the IK kept its margin: the guard never had to stop the arm
        _accel_ok(jmap, op.messages)
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_pose_timeout_auto_follows_a_slow_estimator_and_reports_its_budget(ctx):
    """Poses 0.35 s old on arrival (a busy CPU estimator): a fixed 0.25 s holds them all
    stale; auto (the default) measures the age and rate, follows them, says so in teleop/
    status and /diagnostics, and still reports a dead estimator stale within the cap."""
    from diagnostic_msgs.msg import DiagnosticArray

    node = make_teleop(ctx, pose_timeout="auto")
    op = Operator(ctx)
    diags: list = []
    op.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 2.5, angles=ARM, age=0.35)
        recent = [s for s in op.status[-25:] if s.enabled]
        assert recent and all(s.pose_timeout_auto for s in recent)
        assert sum(s.tracking for s in recent) >= 0.8 * len(recent)
        last = recent[-1]
        assert last.pose_timeout_note == ""
        assert last.pose_age_p95 == pytest.approx(0.35, abs=0.1)
        assert 0.35 < last.pose_timeout <= 0.5
        assert wait_for(lambda: any(kv.key == "pose_timeout" for d in diags
                                    for st in d.status for kv in st.values), ex, timeout=3.0)
        # the estimator dies: stale once the newest pose is older than the budget (<= cap)
        n = len(op.status)
        assert wait_for(lambda: op.status[-1].reason == "stale", ex, timeout=3.0)
        for s in op.status[n:]:
            assert s.pose_timeout <= 0.5 + 1e-9
            if s.pose_age > 0.5 + 1e-9:
                assert s.reason == "stale" and not s.tracking
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_shutdown_braking_refuses_enable(ctx):
    """Issue 21 item 5: while brake_to_rest brakes (callbacks are served), an ~/enable is
    refused; before the fix it re-armed teleop in the middle of the shutdown."""
    from mocap_ros.ros.teleop_node import brake_to_rest

    node = make_teleop(ctx, output_type="joint_trajectory")
    op = Operator(ctx, JointTrajectory)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        _stream_until_moving(op, ex)
        asked: list = []

        def ask_enable() -> bool:  # an operator's ~/enable arrives during the braking
            if not asked:
                asked.append(op.enable_client.call_async(SetBool.Request(data=True)))
            return False

        braked = brake_to_rest(node, ex, ask_enable)
        assert wait_for(asked[0].done, ex, timeout=10.0)
        assert not asked[0].result().success, asked[0].result().message
        assert "shutting down" in asked[0].result().message
        assert not node.controller.enabled and not node.controller.stopping
        assert braked is True
        wait_for(lambda: False, ex, timeout=0.2)
        assert np.all(_velocities(op.messages[-2:])[0] == 0.0), "at rest"
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_fixed_pose_timeout_holds_the_same_slow_estimator_stale(ctx):
    node = make_teleop(ctx, pose_timeout=0.25)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 1.5, angles=ARM, age=0.35)
        enabled = [s for s in op.status if s.enabled]
        assert enabled and not any(s.tracking for s in enabled)
        assert not enabled[-1].pose_timeout_auto and enabled[-1].pose_timeout == 0.25
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_shutdown_braking_that_cannot_finish_says_so(ctx):
    """Issue 21 item 5: braking that cannot finish (here the control steps stop running)
    ends at its deadline with False and an error; before the fix it returned silently and
    the node exited 0."""
    from mocap_ros.ros.teleop_node import brake_to_rest

    node = make_teleop(ctx, output_type="joint_trajectory")
    op = Operator(ctx, JointTrajectory)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        _stream_until_moving(op, ex)
        ex.remove_node(node)
        idle = make_executor(ctx)  # spins nothing of the node: no control step runs
        t0 = time.monotonic()
        assert brake_to_rest(node, idle, margin_s=0.5) is False
        assert node.controller.stopping, "still commanded in motion"
        assert time.monotonic() - t0 < 3.0 * node.braking_time() + 2.0
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_run_node_exits_non_zero_when_on_stop_did_not_finish():
    """run_node_until_signal: an on_stop that returns False (braking ended with the robot
    still moving) makes the exit code 1; before the fix every signal exit was 0."""
    import os
    import signal

    from mocap_ros.ros.run import run_node_until_signal

    def factory():
        node = rclpy.create_node("stopper")
        # the signal comes once the node spins (a state, not a delay)
        node.create_timer(0.01, lambda: os.kill(os.getpid(), signal.SIGINT) if not sent
                          and not sent.append(1) else None)
        return node

    sent: list = []
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert run_node_until_signal(factory, "stopper", [], on_stop=lambda *_: False) == 1
        sent.clear()
        assert run_node_until_signal(factory, "stopper", [], on_stop=lambda *_: True) == 0
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
