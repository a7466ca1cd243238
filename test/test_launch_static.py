"""`ros2 launch` does not exist here: check the launch files and YAML statically."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from mocap_ros.core.config import MocapConfig, NodeSettings

ROOT = Path(__file__).resolve().parents[1]
NODE_PARAMS = {f.name for cls in (MocapConfig, NodeSettings) for f in dataclasses.fields(cls)}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def _kw(call: ast.Call, key: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


def _const(node: ast.AST | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


@pytest.fixture(scope="module")
def mocap_launch():
    return ast.parse((ROOT / "launch/mocap.launch.py").read_text())


def test_yaml_holds_exactly_the_declared_parameters():
    data = yaml.safe_load((ROOT / "config/mocap.yaml").read_text())
    params = data["mocap_node"]["ros__parameters"]
    assert set(params) == NODE_PARAMS
    # and the values are valid configurations
    MocapConfig.from_dict({k: v for k, v in params.items()
                           if k in {f.name for f in dataclasses.fields(MocapConfig)}})
    NodeSettings(**{k: v for k, v in params.items()
                    if k in {f.name for f in dataclasses.fields(NodeSettings)}}).validate()


def test_launch_overrides_are_node_parameters(mocap_launch):
    overrides = next(n for n in ast.walk(mocap_launch) if isinstance(n, ast.Assign)
                     and getattr(n.targets[0], "id", "") == "OVERRIDES")
    keys = {_const(k) for k in overrides.value.keys}
    assert keys and keys <= NODE_PARAMS
    declared = {_const(c.args[0]) for c in _calls(mocap_launch, "DeclareLaunchArgument")
                if c.args and isinstance(c.args[0], ast.Constant)}
    used = {_const(c.args[0]) for c in _calls(mocap_launch, "LaunchConfiguration")
            if c.args and isinstance(c.args[0], ast.Constant)}
    used |= {_const(c.args[0]) for c in _calls(mocap_launch, "arg")
             if c.args and isinstance(c.args[0], ast.Constant)}
    used.discard(None)
    assert used <= declared | keys, used - declared


def test_launch_remaps_topics_instead_of_hard_coding(mocap_launch):
    nodes = _calls(mocap_launch, "Node")
    ours = [n for n in nodes if _const(_kw(n, "package")) == "mocap_ros"]
    assert ours
    assigned = {t.id: n.value for n in ast.walk(mocap_launch) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    for n in ours:
        remaps = _kw(n, "remappings")
        if isinstance(remaps, ast.Name):  # camera_node's list is built once for every driver
            remaps = assigned[remaps.id]
        assert isinstance(remaps, ast.List)
        sources = {_const(t.elts[0]) for t in remaps.elts}
        assert {"image_raw", "camera_info", "image_raw/compressed"} <= sources


def test_named_executables_are_installed(mocap_launch):
    lib = ROOT / "install/mocap_ros/lib/mocap_ros"
    assert lib.is_dir(), "run `make setup` (colcon-builds install/)"
    for n in _calls(mocap_launch, "Node"):
        if _const(_kw(n, "package")) == "mocap_ros":
            exe = lib / str(_const(_kw(n, "executable")))
            assert exe.exists() and os.access(exe, os.X_OK), exe
    # the camera drivers are third-party packages; only their names are checked here
    drivers = {(_const(_kw(n, "package")), _const(_kw(n, "executable"))) for n in
               _calls(mocap_launch, "Node")} - {("mocap_ros", "mocap_node"),
                                                ("mocap_ros", "hri_bridge")}
    assert drivers == {("usb_cam", "usb_cam_node_exe"), ("v4l2_camera", "v4l2_camera_node"),
                       ("mocap_ros", "camera_node")}


def test_launch_and_config_are_installed():
    share = ROOT / "install/mocap_ros/share/mocap_ros"
    assert (share / "launch/mocap.launch.py").exists()
    assert (share / "config/mocap.yaml").exists()
