"""One Euro filter (jitter, lag, wrap-around, timestamps) and the RateLimiter's guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mocap_ros.geometry.rotations import wrap_angle
from mocap_ros.teleop.filters import OneEuroFilter, OneEuroParams, RateLimiter

FPS = 30.0


def jitter(x: np.ndarray) -> float:
    """RMS of the second difference."""
    return float(np.sqrt(np.mean(np.diff(x, 2) ** 2)))


def lag_frames(t: np.ndarray, clean, y: np.ndarray, skip: int = 30) -> float:
    """The time shift (frames, 0.02 resolution) that best lays `y` onto the clean signal."""
    shifts = np.arange(0.0, 6.0001, 0.02)
    err = [np.sqrt(np.mean((y[skip:] - clean(t[skip:] - s / FPS)) ** 2)) for s in shifts]
    return float(shifts[int(np.argmin(err))])


def run(filt: OneEuroFilter, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.array([filt(np.atleast_1d(xi), ti)[0] for xi, ti in zip(x, t, strict=True)])


@pytest.mark.parametrize("seed", range(5))
def test_default_filter_cuts_jitter_5x_with_at_most_2_frames_lag(seed: int) -> None:
    # 20 s at 30 Hz: a 0.3 Hz, 0.8 rad sine (peak speed 1.5 rad/s) plus 0.03 rad noise.
    t = np.arange(0.0, 20.0, 1.0 / FPS)

    def clean(tt: np.ndarray) -> np.ndarray:
        return 0.8 * np.sin(2 * np.pi * 0.3 * tt + seed)

    noisy = clean(t) + np.random.default_rng(seed).normal(0.0, 0.03, t.size)
    y = run(OneEuroFilter(1), t, noisy)
    reduction = jitter(noisy) / jitter(y)
    lag = lag_frames(t, clean, y)
    assert reduction >= 5.0, reduction
    assert lag <= 2.0, lag


def test_irregular_timestamps_still_smooth() -> None:
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.uniform(0.7, 1.3, 600) / FPS)  # 30 Hz on average, +-30 % jitter

    def clean(tt: np.ndarray) -> np.ndarray:
        return 0.8 * np.sin(2 * np.pi * 0.3 * tt)

    noisy = clean(t) + rng.normal(0.0, 0.03, t.size)
    y = run(OneEuroFilter(1), t, noisy)
    assert np.all(np.isfinite(y))
    # Second differences mean little on an irregular grid: compare with the clean signal,
    # delayed by the filter's lag instead: well under the 0.03 rad of input noise remains.
    lag = lag_frames(t, clean, y)
    residual = np.sqrt(np.mean((y - clean(t - lag / FPS))[30:] ** 2))
    assert lag <= 2.5
    assert residual < 0.6 * 0.03, residual


def test_duplicate_or_backward_timestamps_leave_the_state_alone() -> None:
    f_a, f_b = OneEuroFilter(2), OneEuroFilter(2)
    xs = [np.array([0.0, 1.0]), np.array([0.3, 0.8]), np.array([0.5, 0.2])]
    f_a(xs[0], 0.0)
    f_b(xs[0], 0.0)
    out1 = f_a(xs[1], 0.033)
    f_b(xs[1], 0.033)
    # dt == 0 and dt < 0: previous output returned, nothing changes.
    assert np.array_equal(f_a(np.array([9.0, 9.0]), 0.033), out1)
    assert np.array_equal(f_a(np.array([-9.0, 9.0]), 0.01), out1)
    assert np.array_equal(f_a(xs[2], 0.066), f_b(xs[2], 0.066))


def test_constant_input_passes_unchanged_and_first_sample_initialises() -> None:
    f = OneEuroFilter(3)
    x = np.array([0.1, -2.0, 3.0])
    for i in range(20):
        assert np.allclose(f(x, i / FPS), x)
    f.reset()
    assert not f.initialized
    assert np.array_equal(f(np.array([1.0, 2.0, 3.0]), 100.0), [1.0, 2.0, 3.0])


def test_paper_order_1_is_available() -> None:
    f = OneEuroFilter(1, OneEuroParams(min_cutoff=1.0, beta=0.0, order=1))
    f(np.array([0.0]), 0.0)
    y = f(np.array([1.0]), 0.1)
    # One exponential step with alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc).
    alpha = 1.0 / (1.0 + (1.0 / (2 * np.pi * 1.0)) / 0.1)
    assert y[0] == pytest.approx(alpha)


def test_wrap_around_crossing_pi_makes_no_2pi_jump() -> None:
    t = np.arange(0.0, 6.0, 1.0 / FPS)
    # Turns steadily through +-pi twice (0.6 rad/s) with noise.
    truth = wrap_angle(2.5 + 0.6 * t * np.where(t < 3.0, 1.0, -1.0) + np.where(t < 3.0, 0.0, 3.6))
    noisy = wrap_angle(truth + np.random.default_rng(1).normal(0.0, 0.03, t.size))
    f = OneEuroFilter(2, wrap=[True, False])
    ys = np.array([f(np.array([a, 0.5]), ti) for a, ti in zip(noisy, t, strict=True)])
    y = ys[:, 0]
    assert np.all(y > -np.pi) and np.all(y <= np.pi)
    assert np.max(np.abs(wrap_angle(np.diff(y)))) < 0.1  # no step, wrapped or not
    assert np.max(np.abs(np.diff(y))) > 6.0  # ...yet the output does cross +-pi
    assert np.max(np.abs(wrap_angle(y - truth))[15:]) < 0.15  # and tracks the truth
    assert np.allclose(ys[:, 1], 0.5)  # the non-wrapped channel is untouched


def test_wrap_state_stays_bounded_over_many_turns() -> None:
    f = OneEuroFilter(1, wrap=True)
    for i in range(3000):
        y = f(np.array([wrap_angle(0.5 * i)]), i / FPS)
    assert -np.pi < y[0] <= np.pi
    assert np.all(np.abs(f._stages) < 4 * np.pi)


def test_non_finite_input_is_refused() -> None:
    f = OneEuroFilter(2)
    with pytest.raises(ValueError):
        f(np.array([np.nan, 0.0]), 0.0)
    with pytest.raises(ValueError):
        f(np.array([0.0, 0.0]), float("inf"))


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        OneEuroParams(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroParams(beta=-1.0)
    with pytest.raises(ValueError):
        OneEuroParams(order=0)


# --------------------------------------------------------------------------- RateLimiter
LOWER = np.array([-1.0, -2.0, 0.5])
UPPER = np.array([1.0, 0.5, 3.0])
VMAX = np.array([1.0, 2.0, 0.5])
AMAX = np.array([4.0, 10.0, 2.0])

targets = st.lists(
    st.one_of(
        st.floats(-5.0, 5.0),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300]),
    ),
    min_size=3,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(targets, st.floats(-0.01, 0.1)), min_size=1, max_size=60),
    st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
)
def test_position_and_velocity_limits_hold_for_any_targets_and_dt(
    steps: list[tuple[list[float], float]], start: list[float]
) -> None:
    rl = RateLimiter(LOWER, UPPER, VMAX, AMAX)
    rl.reset(np.array(start))
    prev_p = rl.positions.copy()
    assert np.all(prev_p >= LOWER) and np.all(prev_p <= UPPER)
    for target, dt in steps:
        p, v = rl.step(np.array(target), dt)
        assert np.all(np.isfinite(p)) and np.all(np.isfinite(v))
        assert np.all(p >= LOWER) and np.all(p <= UPPER)
        assert np.all(np.abs(p - prev_p) <= VMAX * max(dt, 0.0) + 1e-9)
        assert np.all(np.abs(v) <= VMAX + 1e-9)
        prev_p = p


@settings(max_examples=200, deadline=None)
@given(
    st.lists(targets, min_size=1, max_size=80),
    st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    st.sampled_from([0.01, 0.02, 1.0 / 30.0]),
)
def test_acceleration_limit_holds_at_a_fixed_rate_from_rest(
    steps: list[list[float]], start: list[float], dt: float
) -> None:
    """The documented exception (position clamp beats acceleration) needs a state moving
    faster than it can brake; from rest at a fixed control rate it does not arise."""
    rl = RateLimiter(LOWER, UPPER, VMAX, AMAX)
    rl.reset(np.array(start))
    prev_v = rl.velocities.copy()
    for target in steps:
        _, v = rl.step(np.array(target), dt)
        assert np.all(np.abs(v - prev_v) <= AMAX * dt + 1e-9)
        prev_v = v


def test_long_move_is_trapezoidal_and_lands_on_the_target_without_overshoot() -> None:
    rl = RateLimiter([-10.0], [10.0], [1.0], [2.0])
    rl.reset([0.0])
    dt = 0.02
    ps, vs = [], []
    for _ in range(600):
        p, v = rl.step([5.0], dt)
        ps.append(p[0])
        vs.append(v[0])
    ps_a, vs_a = np.array(ps), np.array(vs)
    assert np.max(ps_a) <= 5.0 + 1e-12
    assert ps_a[-1] == pytest.approx(5.0, abs=1e-9)
    assert np.max(vs_a) == pytest.approx(1.0)
    assert np.max(np.abs(np.diff(vs_a))) <= 2.0 * dt + 1e-9
    # Reached in roughly distance/vmax + vmax/amax = 5.5 s.
    assert np.argmax(ps_a >= 5.0 - 1e-9) * dt < 6.0


def test_position_limit_wins_over_acceleration_limit() -> None:
    rl = RateLimiter([-1.0], [1.0], [2.0], [1.0])
    rl.reset([0.9], velocities=[2.0])  # cannot brake in 0.1 rad at 1 rad/s^2
    for _ in range(50):
        p, _ = rl.step([1.0], 0.02)
        assert p[0] <= 1.0


def test_non_positive_dt_and_bad_construction() -> None:
    rl = RateLimiter([-1.0], [1.0], [1.0], [1.0])
    rl.reset([0.2])
    p, v = rl.step([1.0], 0.0)
    assert p[0] == 0.2 and v[0] == 0.0
    p, _ = rl.step([1.0], float("nan"))
    assert p[0] == 0.2
    with pytest.raises(ValueError):
        RateLimiter([1.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError):
        RateLimiter([0.0], [1.0], [0.0], [1.0])
    with pytest.raises(ValueError):
        rl.reset([math.nan])
    rl.reset([5.0])
    assert rl.positions[0] == 1.0  # clamped into the limits
