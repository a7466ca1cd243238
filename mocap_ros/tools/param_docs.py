"""The parameter reference, generated from the code: ``mocap-ros docs params``.

Two pages:

* ``docs/parameters.md``: every node's ROS parameters. The nodes are found by reading
  ``mocap_ros/ros/*.py`` for ``declare_dataclass(self, Cls)`` calls (a new node that declares
  its parameters that way appears without touching this file); each table lists the
  dataclass's fields with their type, default, allowed values/range and description, the
  same metadata ``ros/params.py`` turns into parameter descriptors.
* ``docs/robot_yaml.md``: the keys of a robot YAML (``config/teleop_*.yaml``). Which keys
  exist and which are required is read from the loaders themselves (``teleop/retarget.py``,
  ``teleop/robot_setup.py``, ``teleop/gripper.py``), defaults from their dataclasses,
  signatures and ``.get(key, default)`` calls; only the descriptions are written here
  (``YAML_KEYS``). A key without one is still listed, marked, and the test fails until it
  is described.

``test/test_param_docs.py`` fails when the committed pages differ from what the code
generates; ``mocap-ros docs params`` rewrites them.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import mocap_ros

REGENERATE = "bash scripts/in_env.sh mocap-ros docs params"
PACKAGE_DIR = Path(mocap_ros.__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PAGES = ("parameters.md", "robot_yaml.md")


# ------------------------------------------------------------------------ node parameters
@dataclasses.dataclass(frozen=True)
class NodeParams:
    node: str  # the ROS node name
    module: str  # mocap_ros.ros.<module>
    classes: tuple[type, ...]  # the dataclasses it declares, in declaration order


def find_nodes(ros_dir: Path = PACKAGE_DIR / "ros") -> list[NodeParams]:
    """Nodes that declare dataclasses as parameters, read from the source (no rclpy needed)."""
    found = []
    for path in sorted(ros_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(ros_dir).with_suffix("")
        module = ".".join(("mocap_ros.ros", *rel.parts))
        imports = {a.asname or a.name: n.module for n in ast.walk(tree)
                   if isinstance(n, ast.ImportFrom) and n.module for a in n.names}
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            node_name, declared = None, []
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
                f = call.func
                if (isinstance(f, ast.Attribute) and f.attr == "__init__" and call.args
                        and isinstance(call.args[0], ast.Constant)
                        and isinstance(call.args[0].value, str)):
                    node_name = call.args[0].value
                if (isinstance(f, ast.Name) and f.id == "declare_dataclass"
                        and len(call.args) == 2 and isinstance(call.args[1], ast.Name)):
                    declared.append((call.lineno, call.args[1].id))
            if node_name and declared:
                classes = tuple(_resolve(name, imports.get(name, module))
                                for _, name in sorted(declared))
                found.append(NodeParams(node_name, module, classes))
    return sorted(found, key=lambda n: _NODE_ORDER.get(n.node, 99))


# The pipeline's order; nodes not named here follow, alphabetically.
_NODE_ORDER = {"camera_node": 0, "mocap_node": 1, "teleop_node": 2, "sim_robot": 3}


def _resolve(name: str, module: str) -> type:
    cls = getattr(importlib.import_module(module), name)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{module}.{name} is declared as parameters but is not a dataclass")
    return cls


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _fmt(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "(required)"
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(_plain(v) for v in value) + "]`"
    return f"`{_plain(value)}`"


def _plain(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _range(meta: typing.Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return " \\| ".join(f"`{c}`" if c else '`""`' for c in meta["choices"])
    lo, hi = meta.get("min"), meta.get("max")
    if lo is None and hi is None:
        return ""
    lo_text = _plain(lo) if lo is not None else "-inf"
    return f"[{lo_text}, {_plain(hi) if hi is not None else 'inf'}]"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _field_rows(cls: type) -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        yield (f"| `{f.name}` | {_type_name(hints.get(f.name, f.type))} | {_fmt(_default(f))} "
               f"| {_range(meta)} | {_cell(meta.get('description', ''))} |")


def parameters_page() -> str:
    out = [
        "# Node parameters",
        "",
        "<!-- Generated from the code by `mocap-ros docs params` (mocap_ros/tools/param_docs.py):",
        "     do not edit by hand; test/test_param_docs.py fails when this page is stale. -->",
        "",
        "Every node declares one ROS parameter per field of its settings dataclass",
        "(`mocap_ros/ros/params.py` `declare_dataclass`), with the description and range below",
        "as its parameter descriptor (`ros2 param describe`). Parameters are **read-only**: the",
        "nodes read them once at start-up, so give them in a YAML file (`--params-file`, the",
        "files in `config/`), as `-p NAME:=VALUE`, or as launch arguments. A value out of range",
        "stops the node at start-up with the parameter's name and what is allowed.",
        "",
    ]
    for n in find_nodes():
        out += [f"## {n.node}", ""]
        out.append(f"Declared in `{n.module}` from "
                   + ", ".join(f"`{c.__module__}.{c.__name__}`" for c in n.classes) + ".")
        out += ["", "| name | type | default | allowed | description |",
                "|---|---|---|---|---|"]
        for cls in n.classes:
            out += list(_field_rows(cls))
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------- robot YAML keys
# Descriptions only; keys, required-ness and defaults come from the loaders. Section ids:
# where the keys live in the file.
YAML_KEYS: dict[str, dict[str, str]] = {
    "top": {
        "robot": "Robot name (non-empty); reported in teleop/status.",
        "joints": "The joint map: one entry per robot joint teleop drives (see `joints[]`).",
        "mirror": "An operator facing the robot moves it like a mirror image: every `left_*` "
                  "angle is read from the operator's `right_*` one and yaw angles flip sign.",
        "position_margin": "rad kept clear of each documented position limit (>= 0): the "
                           "enforced limits are `lower + margin`, `upper - margin`.",
        "velocity_scale": "In (0, 1]: the fraction of each documented velocity limit enforced.",
        "acceleration_scale": "In (0, 1]: the fraction of each documented acceleration limit "
                              "enforced.",
        "retarget": "`joint` (per-joint maps) or `task` (operator wrist -> end-effector IK; "
                    "needs `model` and `task`). teleop_node's `retarget` parameter overrides "
                    "it.",
        "model": "The robot model; without it there is no collision guard (see `model`).",
        "task": "Task-space retargeting (see `task`); needed for `retarget: task`.",
        "gripper": "Grippers driven by the operator's hands, keyed `left` / `right` (the "
                   "operator's hand before `mirror`); see the gripper sections.",
    },
    "joint": {
        "name": "The robot joint's name, as in joint_states and the model (unique).",
        "follows": "The human angle it follows (an `ANGLE_NAMES` entry of "
                   "`mocap_ros/teleop/angles.py`, e.g. `right_shoulder_flexion`), or "
                   "`constant`.",
        "scale": "command = clamp(scale * angle + offset, lower, upper); required unless "
                 "`follows: constant`.",
        "offset": "Robot angle (rad) when the human angle is 0 (the operator's rest pose).",
        "lower": "Documented lower position limit (rad), verbatim; lower < upper.",
        "upper": "Documented upper position limit (rad), verbatim.",
        "velocity_limit": "Documented velocity limit (rad/s, > 0), verbatim.",
        "acceleration_limit": "Documented acceleration limit (rad/s^2, > 0).",
        "safe_pose": "Where `hold_mode: safe_pose` goes, and home for task mode; default "
                     "clamp(offset) into the limits.",
    },
    "model": {
        "source": "A shipped model (`fr3`, `g1`) or an MJCF/URDF path (relative to the "
                  "YAML's folder).",
        "floor": "Add a floor plane at `floor_height` (collisions with it are checked).",
        "floor_height": "Floor height (m) in the robot's base frame.",
        "table": "Optional box `{center: [x, y, z], size: [x, y, z]}` (m, base frame).",
        "collision_margin": "m: no command ever brings two checked geoms closer than this.",
    },
    "task": {
        "arms": "One entry per robot arm that follows an operator wrist (see `task.arms[]`).",
        "reach": "m of robot hand travel per operator arm length.",
        "base_rotation_rpy": "Robot base <- operator body frame (x forward, y left, z up), "
                             "roll-pitch-yaw about fixed x, y, z (rad).",
        "ik_margin": "m the IK's collision constraints keep (more than "
                     "`model.collision_margin`).",
        "horizon": "s of motion one IK step plans ahead; the rate limiter then moves toward "
                   "it at the limits.",
        "frozen": "Map joints the IK must leave at home.",
        "unreachable_distance": "m: the status says `unreachable` (not `tracking`) once a "
                                "tool has been further than this from its target for "
                                "`unreachable_time`.",
        "unreachable_time": "s a tool may stay further than `unreachable_distance` from its "
                            "target before the status says `unreachable`.",
    },
    "arm": {
        "side": "The operator's arm it follows (`left` | `right`, after `mirror`).",
        "ee_site": "The model site that follows the operator's wrist.",
        "elbow_body": "Optional model body: swivel hint for 7-DoF arms.",
        "orientation": "Also turn the tool with the operator's forearm.",
    },
    "gripper_joints": {
        "type": "`joints`: a dexterous hand driven joint by joint, published with the arm's "
                "joints.",
        "joints": "The finger joints (see the finger joint table).",
        "deadband": "rad of hysteresis: a joint's target moves only when the new command "
                    "differs by more than this.",
        "velocity_scale": "In (0, 1]: fraction of each finger joint's velocity limit "
                          "enforced.",
        "min_confidence": "Hands below this confidence hold the gripper; default: the node's "
                          "`min_confidence`.",
    },
    "finger": {
        "name": "The finger joint's name (not used by the arm or another gripper).",
        "follows": "`thumb_curl` .. `pinky_curl` (0 straight .. 1 curled), `aperture` "
                   "(0 pinched .. 1 open), or `constant`.",
        "scale": "command = clamp(scale * input + offset, lower, upper); required unless "
                 "`constant`.",
        "offset": "Command for input 0.",
        "lower": "Documented lower limit, verbatim.",
        "upper": "Documented upper limit, verbatim.",
        "velocity_limit": "Documented velocity limit (> 0).",
        "acceleration_limit": "Documented acceleration limit (> 0).",
        "safe_pose": "Where the joint starts without joint_states; default clamp(offset).",
    },
    "gripper_command": {
        "type": "`gripper_command`: a control_msgs/action/GripperCommand action server "
                "(gripper_action_controller, franka_gripper).",
        "action": "The action's name, e.g. `/fr3_gripper/gripper_action`.",
        "max_effort": "command.max_effort (N for a prismatic gripper; >= 0).",
        "open_position": "command.position for an open hand (aperture 1).",
        "closed_position": "command.position for a pinch (aperture 0); differs from "
                           "open_position.",
        "mode": "`binary` (open/closed with hysteresis) or `proportional` (position follows "
                "the aperture).",
        "close_below": "binary: aperture <= this closes (0 <= close_below < open_above <= 1).",
        "open_above": "binary: aperture >= this opens; in between nothing changes.",
        "deadband": "proportional: a new goal only this far (position units) from the last.",
        "min_goal_interval": "s: at most one goal per this interval.",
        "velocity_limit": "Position units/s: ramp the position over several goals (unset: one "
                          "goal per change, the gripper sets its speed).",
        "min_confidence": "Hands below this confidence hold the gripper; default: the node's "
                          "`min_confidence`.",
    },
}

# Keys described before the loader that accepts them is merged: (section, key). Empty while
# every described key is accepted.
PENDING_YAML_KEYS: set[tuple[str, str]] = set()

_SECTION_TITLES = {
    "top": ("Top level", "The joint map and the robot-side sections."),
    "joint": ("`joints[]`", "One entry per robot joint (angles rad, velocities rad/s)."),
    "model": ("`model`", "The robot model for the collision guard and the IK."),
    "task": ("`task`", "Task-space retargeting (`retarget: task`)."),
    "arm": ("`task.arms[]`", "One entry per arm that follows an operator wrist."),
    "gripper_joints": ("`gripper.left` / `gripper.right`, `type: joints`", ""),
    "finger": ("`gripper.<side>.joints[]`", "A finger joint (`type: joints`), written like an "
               "arm joint."),
    "gripper_command": ("`gripper.left` / `gripper.right`, `type: gripper_command`", ""),
}


@contextmanager
def _recording(module: Any, name: str, calls: list[tuple[tuple, tuple]]) -> Iterator[None]:
    """Record (required, optional) of every check_fields-style call in ``module``."""
    original: Callable[..., Any] = getattr(module, name)

    def record(raw: Any, required: Any, optional: Any, *args: Any, **kw: Any) -> Any:
        calls.append((tuple(required), tuple(optional)))
        return original(raw, required, optional, *args, **kw)

    setattr(module, name, record)
    try:
        yield
    finally:
        setattr(module, name, original)


# (section, key) required only when `follows` is not `constant`; filled by yaml_sections()
conditional: set[tuple[str, str]] = set()


def yaml_sections() -> dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]]:
    """section -> (required keys, optional keys, defaults), read from the loaders."""
    from mocap_ros.teleop import gripper, retarget, robot_setup

    sections: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {}
    conditional.clear()

    def probe(module: Any, name: str, call: Callable[[], Any]) -> list[tuple[tuple, tuple]]:
        calls: list[tuple[tuple, tuple]] = []
        # incomplete on purpose: only the field checks matter
        with _recording(module, name, calls), suppress(ValueError):
            call()
        return calls

    # A joint map with one joint that lacks its fields: the top level's and the joint's checks
    top, joint = probe(retarget, "check_fields", lambda: retarget.RobotJointMap.from_dict(
        {"robot": "r", "joints": [{"name": "j", "follows": "x"}]}))
    sig = inspect.signature(retarget.RobotJointMap.__init__).parameters
    top_defaults = {k: p.default for k, p in sig.items()
                    if p.default is not inspect.Parameter.empty}
    top_defaults.update(_literal_gets(robot_setup.TeleopRobot.from_dict, "data"))
    sections["top"] = (top[0], top[1], top_defaults)
    joint_defaults = {f.name: _default(f) for f in dataclasses.fields(retarget.JointSpec)
                      if _default(f) is not dataclasses.MISSING}
    _, const_joint = probe(retarget, "check_fields", lambda: retarget.RobotJointMap.from_dict(
        {"robot": "r", "joints": [{"name": "j", "follows": retarget.CONSTANT}]}))
    conditional.update(("joint", k) for k in set(joint[0]) - set(const_joint[0]))
    sections["joint"] = (joint[0], tuple(k for k in joint[1] if k not in joint[0]),
                         joint_defaults)

    model_keys = tuple(robot_setup._MODEL_KEYS)
    setup_sig = inspect.signature(robot_setup.TeleopRobot.__init__).parameters
    model_defaults = {k: p.default for k, p in setup_sig.items()
                      if k in model_keys and p.default is not inspect.Parameter.empty}
    model_defaults.update(_literal_gets(robot_setup.TeleopRobot.from_dict, "model"))
    sections["model"] = (("source",), tuple(k for k in model_keys if k != "source"),
                         model_defaults)
    task_defaults = {f.name: _default(f) for f in dataclasses.fields(robot_setup.TaskSpec)}
    sections["task"] = (("arms",), tuple(k for k in robot_setup._TASK_KEYS if k != "arms"),
                        task_defaults)
    arm_defaults = {f.name: _default(f) for f in dataclasses.fields(robot_setup.ArmSpec)}
    sections["arm"] = (("side", "ee_site"),
                       tuple(k for k in robot_setup._ARM_KEYS if k not in ("side", "ee_site")),
                       arm_defaults)

    (gj, finger) = probe(gripper, "check_fields", lambda: gripper.grippers_from_dict(
        {"right": {"type": "joints", "joints": [{"name": "f", "follows": "aperture"}]}}))
    gj_defaults = {f.name: _default(f) for f in dataclasses.fields(gripper.JointsGripperSpec)}
    sections["gripper_joints"] = (gj[0], gj[1], gj_defaults)
    _, const_finger = probe(gripper, "check_fields", lambda: gripper.grippers_from_dict(
        {"right": {"type": "joints", "joints": [{"name": "f", "follows": gripper.CONSTANT}]}}))
    conditional.update(("finger", k) for k in set(finger[0]) - set(const_finger[0]))
    sections["finger"] = (finger[0], tuple(k for k in finger[1] if k not in finger[0]),
                          joint_defaults)
    (gc,) = probe(gripper, "check_fields", lambda: gripper.grippers_from_dict(
        {"right": {"type": "gripper_command"}}))
    gc_defaults = {f.name: _default(f) for f in dataclasses.fields(gripper.GripperCommandSpec)}
    sections["gripper_command"] = (gc[0], gc[1], gc_defaults)
    return sections


def _literal_gets(func: Callable[..., Any], var: str) -> dict[str, Any]:
    """``var.get("key", <default>)`` defaults in a function's source (the model section's
    floor/floor_height have no dataclass): a literal, or a name/attribute of the function's
    module (``COLLISION_MARGIN``, ``TaskSpec.reach``)."""
    out: dict[str, Any] = {}
    for n in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(func)))):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
                and isinstance(n.func.value, ast.Name) and n.func.value.id == var
                and len(n.args) == 2 and isinstance(n.args[0], ast.Constant)):
            value = _static_value(n.args[1], func.__globals__)
            if value is not dataclasses.MISSING:
                out[n.args[0].value] = value
    return out


def _static_value(node: ast.expr, scope: dict[str, Any]) -> Any:
    with suppress(ValueError):
        return ast.literal_eval(node)
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in scope:
        return dataclasses.MISSING
    value = scope[node.id]
    for attr in parts:
        value = getattr(value, attr, dataclasses.MISSING)
    return value if isinstance(value, (bool, int, float, str, list, tuple)) \
        else dataclasses.MISSING


def undescribed_yaml_keys(sections: dict | None = None) -> list[str]:
    """Keys the loaders accept without a description in YAML_KEYS, and descriptions of keys
    no loader accepts (PENDING_YAML_KEYS excepted: described ahead of a merge)."""
    sections = sections if sections is not None else yaml_sections()
    problems = []
    for sid, (req, opt, _) in sections.items():
        keys, described = set(req) | set(opt), set(YAML_KEYS.get(sid, {}))
        if keys - described:
            problems.append(f"section {sid}: the loader accepts {sorted(keys - described)}, "
                            "which YAML_KEYS in mocap_ros/tools/param_docs.py does not describe")
        stale = described - keys - {k for s, k in PENDING_YAML_KEYS if s == sid}
        if stale:
            problems.append(f"section {sid}: YAML_KEYS describes {sorted(stale)}, "
                            "which the loader does not accept")
    return problems


def robot_yaml_page() -> str:
    sections = yaml_sections()
    for problem in undescribed_yaml_keys(sections):
        print(f"param_docs: {problem}", file=sys.stderr)
    out = [
        "# Robot YAML keys",
        "",
        "<!-- Generated from the code by `mocap-ros docs params` (mocap_ros/tools/param_docs.py):",
        "     do not edit by hand; test/test_param_docs.py fails when this page is stale. -->",
        "",
        "A robot YAML (`config/teleop_fr3.yaml`, `config/teleop_g1.yaml`,",
        "`config/teleop_generic.yaml`; teleop_node's `robot_config`) holds the joint map and the",
        "robot-side sections. The loaders refuse an unknown key with the file, section and",
        "key, so a misspelt optional key is never ignored. Which keys exist, which are required",
        "and their defaults come from the loaders (`mocap_ros/teleop/retarget.py`,",
        "`robot_setup.py`, `gripper.py`). How to write one for a new robot:",
        "[retargeting and robots](retargeting.md).",
        "",
    ]
    for sid, (req, opt, defaults) in sections.items():
        title, blurb = _SECTION_TITLES[sid]
        out += [f"## {title}", ""]
        if blurb:
            out += [blurb, ""]
        out += ["| key | required | default | description |", "|---|---|---|---|"]
        for key in (*req, *opt):
            default = _fmt(defaults[key]) if key in defaults and key not in req else ""
            required = "yes" if key in req else ""
            if (sid, key) in conditional:
                required = "unless `follows: constant`"
            text = YAML_KEYS.get(sid, {}).get(key, "(not described yet: YAML_KEYS in "
                                               "mocap_ros/tools/param_docs.py)")
            out.append(f"| `{key}` | {required} | {default} | {_cell(text)} |")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------- the CLI
def generate() -> dict[str, str]:
    return {"parameters.md": parameters_page(), "robot_yaml.md": robot_yaml_page()}


def stale_pages(docs_dir: Path) -> list[str]:
    """Names of the pages in ``docs_dir`` that differ from what the code generates."""
    return [name for name, text in generate().items()
            if not (docs_dir / name).is_file() or (docs_dir / name).read_text() != text]


def main(check: bool = False, docs_dir: Path | None = None) -> int:
    docs_dir = docs_dir or REPO_ROOT / "docs"
    if check:
        stale = stale_pages(docs_dir)
        if stale:
            print(f"out of date in {docs_dir}: {', '.join(stale)}; regenerate with: "
                  f"{REGENERATE}", file=sys.stderr)
            return 1
        print(f"{', '.join(PAGES)} in {docs_dir} match the code")
        return 0
    docs_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (docs_dir / name).write_text(text)
        print(f"wrote {docs_dir / name}")
    return 0
