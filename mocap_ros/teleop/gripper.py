"""Grippers in teleop: the operator's hand (BodyPose.left_hand/right_hand) -> robot hand.

Pure numpy, no rclpy: teleop_node feeds the hands of every pose in (`on_hand`) and calls
`step` at its control rate, after the arm's controller (the gripper follows only while the
arm tracks).

YAML (the robot's joint map file, top-level section ``gripper``; one entry per arm, keyed
by the operator's hand it follows, ``left`` or ``right``; the map's ``mirror: true`` swaps
them, as it swaps the arms)::

    gripper:
      right:
        type: gripper_command          # or: joints
        ...

``type: joints`` -- a dexterous hand driven joint by joint, published with the arm's joints
on the node's output type (JointState / JointTrajectory / Float64MultiArray)::

        type: joints
        deadband: 0.05          # rad; hysteresis: a joint's target moves only when the new
                                # command differs from it by more than this
        velocity_scale: 0.25    # optional, (0, 1]: fraction of each velocity limit enforced
        min_confidence: 0.5     # optional; default: the node's min_confidence
        joints:
          - name: left_hand_index_0_joint
            follows: index_curl # thumb_curl .. pinky_curl (0 straight .. 1 curled),
                                # aperture (0 pinched .. 1 open), or constant
            scale: -1.5708      # command = clamp(scale * input + offset, lower, upper)
            offset: 0.0
            lower: -1.5708      # the hand's documented limits, verbatim
            upper: 0.0
            velocity_limit: 12.0
            acceleration_limit: 50.0
            safe_pose: 0.0      # optional: where the joint starts without joint_states
                                # (default clamp(offset): the open hand)

``type: gripper_command`` -- a ``control_msgs/action/GripperCommand`` action server (ros2
control's gripper_action_controller, franka_gripper's ``gripper_action``)::

        type: gripper_command
        action: franka_gripper/gripper_action   # the action's name
        mode: binary            # binary: open/closed with hysteresis;
                                # proportional: position follows the aperture
        open_position: 0.04     # command.position for an open hand (aperture 1)
        closed_position: 0.0    # command.position for a pinch (aperture 0)
        max_effort: 20.0        # command.max_effort (N for a prismatic gripper)
        close_below: 0.25       # binary: aperture <= this closes ...
        open_above: 0.5         # ... aperture >= this opens; in between nothing changes
        deadband: 0.005         # proportional: a new target only this far from the last
        min_goal_interval: 0.2  # s: at most one goal per this interval
        velocity_limit: 0.05    # optional, position units/s: ramp the position in goals
                                # (unset: one goal per change, the gripper sets its speed)
        min_confidence: 0.5     # optional

Safety, the same edges as the arm's (controller.py):
  * Nothing before `enable`; `disable` stops goals at once (a running goal is not
    cancelled: cancelling stops a Franka Hand mid-grasp), finger joints brake to rest.
  * A hand sample is refused ("invalid") when HandPose.valid is false or anything in it is
    non-finite or out of [0, 1]; "low_confidence" under min_confidence; "stale" once the
    newest sample is older than pose_timeout (or none came since enable: "no_hand_yet");
    "arm_holding" whenever the arm's controller does not track. On any of these the
    gripper HOLDS: finger joints brake to rest where they are, a gripper_command sends no
    goal. A refused sample never changes the binary open/closed state: an invalid hand
    never closes (or opens) the gripper.
  * Finger joints: enforced position limits, velocity (times velocity_scale) and
    acceleration limits (`filters.RateLimiter`), starting from measured joint_states.
  * gripper_command: hysteresis (binary band or proportional deadband), at most one goal per
    min_goal_interval, optional velocity limit on the commanded position, positions within
    [min(open, closed), max(open, closed)].
  * A goal-based gripper cannot be ramped in from where it is, so after `enable` it keeps
    its state until the operator's hand changes: the first accepted sample only sets the
    reference (binary: open or closed; proportional: the position), no goal. Finger joints
    follow at once, ramped from their measured positions like the arm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from numpy.typing import ArrayLike

from mocap_ros.core.config import TeleopSettings, default_of
from mocap_ros.geometry.rotations import FloatArray
from mocap_ros.teleop.filters import RateLimiter
from mocap_ros.teleop.retarget import CONSTANT, JointSpec
from mocap_ros.teleop.safety import SafetyParams, measured_start
from mocap_ros.teleop.yaml_fields import check_fields, joint_name, number, positive

# the arm's gate defaults (one source: TeleopSettings, through SafetyParams)
_SAFETY = SafetyParams()
_RATE_HZ: float = default_of(TeleopSettings, "rate_hz")

HAND_INPUTS: tuple[str, ...] = (
    "thumb_curl",
    "index_curl",
    "middle_curl",
    "ring_curl",
    "pinky_curl",
    "aperture",
)
SIDES = ("left", "right")
TYPES = ("joints", "gripper_command")
MODES = ("binary", "proportional")
GRIPPER_HOLD_REASONS: tuple[str, ...] = (
    "disabled",
    "arm_holding",
    "no_hand_yet",
    "stale",
    "invalid",
    "low_confidence",
    "clock_jump",
    "clock_skew",
)


class GripperConfigError(ValueError):
    """A gripper section that must not be used; the message names the gripper and field."""


# ----------------------------------------------------------------------------- hand samples
@dataclass(frozen=True)
class HandSample:
    """What a gripper reads of one HandPose (BodyPose.left_hand/right_hand)."""

    stamp: float  # the BodyPose's header stamp (s)
    valid: bool
    confidence: float
    finger_curl: tuple[float, ...]  # thumb, index, middle, ring, pinky: 0 straight .. 1 curled
    aperture: float  # 0 pinched .. 1 open
    reason: str = ""  # HandPose.reason when invalid

    def inputs(self) -> dict[str, float]:
        curls = dict(zip(HAND_INPUTS[:5], (float(c) for c in self.finger_curl), strict=False))
        return {**curls, "aperture": float(self.aperture)}


def check_sample(sample: HandSample, min_confidence: float) -> str | None:
    """None when the sample may drive a gripper, else its refusal reason."""
    try:
        values = [float(sample.stamp), float(sample.confidence), float(sample.aperture)]
        curls = [float(c) for c in sample.finger_curl]
    except (TypeError, ValueError):
        return "invalid"
    if not bool(sample.valid) or len(curls) != 5:
        return "invalid"
    if not all(np.isfinite(v) for v in values + curls):
        return "invalid"
    # Curls and the aperture are documented in [0, 1]; anything else is a broken producer.
    if not all(0.0 <= v <= 1.0 for v in [values[2], *curls]):
        return "invalid"
    if values[1] < min_confidence:
        return "low_confidence"
    return None


# ------------------------------------------------------------------------------------ specs
# A finger joint is written (and held) like an arm joint of the joint map.
FingerJointSpec = JointSpec


@dataclass(frozen=True)
class JointsGripperSpec:
    hand: str  # the operator's hand after mirroring: "left" | "right"
    joints: tuple[FingerJointSpec, ...]
    deadband: float = 0.05
    velocity_scale: float = 1.0
    min_confidence: float | None = None
    key: str = ""  # the YAML key (the operator's hand before mirroring)

    type = "joints"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)


@dataclass(frozen=True)
class GripperCommandSpec:
    hand: str
    action: str
    max_effort: float
    open_position: float
    closed_position: float
    mode: str = "binary"
    close_below: float = 0.25
    open_above: float = 0.5
    deadband: float = 0.005
    min_goal_interval: float = 0.2
    velocity_limit: float | None = None
    min_confidence: float | None = None
    key: str = ""

    type = "gripper_command"

    def position(self, aperture: float) -> float:
        """Linear map aperture 0 -> closed_position, 1 -> open_position."""
        a = float(np.clip(aperture, 0.0, 1.0))
        return self.closed_position + a * (self.open_position - self.closed_position)


GripperSpec = JointsGripperSpec | GripperCommandSpec


def _number(value: Any, where: str) -> float:
    return number(value, where, GripperConfigError)


def _positive(value: Any, where: str) -> float:
    return positive(value, where, GripperConfigError)


def _fields(raw: Mapping[str, Any], required: Sequence[str], optional: Sequence[str],
            where: str) -> None:
    check_fields(raw, required, optional, where, GripperConfigError)


def _min_conf(raw: Mapping[str, Any], where: str) -> float | None:
    if "min_confidence" not in raw:
        return None
    v = _number(raw["min_confidence"], f"{where}: field 'min_confidence'")
    if not 0.0 <= v <= 1.0:
        raise GripperConfigError(f"{where}: field 'min_confidence': must be in [0, 1], got {v}")
    return v


def _finger_joint(raw: Any, i: int, where: str) -> FingerJointSpec:
    name = joint_name(raw, i, where, GripperConfigError)
    w = f"{where}: joint '{name}'"
    req = ["name", "follows", "offset", "lower", "upper", "velocity_limit",
           "acceleration_limit"]
    if raw.get("follows") != CONSTANT:
        req.append("scale")
    _fields(raw, req, ("scale", "safe_pose"), w)
    follows = raw["follows"]
    if follows != CONSTANT and follows not in HAND_INPUTS:
        raise GripperConfigError(
            f"{w}: field 'follows': unknown input {follows!r} (known: "
            f"{', '.join(HAND_INPUTS)}, or '{CONSTANT}')")
    nums = {f: _number(raw[f], f"{w}: field '{f}'") for f in ("offset", "lower", "upper")}
    if nums["lower"] >= nums["upper"]:
        raise GripperConfigError(
            f"{w}: field 'lower': lower ({nums['lower']}) must be < upper ({nums['upper']})")
    safe = None
    if raw.get("safe_pose") is not None:
        safe = _number(raw["safe_pose"], f"{w}: field 'safe_pose'")
        if not nums["lower"] <= safe <= nums["upper"]:
            raise GripperConfigError(f"{w}: field 'safe_pose': {safe} is outside "
                                     f"[{nums['lower']}, {nums['upper']}]")
    return FingerJointSpec(
        name=name, follows=follows,
        scale=0.0 if follows == CONSTANT else _number(raw["scale"], f"{w}: field 'scale'"),
        velocity_limit=_positive(raw["velocity_limit"], f"{w}: field 'velocity_limit'"),
        acceleration_limit=_positive(raw["acceleration_limit"],
                                     f"{w}: field 'acceleration_limit'"),
        safe_pose=safe, **nums)


def _joints_spec(raw: Mapping[str, Any], hand: str, key: str, where: str) -> JointsGripperSpec:
    _fields(raw, ("type", "joints"), ("deadband", "velocity_scale", "min_confidence"), where)
    joints = raw["joints"]
    if not isinstance(joints, list) or not joints:
        raise GripperConfigError(f"{where}: field 'joints': must be a non-empty list")
    specs = tuple(_finger_joint(j, i, where) for i, j in enumerate(joints))
    seen: set[str] = set()
    for j in specs:
        if j.name in seen:
            raise GripperConfigError(f"{where}: joint '{j.name}': duplicate joint name")
        seen.add(j.name)
    deadband = _number(raw.get("deadband", 0.05), f"{where}: field 'deadband'")
    if deadband < 0:
        raise GripperConfigError(f"{where}: field 'deadband': must be >= 0, got {deadband}")
    vs = _number(raw.get("velocity_scale", 1.0), f"{where}: field 'velocity_scale'")
    if not 0 < vs <= 1:
        raise GripperConfigError(f"{where}: field 'velocity_scale': must be in (0, 1], got {vs}")
    return JointsGripperSpec(hand=hand, joints=specs, deadband=deadband, velocity_scale=vs,
                             min_confidence=_min_conf(raw, where), key=key)


def _command_spec(raw: Mapping[str, Any], hand: str, key: str,
                  where: str) -> GripperCommandSpec:
    _fields(raw, ("type", "action", "max_effort", "open_position", "closed_position"),
            ("mode", "close_below", "open_above", "deadband", "min_goal_interval",
             "velocity_limit", "min_confidence"), where)
    action = raw["action"]
    if not isinstance(action, str) or not action.strip():
        raise GripperConfigError(f"{where}: field 'action': must be a non-empty string")
    mode = raw.get("mode", "binary")
    if mode not in MODES:
        raise GripperConfigError(f"{where}: field 'mode': must be one of {MODES}, got {mode!r}")
    max_effort = _number(raw["max_effort"], f"{where}: field 'max_effort'")
    if max_effort < 0:
        raise GripperConfigError(f"{where}: field 'max_effort': must be >= 0, got {max_effort}")
    open_p = _number(raw["open_position"], f"{where}: field 'open_position'")
    closed_p = _number(raw["closed_position"], f"{where}: field 'closed_position'")
    if open_p == closed_p:
        raise GripperConfigError(f"{where}: field 'open_position': must differ from "
                                 f"closed_position ({closed_p})")
    close_below = _number(raw.get("close_below", 0.25), f"{where}: field 'close_below'")
    open_above = _number(raw.get("open_above", 0.5), f"{where}: field 'open_above'")
    if not 0.0 <= close_below < open_above <= 1.0:
        raise GripperConfigError(
            f"{where}: field 'close_below': need 0 <= close_below ({close_below}) < open_above "
            f"({open_above}) <= 1: the band between them is the hysteresis")
    deadband = _number(raw.get("deadband", 0.005), f"{where}: field 'deadband'")
    if deadband < 0:
        raise GripperConfigError(f"{where}: field 'deadband': must be >= 0, got {deadband}")
    interval = _number(raw.get("min_goal_interval", 0.2), f"{where}: field 'min_goal_interval'")
    if interval < 0:
        raise GripperConfigError(f"{where}: field 'min_goal_interval': must be >= 0")
    vel = raw.get("velocity_limit")
    velocity = None if vel is None else _positive(vel, f"{where}: field 'velocity_limit'")
    return GripperCommandSpec(
        hand=hand, action=action.strip(), max_effort=max_effort, open_position=open_p,
        closed_position=closed_p, mode=mode, close_below=close_below, open_above=open_above,
        deadband=deadband, min_goal_interval=interval, velocity_limit=velocity,
        min_confidence=_min_conf(raw, where), key=key)


def grippers_from_dict(
    section: Any,
    *,
    mirror: bool = False,
    arm_joint_names: Sequence[str] = (),
    source: str = "joint map",
) -> tuple[GripperSpec, ...]:
    """The ``gripper`` section of a robot YAML (None: no grippers), validated.

    ``mirror``: the joint map's mirror flag (the robot's left hand follows the operator's
    right hand). ``arm_joint_names``: finger joints must not reuse them."""
    if section is None:
        return ()
    if not isinstance(section, Mapping):
        raise GripperConfigError(f"{source}: field 'gripper': must be a mapping of "
                                 f"{' / '.join(SIDES)} to a gripper")
    out: list[GripperSpec] = []
    names: set[str] = set(arm_joint_names)
    for key, raw in section.items():
        where = f"{source}: gripper '{key}'"
        if key not in SIDES:
            raise GripperConfigError(f"{where}: key must be the operator's hand it follows, "
                                     f"one of {SIDES}")
        if not isinstance(raw, Mapping):
            raise GripperConfigError(f"{where}: must be a mapping")
        kind = raw.get("type")
        if kind not in TYPES:
            raise GripperConfigError(f"{where}: field 'type': must be one of {TYPES}, "
                                     f"got {kind!r}")
        hand = ("right" if key == "left" else "left") if mirror else key
        spec: GripperSpec
        if kind == "joints":
            spec = _joints_spec(raw, hand, key, where)
            for n in spec.names:
                if n in names:
                    raise GripperConfigError(f"{where}: joint '{n}': field 'name': already "
                                             "used by the arm or another gripper")
                names.add(n)
        else:
            spec = _command_spec(raw, hand, key, where)
        out.append(spec)
    return tuple(out)


def grippers_from_yaml(path: str | Path, *, mirror: bool = False,
                       arm_joint_names: Sequence[str] = ()) -> tuple[GripperSpec, ...]:
    """The grippers of a robot YAML (`grippers_from_dict` on its ``gripper`` section)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise GripperConfigError(f"{p.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise GripperConfigError(f"{p.name}: top level must be a mapping")
    return grippers_from_dict(data.get("gripper"), mirror=mirror,
                              arm_joint_names=arm_joint_names, source=p.name)


# ------------------------------------------------------------------------------- hand gate
class _HandGate:
    """The gripper's view of the hand stream: the newest sample, accepted or refused."""

    def __init__(self, min_confidence: float, pose_timeout: float,
                 clock_skew_tolerance: float = _SAFETY.clock_skew_tolerance) -> None:
        if not (np.isfinite(pose_timeout) and pose_timeout > 0):
            raise ValueError(f"pose_timeout must be finite and > 0, got {pose_timeout}")
        self.min_confidence = float(min_confidence)
        self.pose_timeout = float(pose_timeout)
        self.clock_skew_tolerance = float(clock_skew_tolerance)
        self.enabled = False
        self.forget()

    def forget(self) -> None:
        self.newest_stamp: float | None = None  # newest stamp received, accepted or not
        self.refusal: str | None = None  # the newest sample's refusal (None: accepted)
        self.accepted: HandSample | None = None  # the newest accepted sample
        self.fresh = False  # `accepted` not yet consumed by a step
        self.clock_s: float | None = None
        self.detail = ""

    def on_sample(self, sample: HandSample, now_s: float) -> str | None:
        if not self.enabled:
            return "disabled"
        if np.isfinite(now_s):
            if self.clock_s is not None and now_s < self.clock_s:
                self.forget()  # ROS time went backwards: nothing from before counts
            self.clock_s = float(now_s)
        try:
            stamp = float(sample.stamp)
        except (TypeError, ValueError):
            stamp = float("nan")
        if not np.isfinite(stamp) or not np.isfinite(now_s):
            self.refusal, self.detail = "invalid", "non-finite stamp"
            return self.refusal
        if stamp - now_s > self.clock_skew_tolerance:
            # stamped in the future: refused, and never the newest stamp, or every later,
            # correctly stamped sample would read as out of order until time caught up
            self.refusal, self.detail = "clock_skew", ""
            return self.refusal
        if self.newest_stamp is not None and stamp <= self.newest_stamp:
            return "stale"  # duplicate / out of order: ignored, changes nothing
        self.newest_stamp = stamp
        if now_s - stamp > self.pose_timeout:
            self.refusal, self.detail = "stale", ""
            return self.refusal
        reason = check_sample(sample, self.min_confidence)
        self.refusal = reason
        self.detail = sample.reason if reason == "invalid" else ""
        if reason is None:
            self.accepted = sample
            self.fresh = True
        return reason

    def hold_reason(self, now_s: float, arm_tracking: bool) -> str | None:
        if not self.enabled:
            return "disabled"
        if not np.isfinite(now_s):
            return "invalid"
        if self.clock_s is not None and now_s < self.clock_s:
            self.forget()
            self.clock_s = float(now_s)
            return "clock_jump"
        if not arm_tracking:
            return "arm_holding"
        if self.newest_stamp is None:
            return "no_hand_yet"
        if now_s - self.newest_stamp > self.pose_timeout:
            return "stale"
        if self.refusal is not None:
            return self.refusal
        return None


class GripperStatus(NamedTuple):
    mode: str  # "tracking" | "holding" | "stopping" (joints, disabled, braking to rest)
    reason: str | None = None  # one of GRIPPER_HOLD_REASONS while not tracking
    detail: str = ""  # e.g. the HandPose's own reason ("not_found")


class JointsStep(NamedTuple):
    positions: FloatArray
    velocities: FloatArray
    status: GripperStatus
    dt: float = 0.0


class GoalStep(NamedTuple):
    status: GripperStatus
    goal: tuple[float, float] | None = None  # (position, max_effort) to send now, or None
    position: float | None = None  # the commanded position (after the ramp)


# ---------------------------------------------------------------------------- joints type
class JointsGripper:
    """Finger joints from curls/aperture; see the module docstring."""

    def __init__(self, spec: JointsGripperSpec, *,
                 min_confidence: float = _SAFETY.min_confidence,
                 pose_timeout: float = _SAFETY.initial_timeout, rate_hz: float = _RATE_HZ,
                 clock_skew_tolerance: float = _SAFETY.clock_skew_tolerance) -> None:
        self.spec = spec
        conf = spec.min_confidence if spec.min_confidence is not None else min_confidence
        self.gate = _HandGate(conf, pose_timeout, clock_skew_tolerance)
        self.names = spec.names
        self.lower = np.array([j.lower for j in spec.joints])
        self.upper = np.array([j.upper for j in spec.joints])
        self.scale = np.array([j.scale for j in spec.joints])
        self.offset = np.array([j.offset for j in spec.joints])
        self.safe_pose = np.array([float(np.clip(j.offset, j.lower, j.upper))
                                   if j.safe_pose is None else j.safe_pose
                                   for j in spec.joints])
        self.limiter = RateLimiter(
            self.lower, self.upper,
            np.array([j.velocity_limit for j in spec.joints]) * spec.velocity_scale,
            np.array([j.acceleration_limit for j in spec.joints]))
        self.max_step_dt = 2.0 / float(rate_hz)
        self._target: FloatArray | None = None
        self._hold_target: FloatArray | None = None
        self._motion_s: float | None = None
        self._stopping = False
        self._commanding = False

    def __len__(self) -> int:
        return len(self.names)

    @property
    def enabled(self) -> bool:
        return self.gate.enabled

    @property
    def stopping(self) -> bool:
        return self._stopping

    def command(self, sample: HandSample) -> FloatArray:
        """clamp(scale * input + offset) per joint (0 for constants)."""
        inputs = sample.inputs()
        x = np.array([0.0 if j.follows == CONSTANT else inputs[j.follows]
                      for j in self.spec.joints])
        return np.clip(self.scale * x + self.offset, self.lower, self.upper)

    def enable(self, current_positions: ArrayLike | None = None, *,
               motion_s: float | None = None) -> bool:
        """Arm; start from measured positions (else the last command, else the safe pose,
        the open hand). False when already enabled. ValueError on bad positions."""
        if self.gate.enabled:
            return False
        if self._stopping:
            self._stopping = False  # continue from the commanded motion
        elif current_positions is not None:
            start = measured_start(current_positions, self.names, self.lower, self.upper)
            self.limiter.reset(start, clamp=False)
        elif not self._commanding:
            self.limiter.reset(self.safe_pose.copy())
        else:
            self.limiter.reset(self.limiter.positions.copy())
        self.gate.enabled = True
        self.gate.forget()
        self._target = None
        self._hold_target = None
        self._commanding = True
        if motion_s is not None and np.isfinite(motion_s):
            self._motion_s = float(motion_s)
        return True

    def disable(self) -> None:
        was = self.gate.enabled or self._stopping
        self.gate.enabled = False
        self.gate.forget()
        self._target = None
        self._hold_target = None
        self._stopping = was and bool(np.any(self.limiter.velocities != 0.0))

    def on_hand(self, sample: HandSample, now_s: float) -> str | None:
        """Feed one hand sample; returns its refusal reason (None: accepted)."""
        reason = self.gate.on_sample(sample, now_s)
        if reason is None:
            new = self.command(sample)
            if self._target is None:
                self._target = new
            else:
                # Hysteresis: a joint's target moves only when the command left the deadband
                # around it, so a hand trembling at one curl does not wiggle the fingers.
                moved = np.abs(new - self._target) > self.spec.deadband
                self._target = np.where(moved, new, self._target)
        return reason

    def step(self, now_s: float, motion_s: float, arm_tracking: bool) -> JointsStep | None:
        """One control tick; None while disabled and at rest."""
        if not self.gate.enabled and not self._stopping:
            return None
        dt = 0.0
        if np.isfinite(motion_s):
            if self._motion_s is not None:
                dt = min(max(float(motion_s) - self._motion_s, 0.0), self.max_step_dt)
            if self._motion_s is None or motion_s > self._motion_s:
                self._motion_s = float(motion_s)
        if self._stopping:
            if self._hold_target is None:
                self._hold_target = self.limiter.stopping_positions()
            out = self._advance(dt, self._hold_target, GripperStatus("stopping", "disabled"))
            if not np.any(np.abs(out.velocities) > 1e-12):
                self._stopping = False
            return out
        reason = self.gate.hold_reason(float(now_s), bool(arm_tracking))
        if reason is None and self._target is not None:
            self._hold_target = None
            return self._advance(dt, self._target, GripperStatus("tracking"))
        # Hold: brake to rest where the fingers are; forget the target, so only a fresh
        # accepted hand moves them again (never a stale or refused one).
        self._target = None
        if self._hold_target is None:
            self._hold_target = self.limiter.stopping_positions()
        return self._advance(dt, self._hold_target,
                             GripperStatus("holding", reason or "no_hand_yet", self.gate.detail))

    def _advance(self, dt: float, target: FloatArray, status: GripperStatus) -> JointsStep:
        if dt > 0.0:
            pos, vel = self.limiter.step(target, dt)
        else:
            pos, vel = self.limiter.positions.copy(), self.limiter.velocities.copy()
        return JointsStep(pos, vel, status, dt)


# -------------------------------------------------------------------- gripper_command type
class CommandGripper:
    """GripperCommand goals from the aperture; see the module docstring."""

    def __init__(self, spec: GripperCommandSpec, *,
                 min_confidence: float = _SAFETY.min_confidence,
                 pose_timeout: float = _SAFETY.initial_timeout, rate_hz: float = _RATE_HZ,
                 clock_skew_tolerance: float = _SAFETY.clock_skew_tolerance) -> None:
        self.spec = spec
        conf = spec.min_confidence if spec.min_confidence is not None else min_confidence
        self.gate = _HandGate(conf, pose_timeout, clock_skew_tolerance)
        # a late control step (a loaded computer, a paused process) must not ramp the
        # position by seconds' worth at once: as JointsGripper, at most two periods per step
        self.max_step_dt = 2.0 / float(rate_hz)
        self.low = min(spec.open_position, spec.closed_position)
        self.high = max(spec.open_position, spec.closed_position)
        self.closed: bool | None = None  # binary state; None until a sample sets it
        self._target: float | None = None  # where the hand asks the gripper to be
        self._command: float | None = None  # the ramped position (== target without ramp)
        self._last_goal: float | None = None  # the reference: last goal sent (or synced)
        self._last_goal_motion: float | None = None
        self._motion_s: float | None = None
        self.goals_sent = 0

    @property
    def enabled(self) -> bool:
        return self.gate.enabled

    def enable(self, *, motion_s: float | None = None) -> bool:
        if self.gate.enabled:
            return False
        self.gate.enabled = True
        self.gate.forget()
        # The gripper keeps its state until the operator's hand changes (module docstring).
        self.closed = None
        self._target = self._command = self._last_goal = None
        self._motion_s = None if motion_s is None else float(motion_s)
        return True

    def disable(self) -> None:
        self.gate.enabled = False
        self.gate.forget()

    def on_hand(self, sample: HandSample, now_s: float) -> str | None:
        reason = self.gate.on_sample(sample, now_s)
        if reason is not None:
            return reason  # refused: the state, target and reference stay as they are
        a = float(sample.aperture)
        s = self.spec
        if s.mode == "binary":
            if a <= s.close_below:
                new_closed: bool | None = True
            elif a >= s.open_above:
                new_closed = False
            else:
                new_closed = self.closed  # inside the band: no change (hysteresis)
            if new_closed is None:
                return None  # no state yet and the hand inside the band: wait
            target = s.closed_position if new_closed else s.open_position
            first = self.closed is None
            self.closed = new_closed
        else:
            target = float(np.clip(s.position(a), self.low, self.high))
            first = self._target is None
            if not first and abs(target - float(self._target)) <= s.deadband:  # type: ignore[arg-type]
                return None  # within the deadband of the current target: no change
        if first:
            # The first accepted sample after enable is the reference: no goal for it.
            self._target = self._command = self._last_goal = target
        else:
            self._target = target
        return None

    def step(self, now_s: float, motion_s: float, arm_tracking: bool) -> GoalStep | None:
        """One control tick; None while disabled. ``goal`` is set when a goal must go out."""
        if not self.gate.enabled:
            return None
        dt = 0.0
        if np.isfinite(motion_s):
            if self._motion_s is not None:
                dt = min(max(float(motion_s) - self._motion_s, 0.0), self.max_step_dt)
            if self._motion_s is None or motion_s > self._motion_s:
                self._motion_s = float(motion_s)
        reason = self.gate.hold_reason(float(now_s), bool(arm_tracking))
        if reason is not None or self._target is None or self._command is None:
            # Hold: freeze the ramp where it is, send nothing.
            if self._command is not None:
                self._target = self._command
            return GoalStep(GripperStatus("holding", reason or "no_hand_yet", self.gate.detail),
                            None, self._command)
        s = self.spec
        if s.velocity_limit is None:
            self._command = self._target
        else:
            step = s.velocity_limit * dt
            self._command += float(np.clip(self._target - self._command, -step, step))
        self._command = float(np.clip(self._command, self.low, self.high))
        goal = None
        due = (self._last_goal_motion is None or self._motion_s is None
               or self._motion_s - self._last_goal_motion >= s.min_goal_interval - 1e-9)
        if self._command != self._last_goal and due:
            goal = (self._command, s.max_effort)
            self._last_goal = self._command
            self._last_goal_motion = self._motion_s
            self.goals_sent += 1
        return GoalStep(GripperStatus("tracking"), goal, self._command)

    def goal_not_sent(self) -> None:
        """The caller could not send the last goal (no action server): forget it as the
        reference, so the next step offers it again (after min_goal_interval)."""
        self._last_goal = None
        self.goals_sent = max(self.goals_sent - 1, 0)


Gripper = JointsGripper | CommandGripper


def make_gripper(spec: GripperSpec, *, min_confidence: float = _SAFETY.min_confidence,
                 pose_timeout: float = _SAFETY.initial_timeout, rate_hz: float = _RATE_HZ,
                 clock_skew_tolerance: float = _SAFETY.clock_skew_tolerance) -> Gripper:
    cls = JointsGripper if isinstance(spec, JointsGripperSpec) else CommandGripper
    return cls(spec, min_confidence=min_confidence, pose_timeout=pose_timeout,  # type: ignore[arg-type]
               rate_hz=rate_hz, clock_skew_tolerance=clock_skew_tolerance)
