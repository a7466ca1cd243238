"""bench-loop's analysis (mocap_ros.tools.bench_loop.analyse) on recordings with known
answers: a robot (real MuJoCo model, real forward kinematics) whose hand trails a stand-in
operator's wrist by a known time, and a dead robot that never moved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocap_ros.core.skeleton import JOINT_INDEX, REST_JOINTS_APPROX
from mocap_ros.tools.bench_loop import (
    LoopRecord,
    RobotKinematics,
    analyse,
    parse_phase,
    torso_frame,
    wrist_in_torso,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"
# the operator faces the camera: forward = -z_cam, their left = +x_cam (image right), up = -y
CAM_FROM_BODY = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


def body_joints(wrist_offsets: dict[str, np.ndarray]) -> np.ndarray:
    """24 joints in the camera frame: the rest skeleton (SMPL: y up, x the body's left, z
    forward) turned to face the camera 2.5 m away, wrists displaced (body frame, metres)."""
    rest = REST_JOINTS_APPROX.astype(np.float64)
    body = rest[:, [2, 0, 1]]  # SMPL (x left, y up, z forward) -> (x fwd, y left, z up)
    for side, off in wrist_offsets.items():
        body[JOINT_INDEX[f"{side}_wrist"]] += off
    return body @ CAM_FROM_BODY.T + np.array([0.0, 0.0, 2.5])


def test_torso_frame_reads_the_operator_axes() -> None:
    j = body_joints({})
    assert torso_frame(j) == pytest.approx(CAM_FROM_BODY, abs=0.05)
    moved = body_joints({"right": np.array([0.1, -0.05, 0.2])})
    d = wrist_in_torso(moved, "right") - wrist_in_torso(j, "right")
    assert d == pytest.approx([0.1, -0.05, 0.2], abs=0.02)
    assert parse_phase("phase=hold_side holding=1") == ("hold_side", True)
    assert parse_phase("phase=rest holding=0") == ("rest", False)


def _recording(kin: RobotKinematics, lag: float, dead: bool = False) -> LoopRecord:
    """Robot joints move (two bumps, a hold each); the operator's wrist displacement is the
    robot hand's displacement ``lag`` seconds later, scaled (an arm is not a robot)."""
    m = kin._model
    names = [m.joint(i).name for i in range(m.njnt)]
    home = np.zeros(m.nq)  # the map's safe pose: where the operator's rest takes the robot
    for n, v in zip(kin.joint_names, kin.home, strict=True):
        home[m.jnt_qposadr[m.joint(n).id]] = v
    t = np.arange(0.0, 14.0, 0.005)
    env = np.zeros_like(t)
    for a, b in ((2.0, 5.0), (7.0, 10.0)):  # ramp up 0.5 s, hold, ramp down 0.5 s
        env += np.clip(np.minimum(t - a, b - t) / 0.5, 0.0, 1.0)
    q = np.repeat(home[None], t.size, axis=0)
    if not dead:
        arm = [i for i, n in enumerate(names) if n in kin.joint_names][:4]
        q[:, arm[0]] += 0.5 * env * (t < 6)
        q[:, arm[1]] += 0.4 * env
        q[:, arm[3]] -= 0.3 * env * (t > 6)
    hands = np.array([kin.hands(names, qq).reshape(-1) for qq in q])
    disp = hands - kin.home_hands().reshape(-1)
    assert np.abs(disp[0]).max() < 1e-9
    rec = LoopRecord()
    t0 = 1000.0
    for k in range(0, t.size, 13):  # ~15 Hz operator frames
        tk = t[k]
        src = min(round(float(tk + lag) / 0.005), t.size - 1)
        offs = {side: 1.3 * disp[src, 3 * i:3 * i + 3] for i, side in enumerate(kin.sides)}
        rec.truth_t.append(t0 + tk)
        rec.truth_joints.append(body_joints(offs))
        hold = any(a + 0.5 + lag < tk < b - 0.5 for a, b in ((2.0, 5.0), (7.0, 10.0)))
        moving = env[src] > 0
        rec.truth_phase.append("rest" if not moving else ("hold" if hold else "move"))
        rec.truth_holding.append(hold)
    for k in range(0, t.size, 4):  # 50 Hz joint_states
        rec.js_t.append(t0 + t[k])
        rec.js_names.append(names)
        rec.js_pos.append(list(q[k]))
    rec.enabled_at = t0 + 0.5
    for k in range(0, t.size, 4):  # teleop/status at 50 Hz: tracking 96 % of the time
        rec.status_t.append(t0 + t[k])
        rec.status_enabled.append(t[k] >= 0.5)
        tracking = not (dead or (k // 4) % 25 == 0)
        rec.status_tracking.append(tracking)
        rec.status_reason.append("" if tracking else "stale")
        rec.status_timeout.append(0.3)
        rec.status_note.append("")
    for k in range(0, t.size, 20):
        rec.pose_stamp.append(t0 + t[k])
        rec.pose_arrival.append(t0 + t[k] + 0.06)
        rec.pose_valid.append(True)
    rec.contacts = {"ticks_with_contact": 0, "pairs": []}
    return rec


@pytest.mark.parametrize("robot", ["fr3", "g1"])
def test_a_robot_trailing_by_a_known_time_gives_that_lag_and_full_fidelity(robot: str):
    kin = RobotKinematics.from_config(robot, CONFIG / f"teleop_{robot}.yaml")
    r = analyse(_recording(kin, lag=0.18), kin)
    assert r["lag_ms"] == pytest.approx(180.0, abs=10.0)
    assert r["latency_p50_ms"] == pytest.approx(60.0, abs=1.0)
    assert r["tracking_share"] == pytest.approx(0.96, abs=0.01)
    assert r["reasons"] == {"stale": pytest.approx(r["enabled_steps"] * 0.04, abs=2)}
    assert len(r["holds"]) >= 2 and r["fidelity_min"] > 0.99
    assert r["back_home_mm"] < 1.0 and r["moved_mm"] > 20.0
    assert r["followed"] and r["goals"]["0 contacts"]


def test_a_dead_robot_is_reported_as_not_following():
    kin = RobotKinematics.from_config("g1", CONFIG / "teleop_g1.yaml")
    live = _recording(kin, lag=0.1)
    dead = _recording(kin, lag=0.1, dead=True)
    dead.truth_joints = live.truth_joints  # the operator moved; the robot did not
    r = analyse(dead, kin)
    assert not r["followed"]
    assert np.isnan(r["lag_ms"]) and r["fidelity_min"] == -1.0
    assert not any(r["goals"][k] for k in r["goals"] if k.startswith(("tracking", "lag",
                                                                       "fidelity")))


@pytest.mark.ros
@pytest.mark.slow  # ~20 s: the only run of bench-loop's own ROS plumbing (recorder, enable)
@pytest.mark.timeout(180)
def test_bench_loop_cli_runs_the_loop_and_its_exit_code_says_whether_the_robot_followed(
        tmp_path):
    """The short ``raise`` script through the real loop in one process (the CLI, in a
    process of its own): every figure is there, and the exit code is 1 exactly when the
    run says the robot did not follow (on a loaded CI machine it may not; the test does
    not pretend otherwise)."""
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "loop.json"
    env = {**os.environ, "MUJOCO_GL": "egl"}
    proc = subprocess.run([sys.executable, "-m", "mocap_ros.cli.main", "bench-loop", "--robot",
                           "g1", "--script", "raise", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    run = json.loads(out.read_text())["runs"][0]
    assert proc.returncode == (0 if run["followed"] else 1)
    assert ("did NOT follow" in proc.stdout) == (not run["followed"])
    assert run["valid_poses"] > 10 and run["enabled_steps"] > 100
    assert int(run["frames"]["received"]) > 10  # mocap_node's own counter, via /diagnostics
    assert run["contacts"] == 0  # sim_robot reported, and nothing touched
    if run["followed"]:
        assert run["moved_mm"] >= 20.0 and run["holds"]
