"""Pure state machine deciding whether an incoming pose may become robot motion.

States: DISABLED (initial) and ENABLED. Only an explicit `enable()` arms the gate; while
disabled every check answers hold("disabled"). `enable()` forgets the previously accepted
pose, so nothing from before is compared against or resumed: the first pose after it is
judged on its own (no jump check), and until one is accepted `tick` answers
hold("no_pose_yet").

`check(pose_stamp_s, now_s, valid, confidence, angles)`, in this order:
  disabled      the gate is disabled
  <refusal>     the caller's own reason to refuse this pose (`refusal=`): "unconfirmed"
                when no person detector vouched for the body (BodyPose.person_check),
                "operator_lost" when the body is not the operator who armed teleop,
                "operator_uncertain" when mocap_node's lock is unsure it is
  invalid       `valid` is false, or any of stamp, now, confidence, angles is NaN/inf
  clock_skew    the stamp lies more than `clock_skew_tolerance` in the future of `now`
  stale         now - stamp > `pose_timeout` (in force: fixed, or measured by
                `PoseAgeBudget` with ``pose_timeout_auto``), or the stamp is not newer than the last
                accepted pose's (duplicate / out of order)
  low_confidence confidence < `min_confidence`
  out_of_range  some angle lies outside the gate's `angle_lower`/`angle_upper` (anatomical
                ranges, `angles.ANATOMICAL_RANGES`, when the controller builds the gate)
  jump          some angle differs (wrapped to (-pi, pi]) by more than `max_jump` from the
                last ACCEPTED pose, or -- when the caller passes the mapped robot command --
                some command differs (unwrapped: robot joints do not wrap) by more than
                `max_jump * command_scale` from the last accepted command, and that pose is
                at most `jump_window` seconds older. The command check closes the gap that
                wrapping leaves: an angle creeping across +-pi is a small wrapped step but a
                swing across the whole range of the joint that follows it.
                A longer gap is a re-acquisition: the pose is accepted and the rate limiter
                takes the robot there at its limits. So a one-frame glitch (left/right swap,
                mis-detection) is dropped, while a real fast move is followed after at most
                `jump_window` seconds of holding.
  accept        otherwise (the pose becomes the last accepted one)

`tick(now_s)`, called by the control loop: disabled / no_pose_yet / stale (the last
accepted pose's STAMP is older than `pose_timeout`: data age, not arrival time, counts)
/ accept. Timestamps are seconds on one clock (e.g. ROS time).

HOLD_REASONS also holds "clock_jump", which only the controller can see (ROS time went
backwards); `forget()` is what it calls on the gate then; "collision" (the controller's
collision guard changed the step: braking toward, or sliding along, the boundary a few mm
outside the margin; or, last resort, cut it short at the last configuration outside it)
and "retarget" (task mode: the pose gives no end-effector target, or the IK found no
solution) are the controller's too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.core.config import TeleopSettings, default_of
from mocap_ros.geometry.rotations import FloatArray, wrap_angle
from mocap_ros.teleop.angles import angles_to_vector

HOLD_REASONS: tuple[str, ...] = (
    "disabled",
    "stale",
    "invalid",
    "low_confidence",
    "jump",
    "no_pose_yet",
    "clock_skew",
    "out_of_range",
    "clock_jump",
    "unconfirmed",
    "operator_lost",
    "operator_uncertain",
    "collision",
    "retarget",
)


@dataclass(frozen=True)
class SafetyParams:
    """Gate thresholds (seconds, radians, confidence in the estimator's units).

    ``pose_timeout``: seconds (a fixed age budget), or ``"auto"``: the budget is measured
    (`PoseAgeBudget`) within [``pose_timeout_min``, ``pose_timeout_max``] and starts at the
    cap. One field, as teleop_node's parameter, so a number given here is never overridden
    by an auto default."""

    # defaults: teleop_node's declared parameters (TeleopSettings), the one place they live
    pose_timeout: float | str = default_of(TeleopSettings, "pose_timeout")
    clock_skew_tolerance: float = default_of(TeleopSettings, "clock_skew_tolerance")
    min_confidence: float = default_of(TeleopSettings, "min_confidence")
    max_jump: float = default_of(TeleopSettings, "max_jump")
    jump_window: float = default_of(TeleopSettings, "jump_window")
    pose_timeout_max: float = default_of(TeleopSettings, "pose_timeout_max")
    pose_timeout_min: float = default_of(TeleopSettings, "pose_timeout_min")

    def __post_init__(self) -> None:
        if isinstance(self.pose_timeout, str) and self.pose_timeout != "auto":
            raise ValueError(f"SafetyParams.pose_timeout must be 'auto' or seconds, got "
                             f"{self.pose_timeout!r}")
        for name in ("pose_timeout", "max_jump", "jump_window", "pose_timeout_max",
                     "pose_timeout_min"):
            v = getattr(self, name)
            if name == "pose_timeout" and v == "auto":
                continue
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"SafetyParams.{name} must be finite and > 0, got {v}")
        if self.pose_timeout_min > self.pose_timeout_max:
            raise ValueError("SafetyParams.pose_timeout_min must not exceed pose_timeout_max")
        if not (np.isfinite(self.clock_skew_tolerance) and self.clock_skew_tolerance >= 0):
            raise ValueError("SafetyParams.clock_skew_tolerance must be finite and >= 0")
        if not np.isfinite(self.min_confidence):
            raise ValueError("SafetyParams.min_confidence must be finite")

    @property
    def pose_timeout_auto(self) -> bool:
        return self.pose_timeout == "auto"

    @property
    def initial_timeout(self) -> float:
        """The budget in force before anything is measured: the fixed one, or the cap."""
        return self.pose_timeout_max if self.pose_timeout_auto else float(self.pose_timeout)

    @classmethod
    def from_settings(cls, s: TeleopSettings) -> SafetyParams:
        """The gate's thresholds from teleop_node's settings."""
        return cls(pose_timeout=s.pose_timeout, clock_skew_tolerance=s.clock_skew_tolerance,
                   min_confidence=s.min_confidence, max_jump=s.max_jump,
                   jump_window=s.jump_window, pose_timeout_max=s.pose_timeout_max,
                   pose_timeout_min=s.pose_timeout_min)


class PoseAgeBudget:
    """``pose_timeout: auto``: how old a pose may be before it is stale, from what the
    estimator delivers. Over the poses that arrived in the last ``window_s`` seconds (node
    clock), budget = p95 of their age on arrival (now - stamp: frame -> pose latency plus
    transport) + two pose periods (median stamp interval: a pose must stay fresh until the
    next one, with one lost in between), clamped to [``floor``, ``cap``].

    Safety: the budget never exceeds ``cap`` whatever the stamps say, so a dead estimator
    is caught within the cap. Non-finite and future stamps (refused as clock_skew anyway)
    are not measured; a clock going backwards restarts the measurement. Until
    ``min_samples`` poses are measured the budget is the cap (note ``warming_up``).
    ``note``: "" normal, ``warming_up``, or ``estimator_too_slow`` when the measured need
    exceeds the cap (poses then go stale between arrivals: make the estimator faster).
    """

    def __init__(self, cap: float = 0.5, floor: float = 0.2, window_s: float = 5.0,
                 min_samples: int = 5, max_samples: int = 256) -> None:
        if not (np.isfinite(cap) and np.isfinite(floor) and 0 < floor <= cap):
            raise ValueError(f"need 0 < floor <= cap, got floor {floor}, cap {cap}")
        self.cap, self.floor = float(cap), float(floor)
        self.window_s, self.min_samples = float(window_s), int(min_samples)
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=max_samples)
        self.timeout = self.cap
        self.needed = float("nan")
        self.age_p95 = float("nan")
        self.period = float("nan")
        self.note = "warming_up"

    def reset(self) -> None:
        self._samples.clear()
        self.timeout, self.needed = self.cap, float("nan")
        self.age_p95 = self.period = float("nan")
        self.note = "warming_up"

    def observe(self, stamp_s: float, now_s: float) -> float:
        """Measure one pose's age on arrival; returns the budget now in force."""
        if not (_finite(stamp_s) and _finite(now_s)):
            return self.timeout
        stamp, now = float(stamp_s), float(now_s)
        if self._samples and now < self._samples[-1][0]:
            self.reset()  # the clock went back: ages on the old time base mean nothing
        if stamp > now:
            return self.timeout  # from the future: refused by the gate, not a latency
        self._samples.append((now, now - stamp, stamp))
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        if len(self._samples) < self.min_samples:
            self.note, self.timeout = "warming_up", self.cap
            return self.timeout
        ages = np.array([a for _, a, _ in self._samples])
        stamps = np.sort(np.array([s for _, _, s in self._samples]))
        gaps = np.diff(stamps)
        gaps = gaps[gaps > 0]
        self.age_p95 = float(np.percentile(ages, 95))
        self.period = float(np.median(gaps)) if gaps.size else float("inf")
        self.needed = self.age_p95 + 2.0 * self.period
        # min/max of a NaN-free value: inf (one stamp repeated) lands on the cap
        self.timeout = float(min(self.cap, max(self.floor, self.needed)))
        self.note = "estimator_too_slow" if self.needed > self.cap else ""
        return self.timeout


@dataclass(frozen=True)
class Decision:
    """accept=True, or accept=False with `reason` one of HOLD_REASONS."""

    accept: bool
    reason: str | None = None

    @property
    def hold(self) -> bool:
        return not self.accept


ACCEPT = Decision(True)


def _hold(reason: str) -> Decision:
    assert reason in HOLD_REASONS
    return Decision(False, reason)


def _as_vector(angles: Mapping[str, float] | ArrayLike) -> FloatArray | None:
    try:
        if isinstance(angles, Mapping):
            return angles_to_vector(angles)
        return np.asarray(angles, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None


def _finite(x: object) -> bool:
    try:
        return bool(np.isfinite(float(x)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


class SafetyGate:
    """See the module docstring."""

    def __init__(
        self,
        params: SafetyParams | None = None,
        *,
        angle_lower: ArrayLike | None = None,
        angle_upper: ArrayLike | None = None,
        command_scale: ArrayLike | None = None,
    ) -> None:
        self.params = params if params is not None else SafetyParams()
        self.angle_lower = None if angle_lower is None else np.asarray(angle_lower, np.float64)
        self.angle_upper = None if angle_upper is None else np.asarray(angle_upper, np.float64)
        self.command_scale = (
            None if command_scale is None else np.abs(np.asarray(command_scale, np.float64))
        )
        # in force now: the fixed pose_timeout, or the measured budget (auto) that the
        # controller sets after each pose
        self.pose_timeout = self.params.initial_timeout
        self._enabled = False
        self._last_angles: FloatArray | None = None
        self._last_command: FloatArray | None = None
        self._last_stamp: float | None = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def last_accepted_stamp(self) -> float | None:
        return self._last_stamp

    def enable(self) -> None:
        self._enabled = True
        self.forget()

    def disable(self) -> None:
        self._enabled = False
        self.forget()

    def forget(self) -> None:
        """Forget the last accepted pose (e.g. after the clock jumped): the next pose is
        judged on its own, and `tick` answers no_pose_yet until one is accepted."""
        self._last_angles = None
        self._last_command = None
        self._last_stamp = None

    def check(
        self,
        pose_stamp_s: float,
        now_s: float,
        valid: bool,
        confidence: float,
        angles: Mapping[str, float] | ArrayLike,
        command: ArrayLike | None = None,
        refusal: str = "",
    ) -> Decision:
        """``refusal``: a reason the caller already has to refuse this pose (one of
        HOLD_REASONS, e.g. ``unconfirmed``: no person detector vouched for the body)."""
        p = self.params
        if not self._enabled:
            return _hold("disabled")
        if refusal:
            if refusal not in HOLD_REASONS:
                raise ValueError(f"refusal {refusal!r} is not one of {HOLD_REASONS}")
            return _hold(refusal)
        vec = _as_vector(angles)
        if (
            not bool(valid)
            or vec is None
            or not np.all(np.isfinite(vec))
            or not (_finite(pose_stamp_s) and _finite(now_s) and _finite(confidence))
        ):
            return _hold("invalid")
        stamp, now = float(pose_stamp_s), float(now_s)
        if stamp - now > p.clock_skew_tolerance:
            return _hold("clock_skew")
        if now - stamp > self.pose_timeout:
            return _hold("stale")
        if self._last_stamp is not None and stamp <= self._last_stamp:
            return _hold("stale")
        if float(confidence) < p.min_confidence:
            return _hold("low_confidence")
        if self.angle_lower is not None and self.angle_upper is not None:
            if vec.shape != self.angle_lower.shape:
                return _hold("invalid")
            if np.any(vec < self.angle_lower) or np.any(vec > self.angle_upper):
                return _hold("out_of_range")
        cmd = None if command is None else np.asarray(command, np.float64).reshape(-1)
        if cmd is not None and not np.all(np.isfinite(cmd)):
            return _hold("invalid")
        if (
            self._last_angles is not None
            and self._last_stamp is not None
            and stamp - self._last_stamp <= p.jump_window
        ):
            if vec.shape != self._last_angles.shape:
                return _hold("invalid")
            if vec.size and np.max(np.abs(wrap_angle(vec - self._last_angles))) > p.max_jump:
                return _hold("jump")
            if cmd is not None and self._last_command is not None:
                scale = self.command_scale if self.command_scale is not None else 1.0
                if cmd.shape != self._last_command.shape:
                    return _hold("invalid")
                if np.any(np.abs(cmd - self._last_command) > p.max_jump * scale + 1e-12):
                    return _hold("jump")
        self._last_angles = vec.copy()
        self._last_command = None if cmd is None else cmd.copy()
        self._last_stamp = stamp
        return ACCEPT

    def tick(self, now_s: float) -> Decision:
        if not self._enabled:
            return _hold("disabled")
        if not _finite(now_s):
            return _hold("invalid")
        if self._last_stamp is None:
            return _hold("no_pose_yet")
        if float(now_s) - self._last_stamp > self.pose_timeout:
            return _hold("stale")
        return ACCEPT


# Measured positions may lie this far (rad) beyond the documented limits (encoder noise, a
# hard stop past the soft limit) and still be ramped in from; further out, joint_states is
# broken (wrong units, wrong joint) and enable is refused.
MEASURED_LIMIT_TOLERANCE = 0.1


def measured_start(positions: ArrayLike, names: tuple[str, ...], lower: FloatArray,
                   upper: FloatArray) -> FloatArray:
    """Measured joint positions to start from, as a flat float array; ValueError when they
    are not one finite value per joint in ``names`` or lie more than
    ``MEASURED_LIMIT_TOLERANCE`` outside the documented ``lower``/``upper`` limits."""
    start = np.asarray(positions, dtype=np.float64).reshape(-1)
    if start.shape != (len(names),) or not np.all(np.isfinite(start)):
        raise ValueError(f"current_positions must be {len(names)} finite values "
                         f"({', '.join(names)})")
    tol = MEASURED_LIMIT_TOLERANCE
    bad = (start < lower - tol) | (start > upper + tol)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"measured position of {names[i]} is {start[i]:.4g}, outside its "
                         f"documented limits [{lower[i]}, {upper[i]}]: check joint_states")
    return start
