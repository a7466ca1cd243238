"""Smoothing and rate limiting of joint-angle commands (pure numpy, vectorised over joints).

OneEuroFilter
    The 1-euro filter of Casiez, Roussel & Vogel, "1 Euro Filter: A Simple Speed-based
    Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012: an exponential
    low-pass whose cutoff rises with the (low-passed) speed,
    ``cutoff = min_cutoff + beta * |dx/dt|``, so slow motion is smoothed hard and fast
    motion lags little. One difference from the paper, on purpose: ``order`` low-pass
    stages in cascade share that adaptive cutoff (``order=1`` is the paper's filter).
    A first-order smoother cannot reach the jitter target of this project (>= 5x less RMS
    second difference at <= 2 frames lag, 30 Hz): for white noise its best is 4.39x at
    exactly 2.0 frames of lag. Two stages reach 6.8x at 2.0 frames in theory.

    Defaults (`OneEuroParams()`): order 2, min_cutoff 5.25 Hz per stage, beta 0.05
    s/rad, d_cutoff 1.0 Hz. Measured on 30 Hz sines (amplitude 0.4-1.0 rad, 0.2-0.5 Hz)
    plus Gaussian noise (0.02-0.05 rad), 18 runs: RMS second difference reduced
    5.3x-6.0x (median 5.9x) at 1.7-1.9 frames of lag (the best sub-frame shift of the
    output onto the clean signal). The paper's order 1 at the same lag budget
    (min_cutoff 2.5 Hz) manages 4.0x-4.2x. At rest the cascade's -3 dB cutoff is ~3.4 Hz.

    Angles wrap: with ``wrap=True`` (per element) the filter runs on an unwrapped copy
    (each new sample is unwrapped against the previous one) and re-wraps the output to
    (-pi, pi], so crossing +-pi never makes a 2*pi jump. The speed estimate is the
    difference of consecutive raw (unwrapped) samples, low-passed at d_cutoff. Timestamps
    come from the caller (seconds, irregular allowed); a sample with dt <= 0 (duplicate or
    out of order) leaves the state untouched and returns the previous output.

RateLimiter
    Moves a commanded position toward a target at most at the velocity limit, changing
    velocity at most by the acceleration limit per step, braking early enough to stop at
    the target (no overshoot when the acceleration limit allows), and clamps positions to
    the limits. Guarantees, every step, for every joint:
      * lower <= position <= upper (targets are clamped first). The one exception is a
        state put outside the limits by `reset(..., clamp=False)` (a robot measured inside
        a safety margin): it is never clamped in with a step, it ramps in at the velocity
        and acceleration limits and never moves further out;
      * |position - previous position| <= max_velocity * dt (the clamp only shortens a
        step: the previous position is inside the limits).
    The acceleration limit holds except when the position clamp cuts a step short -- that
    only happens when the state was moving toward a limit faster than it can brake: right
    after `reset` with a velocity, or when dt shrinks between steps so that braking
    planned with the longer dt comes up short at a limit. Position limits win over the
    acceleration limit then. At a fixed dt, starting from rest, it does not happen (the
    braking bound below is exact for discrete steps; tested). Non-finite targets are
    replaced by the current position (hold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.geometry.rotations import FloatArray, wrap_angle


@dataclass(frozen=True)
class OneEuroParams:
    """1-euro parameters: cutoffs in Hz, beta in s/rad (cutoff gain per unit speed)."""

    min_cutoff: float = 5.25
    beta: float = 0.05
    d_cutoff: float = 1.0
    order: int = 2

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"OneEuroParams.{name} must be finite and > 0, got {v}")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"OneEuroParams.beta must be finite and >= 0, got {self.beta}")
        if int(self.order) != self.order or self.order < 1:
            raise ValueError(f"OneEuroParams.order must be an integer >= 1, got {self.order}")


def _alpha(cutoff: FloatArray | float, dt: float) -> FloatArray:
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised (cascaded) 1-euro filter over `size` channels; see the module docstring."""

    def __init__(
        self, size: int, params: OneEuroParams | None = None, wrap: bool | ArrayLike = False
    ) -> None:
        self.size = int(size)
        self.params = params if params is not None else OneEuroParams()
        self.wrap = np.broadcast_to(np.asarray(wrap, dtype=bool), (self.size,)).copy()
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next sample passes through unchanged."""
        self._t: float | None = None
        self._raw = np.zeros(self.size)  # previous raw sample (unwrapped)
        self._dx = np.zeros(self.size)  # low-passed derivative
        self._stages = np.zeros((self.params.order, self.size))  # unwrapped stage outputs

    @property
    def initialized(self) -> bool:
        return self._t is not None

    @property
    def value(self) -> FloatArray | None:
        """Last output (wrapped where `wrap`), or None before the first sample."""
        return None if self._t is None else self._output()

    def _output(self) -> FloatArray:
        y = self._stages[-1].copy()
        y[self.wrap] = wrap_angle(y[self.wrap])
        return y

    def __call__(self, x: ArrayLike, t: float) -> FloatArray:
        """Filter one sample `x` (shape (size,), finite) taken at time `t` (seconds)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.shape != (self.size,):
            raise ValueError(f"expected {self.size} values, got {x.shape}")
        if not (np.all(np.isfinite(x)) and np.isfinite(t)):
            raise ValueError("OneEuroFilter input must be finite")
        if self._t is None:
            self._t = float(t)
            self._raw = x.copy()
            self._dx[:] = 0.0
            self._stages[:] = x
            return self._output()
        dt = float(t) - self._t
        if dt <= 0.0:
            return self._output()
        self._t = float(t)
        # Unwrap the new sample against the previous raw one where angles wrap.
        step = x - self._raw
        step[self.wrap] = wrap_angle(step[self.wrap])
        xu = self._raw + step
        self._dx += _alpha(self.params.d_cutoff, dt) * (step / dt - self._dx)
        a = _alpha(self.params.min_cutoff + self.params.beta * np.abs(self._dx), dt)
        v = xu
        for k in range(self.params.order):
            self._stages[k] += a * (v - self._stages[k])
            v = self._stages[k]
        self._raw = xu
        self._recenter()
        return self._output()

    def _recenter(self) -> None:
        """Keep unwrapped state near (-pi, pi] so it cannot grow without bound."""
        if not np.any(self.wrap):
            return
        shift = np.where(self.wrap, self._raw - wrap_angle(self._raw), 0.0)
        self._raw -= shift
        self._stages -= shift


@dataclass(frozen=True)
class KalmanParams:
    """Constant-velocity Kalman filter: `measurement_noise` is the pose noise (rad, standard
    deviation), `process_noise` the spectral density of the unmodelled acceleration
    ((rad/s^2)^2 s = rad^2/s^3). Their ratio alone sets the smoothing: more process noise
    follows faster and smooths less."""

    measurement_noise: float = 0.03
    process_noise: float = 0.1

    def __post_init__(self) -> None:
        for name in ("measurement_noise", "process_noise"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"KalmanParams.{name} must be finite and > 0, got {v}")


class KalmanFilter:
    """Per-channel constant-velocity Kalman filter (state: position, velocity).

    A low-pass filter trails a moving input by its group delay; this one models the motion,
    so a constant-speed ramp is followed without lag in steady state, and only changes of
    speed (acceleration, which the model calls noise) are followed late. Same interface as
    `OneEuroFilter` (reset, __call__(x, t), value, initialized); no angle wrap (the teleop
    controller filters robot commands, which do not wrap). dt <= 0 leaves the state untouched.
    """

    def __init__(self, size: int, params: KalmanParams | None = None) -> None:
        self.size = int(size)
        self.params = params if params is not None else KalmanParams()
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._x = np.zeros(self.size)
        self._v = np.zeros(self.size)
        self._p = np.zeros((self.size, 2, 2))

    @property
    def initialized(self) -> bool:
        return self._t is not None

    @property
    def value(self) -> FloatArray | None:
        return None if self._t is None else self._x.copy()

    @property
    def velocity(self) -> FloatArray | None:
        return None if self._t is None else self._v.copy()

    def __call__(self, x: ArrayLike, t: float) -> FloatArray:
        z = np.asarray(x, dtype=np.float64).reshape(-1)
        if z.shape != (self.size,):
            raise ValueError(f"expected {self.size} values, got {z.shape}")
        if not (np.all(np.isfinite(z)) and np.isfinite(t)):
            raise ValueError("KalmanFilter input must be finite")
        r = self.params.measurement_noise ** 2
        if self._t is None:
            self._t = float(t)
            self._x, self._v = z.copy(), np.zeros(self.size)
            # position known to the measurement noise; velocity unknown but bounded (1 rad/s)
            self._p[:] = np.array([[r, 0.0], [0.0, 1.0]])
            return self._x.copy()
        dt = float(t) - self._t
        if dt <= 0.0:
            return self._x.copy()
        self._t = float(t)
        q = self.params.process_noise
        # predict
        x = self._x + self._v * dt
        p = self._p
        p00 = p[:, 0, 0] + dt * (2.0 * p[:, 0, 1] + dt * p[:, 1, 1]) + q * dt ** 3 / 3.0
        p01 = p[:, 0, 1] + dt * p[:, 1, 1] + q * dt ** 2 / 2.0
        p11 = p[:, 1, 1] + q * dt
        # update with the position measurement
        s = p00 + r
        k0, k1 = p00 / s, p01 / s
        innov = z - x
        self._x = x + k0 * innov
        self._v = self._v + k1 * innov
        p[:, 0, 0] = (1.0 - k0) * p00
        p[:, 0, 1] = p[:, 1, 0] = (1.0 - k0) * p01
        p[:, 1, 1] = p11 - k1 * p01
        return self._x.copy()


FILTER_TYPES: tuple[str, ...] = ("one_euro", "kalman")


def make_filter(size: int, params: OneEuroParams | KalmanParams | None = None
                ) -> OneEuroFilter | KalmanFilter:
    """The filter for `params`' type (None: the default One Euro filter)."""
    if isinstance(params, KalmanParams):
        return KalmanFilter(size, params)
    return OneEuroFilter(size, params)


class RateLimiter:
    """Per-joint position, velocity and acceleration limiting; see the module docstring."""

    def __init__(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        max_velocity: ArrayLike,
        max_acceleration: ArrayLike,
    ) -> None:
        self.lower = np.asarray(lower, dtype=np.float64).reshape(-1).copy()
        n = self.lower.size
        self.upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy()
        self.max_velocity = np.broadcast_to(np.asarray(max_velocity, np.float64), (n,)).copy()
        self.max_acceleration = np.broadcast_to(
            np.asarray(max_acceleration, np.float64), (n,)
        ).copy()
        arrays = (self.lower, self.upper, self.max_velocity, self.max_acceleration)
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise ValueError("RateLimiter limits must be finite")
        if np.any(self.lower >= self.upper):
            raise ValueError("RateLimiter needs lower < upper for every joint")
        if np.any(self.max_velocity <= 0) or np.any(self.max_acceleration <= 0):
            raise ValueError("RateLimiter velocity and acceleration limits must be > 0")
        self.positions = np.clip(np.zeros(n), self.lower, self.upper)
        self.velocities = np.zeros(n)

    @property
    def size(self) -> int:
        return self.lower.size

    def reset(
        self, positions: ArrayLike, velocities: ArrayLike | None = None, *, clamp: bool = True
    ) -> None:
        """Set the state (velocities clamped to +-vmax). Positions are clamped into the
        limits, or with ``clamp=False`` kept where they are: the next steps then move them
        in at the limits instead of jumping there."""
        p = np.asarray(positions, dtype=np.float64).reshape(-1)
        if p.shape != (self.size,) or not np.all(np.isfinite(p)):
            raise ValueError(f"reset needs {self.size} finite positions")
        v = np.zeros(self.size) if velocities is None else np.asarray(velocities, np.float64)
        if v.shape != (self.size,) or not np.all(np.isfinite(v)):
            raise ValueError(f"reset needs {self.size} finite velocities")
        self.positions = np.clip(p, self.lower, self.upper) if clamp else p.copy()
        self.velocities = np.clip(v, -self.max_velocity, self.max_velocity)

    def stopping_positions(self) -> FloatArray:
        """Where each joint comes to rest braking at the acceleration limit (clamped)."""
        v = self.velocities
        return np.clip(
            self.positions + v * np.abs(v) / (2.0 * self.max_acceleration), self.lower, self.upper
        )

    def velocity_bounds(self, dt: float) -> tuple[FloatArray, FloatArray]:
        """Per-joint [low, high] velocity for a step of `dt` from the current state: within
        the acceleration limit of the current velocity, the velocity limit, and slow enough
        to still brake before the position limits (the bound `step` itself keeps). Where
        these conflict (a state reset moving fast toward a limit) the acceleration limit
        wins: that box is never empty."""
        amax, vmax, v = self.max_acceleration, self.max_velocity, self.velocities
        acc_lo = np.maximum(v - amax * dt, -vmax)
        acc_hi = np.minimum(v + amax * dt, vmax)
        to_upper = np.maximum(self.upper - self.positions, 0.0)
        to_lower = np.maximum(self.positions - self.lower, 0.0)
        hi = np.minimum(acc_hi, self._brake_speed(to_upper, dt))
        lo = np.maximum(acc_lo, -self._brake_speed(to_lower, dt))
        hi = np.maximum(hi, acc_lo)
        lo = np.minimum(lo, hi)
        return lo, hi

    def _brake_speed(self, dist: FloatArray, dt: float) -> FloatArray:
        """Largest speed toward a point `dist` away from which braking at the acceleration
        limit still stops there (see `_limited_velocity`)."""
        amax = self.max_acceleration
        d_eff = np.maximum(dist - amax * dt * dt / 8.0, 0.0)
        v_brake = amax * (-0.5 * dt + np.sqrt(0.25 * dt * dt + 2.0 * d_eff / amax))
        v_land = np.minimum(dist / dt, amax * dt)
        return np.minimum(dist / dt, np.maximum(v_brake, v_land))

    def step(self, target: ArrayLike, dt: float, target_velocity: ArrayLike | None = None
             ) -> tuple[FloatArray, FloatArray]:
        """Advance by `dt` seconds toward `target`; returns (positions, velocities) copies.

        dt <= 0 (or non-finite) leaves the state as it is. `target_velocity` (feed-forward,
        rad/s): the target is moving at that speed, so the limiter heads for where it would
        come to rest braking at the acceleration limit instead of braking to stop at its
        current position every step (a ramp is followed without that lag; a target that
        slows no faster than the limit is not overshot). All limits hold as without it.
        """
        if target_velocity is not None:
            return self._step_feedforward(target, dt, target_velocity)
        tgt = np.asarray(target, dtype=np.float64).reshape(-1)
        if tgt.shape != (self.size,):
            raise ValueError(f"expected {self.size} targets, got {tgt.shape}")
        if not (np.isfinite(dt) and dt > 0.0):
            return self.positions.copy(), self.velocities.copy()
        tgt = np.where(np.isfinite(tgt), tgt, self.positions)
        tgt = np.clip(tgt, self.lower, self.upper)
        err = tgt - self.positions
        dist = np.abs(err)
        with np.errstate(over="ignore"):  # dist / dt may overflow to inf for tiny dt: fine
            v_new = self._limited_velocity(err, dist, dt)
        p_free = self.positions + v_new * dt
        # A position outside the limits (reset with clamp=False) bounds the range on its
        # side, so it is never yanked inside, and never moves further out (the target is).
        p_new = np.clip(
            p_free,
            np.minimum(self.lower, self.positions),
            np.maximum(self.upper, self.positions),
        )
        # Where the position clamp cut the step short, the velocity is what was executed.
        self.velocities = np.where(p_new != p_free, (p_new - self.positions) / dt, v_new)
        self.positions = p_new
        return self.positions.copy(), self.velocities.copy()

    def _step_feedforward(self, target: ArrayLike, dt: float, target_velocity: ArrayLike
                          ) -> tuple[FloatArray, FloatArray]:
        tgt = np.asarray(target, dtype=np.float64).reshape(-1)
        vt = np.asarray(target_velocity, dtype=np.float64).reshape(-1)
        if tgt.shape != (self.size,) or vt.shape != (self.size,):
            raise ValueError(f"expected {self.size} targets and target velocities")
        vt = np.clip(np.where(np.isfinite(vt), vt, 0.0), -self.max_velocity, self.max_velocity)
        # Head for where the target would come to rest braking at the acceleration limit:
        # on a ramp that is just far enough ahead to keep the target's speed with (almost)
        # no gap, and a target that then slows no faster than the limit is never overshot.
        ahead = tgt + vt * np.abs(vt) / (2.0 * self.max_acceleration)
        return self.step(ahead, dt)

    def _limited_velocity(self, err: FloatArray, dist: FloatArray, dt: float) -> FloatArray:
        amax, vmax = self.max_acceleration, self.max_velocity
        # Largest speed v for this step from which braking at amax (one velocity change of
        # amax*dt per step) still stops within `dist`. The discrete braking distance is
        # v*dt + dt*sum_k max(v - k*amax*dt, 0) <= v^2/(2 amax) + v*dt/2 + amax*dt^2/8,
        # so v^2/(2 amax) + v*dt/2 <= dist - amax*dt^2/8 is safe. Landing exactly on the
        # target at v <= amax*dt is always safe too (the next step can stop).
        d_eff = np.maximum(dist - amax * dt * dt / 8.0, 0.0)
        v_brake = amax * (-0.5 * dt + np.sqrt(0.25 * dt * dt + 2.0 * d_eff / amax))
        v_land = np.minimum(dist / dt, amax * dt)
        speed = np.minimum(np.minimum(dist / dt, np.maximum(v_brake, v_land)), vmax)
        v_des = np.sign(err) * speed
        v_new = np.clip(v_des, self.velocities - amax * dt, self.velocities + amax * dt)
        v_new = np.clip(v_new, -vmax, vmax)
        return v_new
