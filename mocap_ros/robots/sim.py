"""A simulated robot for the closed loop: MuJoCo physics, position actuators, and the checks a
real controller would make on what it receives. No ROS here (mocap_ros.ros.sim_robot wraps it).

* `SimRobot`      -- a `RobotModel` with one position actuator per joint (added with MjSpec),
                     gravity compensated (as Franka's and Unitree's joint controllers do),
                     stepped to a given time; contacts; off-screen rendering.
* `CommandBuffer` -- the setpoint the actuators follow: a stream command (JointState,
                     Float64MultiArray) replaces it at once; a JointTrajectory is interpolated
                     linearly from the setpoint at arrival through its points, honouring
                     ``time_from_start`` (joint_trajectory_controller's positions-only case).
* `LimitMonitor`  -- counts commands that imply more than the velocity or acceleration limits.

Gains. Every joint gets ``kp = I * w^2`` and ``kv = 2 * zeta * I * w`` with ``I`` its
effective inertia at the home pose (diagonal of the joint-space inertia matrix, armature
included) and ``w = 2 pi * bandwidth_hz``: a critically damped loop of the same bandwidth on
every joint, whatever the link masses. The actuator's ctrl is ``q_ref + (kv/kp) * qd_ref``,
which makes the position actuator ``kp (q_ref - q) + kv (qd_ref - qd)``: velocity feed-forward,
so a ramp is tracked without the ``2 zeta / w`` lag a plain PD would add.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.robots.model import FLOOR_NAME, RobotModel, RobotModelError, add_environment

# Group of the shipped models' collision geoms (hidden by MuJoCo's default visual options).
COLLISION_GROUP = 3


@dataclass(frozen=True)
class Contact:
    """One contact: the two geoms (names, else body names) and the penetration (m, >= 0)."""

    geom1: str
    geom2: str
    depth: float


class CommandBuffer:
    """Setpoint (positions, velocities) as a function of sim time; see the module docstring."""

    def __init__(self, start: ArrayLike) -> None:
        q = np.asarray(start, dtype=np.float64).reshape(-1)
        self.size = q.size
        self._hold = q.copy()
        # Trajectory segments: knot times (sim s) and positions, first knot = setpoint at arrival
        self._times: np.ndarray | None = None
        self._knots: np.ndarray | None = None
        self._velocity = np.zeros(self.size)

    def set_stream(self, positions: ArrayLike, velocities: ArrayLike | None = None) -> None:
        self._times = self._knots = None
        self._hold = np.asarray(positions, dtype=np.float64).reshape(-1).copy()
        v = np.zeros(self.size) if velocities is None else np.asarray(velocities, np.float64)
        self._velocity = v.reshape(-1).copy()

    def set_trajectory(self, now: float, times_from_start: Sequence[float],
                       points: ArrayLike) -> None:
        """Replace whatever runs with a trajectory that starts from the setpoint at `now`."""
        pts = np.asarray(points, dtype=np.float64).reshape(len(times_from_start), self.size)
        start, _ = self.sample(now)
        self._times = np.concatenate([[now], now + np.asarray(times_from_start, np.float64)])
        self._knots = np.vstack([start[None], pts])
        self._hold = pts[-1].copy()
        self._velocity = np.zeros(self.size)

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if self._times is None or self._knots is None or t >= self._times[-1]:
            return self._hold.copy(), self._velocity.copy()
        k = int(np.searchsorted(self._times, t, side="right")) - 1
        k = min(max(k, 0), len(self._times) - 2)
        t0, t1 = self._times[k], self._times[k + 1]
        span = t1 - t0
        if span <= 0.0:
            return self._knots[k + 1].copy(), np.zeros(self.size)
        s = min(max((t - t0) / span, 0.0), 1.0)
        q = self._knots[k] + s * (self._knots[k + 1] - self._knots[k])
        return q, (self._knots[k + 1] - self._knots[k]) / span


@dataclass
class LimitMonitor:
    """Counts commands whose implied joint velocity or acceleration exceeds the limits.

    Each command is a set of positions that the robot is told to reach `dt` seconds after the
    previous one: for a JointTrajectory point its ``time_from_start`` step (exact), for stream
    commands the interval between arrivals (what a forward-command controller experiences:
    a late command followed by an early one looks fast). Velocity ``(q - q_prev) / dt``,
    acceleration ``(v - v_prev) / dt`` -- the same discrete quantities the teleop rate limiter
    bounds. A command counts once per kind however many joints exceed; per-joint counts too.
    `tolerance` is relative (0.02 = 2 % over the limit still passes).
    """

    names: tuple[str, ...]
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    tolerance: float = 0.02
    commands: int = 0
    velocity_exceeded: int = 0
    acceleration_exceeded: int = 0
    joint_velocity_exceeded: np.ndarray = field(init=False)
    joint_acceleration_exceeded: np.ndarray = field(init=False)
    peak_velocity_ratio: float = 0.0
    peak_acceleration_ratio: float = 0.0
    _q: np.ndarray | None = None
    _v: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        self.max_velocity = np.broadcast_to(np.asarray(self.max_velocity, float), (n,)).copy()
        self.max_acceleration = np.broadcast_to(
            np.asarray(self.max_acceleration, float), (n,)).copy()
        self.joint_velocity_exceeded = np.zeros(n, dtype=np.int64)
        self.joint_acceleration_exceeded = np.zeros(n, dtype=np.int64)

    def reset_motion(self, positions: ArrayLike | None = None) -> None:
        """Forget the previous command (e.g. a long pause: the robot is at rest there)."""
        self._q = None if positions is None else np.asarray(positions, float).copy()
        self._v = None

    def observe(self, positions: ArrayLike, dt: float) -> tuple[bool, bool]:
        """One command `dt` s after the previous; returns (velocity, acceleration) exceeded."""
        q = np.asarray(positions, dtype=np.float64).reshape(-1)
        self.commands += 1
        if self._q is None or not (math.isfinite(dt) and dt > 0.0):
            self._q, self._v = q.copy(), None if self._q is None else self._v
            return False, False
        v = (q - self._q) / dt
        vr = np.abs(v) / self.max_velocity
        vel_bad = vr > 1.0 + self.tolerance
        acc_bad = np.zeros_like(vel_bad)
        if self._v is not None:
            ar = np.abs(v - self._v) / dt / self.max_acceleration
            acc_bad = ar > 1.0 + self.tolerance
            self.peak_acceleration_ratio = max(self.peak_acceleration_ratio, float(ar.max()))
        self.peak_velocity_ratio = max(self.peak_velocity_ratio, float(vr.max()))
        self.joint_velocity_exceeded += vel_bad
        self.joint_acceleration_exceeded += acc_bad
        self.velocity_exceeded += int(vel_bad.any())
        self.acceleration_exceeded += int(acc_bad.any())
        self._q, self._v = q.copy(), v
        return bool(vel_bad.any()), bool(acc_bad.any())

    def summary(self) -> dict[str, object]:
        return {
            "commands": self.commands,
            "velocity_exceeded": self.velocity_exceeded,
            "acceleration_exceeded": self.acceleration_exceeded,
            "peak_velocity_ratio": round(self.peak_velocity_ratio, 4),
            "peak_acceleration_ratio": round(self.peak_acceleration_ratio, 4),
            "per_joint": {n: [int(a), int(b)] for n, a, b in zip(
                self.names, self.joint_velocity_exceeded, self.joint_acceleration_exceeded,
                strict=True) if a or b},
        }


class SimRobot:
    """MuJoCo simulation of a fixed-base robot under joint position control."""

    def __init__(self, robot: RobotModel, *, bandwidth_hz: float = 8.0,
                 damping_ratio: float = 1.0, armature: float = 0.02,
                 gravity_compensation: bool = True, floor: bool = False,
                 floor_height: float = 0.0) -> None:
        if not (math.isfinite(bandwidth_hz) and bandwidth_hz > 0):
            raise RobotModelError(f"bandwidth_hz must be > 0, got {bandwidth_hz}")
        if floor:
            robot = add_environment(robot, floor=True, floor_height=floor_height)
        self.robot = robot
        spec = robot.spec.copy()
        if len(spec.actuators):
            raise RobotModelError(f"{robot.name}: the model already has actuators; sim_robot "
                                  "adds its own position actuators")
        for body in spec.bodies:
            body.gravcomp = 1.0 if gravity_compensation else 0.0
        names = robot.joint_names
        for j in spec.joints:
            j.armature = max(float(j.armature), armature)
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        # The shipped models carry no light: one overhead for the pictures (no effect on physics)
        spec.worldbody.add_light(name="sim_robot_light", pos=[1.0, -1.0, 3.0],
                                 dir=[-0.3, 0.3, -1.0], diffuse=[0.8, 0.8, 0.8])
        for n in names:
            act = spec.add_actuator(name=f"position_{n}", target=n,
                                    trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.set_to_position(kp=1.0, kv=0.0)  # gains set per joint below
        try:
            self.model = spec.compile()
        except Exception as exc:
            raise RobotModelError(f"{robot.name}: cannot add actuators: {exc}") from exc
        m = self.model
        self.data = mujoco.MjData(m)
        self.joint_names = names
        self.home = robot.home.copy()
        self.data.qpos[:] = self.home
        mujoco.mj_forward(m, self.data)
        full = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, self.data, full)
        inertia = np.diag(full).copy()
        w = 2.0 * math.pi * bandwidth_hz
        self.kp = inertia * w * w
        self.kv = 2.0 * damping_ratio * inertia * w
        # position actuator: force = kp*ctrl - kp*q - kv*qd
        m.actuator_gainprm[:, 0] = self.kp
        m.actuator_biasprm[:, 1] = -self.kp
        m.actuator_biasprm[:, 2] = -self.kv
        m.actuator_ctrllimited[:] = 0
        self.lower, self.upper = robot.lower, robot.upper
        self.data.ctrl[:] = self.home
        self.steps = 0
        self._renderer: mujoco.Renderer | None = None
        self._floor_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_NAME)

    # ------------------------------------------------------------------ state
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def positions(self) -> np.ndarray:
        return self.data.qpos.copy()

    @property
    def velocities(self) -> np.ndarray:
        return self.data.qvel.copy()

    @property
    def efforts(self) -> np.ndarray:
        return self.data.actuator_force.copy()

    def reset(self, positions: ArrayLike | None = None, time: float = 0.0) -> None:
        mujoco.mj_resetData(self.model, self.data)
        q = self.home if positions is None else np.asarray(positions, float)
        self.data.qpos[:] = q
        self.data.ctrl[:] = q
        self.data.time = time
        mujoco.mj_forward(self.model, self.data)

    def step_until(self, t: float, command: CommandBuffer, max_steps: int = 1000) -> int:
        """Step the physics (its own timestep) until its time reaches `t`, the actuators
        following `command`; at most `max_steps` (a stalled caller must not spiral)."""
        m, d = self.model, self.data
        dt = m.opt.timestep
        ratio = np.divide(self.kv, self.kp, out=np.zeros_like(self.kp), where=self.kp > 0)
        n = 0
        while d.time + 0.5 * dt <= t and n < max_steps:
            q_ref, qd_ref = command.sample(d.time)
            d.ctrl[:] = q_ref + ratio * qd_ref
            mujoco.mj_step(m, d)
            n += 1
        if n == max_steps and d.time + 0.5 * dt <= t:
            d.time = t  # fell behind: skip ahead rather than simulate the backlog
        self.steps += n
        return n

    def contacts(self) -> list[Contact]:
        """Active contacts (penetrating or touching) after the last step."""
        d = self.data
        out = []
        for i in range(d.ncon):
            c = d.contact[i]
            if c.dist > 0.0:
                continue
            out.append(Contact(self._geom_label(int(c.geom1)), self._geom_label(int(c.geom2)),
                               float(-c.dist)))
        return out

    def _geom_label(self, g: int) -> str:
        name = self.model.geom(g).name
        return name or self.model.body(int(self.model.geom_bodyid[g])).name

    def geom_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions of every body origin and its parent index (for a 2-D drawing)."""
        return self.data.xpos.copy(), self.model.body_parentid.copy()

    # ------------------------------------------------------------------ rendering
    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """An RGB picture of the robot (off-screen; MUJOCO_GL=egl or osmesa). Raises
        RuntimeError with the reason when no OpenGL context can be made."""
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (
                width, height):
            try:
                self._renderer = mujoco.Renderer(self.model, height, width)
            except Exception as exc:
                raise RuntimeError(
                    f"off-screen rendering failed ({type(exc).__name__}: {exc}); set MUJOCO_GL "
                    "to egl (GPU/Mesa EGL) or osmesa (software Mesa) before the process "
                    "starts") from exc
        opt = mujoco.MjvOption()
        opt.geomgroup[COLLISION_GROUP] = 1
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = self.model.stat.center
        cam.distance = 1.6 * float(self.model.stat.extent)
        # facing the robot's front (+x), a little from its left: it mirrors the operator
        cam.azimuth, cam.elevation = 160.0, -15.0
        self._renderer.update_scene(self.data, camera=cam, scene_option=opt)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
