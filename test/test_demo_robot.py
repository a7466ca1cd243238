"""`mocap-ros demo --robot`: the whole loop runs end to end and writes its picture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]


def test_robot_demo_runs_end_to_end_and_writes_its_picture(tmp_path: Path) -> None:
    pytest.importorskip("skimage", reason="the sample frames ship with scikit-image")
    out = tmp_path / "demo.png"
    env = {**os.environ, "ROS_DOMAIN_ID": str(10 + os.getpid() % 90),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    proc = subprocess.run(
        [sys.executable, "-m", "mocap_ros.cli.main", "demo", "--robot", "fr3", "--frames", "20",
         "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    for line in ("poses received", "tracking error robot vs command", "contacts:", "picture:"):
        assert line in proc.stdout, log[-3000:]
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] == 480 and img.shape[1] > 640
    # both panels carry content: the camera frame and the robot
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
    import re

    m = re.search(r"published (\d+) frames, received (\d+) poses.*dropped under load (\d+), "
                  r"malformed (\d+)", proc.stdout)
    # newest frame wins: on a busy machine frames are dropped (and counted)
    assert m and int(m[1]) == 8 and int(m[2]) >= 1, log[-3000:]
    assert int(m[2]) + int(m[3]) <= 8 and int(m[4]) == 0, log[-3000:]
    assert "last pose: valid=True" in proc.stdout, log[-3000:]
    assert "Try next:" in proc.stdout
