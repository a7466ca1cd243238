"""Grippers through teleop_node over real DDS: scripted BodyPose hands -> GripperCommand goals
(received by a real rclpy ActionServer) and Dex3-1 finger joint commands, with hysteresis;
an invalid hand holds; disabled sends nothing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from mocap_ros.core.skeleton import JOINT_NAMES
from mocap_ros.msg import BodyPose
from mocap_ros.ros.teleop_node import TeleopNode
from mocap_ros.teleop.angles import ANGLE_NAMES, angles_to_local_rotations
from mocap_ros.teleop.retarget import RobotJointMap

from ros_helpers import make_executor, ros_context, wait_for

GripperCommand = pytest.importorskip(
    "control_msgs.action", reason="control_msgs not built (scripts/build_ros.sh)"
).GripperCommand
from rclpy.action import ActionServer, GoalResponse  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
CONFIG = Path(__file__).resolve().parents[1] / "config"
ANGLES = dict.fromkeys(ANGLE_NAMES, 0.0) | {"right_elbow_flexion": 0.5,
                                            "left_elbow_flexion": 0.5}
QUATS = angles_to_local_rotations(ANGLES)


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Operator:
    """Publishes BodyPose with scripted hands; records joint commands."""

    def __init__(self, ctx):
        self.node = rclpy.create_node("hand_operator", context=ctx)
        self.pub = self.node.create_publisher(BodyPose, "mocap/body_pose", 10)
        self.js_pub = self.node.create_publisher(JointState, "joint_states", 10)
        self.commands: list[JointState] = []
        self.node.create_subscription(JointState, "joint_commands", self.commands.append, 100)
        self.enable_client = self.node.create_client(SetBool, "teleop_node/enable")

    def pose(self, aperture: float, curl: float | None = None, *, valid: bool = True,
             confidence: float = 0.9, side: str = "right",
             person_check: int = BodyPose.PERSON_CONFIRMED) -> None:
        msg = BodyPose(valid=True, confidence=1.0, joint_names=list(JOINT_NAMES),
                       person_check=person_check)
        msg.local_rotations = [type(msg.root_pose.orientation)(
            x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])) for q in QUATS]
        now = self.node.get_clock().now().nanoseconds * 1e-9
        msg.header.stamp.sec = int(now)
        msg.header.stamp.nanosec = int((now % 1) * 1e9)
        hand = msg.left_hand if side == "left" else msg.right_hand
        hand.valid = valid
        hand.reason = "" if valid else "not_found"
        hand.confidence = confidence
        c = 1.0 - aperture if curl is None else curl
        hand.finger_curl = [float(c)] * 5
        hand.aperture = float(aperture)
        self.pub.publish(msg)

    def stream(self, ex, seconds: float, aperture, **kw) -> None:
        """30 Hz for ``seconds``; ``aperture`` a number or a function of the elapsed time."""
        t0 = time.monotonic()
        while (t := time.monotonic() - t0) < seconds:
            a = aperture(t) if callable(aperture) else aperture
            self.pose(a, **kw)
            wait_for(lambda: False, ex, timeout=1 / 30)

    def enable(self, ex, on: bool = True):
        assert self.enable_client.wait_for_service(timeout_sec=10.0)
        fut = self.enable_client.call_async(SetBool.Request(data=on))
        assert wait_for(fut.done, ex, timeout=10.0)
        return fut.result()


def teleop(ctx, cfg: Path, **params) -> TeleopNode:
    params = {"robot_config": str(cfg), "grippers": True,
              "allow_enable_without_joint_states": True, **params}
    return TeleopNode(context=ctx,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


class FakeGripperServer:
    """A real GripperCommand action server: records every goal, succeeds at once."""

    def __init__(self, ctx, name: str):
        self.node = rclpy.create_node("fake_gripper", context=ctx)
        self.goals: list[tuple[float, float]] = []
        self.server = ActionServer(self.node, GripperCommand, name, self._execute,
                                   goal_callback=self._on_goal)

    def _on_goal(self, goal) -> GoalResponse:
        self.goals.append((goal.command.position, goal.command.max_effort))
        return GoalResponse.ACCEPT

    def _execute(self, handle):
        handle.succeed()
        result = GripperCommand.Result()
        result.position = handle.request.command.position
        result.reached_goal = True
        return result


def test_franka_hand_goals_follow_a_closing_hand_with_hysteresis(ctx, tmp_path):
    data = yaml.safe_load((CONFIG / "teleop_fr3.yaml").read_text())
    data["gripper"]["right"]["action"] = "test_hand/gripper_action"
    data["gripper"]["right"]["min_goal_interval"] = 0.05
    cfg = tmp_path / "fr3.yaml"
    cfg.write_text(yaml.safe_dump(data))
    server = FakeGripperServer(ctx, "test_hand/gripper_action")
    node = teleop(ctx, cfg)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node, server.node)
    try:
        assert wait_for(lambda: node._gripper_clients and all(
            c.server_is_ready() for c in node._gripper_clients.values()), ex, timeout=10)
        # disabled: a closing and opening hand sends nothing
        op.stream(ex, 0.6, lambda t: 0.9 if t < 0.3 else 0.05)
        assert server.goals == [] and node.gripper_goals_sent == 0
        assert op.enable(ex).success
        op.stream(ex, 0.5, 0.9)  # the open hand is the reference: no goal at enable
        assert server.goals == []
        # closing over 0.5 s, then trembling inside the band (never >= open_above 0.5)
        op.stream(ex, 0.5, lambda t: 0.9 - 1.7 * t)
        op.stream(ex, 1.0, lambda t: 0.35 + 0.12 * np.sin(2 * np.pi * 3 * t))
        assert wait_for(lambda: len(server.goals) >= 1, ex, timeout=5)
        assert server.goals == [(0.0, 20.0)]
        # an invalid hand saying "open" (and one with low confidence) opens nothing
        op.stream(ex, 0.4, 0.95, valid=False)
        op.stream(ex, 0.4, 0.95, confidence=0.1)
        assert server.goals == [(0.0, 20.0)]
        # a valid open hand opens: the second goal, the Franka Hand's half width 0.04
        op.stream(ex, 0.4, 0.95)
        assert wait_for(lambda: len(server.goals) >= 2, ex, timeout=5)
        assert server.goals == [(0.0, 20.0), (0.04, 20.0)]
        # a body the arm refuses (no detector vouched for it: another person, a phantom)
        # pinches: its hand never reaches the gripper ...
        op.stream(ex, 0.5, 0.05, person_check=BodyPose.PERSON_UNCHECKED)
        # ... so the operator's half-open hand afterwards (inside the band) keeps it open
        op.stream(ex, 0.5, 0.35)
        wait_for(lambda: False, ex, timeout=0.3)
        assert server.goals == [(0.0, 20.0), (0.04, 20.0)]
        # disabled again: closing sends nothing
        assert op.enable(ex, on=False).success
        op.stream(ex, 0.5, 0.05)
        wait_for(lambda: False, ex, timeout=0.3)
        assert server.goals == [(0.0, 20.0), (0.04, 20.0)]
    finally:
        ex.shutdown()
        for n in (node, op.node, server.node):
            n.destroy_node()


def test_dex3_finger_joints_follow_hold_and_need_joint_states(ctx):
    jmap = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    node = teleop(ctx, CONFIG / "teleop_g1.yaml", allow_enable_without_joint_states=False)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node)
    try:
        fingers = node._finger_names()
        assert len(fingers) == 14
        arm_state = JointState(name=list(jmap.names), position=list(jmap.safe_pose))
        # joint_states for the arm only: enable refused, naming the hand's joints
        wait_for(lambda: False, ex, timeout=0.5, on_tick=lambda: op.js_pub.publish(arm_state))
        res = op.enable(ex)
        assert not res.success and "left_hand_thumb_0_joint" in res.message
        op.stream(ex, 0.3, 0.0, curl=1.0, side="left")
        assert op.commands == []  # disabled: nothing published
        full = JointState(name=[*jmap.names, *fingers],
                          position=[*jmap.safe_pose, *[0.0] * len(fingers)])
        wait_for(lambda: False, ex, timeout=0.5, on_tick=lambda: op.js_pub.publish(full))
        assert op.enable(ex).success
        op.stream(ex, 1.5, 0.0, curl=1.0, side="left")  # close the left hand
        names = list(op.commands[-1].name)
        assert names == [*jmap.names, *fingers]
        pos = dict(zip(names, op.commands[-1].position, strict=True))
        assert pos["left_hand_index_0_joint"] == pytest.approx(-1.5708, abs=1e-3)
        assert pos["left_hand_thumb_2_joint"] == pytest.approx(1.7453, abs=1e-3)
        assert pos["right_hand_index_0_joint"] == 0.0  # the right hand sent nothing valid
        # hysteresis: trembling curls (+-0.02, under the 0.05 rad deadband / 1.75 rad scale)
        # leave the fingers where they are
        op.stream(ex, 1.0, 0.0, curl=0.6, side="left")  # settle at curl 0.6
        before = np.array(op.commands[-1].position)
        n0 = len(op.commands)
        for c in 0.6 + 0.02 * np.sin(np.linspace(0, 12, 24)):
            op.pose(0.0, curl=float(c), side="left")
            wait_for(lambda: False, ex, timeout=1 / 30)
        after = np.array([m.position for m in op.commands[n0:]])
        idx = [names.index(n) for n in fingers]
        assert len(after) > 10
        np.testing.assert_allclose(after[:, idx], np.broadcast_to(before[idx],
                                                                  after[:, idx].shape), atol=1e-9)
        # invalid hand saying "open": the fingers hold
        n1 = len(op.commands)
        op.stream(ex, 0.6, 1.0, curl=0.0, valid=False, side="left")
        held = np.array([m.position for m in op.commands[n1:]])[:, idx]
        assert np.ptp(held, axis=0).max() < 1e-9
        np.testing.assert_allclose(held[-1], before[idx], atol=1e-9)
    finally:
        ex.shutdown()
        node.destroy_node()
        op.node.destroy_node()


class RejectingGripperServer(FakeGripperServer):
    """A real action server that refuses every goal (e.g. a gripper in an error state)."""

    def _on_goal(self, goal) -> GoalResponse:
        self.goals.append((goal.command.position, goal.command.max_effort))
        return GoalResponse.REJECT


def test_rejected_gripper_goals_are_shown_offered_again_and_not_counted_as_sent(ctx, tmp_path):
    """Issue 21 item 12: a goal the server rejected was counted as sent and invisible."""
    data = yaml.safe_load((CONFIG / "teleop_fr3.yaml").read_text())
    data["gripper"]["right"]["action"] = "test_hand/gripper_action"
    data["gripper"]["right"]["min_goal_interval"] = 0.05
    cfg = tmp_path / "fr3.yaml"
    cfg.write_text(yaml.safe_dump(data))
    server = RejectingGripperServer(ctx, "test_hand/gripper_action")
    node = teleop(ctx, cfg)
    op = Operator(ctx)
    ex = make_executor(ctx, node, op.node, server.node)
    try:
        assert wait_for(lambda: node._gripper_clients and all(
            c.server_is_ready() for c in node._gripper_clients.values()), ex, timeout=10)
        assert op.enable(ex).success
        op.stream(ex, 0.3, 0.9)  # the open hand: the reference
        op.stream(ex, 0.5, 0.05)  # closed: a goal, rejected
        end = time.monotonic() + 10.0
        while node.gripper_goals_rejected < 2 and time.monotonic() < end:
            op.stream(ex, 0.1, 0.05)  # still closed: the rejected goal is offered again
        assert node.gripper_goals_rejected >= 2, server.goals
        assert len(server.goals) >= 2 and {p for p, _ in server.goals} == {0.0}
        assert node.gripper_goals_sent == 0
        diag = {kv.key: kv.value for kv in node._gripper_diagnostics()}
        assert int(diag["gripper_goals_rejected"]) >= 2 and diag["gripper_goals_sent"] == "0"
        assert "rejected by the action server" in diag["gripper_right"], diag
    finally:
        ex.shutdown()
        for n in (node, op.node, server.node):
            n.destroy_node()
