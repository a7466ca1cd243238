"""The generated parameter reference (docs/parameters.md, docs/robot_yaml.md) matches the code.

Other work adds parameters all the time; when this fails, regenerate with the command in
the message and commit the pages.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from mocap_ros.teleop import robot_setup
from mocap_ros.tools import param_docs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_committed_pages_match_the_code() -> None:
    stale = param_docs.stale_pages(DOCS)
    assert not stale, (f"docs/{', docs/'.join(stale)} differ from what the code generates. "
                       f"Regenerate with: {param_docs.REGENERATE}")


def test_every_node_that_declares_parameters_is_documented() -> None:
    """Independent of the AST walk: a plain text search for declare_dataclass calls."""
    calls = {}
    ros = ROOT / "mocap_ros" / "ros"
    for path in ros.rglob("*.py"):
        found = re.findall(r"declare_dataclass\(self, (\w+)\)", path.read_text())
        if found:
            calls[".".join(path.relative_to(ros).with_suffix("").parts)] = found
    nodes = param_docs.find_nodes()
    got = {n.module.removeprefix("mocap_ros.ros."): [c.__name__ for c in n.classes]
           for n in nodes}
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in calls.items()}
    assert {"camera_node", "mocap_node", "teleop_node", "sim_robot"} <= {n.node for n in nodes}


@pytest.mark.parametrize("config", ["camera.yaml", "mocap.yaml", "sim_robot.yaml"])
def test_shipped_parameter_files_name_only_documented_parameters(config: str) -> None:
    data = yaml.safe_load((ROOT / "config" / config).read_text())
    by_node = {n.node: n for n in param_docs.find_nodes()}
    for node, section in data.items():
        assert node in by_node, f"config/{config}: no node {node!r}"
        known = {f.name for c in by_node[node].classes for f in dataclasses.fields(c)}
        unknown = set(section["ros__parameters"]) - known
        assert not unknown, f"config/{config}: {node} has no parameter(s) {sorted(unknown)}"
    page = (DOCS / "parameters.md").read_text()
    for section in data.values():
        for key in section["ros__parameters"]:
            assert f"| `{key}` |" in page


def test_every_robot_yaml_key_is_described() -> None:
    problems = param_docs.undescribed_yaml_keys()
    assert not problems, (f"{problems}. Describe the key in YAML_KEYS "
                          f"(mocap_ros/tools/param_docs.py), then: {param_docs.REGENERATE}")


def test_a_loader_key_without_a_description_is_listed_and_reported(monkeypatch) -> None:
    monkeypatch.setattr(robot_setup, "_MODEL_KEYS", (*robot_setup._MODEL_KEYS, "zz_new_key"))
    assert any("zz_new_key" in p for p in param_docs.undescribed_yaml_keys())
    page = param_docs.robot_yaml_page()  # still generates: regenerating stays one command
    assert "| `zz_new_key` |" in page and "not described yet" in page


def test_robot_yaml_page_reads_required_keys_and_defaults_from_the_loaders() -> None:
    sections = param_docs.yaml_sections()
    req, opt, defaults = sections["top"]
    assert set(req) == {"robot", "joints"} and "mirror" in opt and defaults["mirror"] is False
    req, opt, defaults = sections["gripper_command"]
    assert "action" in req and defaults["close_below"] == 0.25
    assert ("joint", "scale") in param_docs.conditional


def test_check_mode_reports_stale_pages_with_the_command(tmp_path: Path, capsys) -> None:
    for name in param_docs.PAGES:
        (tmp_path / name).write_text("old\n")
    assert param_docs.main(check=True, docs_dir=tmp_path) == 1
    assert param_docs.REGENERATE in capsys.readouterr().err
    assert param_docs.main(docs_dir=tmp_path) == 0
    assert param_docs.main(check=True, docs_dir=tmp_path) == 0
