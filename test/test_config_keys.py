"""The shipped YAMLs and the docs name only parameters and launch arguments that exist.

ROS 2 ignores a parameter file's key that no node declares, and a `ros2 launch ... x:=1`
for an argument nobody declared: a renamed or removed parameter would leave a YAML line or a
README command that silently does nothing (issue 21 item 13). The declared parameters are
the settings dataclasses each node declares (core/config.py); the launch arguments are what
the launch files' descriptions declare.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from mocap_ros.core.config import (
    CameraSettings,
    ConsoleSettings,
    HriBridgeSettings,
    MocapConfig,
    NodeSettings,
    SimSettings,
    TeleopSettings,
)

ROOT = Path(__file__).resolve().parents[1]
# node name -> its declared parameters (+ the one every node has)
NODES = {
    "camera_node": (CameraSettings,),
    "mocap_node": (MocapConfig, NodeSettings),
    "teleop_node": (TeleopSettings,),
    "sim_robot": (SimSettings,),
    "console": (ConsoleSettings,),
    "hri_bridge": (HriBridgeSettings,),
}


def _declared(node: str) -> set[str]:
    return {f.name for cls in NODES[node] for f in dataclasses.fields(cls)} | {"use_sim_time"}


ALL_PARAMS = set().union(*(_declared(n) for n in NODES))


def _launch_arguments() -> set[str]:
    pytest.importorskip("launch")
    names: set[str] = set()
    for path in sorted((ROOT / "launch").glob("*.launch.py")):
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from launch.actions import DeclareLaunchArgument

        names |= {e.name for e in module.generate_launch_description().entities
                  if isinstance(e, DeclareLaunchArgument)}
    return names


@pytest.mark.parametrize("name", ["camera.yaml", "mocap.yaml", "sim_robot.yaml"])
def test_node_yamls_name_only_declared_parameters(name):
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    assert data, name
    for node, section in data.items():
        assert node in NODES, f"{name}: section {node!r} is no node of this package"
        keys = set(section["ros__parameters"])
        assert keys <= _declared(node), f"{name}: {node} declares no {keys - _declared(node)}"


def test_robot_maps_refuse_unknown_keys_and_the_shipped_ones_load(tmp_path):
    """teleop_*.yaml are read by the package's own loaders, which refuse unknown fields
    (top level, model, grippers): loading each is the check that it names only keys that
    exist."""
    from mocap_ros.teleop.gripper import grippers_from_yaml
    from mocap_ros.teleop.robot_setup import TeleopRobot

    maps = sorted((ROOT / "config").glob("teleop_*.yaml"))
    assert len(maps) >= 3
    for path in maps:
        jm, _ = TeleopRobot.from_yaml(path)
        grippers_from_yaml(path, mirror=jm.mirror, arm_joint_names=jm.names)
    data = yaml.safe_load(maps[0].read_text())
    data["no_such_key"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="no_such_key"):
        TeleopRobot.from_yaml(bad)


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "launch").glob("*.launch.py"))]


def test_docs_name_only_existing_parameters_and_launch_arguments():
    """`name:=value` (a launch argument, or `-p` a parameter; `-r` remaps are topics) and
    `ros2 param get|set|describe /node name` in the README, docs/ and the launch files'
    usage text."""
    known = ALL_PARAMS | _launch_arguments()
    unknown: list[str] = []
    for path in _doc_files():
        # other packages' commands (REP-155's xacro, robot_state_publisher) take their own
        # arguments and parameters
        text = re.sub(r"^ *(xacro|ros2 (run|launch) (?!mocap_ros\b)\w+)\b(.*\\\n)*.*$", "",
                      path.read_text(), flags=re.M)
        for m in re.finditer(r"(?<![-\w.])(-r\s+)?([a-z_][a-z0-9_]*):=", text):
            if m[1] is None and m[2] not in known:
                unknown.append(f"{path.name}: {m[2]}:=")
        for m in re.finditer(r"ros2 param (?:get|set|describe) /(\w+) (\w+)", text):
            node, name = m[1], m[2]
            if node in NODES and name not in _declared(node):
                unknown.append(f"{path.name}: {node} {name}")
    assert not unknown, unknown


def test_the_check_sees_a_wrong_name(tmp_path):
    """The docs check is not vacuous: a misspelt argument is caught by its pattern."""
    known = ALL_PARAMS | _launch_arguments()
    text = "ros2 launch mocap_ros teleop.launch.py robot_confg:=fr3 -r image_raw:=/cam"
    found = [m[2] for m in re.finditer(r"(?<![-\w.])(-r\s+)?([a-z_][a-z0-9_]*):=", text)
             if m[1] is None]
    assert found == ["robot_confg"] and "robot_confg" not in known
    assert "robot_config" in known and "n_iter" in known and "pose_timeout" in known


# teleop_node's safety defaults (TeleopSettings) and the collision margin: taken from their
# one place everywhere else, never written again as a number
ONE_SOURCE = {"pose_timeout", "clock_skew_tolerance", "min_confidence", "max_jump",
              "jump_window", "rate_hz", "collision_margin"}


def test_safety_defaults_are_written_once():
    """Issue 21 item 13: SafetyParams, TeleopSettings and the grippers each wrote the gate's
    defaults, and collision_margin 0.02 stood in three places. A numeric default for one of
    these names anywhere in the package but core/config.py (teleop_node's parameters) and
    robots/collision.py (COLLISION_MARGIN) is a second copy. Scanned: teleop/ and ros/ (the
    teleop control loop and its nodes; tools/ rates are other rates), but for the IK's own
    soft collision margin (IKParams, a different quantity above the guard's)."""
    import ast

    copies = []
    paths = [*(ROOT / "mocap_ros/teleop").rglob("*.py"), *(ROOT / "mocap_ros/ros").rglob("*.py")]
    for path in sorted(paths):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "mocap_ros/teleop/ik.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            pairs = []
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                pairs.append((node.target.id, node.value))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                pos = a.posonlyargs + a.args
                pairs += list(zip([x.arg for x in pos[len(pos) - len(a.defaults):]],
                                  a.defaults, strict=True))
                pairs += [(x.arg, d) for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                          if d is not None]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get" \
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant):
                pairs.append((node.args[0].value, node.args[1]))
            for name, value in pairs:
                if name in ONE_SOURCE and isinstance(value, ast.Constant) \
                        and isinstance(value.value, (int, float)):
                    copies.append(f"{rel}:{value.lineno} {name} = {value.value}")
    assert not copies, copies
