"""Human anatomical angles -> robot joint commands, from a validated YAML joint map.

YAML layout (all angles in radians, velocities rad/s, accelerations rad/s^2)::

    robot: fr3                 # required, non-empty string
    mirror: false              # optional (default false), see below
    position_margin: 0.0       # optional, rad kept clear of each position limit
    velocity_scale: 1.0        # optional, in (0, 1]: fraction of each velocity limit used
    acceleration_scale: 1.0    # optional, in (0, 1]: same for accelerations
    joints:                    # required, non-empty list
      - name: fr3_joint2       # required, unique
        follows: right_shoulder_flexion   # an angles.ANGLE_NAMES entry, or "constant"
        scale: 1.0             # required unless follows == constant
        offset: -0.785         # required: robot angle when the human angle is 0
        lower: -1.7837         # required, lower < upper
        upper: 1.7837
        velocity_limit: 2.62   # required, > 0
        acceleration_limit: 10.0   # required, > 0
        safe_pose: -0.785      # optional; default clamp(offset) into the limits

The documented robot limits go in verbatim; `position_margin`, `velocity_scale` and
`acceleration_scale` derive the limits actually enforced (``lower``/``upper``/
``velocity_limits``/``acceleration_limits`` on the map are the enforced ones).

Command: ``clamp(scale * angle + offset, lower, upper)`` per joint (``angle = 0`` for
``constant``), before filtering and rate limiting.

Mirror: an operator FACING the robot expects it to move like a mirror image. With
``mirror: true`` every ``left_*`` angle is read from the operator's ``right_*`` angle and
vice versa (the robot's left arm follows the operator's right arm). Side-prefixed
anatomical angles (flexion, abduction, rotation, pronation, ...) keep their sign: they are
defined mirror-symmetrically, so "right elbow bends 30 deg" becomes "left elbow bends 30
deg". Yaw angles (``torso_yaw``, ``head_yaw``) flip sign: turning to the operator's left
is turning to the mirror image's right. Pitch angles lie in the mirror plane and keep
their sign. (See ``angles.mirrored_name``.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mocap_ros.geometry.rotations import FloatArray
from mocap_ros.teleop.angles import ANGLE_NAMES, mirrored_name
from mocap_ros.teleop.yaml_fields import check_fields, joint_name, number

CONSTANT = "constant"
_JOINT_REQUIRED = (
    "name",
    "follows",
    "offset",
    "lower",
    "upper",
    "velocity_limit",
    "acceleration_limit",
)
_JOINT_OPTIONAL = ("scale", "safe_pose")
_TOP_REQUIRED = ("robot", "joints")
_TOP_OPTIONAL = ("mirror", "position_margin", "velocity_scale", "acceleration_scale")
# The robot side (model, collision guard, task-space IK): read by teleop.robot_setup.
# teleop.gripper reads (and validates) the `gripper` section.
_ROBOT_SECTIONS = ("retarget", "model", "task", "gripper")


class JointMapError(ValueError):
    """A joint map that must not be used; the message names the joint and the field."""


@dataclass(frozen=True)
class JointSpec:
    """One robot joint as written in the YAML (documented, un-derated limits)."""

    name: str
    follows: str
    scale: float
    offset: float
    lower: float
    upper: float
    velocity_limit: float
    acceleration_limit: float
    safe_pose: float | None = None


def _number(value: Any, where: str) -> float:
    return number(value, where, JointMapError)


class RobotJointMap:
    """Validated mapping from human angles to robot joint commands (see module docstring)."""

    def __init__(
        self,
        robot: str,
        joints: Sequence[JointSpec],
        *,
        mirror: bool = False,
        position_margin: float = 0.0,
        velocity_scale: float = 1.0,
        acceleration_scale: float = 1.0,
        source: str = "joint map",
    ) -> None:
        self.source = source
        if not isinstance(robot, str) or not robot.strip():
            raise JointMapError(f"{source}: field 'robot': must be a non-empty string")
        if not isinstance(mirror, bool):
            raise JointMapError(f"{source}: field 'mirror': must be true or false")
        if not joints:
            raise JointMapError(f"{source}: field 'joints': must list at least one joint")
        margin = _number(position_margin, f"{source}: field 'position_margin'")
        if margin < 0:
            raise JointMapError(f"{source}: field 'position_margin': must be >= 0")
        vs = _number(velocity_scale, f"{source}: field 'velocity_scale'")
        acs = _number(acceleration_scale, f"{source}: field 'acceleration_scale'")
        for field, v in (("velocity_scale", vs), ("acceleration_scale", acs)):
            if not 0 < v <= 1:
                raise JointMapError(f"{source}: field '{field}': must be in (0, 1], got {v}")
        self.robot = robot
        self.mirror = mirror
        self.position_margin = margin
        self.velocity_scale = vs
        self.acceleration_scale = acs
        self.joints: tuple[JointSpec, ...] = tuple(joints)

        seen: set[str] = set()
        lower, upper, safe = [], [], []
        for j in self.joints:
            where = f"{source}: joint '{j.name}'"
            if j.name in seen:
                raise JointMapError(f"{where}: field 'name': duplicate joint name")
            seen.add(j.name)
            if j.follows != CONSTANT and j.follows not in ANGLE_NAMES:
                raise JointMapError(
                    f"{where}: field 'follows': unknown angle name {j.follows!r} "
                    f"(known: {', '.join(ANGLE_NAMES)}, or '{CONSTANT}')"
                )
            for field in (
                "scale",
                "offset",
                "lower",
                "upper",
                "velocity_limit",
                "acceleration_limit",
            ):
                _number(getattr(j, field), f"{where}: field '{field}'")
            if j.lower >= j.upper:
                raise JointMapError(
                    f"{where}: field 'lower': lower ({j.lower}) must be < upper ({j.upper})"
                )
            for field in ("velocity_limit", "acceleration_limit"):
                if getattr(j, field) <= 0:
                    raise JointMapError(
                        f"{where}: field '{field}': must be > 0, got {getattr(j, field)}"
                    )
            lo, hi = j.lower + margin, j.upper - margin
            if lo >= hi:
                raise JointMapError(
                    f"{where}: field 'lower': position_margin {margin} leaves no range "
                    f"inside [{j.lower}, {j.upper}]"
                )
            if j.safe_pose is None:
                sp = float(np.clip(j.offset, lo, hi))
            else:
                sp = _number(j.safe_pose, f"{where}: field 'safe_pose'")
                if not lo <= sp <= hi:
                    raise JointMapError(
                        f"{where}: field 'safe_pose': {sp} is outside the enforced limits "
                        f"[{lo}, {hi}]"
                    )
            lower.append(lo)
            upper.append(hi)
            safe.append(sp)

        self.names: tuple[str, ...] = tuple(j.name for j in self.joints)
        self.lower: FloatArray = np.array(lower)
        self.upper: FloatArray = np.array(upper)
        self.velocity_limits: FloatArray = np.array([j.velocity_limit for j in self.joints]) * vs
        self.acceleration_limits: FloatArray = (
            np.array([j.acceleration_limit for j in self.joints]) * acs
        )
        self.safe_pose: FloatArray = np.array(safe)
        # The robot's documented limits (before position_margin): a measured position
        # outside them is a broken joint_states (wrong units, wrong joint), not a robot.
        self.documented_lower: FloatArray = np.array([j.lower for j in self.joints])
        self.documented_upper: FloatArray = np.array([j.upper for j in self.joints])
        self.scale: FloatArray = np.array(
            [0.0 if j.follows == CONSTANT else j.scale for j in self.joints]
        )
        self.offset: FloatArray = np.array([j.offset for j in self.joints])
        # Effective source per joint after mirroring: (human angle name or None, sign).
        self.sources: tuple[tuple[str | None, float], ...] = tuple(
            self._effective_source(j.follows) for j in self.joints
        )

    def _effective_source(self, follows: str) -> tuple[str | None, float]:
        if follows == CONSTANT:
            return None, 0.0
        if self.mirror:
            return mirrored_name(follows)
        return follows, 1.0

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def followed_angles(self) -> tuple[str, ...]:
        """Human angles this map reads (after mirroring), each once, in ANGLE_NAMES order."""
        used = {name for name, _ in self.sources if name is not None}
        return tuple(n for n in ANGLE_NAMES if n in used)

    def with_mirror(self, mirror: bool) -> RobotJointMap:
        """The same map with `mirror` set."""
        return RobotJointMap(
            self.robot,
            self.joints,
            mirror=mirror,
            position_margin=self.position_margin,
            velocity_scale=self.velocity_scale,
            acceleration_scale=self.acceleration_scale,
            source=self.source,
        )

    def source_values(self, angles: Mapping[str, float]) -> FloatArray:
        """Per joint, the (mirrored, sign-applied) human angle it follows; 0 for constants.

        A followed angle missing from `angles` gives NaN (never a silent 0).
        """
        out = np.zeros(len(self.joints))
        for i, (name, sign) in enumerate(self.sources):
            if name is not None:
                out[i] = sign * float(angles.get(name, np.nan))
        return out

    def command(self, angles: Mapping[str, float]) -> FloatArray:
        """clamp(scale * angle + offset) per joint. Non-finite angles give NaN (the caller
        must reject those; the controller does)."""
        raw = self.scale * self.source_values(angles) + self.offset
        return np.clip(raw, self.lower, self.upper)

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Any, source: str = "joint map") -> RobotJointMap:
        if not isinstance(data, Mapping):
            raise JointMapError(f"{source}: top level must be a mapping")
        check_fields(data, _TOP_REQUIRED, _TOP_OPTIONAL + _ROBOT_SECTIONS, source,
                     JointMapError)
        raw_joints = data["joints"]
        if not isinstance(raw_joints, list) or not raw_joints:
            raise JointMapError(f"{source}: field 'joints': must be a non-empty list")
        specs = [cls._joint_from_dict(j, i, source) for i, j in enumerate(raw_joints)]
        return cls(
            data["robot"],
            specs,
            mirror=data.get("mirror", False),
            position_margin=data.get("position_margin", 0.0),
            velocity_scale=data.get("velocity_scale", 1.0),
            acceleration_scale=data.get("acceleration_scale", 1.0),
            source=source,
        )

    @staticmethod
    def _joint_from_dict(raw: Any, index: int, source: str) -> JointSpec:
        name = joint_name(raw, index, source, JointMapError)
        where = f"{source}: joint '{name}'"
        required = list(_JOINT_REQUIRED)
        if raw.get("follows") != CONSTANT:
            required.append("scale")
        check_fields(raw, required, _JOINT_OPTIONAL, where, JointMapError)
        follows = raw["follows"]
        if not isinstance(follows, str):
            raise JointMapError(f"{where}: field 'follows': must be a string")
        nums = {
            f: _number(raw[f], f"{where}: field '{f}'")
            for f in ("offset", "lower", "upper", "velocity_limit", "acceleration_limit")
        }
        scale = _number(raw.get("scale", 0.0), f"{where}: field 'scale'")
        safe = raw.get("safe_pose")
        return JointSpec(
            name=name,
            follows=follows,
            scale=scale,
            safe_pose=None if safe is None else _number(safe, f"{where}: field 'safe_pose'"),
            **nums,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> RobotJointMap:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise JointMapError(f"{p.name}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, source=p.name)
