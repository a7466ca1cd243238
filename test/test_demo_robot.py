"""`mocap-ros demo --robot`: the whole loop runs end to end and writes its picture."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]


# The loop test checks that the robot follows and comes back, not issue 19's latency goals
# (bench-loop measures those): 10 fps at 320x240 (the estimator sees the same figure; the
# render and the image messages cost a quarter) and a staleness cap of 2 s, because on this
# 2-core machine running other work (load average 12-15) frame -> pose p95 reached 0.8-1.0 s:
# the default 0.5 s cap then held most steps (8-11 % tracking), a 1 s cap still failed one
# run in three. A dead estimator, teleop or robot fails regardless (no poses, no commands,
# no motion). Tracking, motion and return to rest are asserted as shipped.
_LOOP = """
import os, sys
os.environ.setdefault("MUJOCO_GL", "egl")
from mocap_ros.tools.demo_robot import run_robot_demo
sys.exit(run_robot_demo("", robot=sys.argv[1], script="raise", rate_hz=10.0, out=sys.argv[2],
                        size=(320, 240), teleop_overrides={"pose_timeout_max": 2.0}))
"""


@pytest.mark.slow  # ~20-30 s: a 10 s script through the whole loop, plus start-up
def test_synthetic_operator_drives_the_robot_and_it_comes_back(tmp_path: Path) -> None:
    """The whole loop over DDS: the rendered operator raises the right arm sideways and lowers
    it (script raise); camera_node -> mocap_node -> teleop_node (enabled) -> sim_robot. The
    robot must track (share of enabled control steps), its hand must move, point the way the
    operator's wrist went, and be back at its rest pose 3 s after the operator's rest; the
    demo's own verdict must agree. A dead robot fails here: with sim_robot ignoring its
    commands the demo exits 1 ("the robot hand moved at most 0 mm"; run when this test was
    written)."""
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("the default estimator needs mediapipe (requirements-mediapipe.txt)")
    out = tmp_path / "demo_g1.png"
    env = {**os.environ, "ROS_DOMAIN_ID": str(10 + (os.getpid() + 3) % 90),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "MUJOCO_GL": "egl"}
    proc = subprocess.run([sys.executable, "-c", _LOOP, "g1", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=110)
    log = proc.stdout + proc.stderr
    m = re.search(r"tracking: ([\d.]+)% of (\d+) enabled control steps", proc.stdout)
    assert m and float(m[1]) >= 80.0 and int(m[2]) >= 50, log[-3000:]
    m = re.search(r"the hand moved up to (\d+) mm", proc.stdout)
    assert m and int(m[1]) >= 100, log[-3000:]  # the wrist moves ~0.6 m; a G1 hand ~0.6 m
    m = re.search(r"direction fidelity at the holds [^:]*: hold_side \(right\) ([-\d.]+)",
                  proc.stdout)
    assert m and float(m[1]) >= 0.8, log[-3000:]
    m = re.search(r"back to rest: (\d+) mm from the robot's pose", proc.stdout)
    assert m and int(m[1]) <= 60, log[-3000:]
    assert proc.returncode == 0 and "the robot followed" in proc.stdout, log[-3000:]
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] == 480 and img.shape[1] > 640
    # both panels carry content: the camera frame with the skeleton, and the robot
    assert img[:, :640].std() > 10 and img[:, 640:].std() > 10


def test_make_demo_command_runs_over_dds(tmp_path: Path) -> None:
    """`make demo` runs `mocap-ros demo`: sample frames -> mocap_node over DDS -> poses back,
    with the built-in default (the landmarks backend, no model files)."""
    pytest.importorskip("skimage", reason="the sample frames ship with scikit-image")
    env = {**os.environ, "ROS_DOMAIN_ID": str(10 + (os.getpid() + 7) % 90),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    proc = subprocess.run(
        [sys.executable, "-m", "mocap_ros.cli.main", "demo", "--frames", "8"], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=110)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "landmarks" in proc.stdout, log[-3000:]
    m = re.search(r"published (\d+) frames, received (\d+) poses.*dropped under load (\d+), "
                  r"malformed (\d+)", proc.stdout)
    # newest frame wins: on a busy machine frames are dropped (and counted)
    assert m and int(m[1]) == 8 and int(m[2]) >= 1, log[-3000:]
    assert int(m[2]) + int(m[3]) <= 8 and int(m[4]) == 0, log[-3000:]
    assert "last pose: valid=True" in proc.stdout, log[-3000:]
    assert "Try next:" in proc.stdout
