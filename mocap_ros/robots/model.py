"""Load robot models (shipped MJCF, user MJCF/URDF files, URDF strings) and add the scene.

One MuJoCo model serves IK, collision checks and simulation. Sources:

* a shipped name, ``fr3`` or ``g1`` (``mocap_ros/robots/models/*.xml``, package data);
* a path to an MJCF or URDF file;
* a URDF string, e.g. what a ROS robot driver publishes on ``robot_description``.

URDF meshes are resolved (``package://`` via ``package_dirs``, ``AMENT_PREFIX_PATH`` and
``ROS_PACKAGE_PATH``; ``file://``; paths relative to ``base_dir``). Visual elements are
dropped (IK and collision checks never need them, and their DAE meshes are a format MuJoCo
cannot read). A collision mesh that cannot be resolved, or whose format MuJoCo cannot read,
is dropped with a logged warning, and its link gets a capsule from the link origin to each
child joint (``fallback_radius``) so that the arm still has a collision envelope. The
warnings are kept in `RobotModel.warnings` for status reporting.

Joint velocity limits do not exist in MJCF: shipped models carry them as custom numerics
``velocity_limit:<joint>``; URDF ``<limit velocity>`` values are read from the URDF.
"""

from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

LOG = logging.getLogger(__name__)

SHIPPED: dict[str, str] = {"fr3": "fr3.xml", "g1": "g1_upper.xml"}
HOME_KEY = "home"
VELOCITY_PREFIX = "velocity_limit:"
FLOOR_NAME = "floor"
TABLE_NAME = "table"
# Mesh formats MuJoCo's compiler reads.
_MESH_FORMATS = frozenset({".stl", ".obj", ".msh"})
_ENV_RGBA = (0.6, 0.6, 0.55, 1.0)
_ONE_DOF = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


class RobotModelError(ValueError):
    """A robot model that cannot be loaded or is not usable for teleoperation."""


@dataclass(frozen=True)
class TableSpec:
    """A box in the robot's base (MuJoCo world) frame: centre and full extents, metres."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]

    def __post_init__(self) -> None:
        for label, v in (("center", self.center), ("size", self.size)):
            arr = np.asarray(v, dtype=float)
            if arr.shape != (3,) or not np.all(np.isfinite(arr)):
                raise RobotModelError(f"table {label} must be 3 finite numbers, got {v!r}")
        if min(self.size) <= 0.0:
            raise RobotModelError(f"table size must be positive, got {self.size!r}")

    @classmethod
    def from_mapping(cls, m: Mapping[str, object]) -> TableSpec:
        """From YAML: ``{center: [x, y, z], size: [lx, ly, lz]}``."""
        unknown = sorted(set(m) - {"center", "size"})
        if unknown or "center" not in m or "size" not in m:
            raise RobotModelError(
                f"table needs exactly 'center' and 'size' (3 numbers each), got keys {sorted(m)}"
            )
        try:
            center = tuple(float(x) for x in m["center"])  # type: ignore[union-attr]
            size = tuple(float(x) for x in m["size"])  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise RobotModelError(f"table center/size must be numbers: {exc}") from exc
        if len(center) != 3 or len(size) != 3:
            raise RobotModelError("table center and size need 3 numbers each")
        return cls(center=center, size=size)  # type: ignore[arg-type]


@dataclass
class RobotModel:
    """A compiled MuJoCo model plus what MJCF cannot carry (velocity limits, warnings)."""

    name: str
    model: mujoco.MjModel
    spec: mujoco.MjSpec
    velocity_limits: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        m = self.model
        for j in range(m.njnt):
            if int(m.jnt_type[j]) not in _ONE_DOF:
                raise RobotModelError(
                    f"{self.name}: joint {m.joint(j).name!r} is not a hinge or slide joint; "
                    "teleoperation models must have a fixed base and 1-DoF joints"
                )

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joints in qpos order (one qpos entry each)."""
        return tuple(self.model.joint(j).name for j in range(self.model.njnt))

    @property
    def lower(self) -> np.ndarray:
        m = self.model
        return np.where(m.jnt_limited.astype(bool), m.jnt_range[:, 0], -np.inf)

    @property
    def upper(self) -> np.ndarray:
        m = self.model
        return np.where(m.jnt_limited.astype(bool), m.jnt_range[:, 1], np.inf)

    def keyframe(self, name: str) -> np.ndarray | None:
        """qpos of the named keyframe, or None."""
        for k in range(self.model.nkey):
            if self.model.key(k).name == name:
                return np.array(self.model.key_qpos[k], dtype=float)
        return None

    @property
    def home(self) -> np.ndarray:
        """The ``home`` keyframe, else zeros clipped into the joint ranges."""
        q = self.keyframe(HOME_KEY)
        if q is not None:
            return q
        return np.clip(np.zeros(self.model.nq), self.lower, self.upper)

    def qpos_indices(self, joint_names: Iterable[str]) -> np.ndarray:
        """qpos index of each named joint; unknown names raise RobotModelError."""
        out = []
        for n in joint_names:
            jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n)
            if jid < 0:
                raise RobotModelError(f"{self.name}: no joint named {n!r}")
            out.append(int(self.model.jnt_qposadr[jid]))
        return np.asarray(out, dtype=int)


def shipped_path(name: str) -> Path:
    """Path of a shipped model file (package data)."""
    if name not in SHIPPED:
        raise RobotModelError(f"no shipped robot {name!r}; shipped: {sorted(SHIPPED)}")
    return Path(str(resources.files("mocap_ros.robots") / "models" / SHIPPED[name]))


def load_robot(
    source: str | os.PathLike[str],
    *,
    package_dirs: Mapping[str, str | os.PathLike[str]] | None = None,
    fallback_radius: float = 0.04,
) -> RobotModel:
    """A shipped name (``fr3``, ``g1``), or a path to an MJCF or URDF file."""
    s = str(source)
    if s in SHIPPED:
        return _load_mjcf(shipped_path(s), name=s)
    path = Path(s).expanduser()
    if not path.is_file():
        raise RobotModelError(
            f"robot model {s!r} is neither a shipped name {sorted(SHIPPED)} nor a file"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    if _root_tag(text, s) == "robot":
        return load_urdf_string(
            text,
            base_dir=path.parent,
            package_dirs=package_dirs,
            fallback_radius=fallback_radius,
            name=path.stem,
            source=str(path),
        )
    return _load_mjcf(path, name=path.stem)


def _root_tag(text: str, label: str) -> str:
    try:
        return ET.fromstring(text).tag
    except ET.ParseError as exc:
        raise RobotModelError(f"{label}: not valid XML: {exc}") from exc


def _velocity_limits_from_numerics(m: mujoco.MjModel) -> dict[str, float]:
    out: dict[str, float] = {}
    for i in range(m.nnumeric):
        nm = m.numeric(i).name
        if nm.startswith(VELOCITY_PREFIX):
            out[nm[len(VELOCITY_PREFIX) :]] = float(m.numeric(i).data[0])
    return out


def _load_mjcf(path: Path, *, name: str) -> RobotModel:
    try:
        spec = mujoco.MjSpec.from_file(str(path))
        model = spec.compile()
    except Exception as exc:  # mujoco raises ValueError with the compiler's message
        raise RobotModelError(f"{path}: MuJoCo cannot compile it: {exc}") from exc
    return RobotModel(
        name=name,
        model=model,
        spec=spec,
        velocity_limits=_velocity_limits_from_numerics(model),
        source=str(path),
    )


# --------------------------------------------------------------------------- URDF


def _package_roots(package: str, package_dirs: Mapping[str, str | os.PathLike[str]]) -> list[Path]:
    roots: list[Path] = []
    if package in package_dirs:
        roots.append(Path(package_dirs[package]))
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            roots.append(Path(prefix) / "share" / package)
    for base in os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep):
        if base:
            roots.append(Path(base) / package)
    return roots


def _resolve_mesh(
    filename: str,
    base_dirs: list[Path],
    package_dirs: Mapping[str, str | os.PathLike[str]],
) -> tuple[Path | None, str]:
    """(absolute path, "") or (None, why not)."""
    if filename.startswith("package://"):
        rest = filename[len("package://") :]
        package, _, rel = rest.partition("/")
        candidates = [root / rel for root in _package_roots(package, package_dirs)]
        where = f"package {package!r} not found (give package_dirs or source its workspace)"
    elif filename.startswith("file://"):
        candidates = [Path(filename[len("file://") :])]
        where = "file does not exist"
    elif os.path.isabs(filename):
        candidates = [Path(filename)]
        where = "file does not exist"
    else:
        candidates = [b / filename for b in base_dirs]
        candidates += [b / Path(filename).name for b in base_dirs]
        where = f"not found relative to {[str(b) for b in base_dirs]}"
    for c in candidates:
        if c.is_file():
            if c.suffix.lower() not in _MESH_FORMATS:
                return None, f"format {c.suffix} is not one MuJoCo reads ({sorted(_MESH_FORMATS)})"
            return c.resolve(), ""
    return None, where


def load_urdf_string(
    text: str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    package_dirs: Mapping[str, str | os.PathLike[str]] | None = None,
    fallback_radius: float = 0.04,
    name: str | None = None,
    source: str = "urdf string",
) -> RobotModel:
    """Compile a URDF document (e.g. the ``robot_description`` parameter/topic)."""
    if not (math.isfinite(fallback_radius) and fallback_radius > 0):
        raise RobotModelError(f"fallback_radius must be > 0, got {fallback_radius}")
    package_dirs = dict(package_dirs or {})
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise RobotModelError(f"{source}: not valid XML: {exc}") from exc
    if root.tag != "robot":
        raise RobotModelError(f"{source}: root element is <{root.tag}>, not a URDF <robot>")
    robot_name = name or root.get("name") or "robot"

    base_dirs: list[Path] = []
    if base_dir is not None:
        base_dirs.append(Path(base_dir))
        for mj in root.findall("mujoco"):
            for comp in mj.findall("compiler"):
                if comp.get("meshdir"):
                    base_dirs.append(Path(base_dir) / comp.get("meshdir", ""))
    for mj in root.findall("mujoco"):
        root.remove(mj)

    warnings: list[str] = []
    dropped_links: list[str] = []
    for link in root.findall("link"):
        for vis in link.findall("visual"):
            link.remove(vis)
        lost = False
        for col in link.findall("collision"):
            mesh = col.find("geometry/mesh")
            if mesh is None:
                continue
            fn = mesh.get("filename", "")
            path, why = _resolve_mesh(fn, base_dirs, package_dirs)
            if path is None:
                link.remove(col)
                lost = True
                msg = (
                    f"{robot_name}: link {link.get('name')!r}: "
                    f"collision mesh {fn!r} dropped: {why}"
                )
                warnings.append(msg)
                LOG.warning(msg)
            else:
                mesh.set("filename", str(path))
        if lost and not link.findall("collision"):
            dropped_links.append(link.get("name", ""))

    velocity: dict[str, float] = {}
    children: dict[str, list[tuple[float, float, float]]] = {}
    for joint in root.findall("joint"):
        lim = joint.find("limit")
        if lim is not None and lim.get("velocity"):
            try:
                v = float(lim.get("velocity", "0"))
            except ValueError:
                v = 0.0
            if v > 0 and math.isfinite(v):
                velocity[joint.get("name", "")] = v
        parent = joint.find("parent")
        origin = joint.find("origin")
        xyz = (0.0, 0.0, 0.0)
        if origin is not None and origin.get("xyz"):
            try:
                xyz = tuple(float(x) for x in origin.get("xyz", "").split())  # type: ignore[assignment]
            except ValueError:
                xyz = (0.0, 0.0, 0.0)
        if parent is not None:
            children.setdefault(parent.get("link", ""), []).append(xyz)

    ext = ET.SubElement(root, "mujoco")
    # Keep every link a body (fusestatic off) so names match the URDF, keep absolute mesh
    # paths (strippath off), drop visuals, and repair the inertias URDF exporters get wrong.
    ET.SubElement(
        ext,
        "compiler",
        {
            "discardvisual": "true",
            "fusestatic": "false",
            "strippath": "false",
            "balanceinertia": "true",
            "angle": "radian",
        },
    )
    xml = ET.tostring(root, encoding="unicode")
    try:
        spec = mujoco.MjSpec.from_string(xml)
    except Exception as exc:
        raise RobotModelError(f"{source}: MuJoCo cannot parse the URDF: {exc}") from exc

    for link_name in dropped_links:
        body = spec.body(link_name)
        if body is None:
            continue
        ends = [p for p in children.get(link_name, []) if np.linalg.norm(p) > 1e-3]
        if not ends:
            body.add_geom(
                name=f"{link_name}_fallback",
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[fallback_radius, 0, 0],
            )
        for k, p in enumerate(ends):
            body.add_geom(
                name=f"{link_name}_fallback{k}",
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=[0.0, 0.0, 0.0, *p],
                size=[fallback_radius, 0, 0],
            )
        msg = (
            f"{robot_name}: link {link_name!r} uses a fallback envelope "
            f"(radius {fallback_radius} m) instead of its meshes"
        )
        warnings.append(msg)
        LOG.warning(msg)
    try:
        model = spec.compile()
    except Exception as exc:
        raise RobotModelError(f"{source}: MuJoCo cannot compile the URDF: {exc}") from exc
    return RobotModel(
        name=robot_name,
        model=model,
        spec=spec,
        velocity_limits=velocity,
        warnings=tuple(warnings),
        source=source,
    )


# --------------------------------------------------------------------------- scene


def add_environment(
    robot: RobotModel,
    *,
    floor: bool = True,
    floor_height: float = 0.0,
    table: TableSpec | Mapping[str, object] | None = None,
) -> RobotModel:
    """A copy of `robot` with a floor plane (at ``floor_height``) and/or a table box.

    Both are static world geoms named ``floor`` and ``table`` that collide with the robot.
    """
    if not math.isfinite(floor_height):
        raise RobotModelError(f"floor_height must be finite, got {floor_height}")
    if table is not None and not isinstance(table, TableSpec):
        table = TableSpec.from_mapping(table)
    spec = robot.spec.copy()
    existing = {g.name for g in spec.geoms}
    if floor:
        if FLOOR_NAME in existing:
            raise RobotModelError(f"{robot.name} already has a geom named {FLOOR_NAME!r}")
        spec.worldbody.add_geom(
            name=FLOOR_NAME,
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[0.0, 0.0, 0.05],
            pos=[0.0, 0.0, floor_height],
            rgba=list(_ENV_RGBA),
            contype=1,
            conaffinity=1,
        )
    if table is not None:
        if TABLE_NAME in existing:
            raise RobotModelError(f"{robot.name} already has a geom named {TABLE_NAME!r}")
        spec.worldbody.add_geom(
            name=TABLE_NAME,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.5 * s for s in table.size],
            pos=list(table.center),
            rgba=list(_ENV_RGBA),
            contype=1,
            conaffinity=1,
        )
    try:
        model = spec.compile()
    except Exception as exc:
        raise RobotModelError(f"{robot.name}: cannot add the environment: {exc}") from exc
    return RobotModel(
        name=robot.name,
        model=model,
        spec=spec,
        velocity_limits=dict(robot.velocity_limits),
        warnings=robot.warnings,
        source=robot.source,
    )
