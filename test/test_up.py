"""mocap-ros up: camera_node + mocap_node in one process; poses arrive over DDS, Ctrl-C (once
or twice) stops it with exit code 0, no traceback and no process left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")  # skip outside `bash scripts/in_env.sh`

from media_helpers import write_person_video  # noqa: E402

from ros_helpers import DOMAIN_ID, collect  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]


def _start_up(*args: str) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    code = "import sys; from mocap_ros.cli.main import main; sys.exit(main())"
    # own session: a terminal's Ctrl-C reaches the whole group, and so does killpg here
    return subprocess.Popen([sys.executable, "-c", code, "up", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_poses(n: int, timeout: float = 60.0) -> int:
    from mocap_ros.msg import BodyPose

    return len(collect(BodyPose, "/mocap/body_pose", n, timeout))


def _stop(proc: subprocess.Popen, times: int) -> str:
    for i in range(times):
        os.killpg(proc.pid, signal.SIGINT)
        if i + 1 < times:
            time.sleep(0.3)
    out, _ = proc.communicate(timeout=60)
    return out


@pytest.mark.parametrize("ctrl_c", [1, 2])
def test_up_video_poses_arrive_and_ctrl_c_leaves_nothing(tmp_path, ctrl_c):
    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=192)
    proc = _start_up("--camera", str(video), "--loop")
    try:
        assert _wait_poses(3) >= 3, "no BodyPose from mocap-ros up over DDS"
    finally:
        out = _stop(proc, ctrl_c) if proc.poll() is None else proc.communicate()[0]
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "/camera/image_raw" in out and "/mocap/body_pose" in out, out  # topics printed
    m = re.search(r"one process: (\d+) frames captured, (\d+) reached mocap_node.*?"
                  r"(\d+) processed", out)
    assert m and int(m[1]) >= int(m[2]) >= int(m[3]) >= 3, out
    assert not _group_alive(proc.pid), "a process of mocap-ros up is still running"


def test_up_camera_process_child_is_stopped_too(tmp_path):
    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=192)
    proc = _start_up("--camera", str(video), "--loop", "--camera-process")
    try:
        assert _wait_poses(2) >= 2, "no BodyPose with camera_node in its own process"
    finally:
        out = _stop(proc, 1) if proc.poll() is None else proc.communicate()[0]
    assert proc.returncode == 0, out
    child = int(re.search(r"own process, pid (\d+)", out)[1])
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert "two processes:" in out and "Traceback" not in out, out


def test_up_refuses_unknown_robot(tmp_path):
    from mocap_ros.ros.up import robot_config_path, sim_available

    with pytest.raises(ValueError, match=r"known: .*fr3"):
        robot_config_path("no_such_robot")
    assert robot_config_path("fr3").name == "teleop_fr3.yaml"
    assert sim_available()


def test_up_with_teleop_and_the_simulated_robot(tmp_path):
    """camera -> mocap -> teleop (disabled: nothing moves) -> sim_robot, one process: the
    simulated G1 publishes its joint_states and the poses arrive; Ctrl-C stops all of it."""
    from sensor_msgs.msg import JointState

    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=192)
    proc = _start_up("--camera", str(video), "--loop", "--teleop", "g1", "--sim")
    try:
        states = collect(JointState, "/joint_states", 20, 60.0)
        assert len(states) >= 20, "no joint_states from the simulated robot"
        assert "left_elbow_joint" in states[-1].name
        assert _wait_poses(2) >= 2
    finally:
        out = _stop(proc, 1) if proc.poll() is None else proc.communicate()[0]
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert not _group_alive(proc.pid)


def test_demo_ends_with_what_to_try_next():
    from mocap_ros.cli.main import next_steps

    lines = next_steps().splitlines()
    assert 3 <= len(lines) <= 4
    text = "\n".join(lines)
    for what in ("up --camera", "process clip.mp4", "--teleop", "sample-bag", "replay"):
        assert what in text
