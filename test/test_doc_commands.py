"""Every shell command in README.md and docs/*.md is checked without hardware.

The fenced ``bash`` blocks are read from the pages; each command line gets a dry run that
needs no camera and no robot:

* ``mocap-ros ...``: parsed by the real argument parser (flags, choices, required
  arguments), and the verb's ``--help`` renders;
* ``make TARGET``: ``make -n`` (the target exists; nothing runs);
* ``mocap_node``/``teleop_node``/... ``--ros-args``: the executable is installed, the params
  file exists, every ``-p name:=value`` names a declared parameter and robot YAMLs load;
* ``ros2 launch``: ``--show-args``, and every ``name:=`` is a declared launch argument;
* ``ros2 service call``: the service is one a node of this package serves, and its type.

A line no rule knows fails: add a rule (or fix the page). Relative links in the pages must
point to files that exist (pages that other work adds are listed in PENDING with why).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# executable -> the node name it runs under
NODE_EXECUTABLES = {"mocap_node": "mocap_node", "teleop_node": "teleop_node",
                    "camera_node": "camera_node", "sim_robot": "sim_robot",
                    "hri_bridge": "hri_bridge", "console_node": "console"}
# Commands of other packages a page shows for interoperation (REP-155's human model): they
# are not installed here, so such a line is skipped, saying why.
EXTERNAL = {"xacro": "xacro and human_description come from ROS4HRI, not from this package",
            "robot_state_publisher": "robot_state_publisher is not part of this package"}
# Commands and pages that arrive with work merged alongside this page (issue numbers): a
# line using them is skipped, saying why, until they exist; then it is checked like the rest.
# Empty while everything the pages name is merged.
PENDING_VERBS: dict[str, str] = {}
PENDING_FLAGS: dict[tuple[str, str], str] = {}
PENDING_FILES: dict[str, str] = {}


def shell_lines(page: Path) -> list[str]:
    text = page.read_text()
    out = []
    for block in re.findall(r"^ *```(?:bash|sh|shell)\n(.*?)^ *```", text, re.S | re.M):
        for line in re.sub(r"\\\n", " ", block).splitlines():
            if shlex.split(line, comments=True):
                out.append(line.strip())
    return out


COMMANDS = [(p.relative_to(ROOT).as_posix(), line) for p in PAGES for line in shell_lines(p)]


def test_readme_stays_an_onboarding_page() -> None:
    """Reference material belongs in docs/ (issue 22: the README had grown to 550 lines)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move reference to docs/"


def test_the_pages_have_commands() -> None:
    readme = [line for page, line in COMMANDS if page == "README.md"]
    assert any(line.startswith("make demo") for line in readme)
    assert any("mocap-ros up --camera 0 --teleop g1 --sim" in line for line in readme)


@pytest.mark.parametrize(("page", "line"), COMMANDS,
                         ids=[f"{p}:{line[:60]}" for p, line in COMMANDS])
def test_command(page: str, line: str) -> None:
    tokens = shlex.split(line, comments=True)
    while tokens and re.match(r"^[A-Z_]+=", tokens[0]):  # VAR=value prefixes
        tokens = tokens[1:]
    head = tokens[0]
    if head == "mocap-ros":
        _check_mocap_ros(tokens[1:])
    elif head == "make":
        _check_make(tokens[1:])
    elif head in NODE_EXECUTABLES:
        _check_node(head, tokens[1:])
    elif tokens[:3] == ["ros2", "run", "mocap_ros"]:
        assert tokens[3] in NODE_EXECUTABLES, f"mocap_ros has no node executable {tokens[3]!r}"
        _check_node(tokens[3], tokens[4:])
    elif head in EXTERNAL or (tokens[:2] == ["ros2", "run"] and tokens[2] in EXTERNAL):
        pytest.skip(EXTERNAL[head if head in EXTERNAL else tokens[2]])
    elif tokens[:2] == ["ros2", "launch"]:
        _check_launch(tokens[2:])
    elif tokens[:3] == ["ros2", "service", "call"]:
        _check_service_call(tokens[3:])
    elif tokens[:2] == ["bash", "scripts/in_env.sh"]:
        assert (ROOT / "scripts" / "in_env.sh").is_file()
        proc = subprocess.run(["bash", "scripts/in_env.sh", "true"], cwd=ROOT, timeout=60)
        assert proc.returncode == 0
    else:
        pytest.fail(f"{page}: no rule checks {line!r}; add one to {Path(__file__).name}")


def _check_mocap_ros(argv: list[str]) -> None:
    from mocap_ros.cli.main import build_parser

    parser = build_parser()
    verbs = _verbs(parser)
    args = [a for a in argv if a not in ("-v", "--verbose")]
    if args and not args[0].startswith("-") and args[0] not in verbs:
        if args[0] in PENDING_VERBS:
            pytest.skip(PENDING_VERBS[args[0]])
        pytest.fail(f"mocap-ros has no verb {args[0]!r} (it has {sorted(verbs)})")
    for (verb, flag), why in PENDING_FLAGS.items():
        if args[:1] == [verb] and flag in args and flag not in _flags(verbs[verb]):
            pytest.skip(why)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*args[:1], "--help"] if args else ["--help"])
    assert exc.value.code == 0
    if args and args != ["--help"]:
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"mocap-ros {' '.join(argv)}: the parser refuses it (exit {e.code})")


def _verbs(parser) -> dict:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(sub) -> set[str]:
    return {s for a in sub._actions for s in a.option_strings}


def _check_make(targets: list[str]) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-n", *targets], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def _check_node(executable: str, argv: list[str]) -> None:
    from mocap_ros.tools.param_docs import find_nodes

    assert shutil.which(executable), f"{executable} is not on PATH (make setup installs it)"
    assert argv[:1] in ([], ["--ros-args"]), argv
    known = {n.node: {f for c in n.classes for f in c.__dataclass_fields__} for n in find_nodes()}
    params = known[NODE_EXECUTABLES[executable]]
    i = 1
    while i < len(argv):
        flag = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if flag == "--params-file":
            assert (ROOT / value).is_file(), f"no params file {value}"
        elif flag == "-p":
            name, _, val = value.partition(":=")
            assert name in params, f"{executable} has no parameter {name!r}"
            if name == "robot_config":
                from mocap_ros.teleop.retarget import RobotJointMap

                RobotJointMap.from_yaml(ROOT / val)
        elif flag == "-r":
            assert ":=" in value, f"remapping {value!r} needs from:=to"
        else:
            pytest.fail(f"unexpected {flag!r} in a {executable} line")
        i += 2


@cache
def _launch_args(launch_file: str) -> set[str]:
    proc = subprocess.run(["ros2", "launch", "mocap_ros", launch_file, "--show-args"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ROS_LOG_DIR": "/tmp/mocap_ros_test_logs"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^\s+'(\w+)':", proc.stdout, re.M))


def _check_launch(argv: list[str]) -> None:
    if shutil.which("ros2") is None:
        pytest.skip("no ros2 CLI here (bash ../shared/wheels/ros2cli/install.sh adds it)")
    assert argv[0] == "mocap_ros", argv
    assert (ROOT / "launch" / argv[1]).is_file(), f"no launch/{argv[1]}"
    declared = _launch_args(argv[1])
    for arg in argv[2:]:
        if arg == "...":  # the page leaves the other arguments out
            continue
        name = arg.partition(":=")[0]
        assert name in declared, f"{argv[1]} declares no argument {name!r}"


def _check_service_call(argv: list[str]) -> None:
    service, srv_type = argv[0], argv[1]
    node, _, name = service.lstrip("/").partition("/")
    source = (ROOT / "mocap_ros" / "ros" / f"{node}.py").read_text()
    served = re.findall(r'create_service\(\s*(\w+),\s*"~/(\w+)"', source)
    assert (srv_type.rsplit("/", 1)[1], name) in served, \
        f"{node} serves {served}, not {srv_type} on ~/{name}"
    assert f'super().__init__("{node}"' in source, f"the node is not named {node}"
    pkg, _, typ = srv_type.partition("/srv/")
    module = __import__(f"{pkg}.srv", fromlist=[typ])
    srv = getattr(module, typ)
    for key in re.findall(r"(\w+):", argv[2]):  # the YAML request's keys
        assert hasattr(srv.Request(), key), f"{srv_type} has no request field {key!r}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_point_to_files(page: Path) -> None:
    text = re.sub(r"<!--.*?-->", "", page.read_text(), flags=re.S)
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        path = (page.parent / target).resolve()
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if not path.exists() and rel not in PENDING_FILES:
            missing.append(target)
    assert not missing, f"{page.name}: links to missing files {missing}"
