"""Task-space differential IK on a MuJoCo robot model (mink), one QP per control step.

`TaskIK.solve(q, target_pos, target_quat, dt)` returns the next joint configuration:

* frame task on the end-effector site (position + optional orientation, weighted);
* posture task toward home (regularises the null space of redundant arms), raised per
  arm as its target nears home (`IKParams.rest_posture_cost`): the home pull that brings
  the arm back out of joint-limit / collision-boundary minima when the operator rests;
* escape from such minima away from rest: a second chain seeded at home, run one QP per
  call only while the error stays large, whose answer becomes the posture target when it
  does better (`IKParams.escape`);
* optional elbow hint: a position task on an elbow body with a small weight, which for a
  7-DoF arm picks the swivel angle without fighting the hand target;
* limits: joint ranges (kept `limit_margin` inside), joint velocities (the model's velocity
  limits times `velocity_scale`), and collision avoidance between every non-adjacent geom
  pair and the environment (`mocap_ros.robots.CollisionChecker` pairs), which keeps geoms
  `collision_margin` apart;
* a final guard independent of the QP: the returned configuration is checked on the model,
  and a step that would bring two geoms closer than `hard_margin` is scaled back along the
  joint-space step (`mocap_ros.robots.safe_step`). `last` says whether that happened.

Quaternions are (x, y, z, w) like everywhere in mocap_ros; positions are metres in the
model's world frame (the robot base frame for the shipped models). Pure: no rclpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import mink
import mujoco
import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.robots.collision import CollisionChecker, GeomPair, safe_step
from mocap_ros.robots.model import RobotModel


@dataclass(frozen=True)
class IKParams:
    position_cost: float = 1.0  # per metre of end-effector error
    orientation_cost: float = 0.3  # per radian; used when a target orientation is given
    posture_cost: float = 0.01  # toward home, per radian
    # Home pull near rest: the posture cost rises to `rest_posture_cost` as every target
    # comes within `rest_radius` (m) of its site's home position (smoothly from
    # `rest_fade`). Home reaches those targets exactly, so the pull costs no accuracy, and
    # it is what gets the arm out of a joint-limit or collision-boundary local minimum
    # when the operator rests (issue 24: the FR3 sat 210 mm from home at a self-collision
    # boundary, the weak posture task unable to pull it around).
    rest_posture_cost: float = 1.0
    rest_radius: float = 0.05
    rest_fade: float = 0.15
    elbow_cost: float = 0.05  # elbow hint, per metre
    damping: float = 1e-3  # Levenberg-Marquardt damping of the QP
    velocity_scale: float = 1.0  # fraction of the model's velocity limits the IK may use
    default_velocity_limit: float = 1.0  # rad/s for joints the model gives none
    limit_margin: float = 0.02  # rad kept clear of each joint limit
    collision: bool = True
    collision_margin: float = 0.03  # m the QP keeps between any checked pair
    collision_detection: float = 0.10  # m at which a pair enters the QP
    collision_gain: float = 0.85
    hard_margin: float = 0.02  # m: the final guard; below collision_margin
    # False: skip the final guard (a caller that checks every configuration it sends
    # itself, like TeleopController with a robot, need not pay for it twice).
    final_guard: bool = True
    solver: str = "daqp"
    # Escape from local minima away from rest (joint limits, collision boundaries): once
    # the worst site error has stayed above `escape_error` (m) without improving by
    # `escape_progress` (m) for `escape_after` seconds, a second IK chain starts from home
    # and runs `escape_iterations` QP steps of twice the call's dt on the same targets,
    # one per call (so a call costs at most two QPs). If it ends with less than
    # `escape_gain` times the current error, its configuration becomes the posture
    # target (cost `rest_posture_cost`) that the QP walks to, under every limit, until
    # the error is down or the target moved away; a seed that did not help is not
    # retried until the target moves. The caller's rate limiter walks to whatever the QP
    # proposes: a seed is never a jump.
    escape: bool = True
    escape_error: float = 0.03
    escape_progress: float = 0.005
    escape_after: float = 0.25
    escape_iterations: int = 8
    escape_gain: float = 0.5
    # posture cost toward an adopted seed: well above the position task's, so the QP
    # walks there in joint space (sliding along its constraints) instead of settling
    # back into the minimum the position task holds it in
    escape_posture_cost: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "position_cost",
            "orientation_cost",
            "posture_cost",
            "rest_posture_cost",
            "rest_radius",
            "elbow_cost",
            "damping",
            "limit_margin",
            "collision_margin",
            "hard_margin",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"IKParams.{name} must be finite and >= 0, got {v}")
        if not (0.0 < self.velocity_scale <= 1.0):
            raise ValueError(f"velocity_scale must be in (0, 1], got {self.velocity_scale}")
        if not (0.0 < self.collision_gain <= 1.0):
            raise ValueError(f"collision_gain must be in (0, 1], got {self.collision_gain}")
        if self.collision_detection <= self.collision_margin:
            raise ValueError("collision_detection must exceed collision_margin")
        if self.hard_margin > self.collision_margin:
            raise ValueError("hard_margin must not exceed collision_margin")
        if not self.rest_fade > self.rest_radius:
            raise ValueError("rest_fade must exceed rest_radius")
        for name in ("escape_error", "escape_progress", "escape_after"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"IKParams.{name} must be finite and >= 0, got {v}")
        if self.escape_iterations < 1 or not (0.0 < self.escape_gain <= 1.0):
            raise ValueError("escape_iterations must be >= 1 and escape_gain in (0, 1]")


@dataclass(frozen=True)
class IKStatus:
    scaled_back: bool  # the final guard cut the QP's step short
    min_distance: float  # nearest checked pair at q, capped at collision_detection
    nearest: GeomPair | None
    position_error: float  # m, end effector to target after the step (first target)


def quat_xyzw_to_wxyz(q: ArrayLike) -> np.ndarray:
    x, y, z, w = np.asarray(q, dtype=float)
    return np.array([w, x, y, z])


class TaskIK:
    """Differential IK for one or more end-effector sites of one model (not thread-safe)."""

    def __init__(
        self,
        robot: RobotModel,
        ee_site: str | Sequence[str],
        *,
        params: IKParams | None = None,
        home: ArrayLike | None = None,
        elbow_body: str | Mapping[str, str] | None = None,
        frozen_joints: Sequence[str] = (),
    ) -> None:
        self.robot = robot
        self.model: mujoco.MjModel = robot.model
        self.params = p = params or IKParams()
        sites = [ee_site] if isinstance(ee_site, str) else list(ee_site)
        if not sites:
            raise ValueError("at least one end-effector site is needed")
        for s in sites:
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, s) < 0:
                raise ValueError(f"{robot.name}: no site named {s!r}")
        self.sites = sites
        self.home = np.asarray(robot.home if home is None else home, dtype=float).copy()
        if self.home.shape != (self.model.nq,):
            raise ValueError(f"home must have {self.model.nq} entries")
        self.lower, self.upper = robot.lower, robot.upper

        self.configuration = mink.Configuration(self.model)
        self._pose_tasks = {
            s: mink.FrameTask(s, "site", position_cost=p.position_cost,
                              orientation_cost=p.orientation_cost, lm_damping=1.0)
            for s in sites
        }
        self._pos_tasks = {
            s: mink.FrameTask(s, "site", position_cost=p.position_cost,
                              orientation_cost=0.0, lm_damping=1.0)
            for s in sites
        }
        self.posture = mink.PostureTask(self.model, cost=p.posture_cost)
        self.posture.set_target(self.home)
        self.configuration.update(self.home)
        self.home_positions = {s: self.configuration.data.site(s).xpos.copy() for s in sites}
        # dofs that move each site (its body's ancestors' joints): each arm's home pull
        # acts on its own chain; a shared joint (a waist) takes the weaker pull.
        self._site_dofs: dict[str, np.ndarray] = {}
        for s in sites:
            mask = np.zeros(self.model.nv, dtype=bool)
            body = int(self.model.site_bodyid[self.model.site(s).id])
            while body > 0:
                adr, num = int(self.model.body_dofadr[body]), int(self.model.body_dofnum[body])
                if num > 0:
                    mask[adr:adr + num] = True
                body = int(self.model.body_parentid[body])
            self._site_dofs[s] = mask
        self._arm_dofs = np.any(np.stack(list(self._site_dofs.values())), axis=0)

        elbows = (
            {sites[0]: elbow_body} if isinstance(elbow_body, str) else dict(elbow_body or {})
        )
        self._elbow_tasks: dict[str, mink.FrameTask] = {}
        for s, body in elbows.items():
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, body) < 0:
                raise ValueError(f"{robot.name}: no body named {body!r}")
            self._elbow_tasks[s] = mink.FrameTask(
                body, "body", position_cost=p.elbow_cost, orientation_cost=0.0, lm_damping=1.0
            )

        vel = {
            n: p.velocity_scale * robot.velocity_limits.get(n, p.default_velocity_limit)
            for n in robot.joint_names
        }
        self.limits: list[mink.Limit] = [
            mink.ConfigurationLimit(self.model, min_distance_from_limits=p.limit_margin),
            mink.VelocityLimit(self.model, vel),
        ]
        self.checker = CollisionChecker(robot, margin=p.hard_margin)
        if p.collision and len(self.checker.pairs):
            self.limits.append(
                mink.CollisionAvoidanceLimit(
                    self.model,
                    self.checker.pair_groups(),
                    gain=p.collision_gain,
                    minimum_distance_from_collisions=p.collision_margin,
                    collision_detection_distance=p.collision_detection,
                )
            )
        self.constraints: list[mink.Task] = []
        if frozen_joints:
            dofs = [int(self.model.jnt_dofadr[self.model.joint(n).id]) for n in frozen_joints]
            self.constraints.append(mink.DofFreezingTask(self.model, dof_indices=dofs))
        self.last = IKStatus(False, math.inf, None, math.nan)
        self.escapes = 0  # seeds adopted (since construction)
        self.seed_steps = 0  # QP steps of the second chain (its cost, since construction)
        self._reset_escape()

    def _reset_escape(self) -> None:
        self._stuck_s, self._stuck_ref = 0.0, math.inf
        self._shadow: np.ndarray | None = None
        self._shadow_left = 0
        self._seed: np.ndarray | None = None  # posture target while escaping
        self._seed_err = math.inf
        self._seed_targets: dict[str, np.ndarray] = {}
        self._failed_targets: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ queries

    def site_pose(self, q: ArrayLike, site: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion xyzw) of an end-effector site at q."""
        self.configuration.update(self._check_q(q))
        sid = self.model.site(site or self.sites[0]).id
        pos = self.configuration.data.site_xpos[sid].copy()
        wxyz = np.empty(4)
        mujoco.mju_mat2Quat(wxyz, self.configuration.data.site_xmat[sid])
        return pos, np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])

    def body_position(self, q: ArrayLike, body: str) -> np.ndarray:
        self.configuration.update(self._check_q(q))
        return self.configuration.data.body(body).xpos.copy()

    def _check_q(self, q: ArrayLike) -> np.ndarray:
        qa = np.asarray(q, dtype=float).reshape(-1)
        if qa.shape != (self.model.nq,) or not np.all(np.isfinite(qa)):
            raise ValueError(f"q must be {self.model.nq} finite numbers")
        return qa

    def rest_weight(self, site: str, position: ArrayLike) -> float:
        """1 when the site's target lies within `rest_radius` of its home position, 0
        beyond `rest_fade`, smooth in between."""
        p = self.params
        far = float(np.linalg.norm(np.asarray(position, dtype=float).reshape(-1)
                                   - self.home_positions[site]))
        s = min(max((p.rest_fade - far) / (p.rest_fade - p.rest_radius), 0.0), 1.0)
        return s * s * (3.0 - 2.0 * s)

    def posture_costs(self, positions: Mapping[str, ArrayLike]) -> np.ndarray:
        """Per-dof posture cost: `posture_cost`, raised toward `rest_posture_cost` on each
        targeted site's chain by its `rest_weight` (the smallest where chains share a dof).
        A site without a target gets no home pull beyond `posture_cost`."""
        p = self.params
        w = np.ones(self.model.nv)
        for site, mask in self._site_dofs.items():
            r = self.rest_weight(site, positions[site]) if site in positions else 0.0
            w[mask] = np.minimum(w[mask], r)
        w[~self._arm_dofs] = 0.0
        return p.posture_cost + (p.rest_posture_cost - p.posture_cost) * w

    # ------------------------------------------------------------------ solve

    def solve(
        self,
        q_current: ArrayLike,
        target_pos: ArrayLike,
        target_quat: ArrayLike | None,
        dt: float,
        *,
        elbow_pos: ArrayLike | None = None,
        elapsed: float | None = None,
    ) -> np.ndarray:
        """One IK step for the first end-effector site (see `solve_many`)."""
        return self.solve_many(
            q_current, {self.sites[0]: (target_pos, target_quat)}, dt,
            elbow_pos={self.sites[0]: elbow_pos} if elbow_pos is not None else None,
            elapsed=elapsed,
        )

    def solve_many(
        self,
        q_current: ArrayLike,
        targets: Mapping[str, tuple[ArrayLike, ArrayLike | None]],
        dt: float,
        *,
        elbow_pos: Mapping[str, ArrayLike | None] | None = None,
        orientation_weight: Mapping[str, float] | None = None,
        elapsed: float | None = None,
    ) -> np.ndarray:
        """Next configuration moving each site toward (position, quaternion xyzw or None).

        Sites without a target only follow the posture task. Non-finite targets raise
        ValueError (the caller decides to hold). `q_current` outside the joint ranges is
        clipped into them first (measured joint states can overshoot by a hair).
        ``orientation_weight`` (per site, [0, 1], default 1) scales the orientation cost:
        the caller fades it out where its orientation target is ill-defined. The posture
        cost follows `posture_costs` of the targets (the home pull near rest).
        ``elapsed``: seconds since the previous call (default `dt`), for the escape's
        timing (see IKParams): a caller planning `dt` ahead every control period passes
        the period.
        """
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be > 0, got {dt}")
        q0 = np.clip(self._check_q(q_current), self.lower, self.upper)
        self.configuration.update(q0)
        tasks: list[mink.Task] = [self.posture]
        first_pos: np.ndarray | None = None
        first_site = None
        for site, (pos, quat) in targets.items():
            if site not in self._pose_tasks:
                raise ValueError(f"{site!r} is not one of this IK's sites {self.sites}")
            pa = np.asarray(pos, dtype=float).reshape(-1)
            if pa.shape != (3,) or not np.all(np.isfinite(pa)):
                raise ValueError(f"target position for {site!r} must be 3 finite numbers")
            if first_pos is None:
                first_pos, first_site = pa, site
            if quat is None:
                task = self._pos_tasks[site]
                _, cur = self.site_pose(q0, site)
                rot = mink.SO3(quat_xyzw_to_wxyz(cur))
            else:
                qa = np.asarray(quat, dtype=float).reshape(-1)
                n = float(np.linalg.norm(qa)) if qa.shape == (4,) else 0.0
                if not (math.isfinite(n) and n > 1e-9):
                    raise ValueError(f"target quaternion for {site!r} must be 4 finite numbers")
                task = self._pose_tasks[site]
                w = 1.0 if orientation_weight is None else orientation_weight.get(site, 1.0)
                if not (math.isfinite(w) and 0.0 <= w <= 1.0):
                    raise ValueError(f"orientation weight for {site!r} must be in [0, 1]")
                task.set_orientation_cost(self.params.orientation_cost * w)
                rot = mink.SO3(quat_xyzw_to_wxyz(qa / n))
            task.set_target(mink.SE3.from_rotation_and_translation(rot, pa))
            tasks.append(task)
            ep = (elbow_pos or {}).get(site)
            if ep is not None and site in self._elbow_tasks:
                ea = np.asarray(ep, dtype=float).reshape(-1)
                if ea.shape == (3,) and np.all(np.isfinite(ea)):
                    et = self._elbow_tasks[site]
                    et.set_target(mink.SE3.from_translation(ea))
                    tasks.append(et)
        positions = {s: np.asarray(t[0], dtype=float).reshape(-1) for s, t in targets.items()}
        home_costs = self.posture_costs(positions)
        if self._seed is not None and self._moved(positions, self._seed_targets):
            self._seed = None  # the operator went elsewhere: that seed was for another target
        if self._seed is not None:
            self.posture.set_target(self._seed)
            self.posture.set_cost(np.maximum(home_costs, self.params.escape_posture_cost))
        else:
            self.posture.set_cost(home_costs)
        try:
            q_next = self._qp_step(q0, tasks, dt)
        finally:
            self.posture.set_target(self.home)
        self.posture.set_cost(home_costs)

        # Final guard, independent of the QP's linearisation.
        # tol 0.01 of a step that is itself at most ~0.03 rad: the bisection is short.
        if self.params.final_guard:
            step = safe_step(self.checker, q0, q_next, margin=self.params.hard_margin, tol=0.01)
            q_out, scaled = step.q, step.scaled
        else:
            q_out, scaled = q_next, False
        # Reported up to the QP's detection distance (farther reads as that distance).
        d, pair = self.checker.min_distance(q_out, self.params.collision_detection)
        errs = self._site_errors(q_out, positions)
        err = errs.get(first_site, math.nan) if first_site is not None else math.nan
        self.last = IKStatus(scaled, d, pair, err)
        if self.params.escape and errs:
            self._escape(tasks, positions, max(errs.values()), dt,
                         dt if elapsed is None else float(elapsed))
        return q_out

    def _qp_step(self, q0: np.ndarray, tasks: list[mink.Task], dt: float) -> np.ndarray:
        self.configuration.update(q0)
        v = mink.solve_ik(
            self.configuration,
            tasks,
            dt,
            self.params.solver,
            damping=self.params.damping,
            limits=self.limits,
            constraints=self.constraints or None,
        )
        return np.clip(self.configuration.integrate(v, dt), self.lower, self.upper)

    def _site_errors(self, q: np.ndarray, positions: Mapping[str, np.ndarray]
                     ) -> dict[str, float]:
        self.configuration.update(q)
        data = self.configuration.data
        return {s: float(np.linalg.norm(data.site(s).xpos - x)) for s, x in positions.items()}

    @staticmethod
    def _moved(now: Mapping[str, np.ndarray], then: Mapping[str, np.ndarray],
               tol: float = 0.02) -> bool:
        return set(now) != set(then) or any(
            float(np.linalg.norm(now[s] - then[s])) > tol for s in now)

    def _escape(self, tasks: list[mink.Task], positions: dict[str, np.ndarray],
                err: float, dt: float, elapsed: float) -> None:
        """Stuck detection and the home-seeded second chain (see IKParams.escape)."""
        p = self.params
        if self._seed is not None:
            if err <= max(p.escape_error, self._seed_err + 0.01):
                self._seed = None  # arrived (or as close as the seed gets)
            return
        if err <= p.escape_error or err < self._stuck_ref - p.escape_progress:
            self._stuck_s, self._stuck_ref = 0.0, err
        else:
            self._stuck_s += max(elapsed, 0.0)
        if (self._shadow is None and self._stuck_s > p.escape_after
                and (self._failed_targets is None
                     or self._moved(positions, self._failed_targets))):
            self._shadow, self._shadow_left = self.home.copy(), p.escape_iterations
        if self._shadow is None:
            return
        self.seed_steps += 1
        try:
            self._shadow = self._qp_step(self._shadow, tasks, 2.0 * dt)
        except mink.NoSolutionFound:  # this seed leads nowhere: drop it
            self._shadow = None
            return
        self._shadow_left -= 1
        if self._shadow_left > 0:
            return
        seed_err = max(self._site_errors(self._shadow, positions).values())
        if seed_err < p.escape_gain * err:
            self._seed, self._seed_err = self._shadow, seed_err
            self._seed_targets = {s: x.copy() for s, x in positions.items()}
            self._failed_targets = None
            self.escapes += 1
        else:
            self._failed_targets = {s: x.copy() for s, x in positions.items()}
        self._shadow = None
        self._stuck_s, self._stuck_ref = 0.0, err
