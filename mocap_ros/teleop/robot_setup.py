"""The robot side of teleop: its model, the collision guard and (task mode) the IK, from YAML.

The robot YAML (config/teleop_*.yaml) holds the joint map (`retarget.RobotJointMap`) and
these optional sections::

    retarget: task            # task | joint (default joint: the per-joint maps)
    model:                    # the robot model; without it there is no collision guard
      source: fr3             # shipped name (fr3, g1) or an MJCF/URDF path (relative to
                              # the YAML's folder)
      floor: true             # a floor plane at floor_height (m, base frame)
      floor_height: 0.0
      table: {center: [0.5, 0.0, 0.2], size: [0.6, 1.0, 0.04]}   # optional box, base frame
      collision_margin: 0.02  # m: no command ever brings two checked geoms closer
    task:                     # needed for retarget: task
      reach: 0.35             # m of robot hand travel per operator arm length
      base_rotation_rpy: [0, 0, 0]   # base <- operator body frame (x fwd, y left, z up),
                                     # roll-pitch-yaw (fixed axes x, y, z), radians
      ik_margin: 0.04         # m the IK's collision constraints keep (> collision_margin)
      horizon: 0.15           # s of motion one IK step plans ahead (see below)
      frozen: []              # map joints the IK must leave at home
      unreachable_distance: 0.05  # m: a tool this far off its target ...
      unreachable_time: 0.5       # s: ... for this long is reported "unreachable"
      arms:
        - side: right         # the operator's arm (after `mirror`)
          ee_site: tcp        # model site that follows the operator's wrist
          elbow_body: fr3_link4   # optional: swivel hint for 7-DoF arms
          orientation: true   # also turn the tool with the operator's forearm

Home: the joints' ``safe_pose`` values. In task mode the operator's rest pose (arms
hanging) maps to the end effector(s) at home and the IK's posture task pulls toward it; in
joint mode the rest pose gives the joints' ``offset`` values, which the shipped YAMLs keep
collision-free and clear of every limit. Model joints the map does not name stay at the
model's home keyframe.

The guard (both modes, every command the controller produces): `slide(prev, v, box...)`
changes the step's velocity as little as possible so that no checked geom pair (self:
non-adjacent links; environment: floor, table) closes faster than it can be braked a few
mm outside ``collision_margin`` within the acceleration limits (`collision.slide_velocity`);
`guard(prev, cmd)` then walks the joint-space step on the model and, as a last resort,
cuts it at the last configuration keeping every pair ``collision_margin`` apart
(`mocap_ros.robots.safe_step`).

IK horizon: the rate limiter after the IK brakes toward its target (v <= sqrt(2 a d)); a
target only one control period ahead would keep the arm crawling. So each control step the
IK plans `horizon` seconds of motion from the current command (its QP velocity limits and
collision constraints, kept `ik_margin` apart, apply to that whole step), and the rate
limiter moves toward it at the velocity and acceleration limits; the guard then checks
what is actually commanded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml
from numpy.typing import ArrayLike

from mocap_ros.robots.collision import (
    COLLISION_MARGIN,
    CollisionChecker,
    SafeStep,
    Slide,
    safe_step,
    slide_velocity,
)
from mocap_ros.robots.model import RobotModel, RobotModelError, add_environment, load_robot
from mocap_ros.teleop.ik import IKParams, TaskIK
from mocap_ros.teleop.retarget import JointMapError, RobotJointMap
from mocap_ros.teleop.task_retarget import (
    FEATURES_PER_ARM,
    RetargetError,
    TaskMap,
    orientation_weight,
    targets_from_features,
)

_log = logging.getLogger(__name__)
RETARGET_MODES: tuple[str, ...] = ("joint", "task")
# Pairs closer than this (m) beyond the collision margin constrain each step's velocity
# (`slide`): far enough that a pair closing at the velocity limits is seen before its braking
# distance at the acceleration limits (G1 hand at ~1 m/s, ~2.5 m/s^2 of distance braking:
# 0.2 m), near enough that a step looks at tens of pairs, not hundreds.
GUARD_ACTIVATION = 0.25
# The step's constraints aim this far (m) outside the collision margin: they are linear in
# the step, the distances are not (a pair's gradient turns as it moves, box edges switch),
# and the last-resort cut at the margin itself must not be what stops the robot. When the
# aim was not enough (the checked step still enters the margin) the controller retries
# with the next, larger one before cutting.
GUARD_BUFFERS = (0.003, 0.01, 0.03)

def _joint_reach(model: mujoco.MjModel) -> float:
    """An upper bound, in any configuration, on the distance from a joint's anchor to any
    point of a collision geom it moves: the chain of body offsets from the root to the
    geom's body, plus the geom's offset and bounding radius (triangle inequality)."""
    far = 0.0
    for g in range(model.ngeom):
        b = int(model.geom_bodyid[g])
        if b == 0 or model.body_weldid[b] == 0:
            continue  # fixed to the world: no joint moves it
        length = float(np.linalg.norm(model.geom_pos[g]) + model.geom_rbound[g])
        # up to the first moving body: its anchor is the farthest joint from the geom
        while model.body_weldid[model.body_parentid[b]] != 0:
            length += float(np.linalg.norm(model.body_pos[b]))
            b = int(model.body_parentid[b])
        far = max(far, length)
    return far


_MODEL_KEYS = ("source", "floor", "floor_height", "table", "collision_margin")
_TASK_KEYS = ("reach", "base_rotation_rpy", "ik_margin", "horizon", "frozen", "arms",
              "unreachable_distance", "unreachable_time")
_ARM_KEYS = ("side", "ee_site", "elbow_body", "orientation")


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll), the URDF convention."""
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp, cy, sy = (math.cos(r), math.sin(r), math.cos(p), math.sin(p),
                              math.cos(y), math.sin(y))
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class ArmSpec:
    side: str
    ee_site: str
    elbow_body: str | None = None
    orientation: bool = True


@dataclass(frozen=True)
class TaskSpec:
    arms: tuple[ArmSpec, ...]
    reach: float = 0.35
    base_rotation_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ik_margin: float = 0.04
    horizon: float = 0.15
    frozen: tuple[str, ...] = ()
    # the controller reports "unreachable" (not "tracking") once some tool has been more
    # than unreachable_distance (m) off its target for longer than unreachable_time (s)
    unreachable_distance: float = 0.05
    unreachable_time: float = 0.5


@dataclass(frozen=True)
class TaskArm:
    spec: ArmSpec
    tmap: TaskMap


def _num(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JointMapError(f"{where}: must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise JointMapError(f"{where}: must be finite{' and > 0' if positive else ''}, "
                            f"got {value!r}")
    return v


class TeleopRobot:
    """Model + collision guard (+ task IK) for one joint map. Not thread-safe."""

    def __init__(
        self,
        joint_map: RobotJointMap,
        robot: RobotModel,
        *,
        retarget: str = "joint",
        collision_margin: float = COLLISION_MARGIN,
        task: TaskSpec | None = None,
        source: str = "robot config",
    ) -> None:
        if retarget not in RETARGET_MODES:
            raise JointMapError(f"{source}: field 'retarget': must be one of {RETARGET_MODES}, "
                                f"got {retarget!r}")
        if retarget == "task" and task is None:
            raise JointMapError(f"{source}: retarget: task needs a 'task' section")
        if not (math.isfinite(collision_margin) and collision_margin >= 0):
            raise JointMapError(f"{source}: model.collision_margin must be >= 0")
        self.map = joint_map
        self.robot = robot
        self.retarget = retarget
        self.margin = float(collision_margin)
        try:
            self.index = robot.qpos_indices(joint_map.names)
        except RobotModelError as exc:
            raise JointMapError(f"{source}: the joint map names a joint the model lacks: "
                                f"{exc}") from exc
        self.model_home = robot.home.copy()
        self.checker = CollisionChecker(robot, margin=self.margin)
        # farthest any collision geom reaches from any joint anchor (m): bounds how fast a
        # joint moves any point of a geom (speed <= reach * joint speed)
        self.reach = _joint_reach(robot.model)
        home = self.to_model(joint_map.safe_pose)
        hits = self.checker.collisions(home)
        if hits:
            raise JointMapError(
                f"{source}: the home (safe_pose) puts {hits[0].geom1} and {hits[0].geom2} "
                f"{hits[0].distance * 1000:.0f} mm apart, inside collision_margin "
                f"{self.margin * 1000:.0f} mm")
        self.task = task
        self._ik_errors_logged: set[str] = set()  # exception kinds already logged
        self.ik: TaskIK | None = None
        self.arms: tuple[TaskArm, ...] = ()
        if retarget == "task":
            assert task is not None
            self._build_task(task, home, source)

    # -------------------------------------------------------------------------- mapping
    def to_model(self, q_map: ArrayLike) -> np.ndarray:
        """Map-order joint vector -> full model qpos (other joints at the model's home)."""
        q = self.model_home.copy()
        q[self.index] = np.asarray(q_map, dtype=float).reshape(-1)
        return q

    def from_model(self, q: ArrayLike) -> np.ndarray:
        return np.asarray(q, dtype=float).reshape(-1)[self.index].copy()

    # -------------------------------------------------------------------------- guard
    def guard(self, q_prev: ArrayLike, q_cmd: ArrayLike) -> SafeStep:
        """`safe_step` in map order: the furthest point of prev -> cmd outside the margin."""
        a = np.asarray(q_prev, dtype=float).reshape(-1)
        b = np.asarray(q_cmd, dtype=float).reshape(-1)
        if np.array_equal(a, b):  # no motion: nothing can get closer
            return SafeStep(q=b.copy(), scaled=False, fraction=1.0, nearest=None)
        step = safe_step(self.checker, self.to_model(a), self.to_model(b), margin=self.margin)
        return SafeStep(q=self.from_model(step.q), scaled=step.scaled, fraction=step.fraction,
                        nearest=step.nearest)

    def slide(self, q_prev: ArrayLike, v_des: ArrayLike, lower: ArrayLike, upper: ArrayLike,
              accel: ArrayLike, dt: float, buffer: float = 0.003) -> Slide:
        """`slide_velocity` from the map-order configuration `q_prev`: the velocity closest
        to `v_des` within [lower, upper] that keeps every pair within `GUARD_ACTIVATION` of
        the margin brakeable at the acceleration limits (map order in and out)."""
        # Only pairs that could need braking this step: a closing speed is at most
        # sum_k |grad_ik| |v_k| with |grad_ik| <= 2 * reach, and its braking distance at
        # the pair's deceleration (half of sum_k |grad_ik| a_k) at most
        # 2 * reach * sum_k |v_k| * max_k |v_k| / a_k (+ two steps of travel).
        speed = np.maximum(np.abs(np.asarray(lower, float)), np.abs(np.asarray(upper, float)))
        acc = np.asarray(accel, dtype=float)
        stop = 2.0 * self.reach * float(np.sum(speed)) * (float(np.max(speed / acc)) + 2 * dt)
        reach = min(GUARD_ACTIVATION, stop + GUARD_BUFFERS[-1])
        rows = self.checker.distance_rows(self.to_model(q_prev), self.index,
                                          self.margin + reach)
        # Aim GUARD_BUFFER outside the margin: the constraints are linear in the step, the
        # distances are not (a pair's gradient turns as it moves), and the last-resort cut
        # at the margin itself must not be what stops the robot.
        return slide_velocity(rows, v_des, lower, upper, accel, dt, self.margin + buffer)

    def min_distance(self, q_map: ArrayLike) -> float:
        return self.checker.min_distance(self.to_model(q_map), self.margin + 0.05)[0]

    # -------------------------------------------------------------------------- task
    def _build_task(self, task: TaskSpec, home: np.ndarray, source: str) -> None:
        p = self.map
        if task.ik_margin <= self.margin:
            raise JointMapError(f"{source}: task.ik_margin ({task.ik_margin}) must exceed "
                                f"model.collision_margin ({self.margin})")
        params = IKParams(
            velocity_scale=p.velocity_scale,
            limit_margin=max(p.position_margin, 0.0),
            collision_margin=task.ik_margin,
            collision_detection=task.ik_margin + 0.08,
            hard_margin=self.margin,
            final_guard=False,  # the controller's guard checks every command it sends
        )
        names = set(p.names)
        for f in task.frozen:
            if f not in names:
                raise JointMapError(f"{source}: task.frozen: {f!r} is not a joint of the map")
        frozen = [n for n in self.robot.joint_names if n not in names or n in task.frozen]
        elbows = {a.ee_site: a.elbow_body for a in task.arms if a.elbow_body}
        try:
            self.ik = TaskIK(self.robot, [a.ee_site for a in task.arms], params=params,
                             home=home, elbow_body=elbows or None, frozen_joints=frozen)
        except ValueError as exc:
            raise JointMapError(f"{source}: task: {exc}") from exc
        rot = rpy_matrix(task.base_rotation_rpy)
        arms = []
        for a in task.arms:
            pos, quat = self.ik.site_pose(home, a.ee_site)
            elbow = self.ik.body_position(home, a.elbow_body) if a.elbow_body else None
            arms.append(TaskArm(a, TaskMap(home_position=pos, home_quat=quat, reach=task.reach,
                                           rotation=rot, home_elbow=elbow)))
        self.arms = tuple(arms)

    @property
    def n_features(self) -> int:
        return FEATURES_PER_ARM * len(self.arms)

    def solve(self, q_map: ArrayLike, features: ArrayLike, dt: float,
              elapsed: float | None = None) -> np.ndarray:
        """One IK step (task mode): the map-order configuration `dt` seconds ahead;
        `elapsed`: seconds since the previous call (the IK's escape timing, default dt).

        Raises RetargetError when the features give no target or the QP has no solution.
        """
        if self.ik is None:
            raise RetargetError("solve needs retarget: task")
        f = np.asarray(features, dtype=float).reshape(-1)
        if f.shape != (self.n_features,):
            raise RetargetError(f"expected {self.n_features} features, got {f.shape}")
        targets: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        hints: dict[str, np.ndarray | None] = {}
        weights: dict[str, float] = {}
        for k, arm in enumerate(self.arms):
            fk = f[k * FEATURES_PER_ARM:(k + 1) * FEATURES_PER_ARM]
            pos, quat, hint = targets_from_features(fk, arm.tmap)
            targets[arm.spec.ee_site] = (pos, quat if arm.spec.orientation else None)
            hints[arm.spec.ee_site] = hint
            weights[arm.spec.ee_site] = orientation_weight(fk[:3] - fk[3:])
        from mink import NoSolutionFound

        try:
            q = self.ik.solve_many(self.to_model(q_map), targets, dt, elbow_pos=hints,
                                   orientation_weight=weights, elapsed=elapsed)
        except (NoSolutionFound, ValueError) as exc:  # only these: a bug must surface
            detail = f"IK failed: {type(exc).__name__}: {exc}"
            if type(exc).__name__ not in self._ik_errors_logged:  # the first of each kind
                self._ik_errors_logged.add(type(exc).__name__)
                _log.warning("%s (later ones only in the status)", detail)
            raise RetargetError(detail) from exc
        return self.from_model(q)

    def target_error(self, q_map: ArrayLike, features: ArrayLike) -> float:
        """Largest distance (m) between an end effector at q and its position target
        (task mode); NaN when the features give no target."""
        f = np.asarray(features, dtype=float).reshape(-1)
        if f.shape != (self.n_features,) or not np.all(np.isfinite(f)):
            return math.nan
        try:
            want = [targets_from_features(f[k * FEATURES_PER_ARM:(k + 1) * FEATURES_PER_ARM],
                                          arm.tmap)[0] for k, arm in enumerate(self.arms)]
        except RetargetError:
            return math.nan
        return float(np.max(np.linalg.norm(self.hand_positions(q_map) - np.array(want),
                                           axis=1)))

    def hand_positions(self, q_map: ArrayLike) -> np.ndarray:
        """(n_arms, 3) end-effector positions at q (task mode), base frame."""
        assert self.ik is not None
        q = self.to_model(q_map)
        return np.array([self.ik.site_pose(q, a.spec.ee_site)[0] for a in self.arms])

    # -------------------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], joint_map: RobotJointMap, *,
                  base_dir: Path | None = None, source: str = "robot config"
                  ) -> TeleopRobot | None:
        """None when the YAML has no `model` section (joint mode without a guard)."""
        retarget = data.get("retarget", "joint")
        model = data.get("model")
        if model is None:
            if retarget == "task":
                raise JointMapError(f"{source}: retarget: task needs a 'model' section")
            if retarget not in RETARGET_MODES:
                raise JointMapError(f"{source}: field 'retarget': must be one of "
                                    f"{RETARGET_MODES}, got {retarget!r}")
            return None
        if not isinstance(model, Mapping):
            raise JointMapError(f"{source}: field 'model': must be a mapping")
        unknown = sorted(set(model) - set(_MODEL_KEYS))
        if unknown or "source" not in model:
            raise JointMapError(f"{source}: field 'model': needs 'source', knows "
                                f"{list(_MODEL_KEYS)}, got unknown {unknown}")
        src = str(model["source"])
        path = Path(src)
        if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
            src = str(base_dir / path)
        try:
            robot = add_environment(
                load_robot(src),
                floor=bool(model.get("floor", True)),
                floor_height=_num(model.get("floor_height", 0.0),
                                  f"{source}: model.floor_height"),
                table=model.get("table"),
            )
        except RobotModelError as exc:
            raise JointMapError(f"{source}: model: {exc}") from exc
        margin = _num(model.get("collision_margin", COLLISION_MARGIN),
                      f"{source}: model.collision_margin")
        task = cls._task_from_dict(data.get("task"), source) if "task" in data else None
        return cls(joint_map, robot, retarget=retarget, collision_margin=margin, task=task,
                   source=source)

    @staticmethod
    def _task_from_dict(raw: Any, source: str) -> TaskSpec:
        where = f"{source}: task"
        if not isinstance(raw, Mapping):
            raise JointMapError(f"{where}: must be a mapping")
        unknown = sorted(set(raw) - set(_TASK_KEYS))
        if unknown:
            raise JointMapError(f"{where}: unknown field(s) {unknown}")
        arms_raw = raw.get("arms")
        if not isinstance(arms_raw, list) or not arms_raw:
            raise JointMapError(f"{where}.arms: must list at least one arm")
        arms = []
        for i, a in enumerate(arms_raw):
            if not isinstance(a, Mapping) or sorted(set(a) - set(_ARM_KEYS)):
                raise JointMapError(f"{where}.arms[{i}]: a mapping with keys {list(_ARM_KEYS)}")
            if a.get("side") not in ("left", "right") or not isinstance(a.get("ee_site"), str):
                raise JointMapError(f"{where}.arms[{i}]: needs side (left|right) and ee_site")
            arms.append(ArmSpec(a["side"], a["ee_site"], a.get("elbow_body"),
                                bool(a.get("orientation", True))))
        rpy = raw.get("base_rotation_rpy", [0.0, 0.0, 0.0])
        if not isinstance(rpy, list) or len(rpy) != 3:
            raise JointMapError(f"{where}.base_rotation_rpy: must be 3 numbers")
        frozen = raw.get("frozen", [])
        if not isinstance(frozen, list) or not all(isinstance(n, str) for n in frozen):
            raise JointMapError(f"{where}.frozen: must be a list of joint names")
        return TaskSpec(
            arms=tuple(arms),
            reach=_num(raw.get("reach", 0.35), f"{where}.reach", positive=True),
            base_rotation_rpy=tuple(_num(v, f"{where}.base_rotation_rpy") for v in rpy),  # type: ignore[arg-type]
            ik_margin=_num(raw.get("ik_margin", 0.04), f"{where}.ik_margin", positive=True),
            horizon=_num(raw.get("horizon", 0.15), f"{where}.horizon", positive=True),
            frozen=tuple(frozen),
            unreachable_distance=_num(
                raw.get("unreachable_distance", TaskSpec.unreachable_distance),
                f"{where}.unreachable_distance", positive=True),
            unreachable_time=_num(raw.get("unreachable_time", TaskSpec.unreachable_time),
                                  f"{where}.unreachable_time", positive=True),
        )

    @classmethod
    def from_yaml(cls, path: str | Path, joint_map: RobotJointMap | None = None,
                  *, retarget: str | None = None) -> tuple[RobotJointMap, TeleopRobot | None]:
        """(joint map, robot or None) from one robot YAML; `retarget` overrides the file's."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise JointMapError(f"{p.name}: not valid YAML: {exc}") from exc
        jm = joint_map if joint_map is not None else RobotJointMap.from_dict(data, source=p.name)
        if retarget:
            data = {**data, "retarget": retarget}
        return jm, cls.from_dict(data, jm, base_dir=p.parent, source=p.name)
