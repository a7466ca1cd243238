"""Grippers in teleop, pure (mocap_ros.teleop.gripper): YAML validation, hysteresis, holds,
limits. The DDS side is in test_teleop_gripper_node.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocap_ros.teleop.gripper import (
    CommandGripper,
    GripperCommandSpec,
    GripperConfigError,
    HandSample,
    JointsGripper,
    JointsGripperSpec,
    grippers_from_dict,
    grippers_from_yaml,
    make_gripper,
)
from mocap_ros.teleop.retarget import RobotJointMap

CONFIG = Path(__file__).resolve().parents[1] / "config"
DT = 0.02


def hand(stamp: float, aperture: float, curl: float | None = None, *, valid: bool = True,
         confidence: float = 0.9) -> HandSample:
    c = 1.0 - aperture if curl is None else curl
    return HandSample(stamp=stamp, valid=valid, confidence=confidence,
                      finger_curl=(c,) * 5, aperture=aperture)


def franka(**kw: object) -> GripperCommandSpec:
    args: dict = dict(hand="right", action="franka_gripper/gripper_action", max_effort=20.0,
                      open_position=0.04, closed_position=0.0, close_below=0.25,
                      open_above=0.5, min_goal_interval=0.0)
    args.update(kw)
    return GripperCommandSpec(**args)


class Driver:
    """Feeds one sample per tick at 50 Hz and steps; collects the goals."""

    def __init__(self, gripper: CommandGripper | JointsGripper) -> None:
        self.g = gripper
        self.t = 100.0
        self.goals: list[tuple[float, float]] = []
        self.outs: list = []

    def tick(self, sample_fn=None, arm_tracking: bool = True, feed: bool = True):
        self.t += DT
        if feed and sample_fn is not None:
            self.g.on_hand(sample_fn(self.t), self.t)
        out = self.g.step(self.t, self.t, arm_tracking)
        self.outs.append(out)
        if isinstance(self.g, CommandGripper) and out is not None and out.goal is not None:
            self.goals.append(out.goal)
        return out


# ------------------------------------------------------------------------------- YAML
def test_shipped_yamls_load_with_their_grippers() -> None:
    g1 = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    specs = grippers_from_yaml(CONFIG / "teleop_g1.yaml", arm_joint_names=g1.names)
    assert [s.type for s in specs] == ["joints", "joints"]
    assert {s.hand for s in specs} == {"left", "right"}
    for s in specs:
        assert isinstance(s, JointsGripperSpec) and len(s.joints) == 7  # Dex3-1: 7 per hand
        assert all(j.name.startswith(f"{s.hand}_hand_") for j in s.joints)
    fr3 = RobotJointMap.from_yaml(CONFIG / "teleop_fr3.yaml")
    (spec,) = grippers_from_yaml(CONFIG / "teleop_fr3.yaml", arm_joint_names=fr3.names)
    assert isinstance(spec, GripperCommandSpec)
    assert spec.hand == "right" and spec.open_position == pytest.approx(0.04)  # half width


def test_mirror_swaps_the_followed_hand() -> None:
    section = {"left": {"type": "gripper_command", "action": "a", "max_effort": 5.0,
                        "open_position": 0.04, "closed_position": 0.0}}
    assert grippers_from_dict(section)[0].hand == "left"
    assert grippers_from_dict(section, mirror=True)[0].hand == "right"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"middle": {"type": "joints"}}, "key must be"),
        ({"left": {"type": "suction"}}, "field 'type'"),
        ({"left": {"type": "gripper_command", "action": "a", "max_effort": 5,
                   "open_position": 0.04}}, "missing field 'closed_position'"),
        ({"left": {"type": "gripper_command", "action": "a", "max_effort": 5,
                   "open_position": 0.04, "closed_position": 0.0, "close_below": 0.6,
                   "open_above": 0.5}}, "hysteresis"),
        ({"left": {"type": "gripper_command", "action": "a", "max_effort": -1,
                   "open_position": 0.04, "closed_position": 0.0}}, "max_effort"),
        ({"left": {"type": "gripper_command", "action": "a", "max_effort": 1,
                   "open_position": 0.04, "closed_position": 0.0, "speed": 1}},
         "unknown field"),
        ({"left": {"type": "joints", "joints": [
            {"name": "j", "follows": "wrist_curl", "scale": 1, "offset": 0, "lower": 0,
             "upper": 1, "velocity_limit": 1, "acceleration_limit": 1}]}}, "unknown input"),
        ({"left": {"type": "joints", "joints": [
            {"name": "j", "follows": "index_curl", "scale": 1, "offset": 0, "lower": 1,
             "upper": 0, "velocity_limit": 1, "acceleration_limit": 1}]}}, "lower"),
        ({"left": {"type": "joints", "joints": [
            {"name": "j", "follows": "index_curl", "scale": 1, "offset": 0, "lower": 0,
             "upper": 1, "velocity_limit": 0, "acceleration_limit": 1}]}}, "velocity_limit"),
        ({"left": {"type": "joints", "joints": [
            {"name": "elbow", "follows": "index_curl", "scale": 1, "offset": 0, "lower": 0,
             "upper": 1, "velocity_limit": 1, "acceleration_limit": 1}]}}, "already used"),
    ],
)
def test_bad_sections_are_refused_with_the_field_named(section: dict, message: str) -> None:
    with pytest.raises(GripperConfigError, match=message):
        grippers_from_dict(section, arm_joint_names=("elbow",))


def test_joint_map_accepts_the_gripper_section() -> None:
    data = {"robot": "r", "joints": [{"name": "j", "follows": "constant", "offset": 0.0,
                                      "lower": -1, "upper": 1, "velocity_limit": 1,
                                      "acceleration_limit": 1}],
            "gripper": {"right": {"type": "gripper_command", "action": "a",
                                  "max_effort": 1, "open_position": 1,
                                  "closed_position": 0}}}
    assert RobotJointMap.from_dict(data).names == ("j",)


# ---------------------------------------------------------------- gripper_command binary
def test_binary_hysteresis_closes_once_and_does_not_chatter() -> None:
    g = CommandGripper(franka())
    d = Driver(g)
    assert g.step(d.t, d.t, True) is None  # disabled: nothing
    g.enable(motion_s=d.t)
    for _ in range(5):
        d.tick(lambda t: hand(t, 0.9))
    assert d.goals == []  # the first samples are the reference: no goal at enable
    # closing: 0.9 -> 0.05 in 20 ticks, then trembling across close_below in the band
    for a in np.linspace(0.9, 0.05, 20):
        d.tick(lambda t, a=a: hand(t, float(a)))
    assert d.goals == [(0.0, 20.0)]
    for a in [0.3, 0.2, 0.45, 0.22, 0.49, 0.3]:  # never reaches open_above
        d.tick(lambda t, a=a: hand(t, a))
    assert d.goals == [(0.0, 20.0)]
    d.tick(lambda t: hand(t, 0.55))
    assert d.goals == [(0.0, 20.0), (0.04, 20.0)]


def test_binary_a_hand_inside_the_band_sets_no_state() -> None:
    g = CommandGripper(franka())
    d = Driver(g)
    g.enable(motion_s=d.t)
    for _ in range(5):
        d.tick(lambda t: hand(t, 0.4))
    assert g.closed is None and d.goals == []
    d.tick(lambda t: hand(t, 0.1))  # the first state: reference only
    d.tick(lambda t: hand(t, 0.9))
    assert d.goals == [(0.04, 20.0)]


@pytest.mark.parametrize("bad", [
    dict(valid=False), dict(confidence=0.1), dict(aperture=float("nan")), dict(aperture=1.5),
])
def test_never_closes_on_an_invalid_or_unconfident_hand(bad: dict) -> None:
    g = CommandGripper(franka())
    d = Driver(g)
    g.enable(motion_s=d.t)
    for _ in range(3):
        d.tick(lambda t: hand(t, 0.9))

    def closed_but_bad(t: float) -> HandSample:
        args = dict(stamp=t, valid=True, confidence=0.9, finger_curl=(1.0,) * 5, aperture=0.0)
        args.update(bad)
        return HandSample(**args)

    for _ in range(20):
        out = d.tick(closed_but_bad)
        assert out.status.mode == "holding"
        assert out.status.reason in ("invalid", "low_confidence")
    assert d.goals == [] and g.closed is False


def test_holds_while_the_arm_holds_stale_or_disabled() -> None:
    g = CommandGripper(franka())
    d = Driver(g)
    g.enable(motion_s=d.t)
    d.tick(lambda t: hand(t, 0.9))
    out = d.tick(lambda t: hand(t, 0.05), arm_tracking=False)
    assert out.status.reason == "arm_holding" and d.goals == []
    # stale: the hand stops coming (for longer than the gripper's pose age budget)
    for _ in range(int(g.gate.pose_timeout / DT) + 5):
        out = d.tick(feed=False)
    assert out.status.reason == "stale" and d.goals == []
    # an old sample (older than pose_timeout) never becomes a goal
    d.t += DT
    g.on_hand(hand(d.t - 1.0, 0.05), d.t)
    assert g.step(d.t, d.t, True).goal is None
    g.disable()
    assert g.step(d.t + 1, d.t + 1, True) is None
    g.on_hand(hand(d.t + 1, 0.05), d.t + 1)
    assert g.step(d.t + 1.02, d.t + 1.02, True) is None
    assert d.goals == []


def test_min_goal_interval_and_velocity_limit_bound_the_goals() -> None:
    g = CommandGripper(franka(mode="proportional", velocity_limit=0.05, min_goal_interval=0.1,
                              deadband=0.002))
    d = Driver(g)
    g.enable(motion_s=d.t)
    d.tick(lambda t: hand(t, 1.0))  # reference 0.04
    times = []
    for _ in range(100):
        out = d.tick(lambda t: hand(t, 0.0))
        if out.goal is not None:
            times.append(d.t)
    positions = [p for p, _ in d.goals]
    assert positions[-1] == pytest.approx(0.0)
    assert np.all(np.diff(positions) < 0)
    assert np.min(np.diff(times)) >= 0.1 - 1e-6  # at most one goal per min_goal_interval
    # each goal moved at most velocity_limit * elapsed since the previous one
    steps = np.abs(np.diff([0.04, *positions]))
    gaps = np.diff([times[0] - DT, *times])
    assert np.all(steps <= 0.05 * gaps + 1e-9)


def test_proportional_deadband_ignores_tremble() -> None:
    g = CommandGripper(franka(mode="proportional", deadband=0.004))
    d = Driver(g)
    g.enable(motion_s=d.t)
    d.tick(lambda t: hand(t, 0.5))  # reference 0.02
    rng = np.random.default_rng(0)
    for a in 0.5 + rng.uniform(-0.09, 0.09, 50):  # +-0.0036 m: inside the deadband
        d.tick(lambda t, a=a: hand(t, float(a)))
    assert d.goals == []
    d.tick(lambda t: hand(t, 0.25))
    assert d.goals == [(pytest.approx(0.01), 20.0)]


# ------------------------------------------------------------------------- joints type
def dex3_left() -> JointsGripperSpec:
    (left, _right) = sorted(grippers_from_yaml(CONFIG / "teleop_g1.yaml"),
                            key=lambda s: s.hand)
    assert isinstance(left, JointsGripperSpec) and left.hand == "left"
    return left


def test_joints_follow_curls_within_limits_and_rate_limits() -> None:
    spec = dex3_left()
    g = JointsGripper(spec)
    d = Driver(g)
    g.enable(np.zeros(len(g)), motion_s=d.t)
    prev = np.zeros(len(g))
    prev_v = np.zeros(len(g))
    vmax = g.limiter.max_velocity
    amax = g.limiter.max_acceleration
    for _ in range(150):
        out = d.tick(lambda t: hand(t, 0.0, curl=1.0))
        assert out.status.mode == "tracking"
        assert np.all(out.positions >= g.lower - 1e-12) and np.all(out.positions <= g.upper)
        assert np.all(np.abs(out.positions - prev) <= vmax * DT + 1e-9)
        assert np.all(np.abs(out.velocities - prev_v) <= amax * DT + 1e-9)
        prev, prev_v = out.positions, out.velocities
    # fully curled: each joint at clamp(scale + offset)
    np.testing.assert_allclose(out.positions, np.clip(g.scale + g.offset, g.lower, g.upper),
                               atol=1e-6)
    idx = spec.names.index("left_hand_index_0_joint")
    assert out.positions[idx] < -1.0  # the left index flexes toward its negative limit


def test_joints_deadband_hysteresis() -> None:
    g = JointsGripper(dex3_left())
    d = Driver(g)
    g.enable(np.zeros(len(g)), motion_s=d.t)
    for _ in range(100):
        d.tick(lambda t: hand(t, 0.5, curl=0.5))
    settled = g.limiter.positions.copy()
    rng = np.random.default_rng(1)
    for c in 0.5 + rng.uniform(-0.02, 0.02, 100):  # tremble: < deadband / |scale| everywhere
        out = d.tick(lambda t, c=c: hand(t, 0.5, curl=float(c)))
    np.testing.assert_allclose(out.positions, settled, atol=1e-9)


def test_joints_hold_on_invalid_hand_and_brake_on_disable() -> None:
    g = JointsGripper(dex3_left())
    d = Driver(g)
    g.enable(np.zeros(len(g)), motion_s=d.t)
    for _ in range(5):
        d.tick(lambda t: hand(t, 0.0, curl=1.0))  # start closing
    moving = g.limiter.velocities.copy()
    assert np.any(moving != 0)
    stop = g.limiter.stopping_positions()
    for _ in range(60):
        out = d.tick(lambda t: hand(t, 0.0, curl=1.0, valid=False))
        assert out.status == ("holding", "invalid", "")
    # braked to rest at the stopping point, not to the closed hand
    np.testing.assert_allclose(out.positions, stop, atol=1e-9)
    assert not np.any(out.velocities)
    # fresh valid hand: follows again
    out = d.tick(lambda t: hand(t, 0.0, curl=1.0))
    assert out.status.mode == "tracking"
    for _ in range(3):
        d.tick(lambda t: hand(t, 0.0, curl=1.0))
    g.disable()
    outs = []
    for _ in range(200):
        out = d.tick(lambda t: hand(t, 0.0, curl=1.0))
        if out is None:
            break
        outs.append(out)
        assert out.status.mode == "stopping"
    assert out is None and outs  # braked, then nothing


def test_joints_enable_refuses_broken_joint_states() -> None:
    g = JointsGripper(dex3_left())
    with pytest.raises(ValueError, match="left_hand"):
        g.enable(np.full(len(g), 3.0))
    assert not g.enabled
    with pytest.raises(ValueError):
        g.enable(np.zeros(3))


def test_a_future_stamped_hand_does_not_freeze_the_gripper() -> None:
    """One hand stamped far in the future is refused (clock_skew) and does not become the
    newest stamp: the correctly stamped hands after it still drive the gripper."""
    from mocap_ros.teleop.gripper import GRIPPER_HOLD_REASONS, _HandGate

    gate = _HandGate(min_confidence=0.5, pose_timeout=0.25)
    gate.enabled = True
    ok = HandSample(stamp=10.0, valid=True, confidence=0.9, finger_curl=(0.1,) * 5,
                    aperture=0.9)
    assert gate.on_sample(ok, 10.0) is None
    future = HandSample(stamp=1010.0, valid=True, confidence=0.9, finger_curl=(0.9,) * 5,
                        aperture=0.05)
    assert gate.on_sample(future, 10.02) == "clock_skew" and "clock_skew" in GRIPPER_HOLD_REASONS
    later = HandSample(stamp=10.04, valid=True, confidence=0.9, finger_curl=(0.9,) * 5,
                       aperture=0.05)
    assert gate.on_sample(later, 10.04) is None and gate.accepted is later


def test_goal_gripper_ramp_is_bounded_after_a_late_step() -> None:
    """Issue 21 item 12: the goal-based gripper's time step was not clamped, so one control
    step after a 3 s pause (a stalled process) ramped by 3 s of velocity_limit at once;
    now at most two control periods' worth, as the joint grippers."""
    g = CommandGripper(franka(mode="proportional", velocity_limit=0.05, deadband=0.002),
                       rate_hz=50.0)
    d = Driver(g)
    g.enable(motion_s=d.t)
    d.tick(lambda t: hand(t, 1.0))  # reference 0.04
    d.t += 3.0  # the next step comes 3 s late, with a fresh closed hand
    out = d.tick(lambda t: hand(t, 0.0))
    assert out.position == pytest.approx(0.04 - 0.05 * 2.0 / 50.0)


def test_grippers_take_the_clock_skew_tolerance_they_are_given() -> None:
    """Issue 21 item 12: the hand gate's tolerance was hard-coded (0.05 s) whatever
    teleop_node's clock_skew_tolerance said."""
    for spec in (franka(), dex3_left()):
        tolerant = make_gripper(spec, clock_skew_tolerance=0.5)
        strict = make_gripper(spec)
        for g in (tolerant, strict):
            g.enable(motion_s=0.0)
        ahead = hand(10.2, 0.0)  # stamped 0.2 s ahead of the node clock
        assert tolerant.on_hand(ahead, 10.0) is None
        assert strict.on_hand(ahead, 10.0) == "clock_skew"
