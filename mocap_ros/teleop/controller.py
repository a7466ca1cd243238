"""TeleopController: SafetyGate + RobotJointMap + OneEuroFilter + RateLimiter, no ROS.

The ROS node is a thin edge around it: call `on_pose` for every pose message and `step`
from a fixed-rate timer (default 50 Hz); publish what `step` returns (nothing while it
returns None).

Two clocks. `now_s` (ROS time: pose stamps, staleness, the 1-euro filter) and the motion
clock `motion_s` passed to `step`/`enable` (the node passes a steady wall clock): the rate
limiter integrates motion-clock time, so the velocity and acceleration limits hold in the
robot's real time even when ROS time runs faster than real time (use_sim_time with
`replay --rate 2`). Without `motion_s` the motion clock is `now_s`.

Data flow of an accepted pose: SMPL local quaternions -> anatomical angles
(`angles.local_rotations_to_angles`) -> robot command ``clamp(scale*angle + offset)``
(`RobotJointMap.command`) -> 1-euro filter on the pose's own timestamps -> target.
`step` moves the output toward the target through the `RateLimiter` (position, velocity
and acceleration limits of the map). The filter runs on the robot commands, not on the
human angles, and without wrap-around: robot joints have position limits, so +3 rad and
-3.28 rad are different configurations and the way between them must not cross the limit.
The gate refuses followed angles outside `angles.ANATOMICAL_RANGES` ("out_of_range") and
checks jumps on the angles (wrapped) AND on the mapped command (unwrapped, threshold
``max_jump * |scale|`` per joint), so an angle creeping across +-pi cannot swing a joint.

Guarantees of `step` (for any sequence of inputs, NaN/inf included):
  * Nothing is ever produced before `enable`; None while disabled and at rest.
  * Every position lies within the map's enforced limits -- except after `enable` from
    measured positions outside them (inside `position_margin`): the output starts exactly
    there and ramps in at the velocity/acceleration limits, never further out.
  * Consecutive outputs differ by at most velocity_limit * dt per joint, with dt the
    motion-clock time between the two `step` calls (the limiter integrates at most
    `2 / rate_hz` seconds per call, so a stalled loop never produces a long leap either).
    Braking (hold, disable, clock jump) also keeps the acceleration limit.
  * NaN/inf anywhere in a pose (quaternions, stamp, confidence), a wrong shape or a
    quaternion whose norm is not 1 +- `UNIT_TOLERANCE` makes it invalid: it never reaches
    the filter or the output. The range and jump checks look only at what the map follows.

Holding: whenever the gate refuses the latest pose (its reason, e.g. "jump", is reported
from the very next `step`) or `tick` reports no fresh pose ("stale", "no_pose_yet"), the
controller holds. "stale" -- the newest pose received, accepted or not, is older than
`pose_timeout` (``pose_timeout_auto``: the budget `safety.PoseAgeBudget` measures from the
poses' age on arrival and rate, never above ``pose_timeout_max``) -- outranks every other
reason: a dead estimator is reported as such, not as its last refusal. `hold_mode`:
  * "hold": stop. The output brakes at the acceleration limit to the point where it comes
    to rest (`RateLimiter.stopping_positions` when the hold began) and then repeats that
    command. A robot already at rest therefore gets exactly its last command repeated.
  * "safe_pose": go to the map's safe pose at the velocity/acceleration limits.
When tracking resumes, a pose following a gap longer than `pose_timeout` restarts the
filter, so stale filter state is never blended into the new target.

Clock jumps: ROS time going backwards (`replay --loop`, a restarted simulator) is seen in
`on_pose` or `step`. The gate, the filter and the target are reset, the output brakes to
rest within the acceleration limit ("safe_pose" mode: heads for the safe pose and rests
there; the motion clock is unaffected, or without one
the jump's step counts as one nominal period) and the status says "clock_jump" ("stale"
once no pose has come for `pose_timeout`). Tracking resumes once the output is at rest and
a fresh pose on the new time base has been accepted.

`enable(now, current_positions)`: start from the robot's measured joint positions (the ROS
edge passes /joint_states); without them from the last command, else from the safe pose.
Idempotent: enabling an enabled controller changes nothing (returns False). The filter is
reset and the gate forgets the old pose, so re-enabling never jumps back toward stale data:
the output stays at the start positions ("no_pose_yet"; in "safe_pose" mode it heads for
the safe pose) until a fresh pose is accepted and then moves from rest under the limits.
Measured positions more than `MEASURED_LIMIT_TOLERANCE` outside the map's documented limits
raise ValueError (a broken joint_states), and so do non-finite ones.

Robot model (``robot=TeleopRobot``, see `robot_setup`): every command `step` produces --
tracking, holding, safe_pose, braking after disable or a clock jump -- passes the collision
guard last. The rate limiter's velocity for the step is replaced by the closest one that
(a) stays in the step's acceleration / velocity / position-braking box
(`RateLimiter.velocity_bounds`) and (b) closes no checked geom pair (self and floor/table,
within `robot_setup.GUARD_ACTIVATION`) faster than it can still be braked to a stop a few
mm outside ``collision_margin`` (`collision.slide_velocity`: a QP on the distances'
gradients). So the output brakes toward a boundary within the acceleration limit, slides
along it (the component that does not close a distance is kept), and any step that opens
every distance is free; several pairs at once. Where the guard changed the step the status
reason is "collision" (mode "holding" where it was "tracking"). Last resort, never seen in
the tests and sweeps (`collision_cuts` counts it): if the checked step still enters the
margin after retrying with larger aims (`GUARD_BUFFERS`), it is cut at the last safe
configuration and stops there; only that cut may exceed the acceleration limit. Exception:
enabled from measured positions already inside the margin, the output starts there (it is
where the robot is) and is pushed out. The position and velocity limits always hold.

Retarget modes (the robot's ``retarget``):
  * "joint": the per-joint map above (the guard applies when a robot model is given).
  * "task": an accepted pose's SMPL local rotations are turned into joint positions
    (forward kinematics on the rest skeleton `REST_JOINTS_APPROX`; the root rotation is
    dropped: only the body-relative arm matters), then per arm the wrist and elbow relative
    to the shoulder in the body frame, divided by the arm length
    (`task_retarget.arm_features`, mirrored with the map's ``mirror``). The 1-euro filter
    runs on those. Each `step` while tracking solves the IK (`TeleopRobot.solve`: position,
    forearm orientation, elbow hint, joint/velocity limits, collision constraints) from the
    current command, and the rate limiter moves toward its answer at the map's limits. A
    pose that gives no target, or an IK without a solution, holds with reason "retarget".
    The gate still refuses the followed angles out of range and angle jumps (there is no
    per-joint command at pose time, so the command jump check does not apply).
    Every status carries ``target_error`` (m, the largest tool-to-target distance of the
    command; -1 in joint mode or without a target). Once it has stayed above the task's
    ``unreachable_distance`` for longer than ``unreachable_time`` (motion clock), a step
    that would say "tracking" says mode "limited", reason "unreachable" instead -- the
    target is out of reach, blocked, or the arm is still too far behind it. The command
    is the same as while tracking: the arm keeps moving toward the IK's best reachable
    configuration (holding still would be worse for a target just outside reach, and the
    operator sees the arm stop where it can go), and "tracking" returns as soon as the
    tool is within the distance again.

`disable()`: poses are refused at once, but the output does not stop from speed: `step`
keeps returning commands (mode "stopping", reason "disabled") that brake to rest within the
acceleration limit, then returns None. `enable` while still braking continues from the
commanded motion (positions and velocities), never from measured positions at rest.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.core.config import TeleopSettings, default_of
from mocap_ros.core.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, REST_JOINTS_APPROX
from mocap_ros.geometry.rotations import FloatArray, quat_to_matrix
from mocap_ros.teleop.angles import (
    ANATOMICAL_RANGES,
    ANGLE_JOINTS,
    continue_overhead,
    local_rotations_to_angles,
)
from mocap_ros.teleop.filters import KalmanParams, OneEuroParams, RateLimiter, make_filter
from mocap_ros.teleop.retarget import RobotJointMap
from mocap_ros.teleop.robot_setup import GUARD_BUFFERS, TeleopRobot
from mocap_ros.teleop.safety import (
    MEASURED_LIMIT_TOLERANCE,  # noqa: F401 (documented here, defined with the check)
    Decision,
    PoseAgeBudget,
    SafetyGate,
    SafetyParams,
    measured_start,
)
from mocap_ros.teleop.task_retarget import RetargetError, arm_features

HOLD_MODES: tuple[str, ...] = ("hold", "safe_pose")
# Joint mode predicts the target forward by the pose's age, never by more than this (s): a
# pose older than that is late, and extrapolating it further would guess, not predict.
MAX_PREDICTION_S = 0.1
VELOCITY_CUTOFF_HZ = 8.0
# Task mode: the tool stays too far from its target (see the module docstring). A status
# reason of the controller's own, besides safety.HOLD_REASONS.
UNREACHABLE = "unreachable"
# Pose quaternions must be unit within this tolerance; anything else means a broken
# producer (zero quaternions, garbage), and the pose is invalid.
UNIT_TOLERANCE = 0.1


def _ancestors(j: int) -> list[int]:
    out = [j]
    while PARENTS[out[-1]] >= 0:
        out.append(PARENTS[out[-1]])
    return out


@dataclass(frozen=True)
class TeleopStatus:
    """mode: "tracking", "holding", "safe_pose", "stopping" (disabled, braking to rest) or
    "limited" (task mode: following, but the tool is off its target); reason: None while
    tracking, else one of safety.HOLD_REASONS or UNREACHABLE. target_error: m, task mode's
    largest tool-to-target distance (-1: joint mode or no target)."""

    mode: str
    reason: str | None = None
    detail: str = ""  # what reason does not say: the IK's error for "retarget"
    target_error: float = -1.0

    @property
    def tracking(self) -> bool:
        return self.mode == "tracking"


@dataclass(frozen=True)
class PoseTimeoutInfo:
    """The pose age budget in force (seconds) and, with ``pose_timeout: auto``, what it was
    measured from: p95 age on arrival, pose period, the budget that would be needed
    (NaN until measured), and the note ("", warming_up, estimator_too_slow)."""

    timeout: float
    auto: bool
    age_p95: float = float("nan")
    period: float = float("nan")
    needed: float = float("nan")
    note: str = ""


class StepResult(NamedTuple):
    positions: FloatArray
    velocities: FloatArray
    status: TeleopStatus
    dt: float = 0.0  # motion-clock seconds this step covered (0: nothing moved)


# Joints whose positions task mode needs (shoulders, elbows, wrists, neck, pelvis) and all
# their ancestors, in tree order: forward kinematics on these only (half the work).
_ARM_CHAIN = tuple(sorted({
    a for j in ("neck", "left_wrist", "right_wrist")
    for a in _ancestors(JOINT_INDEX[j])
}))


def _arm_chain_positions(local_rotmats: FloatArray) -> FloatArray:
    """(24, 3) joint positions, exact on `_ARM_CHAIN` (others left at zero)."""
    rest = REST_JOINTS_APPROX.astype(np.float64)
    glob = np.empty((NUM_JOINTS, 3, 3))
    pos = np.zeros((NUM_JOINTS, 3))
    glob[0], pos[0] = local_rotmats[0], rest[0]
    for j in _ARM_CHAIN[1:]:
        p = PARENTS[j]
        glob[j] = glob[p] @ local_rotmats[j]
        pos[j] = pos[p] + glob[p] @ (rest[j] - rest[p])
    return pos


class TeleopController:
    """See the module docstring."""

    def __init__(
        self,
        joint_map: RobotJointMap,
        *,
        rate_hz: float = default_of(TeleopSettings, "rate_hz"),
        hold_mode: str = default_of(TeleopSettings, "hold_mode"),
        filter_params: OneEuroParams | KalmanParams | None = None,
        safety_params: SafetyParams | None = None,
        angle_ranges: Mapping[str, tuple[float, float]] | None = None,
        robot: TeleopRobot | None = None,
        feedforward: bool = True,
        max_prediction_s: float = MAX_PREDICTION_S,
    ) -> None:
        if not (np.isfinite(max_prediction_s) and max_prediction_s >= 0):
            raise ValueError(f"max_prediction_s must be finite and >= 0, got {max_prediction_s}")
        self.feedforward = bool(feedforward)
        self.max_prediction_s = float(max_prediction_s)
        if hold_mode not in HOLD_MODES:
            raise ValueError(f"hold_mode must be one of {HOLD_MODES}, got {hold_mode!r}")
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz}")
        if robot is not None and robot.map.names != joint_map.names:
            raise ValueError("robot was built for another joint map")
        self.map = joint_map
        self.robot = robot
        self.task = robot is not None and robot.retarget == "task"
        self.rate_hz = float(rate_hz)
        self.max_step_dt = 2.0 / self.rate_hz
        self.hold_mode = hold_mode
        self._followed = joint_map.followed_angles
        # the SMPL joints those angles rest on: the pose's confidence is theirs
        self.used_joints = tuple(sorted({j for n in self._followed for j in ANGLE_JOINTS[n]}))
        ranges = ANATOMICAL_RANGES if angle_ranges is None else angle_ranges
        self.gate = SafetyGate(
            safety_params,
            angle_lower=[ranges[n][0] for n in self._followed],
            angle_upper=[ranges[n][1] for n in self._followed],
            command_scale=joint_map.scale,
        )
        sp = self.gate.params
        self.age_budget = (PoseAgeBudget(cap=sp.pose_timeout_max, floor=sp.pose_timeout_min)
                           if sp.pose_timeout_auto else None)
        n_filtered = robot.n_features if self.task and robot is not None else len(joint_map)
        self.filter = make_filter(n_filtered, filter_params)  # One Euro or Kalman
        self.limiter = RateLimiter(
            joint_map.lower,
            joint_map.upper,
            joint_map.velocity_limits,
            joint_map.acceleration_limits,
        )
        self._target: FloatArray | None = None
        self._target_velocity: FloatArray | None = None  # joint mode: d(target)/d(stamp)
        self._target_stamp: float | None = None
        self._pose_decision: Decision | None = None
        self._hold_target: FloatArray | None = None
        self._clock_s: float | None = None  # latest ROS time seen (clock-jump detection)
        self._motion_s: float | None = None  # motion-clock time of the last step
        self._clock_jump_at: float | None = None  # after a jump: until at rest + fresh pose
        self._newest_stamp: float | None = None  # newest finite pose stamp received
        self._last_output: StepResult | None = None
        self._has_command = False
        self._stopping = False
        self.last_angles: dict[str, float] | None = None
        self.retarget_detail = ""  # the last RetargetError's text (status detail)
        self.collision_cuts = 0  # steps the last-resort guard cut short (since construction)
        self.collision_slides = 0  # steps the collision constraints changed (slid, braked)
        self._off_target_since: float | None = None  # motion clock: tool off target since

    # ------------------------------------------------------------------------ enable/disable
    @property
    def enabled(self) -> bool:
        return self.gate.enabled

    @property
    def stopping(self) -> bool:
        """Disabled, but still braking to rest: `step` still returns commands."""
        return self._stopping

    def enable(
        self,
        now_s: float,
        current_positions: ArrayLike | None = None,
        *,
        motion_s: float | None = None,
    ) -> bool:
        """Arm the controller; False (and nothing changes) when it already was. Raises
        ValueError (and stays disabled) on bad positions."""
        if self.gate.enabled:
            return False
        if self._stopping:
            # Still commanding: continue from the commanded state, velocities included.
            self._stopping = False
        else:
            if current_positions is not None:
                start = measured_start(current_positions, self.map.names,
                                       self.map.documented_lower, self.map.documented_upper)
                # Inside the margin but outside the enforced limits: start exactly there and
                # ramp in at the limits (a clamp would be a step of up to the margin).
                self.limiter.reset(start, clamp=False)
            elif self._has_command:
                self.limiter.reset(self.limiter.positions.copy())
            else:
                self.limiter.reset(self.map.safe_pose.copy())
            self._last_output = None
            motion = now_s if motion_s is None else motion_s
            self._motion_s = float(motion) if np.isfinite(motion) else None
        self.filter.reset()
        self.gate.enable()
        self._off_target_since = None
        self._target = None
        self._pose_decision = None
        self._hold_target = None
        self._clock_s = float(now_s) if np.isfinite(now_s) else None
        self._clock_jump_at = None
        self._newest_stamp = None
        self._has_command = True
        return True

    def disable(self) -> None:
        """Refuse poses from now on; `step` brakes the output to rest, then returns None."""
        was_commanding = self.gate.enabled or self._stopping
        self.gate.disable()
        self._target = None
        self._pose_decision = None
        self._hold_target = None
        moving = bool(np.any(self.limiter.velocities != 0.0))
        self._stopping = was_commanding and moving and self._last_output is not None
        if not self._stopping:
            self._last_output = None

    # ------------------------------------------------------------------------------- clocks
    def _observe_clock(self, now: float) -> bool:
        """Track ROS time; on a backward jump reset everything tied to the old time base."""
        if self._clock_s is not None and now < self._clock_s:
            self._clock_s = now
            self.gate.forget()
            self.filter.reset()
            self._target = None
            self._pose_decision = None
            self._hold_target = None
            self._newest_stamp = None
            self._clock_jump_at = now
            if self.age_budget is not None:
                self.age_budget.reset()
                self.gate.pose_timeout = self.age_budget.timeout
            return True
        self._clock_s = now
        return False

    # --------------------------------------------------------------------------------- poses
    def on_pose(
        self,
        stamp_s: float,
        now_s: float,
        valid: bool,
        confidence: float,
        local_quats: ArrayLike,
        joint_confidence: ArrayLike | None = None,
        refusal: str = "",
    ) -> Decision:
        """Feed one pose; returns the gate's decision (also reported by the next `step`).

        ``joint_confidence`` (24, SMPL order; BodyPose's per-joint confidence): when given,
        the pose's confidence is the lowest over the joints the map follows
        (`angles.ANGLE_JOINTS`), not ``confidence`` (the whole body's). ``refusal``: a reason
        the caller already has to refuse the pose (see `SafetyGate.check`)."""
        if self.gate.enabled and np.isfinite(now_s):
            self._observe_clock(float(now_s))
        if self.age_budget is not None:
            # measured whether armed or not, so the budget is known when teleop is enabled
            with contextlib.suppress(TypeError, ValueError):
                self.gate.pose_timeout = self.age_budget.observe(float(stamp_s), float(now_s))
        angles: dict[str, float] | None = None
        try:
            q = np.asarray(local_quats, dtype=np.float64)
            if np.all(np.isfinite(q)) and q.ndim == 2 and q.shape[-1] == 4:
                with np.errstate(over="ignore"):  # huge values: inf norm, rejected below
                    norms = np.linalg.norm(q, axis=-1)
                if np.all(np.abs(norms - 1.0) <= UNIT_TOLERANCE):
                    angles = local_rotations_to_angles(q)
        except (TypeError, ValueError):
            angles = None
        if angles is not None and not all(np.isfinite(v) for v in angles.values()):
            angles = None  # a degenerate (e.g. zero) quaternion anywhere: invalid pose
        previous_stamp = self.gate.last_accepted_stamp
        try:
            since = float(stamp_s) - previous_stamp if previous_stamp is not None else np.nan
        except (TypeError, ValueError):
            since = np.nan
        if angles is not None and 0.0 < since <= self.gate.params.jump_window:
            # an arm just past straight up: continued from the recent accepted pose, not
            # read as the opposite swing (angles.continue_overhead)
            angles = continue_overhead(angles, self.last_angles)
        command: FloatArray | None = None
        if angles is None:
            vec = np.full(len(self._followed), np.nan)
        else:
            vec = np.array([angles[n] for n in self._followed], dtype=np.float64)
            if not self.task:
                command = self.map.command(angles)
        if joint_confidence is not None:
            confidence = used_confidence(joint_confidence, self.used_joints)
        decision = self.gate.check(
            stamp_s, now_s, bool(valid) and angles is not None, confidence, vec, command,
            refusal=refusal,
        )
        if not self.gate.enabled:
            return decision
        try:
            stamp = float(stamp_s)
        except (TypeError, ValueError):
            stamp = float("nan")
        if (np.isfinite(stamp) and decision.reason != "clock_skew"
                and (self._newest_stamp is None or stamp > self._newest_stamp)):
            # a future-stamped pose is refused and is not the newest: it must not hide a
            # dead estimator from the staleness report
            self._newest_stamp = stamp
        self._pose_decision = decision
        if decision.accept:
            assert angles is not None
            if self.task:
                try:
                    command = self._features(np.asarray(local_quats, dtype=np.float64))
                except RetargetError as exc:
                    self.retarget_detail = str(exc)
                    decision = Decision(False, "retarget")
                    self._pose_decision = decision
                    return decision
            assert command is not None
            self.last_angles = angles
            gap = None if previous_stamp is None else stamp - previous_stamp
            restart = gap is None or gap > self.gate.pose_timeout
            if restart:
                self.filter.reset()
            previous_target = self._target
            filtered = self.filter(command, stamp)
            self._target = (filtered if self.task
                            else np.clip(filtered, self.map.lower, self.map.upper))
            previous_velocity = self._target_velocity
            self._target_velocity = None
            if not self.task and not restart and previous_target is not None and gap:
                # the filtered command's own speed (bounded by the velocity limits), low-passed
                # once more: what the prediction and the feed-forward use
                raw = np.clip((self._target - previous_target) / gap,
                              -self.map.velocity_limits, self.map.velocity_limits)
                if previous_velocity is not None:
                    a = 1.0 / (1.0 + 1.0 / (2.0 * np.pi * VELOCITY_CUTOFF_HZ * gap))
                    raw = previous_velocity + a * (raw - previous_velocity)
                self._target_velocity = raw
            self._target_stamp = stamp
        return decision

    def _features(self, local_quats: FloatArray) -> FloatArray:
        """Task mode: per arm, `arm_features` of the pose's body-relative joint positions."""
        assert self.robot is not None
        rot = quat_to_matrix(local_quats / np.linalg.norm(local_quats, axis=-1, keepdims=True))
        rot[0] = np.eye(3)  # the root (camera-relative orientation) does not matter
        joints = _arm_chain_positions(rot)
        return np.concatenate([
            arm_features(joints, arm.spec.side, mirror=self.map.mirror)
            for arm in self.robot.arms
        ])

    # ---------------------------------------------------------------------------------- step
    def step(self, now_s: float, motion_s: float | None = None) -> StepResult | None:
        """One control tick at ROS time `now_s` (motion clock `motion_s`, default `now_s`);
        None while disabled and at rest."""
        if not self.gate.enabled and not self._stopping:
            return None
        motion_in = now_s if motion_s is None else motion_s
        if not (np.isfinite(now_s) and np.isfinite(motion_in)):
            reason = "disabled" if self._stopping else "invalid"
            mode = "stopping" if self._stopping else "holding"
            return self._output(0.0, None, TeleopStatus(mode, reason))
        now, motion = float(now_s), float(motion_in)
        jumped = self._observe_clock(now)
        if jumped and motion_s is None:
            dt = 1.0 / self.rate_hz  # the motion clock jumped with ROS time: one nominal tick
            self._motion_s = motion
        else:
            if self._motion_s is None:
                dt = 0.0
            else:
                dt = min(max(motion - self._motion_s, 0.0), self.max_step_dt)
            if self._motion_s is None or motion > self._motion_s:
                self._motion_s = motion
        if self._last_output is not None and dt <= 0.0:
            last = self._last_output
            return StepResult(last.positions.copy(), last.velocities.copy(), last.status, 0.0)

        if self._stopping:
            if self._hold_target is None:
                self._hold_target = self.limiter.stopping_positions()
            out = self._output(dt, self._hold_target, TeleopStatus("stopping", "disabled"))
            if np.all(np.abs(out.velocities) <= 1e-12):
                self._stopping = False  # at rest: this was the last command
                self._last_output = None
            return out

        reason = self._hold_reason(now)
        if reason is None and self._target is not None:
            goal: FloatArray | None = self._target
            if self.task and dt > 0.0:
                goal = self._ik_goal(self._target, dt)
                if goal is None:
                    reason = "retarget"
            if goal is not None:
                self._hold_target = None
                goal, ff = self._predicted(goal, now)
                return self._task_status(self._output(dt, goal, TeleopStatus("tracking"), ff))
        if reason is None:  # unreachable: an accepted pose always sets a target
            reason = "no_pose_yet"
        detail = self.retarget_detail if reason == "retarget" else ""
        if self.hold_mode == "safe_pose":
            return self._output(dt, self.map.safe_pose,
                                TeleopStatus("safe_pose", reason, detail))
        if self._hold_target is None:
            self._hold_target = self.limiter.stopping_positions()
        return self._task_status(self._output(dt, self._hold_target,
                                              TeleopStatus("holding", reason, detail)))

    def _predicted(self, goal: FloatArray, now: float
                   ) -> tuple[FloatArray, FloatArray | None]:
        """Joint mode: the target moved forward by the pose's age (its stamp to `now`, at
        most `max_prediction_s`) at the filtered command's speed, and that speed as the
        rate limiter's feed-forward (None: off, or no speed estimate yet)."""
        v = self._target_velocity
        if self.task or v is None or self._target_stamp is None:
            return goal, None
        age = min(max(now - self._target_stamp, 0.0), self.max_prediction_s)
        ahead = np.clip(goal + v * age, self.map.lower, self.map.upper)
        return ahead, (v.copy() if self.feedforward else None)

    def _task_status(self, out: StepResult) -> StepResult:
        """Task mode: attach the tool's distance to its target to the status, and turn
        "tracking" into "limited"/"unreachable" once it has been off for too long."""
        if not self.task or self.robot is None or self.robot.task is None:
            return out
        err = math.nan if self._target is None else self.robot.target_error(out.positions,
                                                                            self._target)
        spec = self.robot.task
        now = self._motion_s
        if not (err > spec.unreachable_distance) or now is None:
            self._off_target_since = None
        elif self._off_target_since is None:
            self._off_target_since = now
        status = TeleopStatus(out.status.mode, out.status.reason, out.status.detail,
                              target_error=err if math.isfinite(err) else -1.0)
        if (status.tracking and self._off_target_since is not None and now is not None
                and now - self._off_target_since > spec.unreachable_time):
            status = TeleopStatus("limited", UNREACHABLE, target_error=err)
        out = out._replace(status=status)
        if self._last_output is not None:
            self._last_output = self._last_output._replace(status=status)
        return out

    def _ik_goal(self, features: FloatArray, dt: float) -> FloatArray | None:
        """Task mode: the IK's configuration `horizon` seconds ahead of the current command
        (clamped into the map's limits), or None when there is none. `dt`: this step's
        motion-clock time (the IK times its escape from local minima with it)."""
        assert self.robot is not None and self.robot.task is not None
        try:
            q = self.robot.solve(self.limiter.positions, features, self.robot.task.horizon,
                                 elapsed=dt)
        except RetargetError as exc:
            self.retarget_detail = str(exc)
            return None
        return np.clip(q, self.map.lower, self.map.upper)

    def _hold_reason(self, now: float) -> str | None:
        timeout = self.gate.pose_timeout
        # Staleness first: nothing fresh arrives, whatever the last refusal was.
        if self._newest_stamp is not None and now - self._newest_stamp > timeout:
            return "stale"
        if self._clock_jump_at is not None:
            # Brake to rest first; resume once at rest and a fresh pose has been accepted.
            at_rest = not np.any(self.limiter.velocities)
            if not at_rest or self.gate.last_accepted_stamp is None:
                if self._newest_stamp is None and now - self._clock_jump_at > timeout:
                    return "stale"
                return "clock_jump"
            self._clock_jump_at = None
        if self._pose_decision is not None and self._pose_decision.hold:
            return self._pose_decision.reason
        tick = self.gate.tick(now)
        return tick.reason if tick.hold else None

    def _output(self, dt: float, target: FloatArray | None, status: TeleopStatus,
                target_velocity: FloatArray | None = None) -> StepResult:
        if target is None or dt <= 0.0:
            pos, vel = self.limiter.positions.copy(), self.limiter.velocities.copy()
            if dt <= 0.0 and self._last_output is None:
                vel = np.zeros_like(vel)
        else:
            previous = self.limiter.positions.copy()
            if self.robot is not None:
                box = self.limiter.velocity_bounds(dt)
            pos, vel = self.limiter.step(target, dt, target_velocity)
            if self.robot is not None:
                # Slide along (or brake toward) the boundary within the acceleration limit
                # instead of stopping dead at it; a larger aim outside the margin where the
                # linearised step still enters it.
                for buffer in GUARD_BUFFERS:
                    slide = self.robot.slide(previous, vel, *box,
                                             self.limiter.max_acceleration, dt, buffer)
                    slid = np.max(np.abs(slide.velocity - vel), initial=0.0) > 1e-9
                    cand_pos = previous + slide.velocity * dt if slid else pos
                    cut = self.robot.guard(previous, cand_pos)
                    if not cut.scaled:
                        break
                if slid:
                    # the QP's round-off (1e-17 rad/s) must not read as motion: at rest is 0
                    vel = np.where(np.abs(slide.velocity) <= 1e-12, 0.0, slide.velocity)
                    pos = cand_pos
                    self.limiter.reset(pos, vel, clamp=False)
                    self.collision_slides += 1
                    mode = "holding" if status.mode == "tracking" else status.mode
                    status = TeleopStatus(mode, "collision")
                if cut.scaled:
                    # Stop at the last configuration outside the margin: never closer.
                    pos, vel = cut.q, np.zeros_like(vel)
                    self.limiter.reset(pos, vel, clamp=False)
                    self.collision_cuts += 1
                    if self._hold_target is not None:
                        self._hold_target = pos.copy()  # rest here, not pressing on
                    mode = "holding" if status.mode == "tracking" else status.mode
                    status = TeleopStatus(mode, "collision")
        used = dt if target is not None and dt > 0.0 else 0.0
        self._last_output = StepResult(pos, vel, status, used)
        return StepResult(pos.copy(), vel.copy(), status, used)

    @property
    def pose_timeout_info(self) -> PoseTimeoutInfo:
        b = self.age_budget
        if b is None:
            return PoseTimeoutInfo(self.gate.pose_timeout, False)
        return PoseTimeoutInfo(b.timeout, True, b.age_p95, b.period, b.needed, b.note)

    @property
    def target(self) -> FloatArray | None:
        """The filtered, clamped command the output is moving toward while tracking."""
        return None if self._target is None else self._target.copy()


def used_confidence(joint_confidence: ArrayLike, joints: tuple[int, ...]) -> float:
    """The lowest per-joint confidence over ``joints``; NaN (refused as invalid) when the
    array is malformed or does not cover them."""
    c = np.asarray(joint_confidence, np.float64).reshape(-1)
    if not joints or c.size <= max(joints) or not np.all(np.isfinite(c[list(joints)])):
        return float("nan")
    return float(c[list(joints)].min())
