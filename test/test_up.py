"""mocap-ros up: camera_node + mocap_node in one process; poses arrive over DDS, Ctrl-C (once
or twice) stops it with exit code 0, no traceback and no process left behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
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


def _start_up(*args: str, log: Path | None = None) -> subprocess.Popen:
    """``log``: output to that file (nothing blocks on a full pipe while the test spins, and
    a child left behind cannot hold the test's pipe open)."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    code = "import sys; from mocap_ros.cli.main import main; sys.exit(main())"
    # own session: a terminal's Ctrl-C reaches the whole group, and so does killpg here
    out = log.open("w") if log is not None else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-c", code, "up", *args], env=env, cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, text=True,
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


def _stop(proc: subprocess.Popen, times: int, log: Path | None = None) -> str:
    """Ctrl-C ``times`` times; a second one once up says it is stopping (a state, read from
    its ``log``), so it lands while the nodes are still being stopped, whatever the load."""
    os.killpg(proc.pid, signal.SIGINT)
    if times > 1:
        assert log is not None, "a second Ctrl-C waits on the log"
        end = time.monotonic() + 60.0
        while "mocap-ros up: stopping" not in log.read_text() and time.monotonic() < end \
                and proc.poll() is None:
            time.sleep(0.01)
        assert "mocap-ros up: stopping" in log.read_text(), log.read_text()
        for _ in range(times - 1):
            os.killpg(proc.pid, signal.SIGINT)
    if log is None:
        return proc.communicate(timeout=60)[0]
    proc.wait(timeout=60)
    return log.read_text()


@pytest.mark.parametrize("ctrl_c", [1, 2])
def test_up_video_poses_arrive_and_ctrl_c_leaves_nothing(tmp_path, ctrl_c):
    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=192)
    log = tmp_path / "up.log"
    proc = _start_up("--camera", str(video), "--loop", log=log)
    try:
        assert _wait_poses(3) >= 3, "no BodyPose from mocap-ros up over DDS"
    finally:
        if proc.poll() is None:
            out = _stop(proc, ctrl_c, log)
        else:
            proc.wait()
            out = log.read_text()
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


def test_up_refuses_a_missing_video_file_at_once(tmp_path):
    """Issue 21 item 4: it retried forever ("video file nope.mp4 not found; retrying")."""
    proc = _start_up("--camera", str(tmp_path / "nope.mp4"))
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1, out
    assert "video file" in out and "nope.mp4" in out and "not found" in out, out
    assert "retrying" not in out and "Traceback" not in out, out


def _param(name: str, node: str) -> str:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = ""
    for _ in range(10):  # until the node is discovered (a state, polled)
        r = subprocess.run(["ros2", "param", "get", node, name, "--no-daemon", "--spin-time",
                            "3"], env=env, capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        if r.returncode == 0 and "value is" in out:
            return out.strip()
    raise AssertionError(f"ros2 param get {node} {name}: {out}")


def test_up_teleop_is_wired_like_the_teleop_launch(tmp_path):
    """Issue 21 item 2: up --teleop takes mocap_node's and teleop_node's wiring from the
    builder teleop.launch.py uses (bringup.teleop_bringup): the person detector, and with
    --operator-lock the lock on both sides. Before, up kept full_frame (so --backend hmr
    refused every pose as unconfirmed) and had no operator lock."""
    from mocap_ros.ros.bringup import LOCK_SERVICE, TELEOP_BBOX_MODE

    if shutil.which("ros2") is None:
        pytest.skip("the ros2 command-line tools are absent")
    video = write_person_video(tmp_path / "clip.mp4", n=15, fps=15.0, size=96)
    proc = _start_up("--camera", str(video), "--loop", "--teleop", "fr3", "--operator-lock",
                     log=tmp_path / "up.log")
    try:
        assert f"String value is: {TELEOP_BBOX_MODE}" in _param("bbox_mode", "/mocap_node")
        assert "Boolean value is: True" in _param("operator_lock", "/mocap_node")
        assert LOCK_SERVICE in _param("operator_lock_service", "/teleop_node")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, (tmp_path / "up.log").read_text()


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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_teleop_tracks_brakes_and_leaves_nothing(tmp_path, sig):
    """Issue 21 item 1: SIGINT/SIGTERM while teleop is ENABLED and following the operator.
    The signal is counted, not raised: exit 0 with the summary, the robot brakes to rest
    through the controller (status "stopping", then commands with zero velocity), and the
    ``--camera-process`` child is gone. Before the fix the signal became an exception at an
    arbitrary point (3 of 11 runs: rc 2, "Unable to convert call argument", no summary)."""
    from sensor_msgs.msg import JointState
    from std_srvs.srv import SetBool

    from mocap_ros.msg import TeleopStatus

    from ros_helpers import make_executor, ros_context, wait_for

    # the synthetic operator (the estimator finds it with confidence >= 0.8 on every frame):
    # this test is about the signal, so the person in view must reliably be followed (a clip
    # of the astronaut photo, half-hidden hands, was refused as low_confidence once in four
    # full runs). The context's parameter files give each node its own section: teleop_node's
    # here. pose_timeout: poses take up to ~0.5 s on 2 shared cores under the whole suite.
    config = tmp_path / "params.yaml"
    config.write_text((ROOT / "config" / "mocap.yaml").read_text()
                      + "teleop_node:\n  ros__parameters:\n    pose_timeout: 2.0\n")
    log = tmp_path / "up.log"
    proc = _start_up("--camera", "synthetic:raise", "--loop", "--teleop", "g1", "--sim",
                     "--camera-process", "--config", str(config), log=log)
    status: list = []
    commands: list = []
    with ros_context() as ctx:
        node = rclpy.create_node("test_operator", context=ctx)
        node.create_subscription(TeleopStatus, "/teleop/status", status.append, 100)
        node.create_subscription(JointState, "/joint_commands", commands.append, 100)
        enable = node.create_client(SetBool, "/teleop_node/enable")
        ex = make_executor(ctx, node)
        try:
            assert wait_for(enable.service_is_ready, ex, timeout=60.0), "no ~/enable"
            answer: list = []

            def call_enable() -> None:  # until the simulated robot's joint_states are in
                if not answer or (answer[-1].done() and not answer[-1].result().success):
                    answer.append(enable.call_async(SetBool.Request(data=True)))

            assert wait_for(lambda: answer and answer[-1].done()
                            and answer[-1].result().success, ex, timeout=30.0,
                            on_tick=call_enable, tick_period=0.5), "enable refused"
            assert wait_for(lambda: any(s.tracking for s in status), ex, timeout=60.0), \
                "teleop never followed the person in the clip: " + \
                str({s.reason for s in status})
            n_before = len(commands)
            os.killpg(proc.pid, sig)
            assert wait_for(lambda: proc.poll() is not None, ex, timeout=60.0)
            wait_for(lambda: False, ex, timeout=0.3)  # the last commands in flight
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            out = log.read_text()
            child = re.search(r"own process, pid (\d+)", out)
            if child and proc.returncode != 0:  # a failed run leaves no camera_node either
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(child[1]), signal.SIGKILL)
            ex.shutdown()
            node.destroy_node()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "Unable to convert" not in out, out
    assert re.search(r"teleop: \d+ commands published; at rest at exit", out), out
    child = int(re.search(r"own process, pid (\d+)", out)[1])
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert not _group_alive(proc.pid)
    after = [s.mode for s in status[-50:]]
    assert "stopping" in after, after  # braked, through the controller's guarded output
    assert len(commands) > n_before, "commanded after the signal (braking)"
    assert commands[-1].velocity and not any(commands[-1].velocity), "at rest at exit"
