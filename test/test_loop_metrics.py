"""Loop metrics (mocap_ros.tools.loop_metrics) on synthetic signals whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from mocap_ros.tools.loop_metrics import (
    best_lag,
    distance_after,
    hold_fidelity,
    hold_windows,
    max_acceleration_ratio,
    resample,
)


def _motion(t: np.ndarray) -> np.ndarray:
    """A wrist-like 3D path: raises and returns, with a wave, zero at rest."""
    env = np.clip(np.sin(np.pi * (t - 1.0) / 4.0), 0.0, None) * ((t > 1.0) & (t < 5.0))
    return np.stack([0.3 * env, 0.1 * env * np.sin(2 * np.pi * t), 0.2 * env ** 2], axis=1)


@pytest.mark.parametrize("shift", [0.0, 0.12, 0.3, 0.755])
def test_a_shifted_copy_gives_that_shift(shift: float) -> None:
    t = np.arange(0.0, 7.0, 1 / 15)  # operator at 15 Hz
    tr = np.arange(0.0, 7.0 + shift, 1 / 50)  # robot at 50 Hz, a scaled, shifted copy
    follow = 0.4 * _motion(tr - shift)
    lag = best_lag(t, _motion(t), tr, follow)
    assert lag.moved
    assert lag.lag_s == pytest.approx(shift, abs=0.0051)
    assert lag.score > 0.999


def test_lag_is_found_through_noise_and_a_different_amplitude_per_axis() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 7.0, 1 / 15)
    tr = np.arange(0.0, 7.5, 1 / 50)
    follow = _motion(tr - 0.2) * np.array([0.5, 1.0, 0.8]) + rng.normal(0, 0.003, (tr.size, 3))
    lag = best_lag(t, _motion(t) + rng.normal(0, 0.003, (t.size, 3)), tr, follow)
    assert lag.lag_s == pytest.approx(0.2, abs=0.03)


def test_a_robot_that_never_moved_has_no_lag() -> None:
    t = np.arange(0.0, 7.0, 1 / 15)
    lag = best_lag(t, _motion(t), t, np.zeros((t.size, 3)))
    assert not lag.moved and np.isnan(lag.lag_s)


def test_hold_windows_and_fidelity_per_hold() -> None:
    t = np.arange(0.0, 10.0, 0.02)
    holding = ((t > 2) & (t < 4)) | ((t > 6) & (t < 8))
    labels = ["a" if x < 5 else "b" for x in t]
    op = np.zeros((t.size, 3))
    op[(t > 1.5) & (t < 4.5)] = [0.3, 0.0, 0.0]  # forward
    op[(t > 5.5) & (t < 8.5)] = [0.0, 0.3, 0.0]  # to the left
    robot = np.zeros_like(op)
    robot[(t > 1.8) & (t < 4.8)] = [0.2, 0.02, 0.0]  # forward, slightly left
    robot[(t > 5.8) & (t < 8.8)] = [0.0, 0.0, 0.2]  # up: wrong direction
    wins = hold_windows(t, holding, labels)
    assert [w[2] for w in wins] == ["a", "b"]
    assert wins[0][0] == pytest.approx(2.0, abs=0.021)
    assert wins[0][1] == pytest.approx(4.0, abs=0.021)
    scores = hold_fidelity(wins, t, op, t, robot)
    assert scores[0].cosine == pytest.approx(0.2 / np.hypot(0.2, 0.02), abs=1e-6)
    assert scores[1].cosine == pytest.approx(0.0, abs=1e-9)
    # a robot that stayed home has no direction: NaN, never a pass
    dead = hold_fidelity(wins, t, op, t, np.zeros_like(op))
    assert all(np.isnan(s.cosine) for s in dead)


def test_a_hold_at_rest_is_not_scored() -> None:
    t = np.arange(0.0, 4.0, 0.02)
    scores = hold_fidelity([(1.0, 3.0, "rest")], t, np.zeros((t.size, 3)), t,
                           np.zeros((t.size, 3)))
    assert scores == []


def test_distance_after_reads_the_displacement_that_many_seconds_later() -> None:
    t = np.arange(0.0, 10.0, 0.02)
    disp = np.stack([np.exp(-(t - 5.0).clip(0)) * 0.1, 0 * t, 0 * t], axis=1)
    assert distance_after(t, disp, 5.0, 3.0) == pytest.approx(0.1 * np.exp(-3.0), rel=1e-3)
    assert distance_after(t, disp, 5.0, 30.0) == pytest.approx(0.1 * np.exp(-4.98), rel=1e-2)
    assert np.isnan(distance_after(t, disp, 20.0))


def test_max_acceleration_ratio_finds_the_violent_step() -> None:
    t = np.arange(0.0, 1.0, 0.02)
    v = np.zeros((t.size, 2))
    v[:, 0] = np.minimum(t * 2.0, 1.0)  # 2 rad/s^2 ramp: at the limit
    v[30:, 1] = 0.5  # a step of 0.5 rad/s in 20 ms: 25 rad/s^2 = 12.5x a limit of 2
    ratio, joint = max_acceleration_ratio(t, v, [2.0, 2.0])
    assert joint == 1 and ratio == pytest.approx(12.5, rel=1e-6)
    ratio, _ = max_acceleration_ratio(t, v[:, :1], [2.0])
    assert ratio == pytest.approx(1.0, rel=1e-6)


def test_resample_is_nan_outside_and_exact_on_lines() -> None:
    out = resample([0.0, 1.0], [[0.0], [2.0]], [-0.5, 0.25, 1.5])
    assert np.isnan(out[0, 0]) and out[1, 0] == pytest.approx(0.5) and np.isnan(out[2, 0])
