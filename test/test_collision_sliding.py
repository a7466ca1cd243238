"""The collision guard slides along the boundary and brakes within the acceleration limit.

Issue 24: the G1 locked by its own guard (a straight joint-space step back to rest first
brings the upper arm closer to the chest, so a guard that cuts at the last safe point cut
every step to nothing), a fast forward raise stopped dead at ~15x the acceleration limit,
and the FR3 stepping at ~14x the limit on a collision cut. These drive TeleopController with
the shipped YAMLs and the real MuJoCo models at the node's default 50 Hz, poses at 25 Hz.

Every command is checked by MuJoCo's own collision pipeline (`mj_forward`: contacts with
negative distance are penetrations), independent of the guard's pair list and distance
code, and by the guard's checker for the margin. Accelerations are second differences of
the commanded positions, i.e. what a position-controlled robot would be asked to do.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest

from mocap_ros.robots.collision import CollisionChecker
from mocap_ros.teleop.angles import ANGLE_NAMES, angles_to_local_rotations
from mocap_ros.teleop.controller import StepResult, TeleopController
from mocap_ros.teleop.robot_setup import TeleopRobot
from mocap_ros.teleop.safety import SafetyParams

CONFIG = Path(__file__).resolve().parents[1] / "config"
RATE = 50.0
DT = 1.0 / RATE
REST = angles_to_local_rotations({})


def arms(flexion: float, abduction: float, rotation: float, elbow: float) -> np.ndarray:
    """Both arms alike (degrees), as in issue 24's report."""
    angles = {}
    for side in ("left", "right"):
        angles |= {f"{side}_shoulder_flexion": math.radians(flexion),
                   f"{side}_shoulder_abduction": math.radians(abduction),
                   f"{side}_shoulder_rotation": math.radians(rotation),
                   f"{side}_elbow_flexion": math.radians(elbow)}
    return angles_to_local_rotations(angles)


class Run:
    """A controller on a shipped YAML plus independent checks of every command."""

    def __init__(self, name: str, mode: str = "joint") -> None:
        jm, robot = TeleopRobot.from_yaml(CONFIG / f"teleop_{name}.yaml", retarget=mode)
        assert robot is not None
        self.robot = robot
        self.ctl = TeleopController(jm, rate_hz=RATE, robot=robot,
                                    safety_params=SafetyParams(max_jump=3.0))
        self.checker = CollisionChecker(robot.robot, margin=robot.margin)
        self.model = robot.robot.model
        self.data = mujoco.MjData(self.model)
        self.t = 0.0
        self.k = 0
        self.contacts = 0  # commanded configurations MuJoCo finds penetrating
        self.inside_margin = 0
        self.qs: list[np.ndarray] = []
        self.statuses: list[tuple[str, str | None]] = []
        self.ctl.enable(0.0, jm.safe_pose)
        self.qs.append(jm.safe_pose.copy())

    def stream(self, quats: np.ndarray, seconds: float) -> StepResult:
        out = None
        for _ in range(round(seconds * RATE)):
            self.t += DT
            if self.k % 2 == 0:
                self.ctl.on_pose(self.t, self.t, True, 1.0, quats)
            self.k += 1
            out = self.ctl.step(self.t)
            assert out is not None
            self.check(out.positions)
            self.statuses.append((out.status.mode, out.status.reason))
        assert out is not None
        return out

    def check(self, q_map: np.ndarray) -> None:
        q = self.robot.to_model(q_map)
        self.data.qpos[:] = q
        mujoco.mj_forward(self.model, self.data)
        self.contacts += int(np.sum(self.data.contact.dist[: self.data.ncon] < 0.0))
        if self.checker.min_distance(q, self.robot.margin + 1e-3)[0] < self.robot.margin - 1e-9:
            self.inside_margin += 1
        self.qs.append(np.array(q_map, dtype=float))

    def site(self, q_map: np.ndarray, name: str) -> np.ndarray:
        self.data.qpos[:] = self.robot.to_model(q_map)
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site(name).xpos.copy()

    def max_accel_ratio(self) -> float:
        """Largest |second difference of the commands| / (acceleration limit * dt^2)."""
        q = np.asarray(self.qs)
        acc = np.abs(np.diff(q, 2, axis=0)) / DT**2
        return float(np.max(acc / self.ctl.map.acceleration_limits))


def test_mujoco_finds_no_contact_at_home() -> None:
    """The independent check is meaningful: home is contact-free, a dive is not."""
    for name in ("g1", "fr3"):
        r = Run(name)
        r.check(r.ctl.map.safe_pose)
        assert r.contacts == 0 and r.inside_margin == 0
    r = Run("fr3")
    q = r.ctl.map.safe_pose.copy()
    q[1] = 1.7  # column leaned all the way forward: the hand goes through the floor
    r.check(q)
    assert r.contacts > 0 and r.inside_margin > 0


def test_g1_comes_home_after_the_pose_that_locked_its_guard() -> None:
    """Issue 24 item 2: 45/135/0/0 -> 45/135/60/0 -> 0/135/60/0 (abduction/flexion/
    rotation/elbow) -> rest. The straight step back to rest first brings the upper arm
    closer to the chest; cut at the last safe point it never moved again (~0.7-0.9 m from
    home, "holding, collision"). Sliding along the boundary it comes back."""
    r = Run("g1")
    home = [r.site(r.ctl.map.safe_pose, s) for s in ("left_palm", "right_palm")]
    for flex, abd, rot in ((135, 45, 0), (135, 45, 60), (135, 0, 60)):
        r.stream(arms(flex, abd, rot, 0), 2.0)
    out = r.stream(REST, 3.0)
    err = [np.linalg.norm(r.site(out.positions, s) - h)
           for s, h in zip(("left_palm", "right_palm"), home, strict=True)]
    assert max(err) <= 0.030, (err, out.status)
    assert out.status.tracking
    assert r.contacts == 0 and r.inside_margin == 0
    assert r.max_accel_ratio() <= 1.0 + 1e-6


def test_g1_fast_forward_raise_brakes_within_the_acceleration_limit() -> None:
    """Issue 24 item 3: a fast forward raise of both arms (0 -> 135 degrees of flexion in
    0.2 s) was stopped from 2.96 rad/s to 0 in one step (14.8x the limit). Every step must
    keep the acceleration limit, and nothing may touch."""
    r = Run("g1")
    for k in range(1, 6):
        r.stream(arms(27 * k, 0, 0, 0), 0.04)
    r.stream(arms(135, 0, 0, 0), 2.0)
    r.stream(REST, 3.0)
    assert r.contacts == 0 and r.inside_margin == 0
    assert r.max_accel_ratio() <= 1.0 + 1e-6


def test_fr3_dive_toward_the_floor_brakes_within_the_acceleration_limit() -> None:
    """The FR3 column leaned forward with a bent elbow drives links 5-7 toward the floor
    (issue 11); the guard must brake before the margin within the limit, not cut."""
    r = Run("fr3")
    dive = angles_to_local_rotations({"right_shoulder_flexion": 1.7,
                                      "right_elbow_flexion": 0.2})
    r.stream(dive, 4.0)
    assert "collision" in {s[1] for s in r.statuses}  # the boundary was reached
    r.stream(REST, 4.0)
    assert r.contacts == 0 and r.inside_margin == 0
    assert r.max_accel_ratio() <= 1.0 + 1e-6
    assert r.statuses[-1] == ("tracking", None)


def test_distance_gradients_match_finite_differences_of_mujoco_distances() -> None:
    """The analytic rows (witness points x Jacobians) against central differences of
    `mj_geomDistance` itself, on a G1 pose with the arms near the torso and each other."""
    r = Run("g1")
    q_map = r.ctl.map.safe_pose.copy()
    rng = np.random.default_rng(3)
    q_map += rng.uniform(-0.3, 0.3, q_map.size)
    q_map = np.clip(q_map, r.ctl.map.lower, r.ctl.map.upper)
    q = r.robot.to_model(q_map)
    rows = r.checker.distance_rows(q, r.robot.index, 0.25)
    assert rows.distance.size >= 5
    h = 1e-6
    for i in range(rows.distance.size):
        name1, name2 = rows.names[i]
        g1 = mujoco.mj_name2id(r.model, mujoco.mjtObj.mjOBJ_GEOM, name1)
        g2 = mujoco.mj_name2id(r.model, mujoco.mjtObj.mjOBJ_GEOM, name2)
        fd = np.zeros(r.robot.index.size)
        for k, qi in enumerate(r.robot.index):
            vals = []
            for sgn in (1.0, -1.0):
                r.data.qpos[:] = q
                r.data.qpos[qi] += sgn * h
                mujoco.mj_kinematics(r.model, r.data)
                vals.append(mujoco.mj_geomDistance(r.model, r.data, g1, g2, 1.0, None))
            fd[k] = (vals[0] - vals[1]) / (2 * h)
        np.testing.assert_allclose(rows.gradient[i], fd, atol=2e-4, err_msg=str(rows.names[i]))


def test_slide_keeps_the_tangential_part_and_frees_a_retreat() -> None:
    """`slide_velocity` on a hand-made row: a step into the boundary keeps its tangential
    component, a step away from it is untouched, the box always holds."""
    from mocap_ros.robots.collision import DistanceRows, slide_velocity

    rows = DistanceRows(np.array([0.021]), np.array([[1.0, 0.0]]), [("a", "b")])
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    s = slide_velocity(rows, [-0.5, 0.5], lo, hi, [10.0, 10.0], 0.02, 0.02)
    assert s.changed and s.feasible
    assert s.velocity[1] == pytest.approx(0.5)  # along the boundary: kept
    assert -0.05 - 1e-5 <= s.velocity[0] <= 0.0  # into it: only what can still be braked (1 mm)
    away = slide_velocity(rows, [0.5, 0.5], lo, hi, [10.0, 10.0], 0.02, 0.02)
    assert not away.changed and away.velocity == pytest.approx([0.5, 0.5])
    boxed = slide_velocity(rows, [-0.5, 0.0], np.array([-0.6, -1.0]), np.array([-0.4, 1.0]),
                           [10.0, 10.0], 0.02, 0.02)
    assert not boxed.feasible and boxed.velocity[0] == pytest.approx(-0.4)


def test_g1_forward_raise_reaches_135_degrees() -> None:
    """Issue 24 item 3: the chest envelope (one box to z 0.28 with a square front edge)
    held a forward raise off at ~105 degrees; Unitree's torso mesh is rounded there and an
    independent G1 model reaches 135. The stepped chest boxes let the raise through."""
    r = Run("g1")
    raise_ = angles_to_local_rotations({"right_shoulder_flexion": math.radians(135.0)})
    for k in range(1, 11):
        r.stream(angles_to_local_rotations(
            {"right_shoulder_flexion": math.radians(13.5 * k)}), 0.1)
    out = r.stream(raise_, 2.0)
    angles = dict.fromkeys(ANGLE_NAMES, 0.0) | {"right_shoulder_flexion": math.radians(135)}
    want = r.ctl.map.command(angles)  # every joint where the operator asks, not slid aside
    assert out.positions == pytest.approx(want, abs=math.radians(2.0))
    assert out.status.tracking
    assert r.contacts == 0 and r.inside_margin == 0
    assert r.max_accel_ratio() <= 1.0 + 1e-6


def test_feedforward_keeps_every_limit_on_random_targets() -> None:
    """The rate limiter with a fed-forward target speed (wild, even wrong or non-finite):
    positions inside the limits, |velocity| <= limit, |change of velocity| <= a dt."""
    from mocap_ros.teleop.filters import RateLimiter

    rng = np.random.default_rng(7)
    lo, hi = np.array([-1.0, -2.0, 0.5]), np.array([1.0, 2.0, 3.0])
    vmax, amax = np.array([1.0, 2.0, 0.5]), np.array([2.0, 10.0, 1.0])
    lim = RateLimiter(lo, hi, vmax, amax)
    lim.reset(np.array([0.0, 0.0, 1.0]))
    prev_v = lim.velocities.copy()
    for _ in range(3000):
        dt = DT  # (a shrinking dt is the limiter's documented exception, with or without)
        target = rng.uniform(lo - 1.0, hi + 1.0)
        vt = rng.normal(0.0, 3.0, 3)
        if rng.random() < 0.05:
            vt[rng.integers(3)] = np.nan
        p, v = lim.step(target, dt, vt)
        assert np.all(p >= lo - 1e-12) and np.all(p <= hi + 1e-12)
        assert np.all(np.abs(v) <= vmax + 1e-12)
        assert np.all(np.abs(v - prev_v) <= amax * dt + 1e-9)
        prev_v = v


def test_feedforward_follows_a_ramp_without_stopping_short() -> None:
    """A target moving at a constant 0.5 rad/s: with its speed fed forward the command
    runs with it (gap ~0 once up to speed); without it, braking to each sample trails."""
    from mocap_ros.teleop.filters import RateLimiter

    gaps = {}
    for ff in (False, True):
        lim = RateLimiter([-10.0], [10.0], [2.0], [10.0])
        lim.reset(np.zeros(1))
        for k in range(1, 151):
            target = np.array([0.5 * k * DT])
            lim.step(target, DT, np.array([0.5]) if ff else None)
        gaps[ff] = float(target[0] - lim.positions[0])
    assert abs(gaps[True]) < 0.005 < gaps[False]
