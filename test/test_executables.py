"""The installed executables run directly with --ros-args (no ros2 CLI here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from ros_helpers import DOMAIN_ID, make_executor, ros_context, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "install/mocap_ros/lib/mocap_ros"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(DOMAIN_ID)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def test_mocap_node_hmr_without_model_files_exits_with_what_is_missing():
    proc = subprocess.run(
        [sys.executable, str(LIB / "mocap_node"), "--ros-args", "--params-file",
         str(ROOT / "config/mocap.yaml"), "-p", "backend:=hmr"],
        env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "needs model files" in proc.stderr and "assets" in proc.stderr


def test_invalid_parameter_on_the_command_line_names_it(synthetic_assets_root):
    proc = subprocess.run(
        [sys.executable, str(LIB / "mocap_node"), "--ros-args", "-p",
         f"assets_dir:={synthetic_assets_root}", "-p", "n_iter:=7"],
        env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "n_iter" in proc.stderr


@pytest.mark.parametrize("exe,node_name", [("mocap_node", "mocap_node"),
                                           ("teleop_node", "teleop_node")])
def test_node_runs_with_params_file_and_remaps_then_stops_on_sigint(
        synthetic_assets_root, exe, node_name):
    args = [sys.executable, str(LIB / exe), "--ros-args"]
    if exe == "mocap_node":
        args += ["--params-file", str(ROOT / "config/mocap.yaml"),
                 "-p", f"assets_dir:={synthetic_assets_root}", "-p", "diagnostics_period:=0.2",
                 "-r", "image_raw:=/cam/image"]
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        with ros_context() as ctx:
            probe = rclpy.create_node("exe_probe", context=ctx)
            diags: list[DiagnosticArray] = []
            probe.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
            ex = make_executor(ctx, probe)
            assert wait_for(lambda: any(s.name.startswith(node_name) for d in diags
                                        for s in d.status), ex, timeout=60.0), \
                "no diagnostics from the node"
            if exe == "mocap_node":
                subs = {n for n, _ in probe.get_subscriber_names_and_types_by_node(
                    "mocap_node", "/")}
                assert "/cam/image" in subs  # the remap took effect
            ex.shutdown()
            probe.destroy_node()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def _clean_env() -> dict[str, str]:
    """A login-like environment: nothing inherited from the pytest run (which itself runs
    under scripts/in_env.sh and so already has the nodes on PATH)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "ROS_DOMAIN_ID": str(DOMAIN_ID), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    for key in ("LANG", "LC_ALL", "TMPDIR", "MOCAP_ROS_CACHE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@pytest.mark.parametrize("shell", [". .venv/bin/activate && . install/setup.bash",
                                   "bash scripts/in_env.sh bash"])
def test_every_documented_shell_has_the_nodes_on_path(shell):
    """The README's two ways to get a shell: each must find and run the nodes by name."""
    check = ("for e in mocap_node teleop_node camera_node sim_robot mocap-ros; do "
             "command -v $e >/dev/null || { echo \"$e not on PATH\" >&2; exit 3; }; done; "
             "mocap_node --ros-args -p n_iter:=7")
    cmd = f"{shell} -c '{check}'" if shell.startswith("bash ") else f"{shell} && {check}"
    proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=90)
    assert "not on PATH" not in proc.stderr, proc.stderr
    # the node itself ran: it validated its parameters and named the bad one
    assert proc.returncode == 1 and "n_iter" in proc.stderr, proc.stderr[-2000:]
