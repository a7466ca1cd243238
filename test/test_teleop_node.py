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
from mocap_ros.teleop.angles import ANGLE_NAMES, angles_to_local_rotations
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
        self.commands.append((time.monotonic(), pos))

    def pose(self, angles=None, valid=True, confidence=1.0, age=0.0, quats=None):
        msg = BodyPose(valid=valid, confidence=confidence, joint_names=list(JOINT_NAMES))
        q = quats if quats is not None else angles_to_local_rotations(angles or {})
        msg.local_rotations = [type(BodyPose().root_pose.orientation)(
            x=float(a[0]), y=float(a[1]), z=float(a[2]), w=float(a[3])) for a in q]
        now = self.node.get_clock().now().nanoseconds * 1e-9 - age
        msg.header.stamp.sec = int(now)
        msg.header.stamp.nanosec = int((now % 1) * 1e9)
        msg.header.frame_id = "camera"
        self.pub.publish(msg)

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
        wait_for(lambda: False, ex, timeout=0.2)
        n = len(op.commands)
        op.stream(ex, 0.5, angles=ARM)
        assert len(op.commands) == n
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def _first_status_after(op, t0, reason):
    return any(s.reason == reason and not s.tracking for s in op.status
               if s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 >= t0)


@pytest.mark.parametrize(
    "bad,reason",
    [
        (dict(valid=False), "invalid"),
        (dict(confidence=0.1), "low_confidence"),
        (dict(age=1.0), "stale"),
        (dict(angles=ARM | {"left_elbow_flexion": 2.4, "right_elbow_flexion": 2.4}), "jump"),
        (dict(quats=np.full((24, 4), np.nan)), "invalid"),
    ],
)
def test_bad_poses_hold_within_one_control_period(ctx, bad, reason):
    node = make_teleop(ctx)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 1.0, angles=ARM)
        assert op.status[-1].tracking
        kw = {"angles": ARM} | bad
        t0 = node.get_clock().now().nanoseconds * 1e-9
        op.pose(**kw)
        sent = time.monotonic()
        assert wait_for(lambda: _first_status_after(op, t0, reason), ex, timeout=2.0)
        # held within one control period of the pose's arrival (+ DDS/executor slack)
        assert time.monotonic() - sent < 0.5
        wait_for(lambda: False, ex, timeout=0.3)
        before = np.array(op.commands[-1][1]) if not [t for t, _ in op.commands if t <= sent] \
            else np.array([c for t, c in op.commands if t <= sent][-1])
        later = np.array([c for t, c in op.commands if t > sent + 2 * PERIOD])
        assert len(later) >= 5, "hold keeps publishing the held command"
        # the robot was at rest on the good pose: holding keeps it there, it does not
        # move toward the refused pose
        assert np.abs(later - before).max() < 0.02
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


def test_stopped_stream_goes_stale(ctx):
    node = make_teleop(ctx, pose_timeout=0.25)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        op.enable(ex)
        op.stream(ex, 1.0, angles=ARM)
        stop = node.get_clock().now().nanoseconds * 1e-9
        assert wait_for(lambda: op.status[-1].reason == "stale", ex, timeout=2.0)
        first_stale = next(s for s in op.status if s.reason == "stale")
        t_stale = first_stale.header.stamp.sec + first_stale.header.stamp.nanosec * 1e-9
        assert t_stale - stop <= 0.25 + PERIOD + 0.1
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


@pytest.mark.parametrize("out_type,kind", [(JointTrajectory, "joint_trajectory"),
                                           (Float64MultiArray, "float64_multi_array")])
def test_limits_never_exceeded_for_random_poses(ctx, out_type, kind):
    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    node = make_teleop(ctx, "teleop_g1.yaml", output_type=kind, max_jump=6.0)
    op = Operator(ctx, out_type)
    ex = make_executor(ctx, node, op.node)
    rng = np.random.default_rng(7)
    try:
        op.enable(ex)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            q = rng.normal(size=(24, 4))
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            op.pose(quats=q)
            wait_for(lambda: False, ex, timeout=1 / 30)
        cmds = np.array([c for _, c in op.commands])
        assert len(cmds) > 50
        assert np.all(cmds >= jmap.lower - 1e-9) and np.all(cmds <= jmap.upper + 1e-9)
        # velocity limits between consecutive commands: the node integrates at most two
        # periods per step, so no step moves more than vel_limit * 2 * period
        steps = np.abs(np.diff(cmds, axis=0))
        assert np.all(steps <= jmap.velocity_limits * 2 * PERIOD + 1e-9)
        assert np.any(steps > 0)  # it did move
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
        assert wait_for(lambda: node._joint_states is not None, ex, timeout=10.0,
                        on_tick=lambda: js_pub.publish(msg))
        assert op.enable(ex).message == "enabled from joint_states"
        assert wait_for(lambda: op.commands, ex, timeout=5.0)
        assert np.allclose(op.commands[0][1], where, atol=1e-9)
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()
