"""RobotJointMap: the example configs, mirroring, validation errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mocap_ros.teleop.angles import (
    ANGLE_NAMES,
    angles_to_local_rotations,
    local_rotations_to_angles,
)
from mocap_ros.teleop.controller import TeleopController
from mocap_ros.teleop.retarget import JointMapError, RobotJointMap

CONFIG = Path(__file__).resolve().parents[1] / "config"
CONFIGS = sorted(CONFIG.glob("teleop_*.yaml"))
ONE_DEG = math.pi / 180.0


def random_human_angles(rng: np.random.Generator) -> dict[str, float]:
    """Plausible operator angles, wide enough to drive every joint into its limits."""
    a = {name: float(rng.uniform(-1.2, 1.2)) for name in ANGLE_NAMES}
    for side in ("left", "right"):
        a[f"{side}_shoulder_flexion"] = float(rng.uniform(-0.8, 2.0))
        a[f"{side}_shoulder_abduction"] = float(rng.uniform(-0.4, 2.0))
        a[f"{side}_elbow_flexion"] = float(rng.uniform(-0.1, 2.6))
    return a


def expected_source(angles: dict[str, float], follows: str, mirror: bool) -> float:
    """Written independently of angles.mirrored_name: what a joint must follow."""
    if follows == "constant":
        return 0.0
    if not mirror:
        return angles[follows]
    if follows.startswith("left_"):
        return angles["right_" + follows[5:]]
    if follows.startswith("right_"):
        return angles["left_" + follows[6:]]
    return -angles[follows] if follows.endswith("_yaw") else angles[follows]


def test_example_configs_exist_and_load() -> None:
    names = {p.name for p in CONFIGS}
    assert {"teleop_fr3.yaml", "teleop_g1.yaml", "teleop_generic.yaml"} <= names
    fr3 = RobotJointMap.from_yaml(CONFIG / "teleop_fr3.yaml")
    assert fr3.names == tuple(f"fr3_joint{i}" for i in range(1, 8))
    assert {j.follows for j in fr3.joints} - {"constant"} <= {
        n for n in ANGLE_NAMES if n.startswith("right_")
    }
    g1 = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    for side in ("left", "right"):
        for joint in (
            "shoulder_pitch",
            "shoulder_roll",
            "shoulder_yaw",
            "elbow",
            "wrist_roll",
            "wrist_pitch",
            "wrist_yaw",
        ):
            assert f"{side}_{joint}_joint" in g1.names
    for path in CONFIGS:
        m = RobotJointMap.from_yaml(path)
        assert np.all(m.lower < m.upper)
        assert np.all(m.velocity_limits > 0) and np.all(m.acceleration_limits > 0)
        assert np.all(m.safe_pose >= m.lower) and np.all(m.safe_pose <= m.upper)
        # Enforced limits never exceed the documented ones.
        assert np.all(m.lower >= [j.lower for j in m.joints])
        assert np.all(m.upper <= [j.upper for j in m.joints])
        assert np.all(m.velocity_limits <= [j.velocity_limit for j in m.joints])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mirror", [False, True])
def test_command_is_clamped_scale_times_angle_plus_offset(path: Path, mirror: bool) -> None:
    jm = RobotJointMap.from_yaml(path).with_mirror(mirror)
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = random_human_angles(rng)
        # Through the whole front end: angles -> SMPL quaternions -> angles -> command.
        measured = local_rotations_to_angles(angles_to_local_rotations(truth))
        cmd = jm.command(measured)
        for i, j in enumerate(jm.joints):
            want = np.clip(
                (0.0 if j.follows == "constant" else j.scale)
                * expected_source(truth, j.follows, mirror)
                + j.offset,
                jm.lower[i],
                jm.upper[i],
            )
            assert abs(cmd[i] - want) <= ONE_DEG, (j.name, cmd[i], want)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mirror", [False, True])
def test_controller_settles_on_the_mapped_command(path: Path, mirror: bool) -> None:
    """Filter and rate limiter end where the map says, within 1 deg, mirrored or not."""
    jm = RobotJointMap.from_yaml(path).with_mirror(mirror)
    rng = np.random.default_rng(1)
    truth = random_human_angles(rng)
    quats = angles_to_local_rotations(truth)
    ctl = TeleopController(jm)
    ctl.enable(0.0)
    out = None
    for k in range(1, 50 * 8):  # 8 s at 50 Hz, a pose every third tick (~17 Hz)
        now = k / 50.0
        if k % 3 == 0:
            ctl.on_pose(now - 0.05, now, True, 1.0, quats)
        out = ctl.step(now)
    assert out is not None and out.status.tracking
    want = np.clip(
        jm.scale * np.array([expected_source(truth, j.follows, mirror) for j in jm.joints])
        + jm.offset,
        jm.lower,
        jm.upper,
    )
    assert np.max(np.abs(out.positions - want)) <= ONE_DEG


def test_mirror_swaps_sides_and_negates_yaw_only() -> None:
    g1 = RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")
    assert not g1.mirror
    mirrored = g1.with_mirror(True)
    angles = dict.fromkeys(ANGLE_NAMES, 0.0)
    angles["right_shoulder_flexion"] = 1.0  # the operator raises the RIGHT arm forward
    angles["torso_yaw"] = 0.3  # and turns to their left
    i_left = g1.names.index("left_shoulder_pitch_joint")
    i_right = g1.names.index("right_shoulder_pitch_joint")
    i_waist = g1.names.index("waist_yaw_joint")
    same, mirror = g1.command(angles), mirrored.command(angles)
    # G1 shoulder pitch: arm forward is negative pitch (scale -1).
    assert same[i_right] == pytest.approx(-1.0) and same[i_left] == pytest.approx(0.0)
    assert mirror[i_left] == pytest.approx(-1.0) and mirror[i_right] == pytest.approx(0.0)
    assert same[i_waist] == pytest.approx(0.3) and mirror[i_waist] == pytest.approx(-0.3)
    # Pitch-type body angles keep their sign under mirroring.
    generic = RobotJointMap.from_yaml(CONFIG / "teleop_generic.yaml")
    assert generic.mirror
    tilt = generic.names.index("head_tilt")
    pan = generic.names.index("head_pan")
    cmd = generic.command({**dict.fromkeys(ANGLE_NAMES, 0.0), "head_pitch": 0.4, "head_yaw": 0.5})
    assert cmd[tilt] == pytest.approx(0.4) and cmd[pan] == pytest.approx(-0.5)


def test_constant_joint_and_missing_angles() -> None:
    fr3 = RobotJointMap.from_yaml(CONFIG / "teleop_fr3.yaml")
    cmd = fr3.command(dict.fromkeys(ANGLE_NAMES, 0.7))
    assert cmd[6] == pytest.approx(0.785)  # fr3_joint7 follows "constant"
    partial = fr3.command({"right_shoulder_flexion": 0.1})
    assert math.isnan(partial[0])  # a followed angle missing: NaN, never a silent 0
    assert partial[1] == pytest.approx(0.1)


# ---------------------------------------------------------------------------- validation
BASE: dict[str, Any] = {
    "robot": "test_bot",
    "joints": [
        {
            "name": "j1",
            "follows": "left_elbow_flexion",
            "scale": 1.0,
            "offset": 0.1,
            "lower": -1.0,
            "upper": 1.0,
            "velocity_limit": 1.0,
            "acceleration_limit": 5.0,
        },
        {
            "name": "j2",
            "follows": "constant",
            "offset": 2.0,
            "lower": -1.0,
            "upper": 1.0,
            "velocity_limit": 1.0,
            "acceleration_limit": 5.0,
        },
    ],
}


def with_joint(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            del data["joints"][0][k]
        else:
            data["joints"][0][k] = v
    return data


def test_valid_base_and_safe_pose_default() -> None:
    m = RobotJointMap.from_dict(BASE)
    assert m.safe_pose == pytest.approx([0.1, 1.0])  # clamp(offset) into the limits


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (with_joint(follows="left_knee_flexion"), r"joint 'j1'.*'follows'.*left_knee_flexion"),
        (with_joint(lower=1.0), r"joint 'j1'.*'lower'.*< upper"),
        (with_joint(lower=2.0), r"joint 'j1'.*'lower'"),
        (with_joint(velocity_limit=0.0), r"joint 'j1'.*'velocity_limit'.*> 0"),
        (with_joint(acceleration_limit=-1.0), r"joint 'j1'.*'acceleration_limit'"),
        (with_joint(upper=None), r"joint 'j1'.*missing field 'upper'"),
        (with_joint(scale=None), r"joint 'j1'.*missing field 'scale'"),
        (with_joint(offset="abc"), r"joint 'j1'.*'offset'.*number"),
        (with_joint(scale=True), r"joint 'j1'.*'scale'.*number"),
        (with_joint(lower=float("nan")), r"joint 'j1'.*'lower'.*finite"),
        (with_joint(safe_pose=3.0), r"joint 'j1'.*'safe_pose'.*outside"),
        (with_joint(velocity=1.0), r"joint 'j1'.*unknown field"),
        (with_joint(name="j2"), r"joint 'j2'.*duplicate"),
        ({**BASE, "robot": ""}, r"field 'robot'"),
        ({k: v for k, v in BASE.items() if k != "robot"}, r"missing field 'robot'"),
        ({**BASE, "joints": []}, r"field 'joints'"),
        ({**BASE, "mirror": "yes please"}, r"field 'mirror'"),
        ({**BASE, "velocity_scale": 1.5}, r"field 'velocity_scale'"),
        ({**BASE, "position_margin": 1.5}, r"joint 'j1'.*position_margin"),
        ({**BASE, "colour": "red"}, r"unknown field"),
    ],
)
def test_validation_errors_name_the_joint_and_field(data: dict[str, Any], pattern: str) -> None:
    with pytest.raises(JointMapError, match=pattern):
        RobotJointMap.from_dict(data, source="bad.yaml")


def test_from_yaml_reports_the_file(tmp_path: Path) -> None:
    p = tmp_path / "teleop_broken.yaml"
    p.write_text(yaml.safe_dump(with_joint(follows="tail_wag")))
    with pytest.raises(JointMapError, match=r"teleop_broken.yaml: joint 'j1'"):
        RobotJointMap.from_yaml(p)
    p.write_text("robot: [unclosed")
    with pytest.raises(JointMapError, match="not valid YAML"):
        RobotJointMap.from_yaml(p)
