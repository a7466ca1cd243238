"""TeleopController: SafetyGate + RobotJointMap + OneEuroFilter + RateLimiter, no ROS.

The ROS node is a thin edge around it: call `on_pose` for every pose message and `step`
from a fixed-rate timer (default 50 Hz); publish what `step` returns (nothing while it
returns None).

Data flow of an accepted pose: SMPL local quaternions -> anatomical angles
(`angles.local_rotations_to_angles`) -> robot command ``clamp(scale*angle + offset)``
(`RobotJointMap.command`) -> 1-euro filter on the pose's own timestamps -> target.
`step` moves the output toward the target through the `RateLimiter` (position, velocity
and acceleration limits of the map). The filter runs on the robot commands, not on the
human angles, and without wrap-around: robot joints have position limits, so +3 rad and
-3.28 rad are different configurations and the way between them must not cross the limit.

Guarantees of `step` (for any sequence of inputs, NaN/inf included):
  * None while disabled; nothing is ever produced before `enable`.
  * Every position lies within the map's enforced limits.
  * Consecutive outputs differ by at most velocity_limit * dt per joint, with dt the time
    between the two `step` calls (the limiter integrates at most `2 / rate_hz` seconds per
    call, so a stalled loop never produces a long leap either).
  * NaN/inf anywhere in a pose (quaternions, stamp, confidence), a wrong shape or a
    quaternion whose norm is not 1 +- `UNIT_TOLERANCE` makes it invalid: it never reaches
    the filter or the output. The jump check looks only at the angles the map follows.

Holding: whenever the gate refuses the latest pose (its reason, e.g. "jump", is reported
from the very next `step`) or `tick` reports no fresh pose ("stale", "no_pose_yet"), the
controller holds. `hold_mode`:
  * "hold": stop. The output brakes at the acceleration limit to the point where it comes
    to rest (`RateLimiter.stopping_positions` when the hold began) and then repeats that
    command. A robot already at rest therefore gets exactly its last command repeated.
  * "safe_pose": go to the map's `safe_pose` at the velocity/acceleration limits.
When tracking resumes, a pose following a gap longer than `pose_timeout` restarts the
filter, so stale filter state is never blended into the new target.

`enable(now, current_positions)`: start from the robot's measured joint positions (the ROS
edge passes /joint_states); without them from the last command, else from the safe pose.
The filter is reset and the gate forgets the old pose, so re-enabling never jumps back
toward stale data: the output stays at the start positions ("no_pose_yet"; in
"safe_pose" mode it heads for the safe pose) until a fresh pose is accepted and then
moves from rest under the limits. Start positions outside the enforced limits (e.g. inside
`position_margin`) are clamped onto them: the one place a first command can differ from
the measured position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.geometry.rotations import FloatArray
from mocap_ros.teleop.angles import local_rotations_to_angles
from mocap_ros.teleop.filters import OneEuroFilter, OneEuroParams, RateLimiter
from mocap_ros.teleop.retarget import RobotJointMap
from mocap_ros.teleop.safety import Decision, SafetyGate, SafetyParams

HOLD_MODES: tuple[str, ...] = ("hold", "safe_pose")
# Pose quaternions must be unit within this tolerance; anything else means a broken
# producer (zero quaternions, garbage), and the pose is invalid.
UNIT_TOLERANCE = 0.1


@dataclass(frozen=True)
class TeleopStatus:
    """mode: "tracking", "holding" or "safe_pose"; reason: None while tracking, else one
    of safety.HOLD_REASONS."""

    mode: str
    reason: str | None = None

    @property
    def tracking(self) -> bool:
        return self.mode == "tracking"


class StepResult(NamedTuple):
    positions: FloatArray
    velocities: FloatArray
    status: TeleopStatus


class TeleopController:
    """See the module docstring."""

    def __init__(
        self,
        joint_map: RobotJointMap,
        *,
        rate_hz: float = 50.0,
        hold_mode: str = "hold",
        filter_params: OneEuroParams | None = None,
        safety_params: SafetyParams | None = None,
    ) -> None:
        if hold_mode not in HOLD_MODES:
            raise ValueError(f"hold_mode must be one of {HOLD_MODES}, got {hold_mode!r}")
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz}")
        self.map = joint_map
        self.rate_hz = float(rate_hz)
        self.max_step_dt = 2.0 / self.rate_hz
        self.hold_mode = hold_mode
        self.gate = SafetyGate(safety_params)
        self.filter = OneEuroFilter(len(joint_map), filter_params)
        self.limiter = RateLimiter(
            joint_map.lower,
            joint_map.upper,
            joint_map.velocity_limits,
            joint_map.acceleration_limits,
        )
        self._followed = joint_map.followed_angles
        self._target: FloatArray | None = None
        self._pose_decision: Decision | None = None
        self._hold_target: FloatArray | None = None
        self._last_step_s: float | None = None
        self._last_output: StepResult | None = None
        self._has_command = False
        self.last_angles: dict[str, float] | None = None

    # ------------------------------------------------------------------------ enable/disable
    @property
    def enabled(self) -> bool:
        return self.gate.enabled

    def enable(self, now_s: float, current_positions: ArrayLike | None = None) -> None:
        """Arm the controller; raises ValueError (and stays disabled) on bad positions."""
        if current_positions is not None:
            start = np.asarray(current_positions, dtype=np.float64).reshape(-1)
            if start.shape != (len(self.map),) or not np.all(np.isfinite(start)):
                raise ValueError(
                    f"current_positions must be {len(self.map)} finite values "
                    f"({', '.join(self.map.names)})"
                )
        elif self._has_command:
            start = self.limiter.positions.copy()
        else:
            start = self.map.safe_pose.copy()
        self.limiter.reset(start)
        self.filter.reset()
        self.gate.enable()
        self._target = None
        self._pose_decision = None
        self._hold_target = None
        self._last_step_s = float(now_s) if np.isfinite(now_s) else None
        self._last_output = None
        self._has_command = True

    def disable(self) -> None:
        self.gate.disable()
        self._target = None
        self._pose_decision = None
        self._hold_target = None
        self._last_output = None

    # --------------------------------------------------------------------------------- poses
    def on_pose(
        self,
        stamp_s: float,
        now_s: float,
        valid: bool,
        confidence: float,
        local_quats: ArrayLike,
    ) -> Decision:
        """Feed one pose; returns the gate's decision (also reported by the next `step`)."""
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
        if angles is None:
            vec = np.full(len(self._followed), np.nan)
        else:
            vec = np.array([angles[n] for n in self._followed], dtype=np.float64)
        previous_stamp = self.gate.last_accepted_stamp
        decision = self.gate.check(
            stamp_s, now_s, bool(valid) and angles is not None, confidence, vec
        )
        if not self.gate.enabled:
            return decision
        self._pose_decision = decision
        if decision.accept:
            assert angles is not None
            self.last_angles = angles
            command = self.map.command(angles)
            if not np.all(np.isfinite(command)):  # defensive: cannot happen for finite angles
                self._pose_decision = Decision(False, "invalid")
                return self._pose_decision
            gap = None if previous_stamp is None else float(stamp_s) - previous_stamp
            if gap is None or gap > self.gate.params.pose_timeout:
                self.filter.reset()
            filtered = self.filter(command, float(stamp_s))
            self._target = np.clip(filtered, self.map.lower, self.map.upper)
        return decision

    # ---------------------------------------------------------------------------------- step
    def step(self, now_s: float) -> StepResult | None:
        """One control tick; None while disabled."""
        if not self.gate.enabled:
            return None
        if not np.isfinite(now_s):
            return self._output(0.0, None, TeleopStatus("holding", "invalid"))
        now = float(now_s)
        if self._last_step_s is None:
            dt = 0.0
        else:
            dt = min(max(now - self._last_step_s, 0.0), self.max_step_dt)
        if self._last_step_s is None or now > self._last_step_s:
            self._last_step_s = now
        if self._last_output is not None and dt <= 0.0:
            last = self._last_output
            return StepResult(last.positions.copy(), last.velocities.copy(), last.status)

        tick = self.gate.tick(now)
        if self._pose_decision is not None and self._pose_decision.hold:
            reason: str | None = self._pose_decision.reason
        elif tick.hold:
            reason = tick.reason
        else:
            reason = None

        if reason is None and self._target is not None:
            self._hold_target = None
            return self._output(dt, self._target, TeleopStatus("tracking"))
        if reason is None:  # unreachable: an accepted pose always sets a target
            reason = "no_pose_yet"
        if self.hold_mode == "safe_pose":
            return self._output(dt, self.map.safe_pose, TeleopStatus("safe_pose", reason))
        if self._hold_target is None:
            self._hold_target = self.limiter.stopping_positions()
        return self._output(dt, self._hold_target, TeleopStatus("holding", reason))

    def _output(self, dt: float, target: FloatArray | None, status: TeleopStatus) -> StepResult:
        if target is None or dt <= 0.0:
            pos, vel = self.limiter.positions.copy(), self.limiter.velocities.copy()
            if dt <= 0.0 and self._last_output is None:
                vel = np.zeros_like(vel)
        else:
            pos, vel = self.limiter.step(target, dt)
        self._last_output = StepResult(pos, vel, status)
        return StepResult(pos.copy(), vel.copy(), status)

    @property
    def target(self) -> FloatArray | None:
        """The filtered, clamped command the output is moving toward while tracking."""
        return None if self._target is None else self._target.copy()
