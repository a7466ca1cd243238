"""Robot models, collision queries, joint-step scale-back, task IK and task retargeting.

Real MuJoCo and mink on the CPU; no GPU, no rclpy. Whole file: a few seconds.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from mocap_ros.core.skeleton import JOINT_INDEX, REST_JOINTS_APPROX
from mocap_ros.robots.collision import CollisionChecker, safe_step
from mocap_ros.robots.model import RobotModelError, add_environment, load_robot, load_urdf_string
from mocap_ros.teleop.ik import IKParams, TaskIK
from mocap_ros.teleop.task_retarget import (
    RetargetError,
    TaskMap,
    arm_length,
    target_orientation,
    target_position,
    targets_from_features,
    tool_direction,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"
MARGIN = 0.02


@pytest.fixture(scope="module")
def fr3():
    return add_environment(load_robot("fr3"))


@pytest.fixture(scope="module")
def g1():
    return add_environment(load_robot("g1"))


def _q(robot, values: dict[str, float]) -> np.ndarray:
    q = np.zeros(robot.model.nq)
    for name, v in values.items():
        q[robot.qpos_indices([name])[0]] = v
    return q


# ---------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("name", "yaml_file"), [("fr3", "teleop_fr3.yaml"), ("g1", "teleop_g1.yaml")]
)
def test_models_match_the_teleop_yaml_limits(name: str, yaml_file: str) -> None:
    robot = load_robot(name)
    cfg = yaml.safe_load((CONFIG / yaml_file).read_text())
    for j in cfg["joints"]:
        idx = robot.joint_names.index(j["name"])
        assert robot.lower[idx] == pytest.approx(j["lower"], abs=1e-6), j["name"]
        assert robot.upper[idx] == pytest.approx(j["upper"], abs=1e-6), j["name"]
        assert robot.velocity_limits[j["name"]] == pytest.approx(j["velocity_limit"])


def test_model_joint_sets() -> None:
    assert load_robot("fr3").joint_names == tuple(f"fr3_joint{i}" for i in range(1, 8))
    g1 = load_robot("g1")
    arm = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll",
           "wrist_pitch", "wrist_yaw")
    expected = (
        "waist_yaw_joint",
        "waist_roll_joint",
        "waist_pitch_joint",
        *(f"{s}_{a}_joint" for s in ("left", "right") for a in arm),
    )
    assert g1.joint_names == expected
    assert set(g1.velocity_limits) == set(expected)


def test_fr3_ready_pose_forward_kinematics(fr3) -> None:
    # Franka's ready pose puts the flange at (0.307, 0, 0.590) m (DH table).
    d = mujoco.MjData(fr3.model)
    d.qpos[:] = fr3.keyframe("ready")
    mujoco.mj_kinematics(fr3.model, d)
    assert d.site("flange").xpos == pytest.approx([0.3069, 0.0, 0.5903], abs=1e-3)


@pytest.mark.parametrize("name", ["fr3", "g1"])
def test_home_is_inside_limits_and_collision_free(name: str, request) -> None:
    robot = request.getfixturevalue(name)
    home = robot.home
    assert np.all(home - robot.lower >= 0.05) and np.all(robot.upper - home >= 0.05)
    assert CollisionChecker(robot, margin=MARGIN).collisions(home) == []


def test_joint_map_rest_poses_are_what_the_issue_reports(fr3, g1) -> None:
    # G1: operator at rest -> arms hanging, elbow_joint pi/2: hands inside the hip drives.
    rest = _q(g1, {"left_elbow_joint": 1.5708, "right_elbow_joint": 1.5708})
    hits = CollisionChecker(g1, margin=0.0).collisions(rest)
    names = {n for p in hits for n in (p.geom1, p.geom2)}
    assert {"left_hand", "right_hand"} <= names
    assert any("hip" in n for n in names)
    assert min(p.distance for p in hits) < -0.02
    # FR3: the old joint map (offset 0) put joint 4 on its (derated) upper limit at rest;
    # the shipped one keeps it clear (issue 11), and that rest is collision-free.
    cfg = yaml.safe_load((CONFIG / "teleop_fr3.yaml").read_text())
    j4 = next(j for j in cfg["joints"] if j["name"] == "fr3_joint4")
    enforced_upper = j4["upper"] - cfg["position_margin"]
    assert min(j4["scale"] * 0.0 + 0.0, enforced_upper) == pytest.approx(enforced_upper)
    assert enforced_upper - j4["offset"] >= 0.1
    rest_q = np.array([j.get("offset", 0.0) for j in cfg["joints"]])
    assert CollisionChecker(fr3, margin=MARGIN).is_free(rest_q)
    assert fr3.upper[3] - fr3.home[3] > 0.5  # the shipped home keeps clear of it


def test_known_colliding_configurations(fr3) -> None:
    checker = CollisionChecker(fr3, margin=MARGIN)
    # Column leaned fully forward, elbow almost straight: the hand goes through the floor.
    q = np.array([0.0, 1.7, 0.0, -0.3, 0.0, 1.571, 0.785])
    hits = checker.collisions(q)
    assert any("floor" in (p.geom1, p.geom2) for p in hits)
    d, pair = checker.min_distance(q)
    assert d < 0 and pair is not None
    # A table in front of the robot at the hand's height in the ready pose.
    with_table = add_environment(
        load_robot("fr3"), table={"center": [0.45, 0.0, 0.45], "size": [0.4, 0.6, 0.1]}
    )
    hits = CollisionChecker(with_table, margin=MARGIN).collisions(with_table.home)
    assert any("table" in (p.geom1, p.geom2) for p in hits)


def test_adjacent_links_are_not_checked(fr3, g1) -> None:
    for robot in (fr3, g1):
        m = robot.model
        for a, b in CollisionChecker(robot).pairs:
            b1, b2 = m.geom_bodyid[a], m.geom_bodyid[b]
            assert m.body_parentid[b1] != b2 and m.body_parentid[b2] != b1


def test_loader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RobotModelError, match="shipped"):
        load_robot("no_such_robot")
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody>")
    with pytest.raises(RobotModelError, match="XML"):
        load_robot(bad)
    with pytest.raises(RobotModelError, match="table"):
        add_environment(load_robot("fr3"), table={"center": [0, 0, 0], "size": [1, -1, 1]})


URDF = """<robot name="two_link">
  <link name="base"><collision><geometry><box size="0.2 0.2 0.1"/></geometry></collision></link>
  <link name="upper">
    <visual><geometry><mesh filename="package://nowhere/meshes/upper.dae"/></geometry></visual>
    <collision><geometry><mesh filename="package://nowhere/meshes/upper.stl"/></geometry>
    </collision>
    <inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/>
    </inertial>
  </link>
  <link name="lower">
    <collision><origin xyz="0 0 0.15"/><geometry><cylinder radius="0.03" length="0.3"/></geometry>
    </collision>
    <inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/>
    </inertial>
  </link>
  <joint name="j1" type="revolute"><parent link="base"/><child link="upper"/>
    <origin xyz="0 0 0.1"/><axis xyz="0 1 0"/>
    <limit lower="-1.5" upper="1.5" velocity="2.0" effort="10"/></joint>
  <joint name="j2" type="revolute"><parent link="upper"/><child link="lower"/>
    <origin xyz="0 0 0.4"/><axis xyz="0 1 0"/>
    <limit lower="-2.5" upper="2.5" velocity="3.0" effort="10"/></joint>
</robot>"""


def test_urdf_string_with_unresolvable_meshes(caplog) -> None:
    robot = load_urdf_string(URDF)
    assert robot.joint_names == ("j1", "j2")
    assert robot.velocity_limits == {"j1": 2.0, "j2": 3.0}
    assert any("upper.stl" in w and "dropped" in w for w in robot.warnings)
    assert any("fallback" in w for w in robot.warnings)
    assert any("dropped" in r.message for r in caplog.records)
    names = {robot.model.geom(i).name for i in range(robot.model.ngeom)}
    assert "upper_fallback0" in names
    # The fallback capsule (joint 1 -> joint 2, radius 0.04) is checked against the floor:
    # laid horizontal at the joint-1 height of 0.1 m it is 0.06 m above it.
    env = add_environment(robot)
    checker = CollisionChecker(env, margin=0.0)
    k = checker.pair_names.index(("floor", "upper_fallback0"))
    assert checker.distances(np.array([math.pi / 2, 0.0]))[k] == pytest.approx(0.06, abs=2e-3)
    # and with the floor raised to 0.08 m, that pose collides through the fallback capsule.
    raised = CollisionChecker(add_environment(robot, floor_height=0.08), margin=0.0)
    assert any("upper_fallback0" in (p.geom1, p.geom2)
               for p in raised.collisions(np.array([math.pi / 2, 0.0])))


# ---------------------------------------------------------------- scale-back


@pytest.mark.parametrize("name", ["fr3", "g1"])
def test_safe_step_never_returns_a_colliding_configuration(name: str, request) -> None:
    robot = request.getfixturevalue(name)
    checker = CollisionChecker(robot, margin=MARGIN)
    rng = np.random.default_rng(7)
    scaled = 0
    for _ in range(40):
        q_prev = robot.home.copy()
        q_cmd = np.clip(q_prev + rng.normal(0.0, 0.8, q_prev.shape), robot.lower, robot.upper)
        step = safe_step(checker, q_prev, q_cmd)
        # The whole path up to the returned point is outside the margin.
        for t in np.linspace(0.0, 1.0, 41):
            q = q_prev + t * (step.q - q_prev)
            assert checker.min_distance(q)[0] >= MARGIN - 1e-9
        if step.scaled:
            scaled += 1
            assert step.nearest is not None and step.fraction < 1.0
            assert not checker.is_free(q_cmd) or step.fraction < 1.0
        else:
            assert np.array_equal(step.q, q_cmd)
    assert scaled > 0  # the sample did exercise the scale-back


def test_safe_step_from_inside_the_margin_only_moves_out(g1) -> None:
    checker = CollisionChecker(g1, margin=MARGIN)
    inside = _q(g1, {"left_elbow_joint": 1.5708, "right_elbow_joint": 1.5708})
    d0 = checker.min_distance(inside)[0]
    deeper = inside + _q(g1, {"left_shoulder_roll_joint": -0.2, "right_shoulder_roll_joint": 0.2})
    assert safe_step(checker, inside, deeper).fraction == 0.0
    out = safe_step(checker, inside, g1.home)
    assert not out.scaled and checker.min_distance(out.q)[0] > d0


# ---------------------------------------------------------------- IK


@pytest.fixture(scope="module")
def fr3_ik(fr3):
    return TaskIK(fr3, "tcp", elbow_body="fr3_link4")


def _run(ik: TaskIK, q: np.ndarray, target, quat=None, steps: int = 250, dt: float = 0.01):
    checker = ik.checker
    for _ in range(steps):
        q = ik.solve(q, target, quat, dt)
        assert np.all(q >= ik.lower - 1e-9) and np.all(q <= ik.upper + 1e-9)
        assert checker.min_distance(q, 0.1)[0] >= ik.params.hard_margin - 1e-9
    return q


@pytest.mark.parametrize("target", [[0.5, 0.2, 0.3], [0.4, -0.3, 0.55], [0.25, 0.35, 0.7]])
def test_ik_reaches_reachable_targets(fr3_ik, fr3, target) -> None:
    q = _run(fr3_ik, fr3.home.copy(), target)
    assert np.linalg.norm(fr3_ik.site_pose(q)[0] - target) < 0.005
    assert fr3_ik.last.position_error < 0.005


def test_ik_orientation_target(fr3_ik, fr3) -> None:
    # Tool tilted 30 deg about the base y axis from its home (pointing down) orientation.
    _, home_quat = fr3_ik.site_pose(fr3.home)
    tilt = np.array([0.0, math.sin(math.radians(15)), 0.0, math.cos(math.radians(15))])
    x, y, z, w = tilt
    a = home_quat
    quat = np.array([
        w * a[0] + x * a[3] + y * a[2] - z * a[1],
        w * a[1] - x * a[2] + y * a[3] + z * a[0],
        w * a[2] + x * a[1] - y * a[0] + z * a[3],
        w * a[3] - x * a[0] - y * a[1] - z * a[2],
    ])
    q = _run(fr3_ik, fr3.home.copy(), [0.45, 0.0, 0.4], quat, steps=300)
    _, got = fr3_ik.site_pose(q)
    assert abs(float(np.dot(got, quat))) > math.cos(math.radians(3) / 2)


@pytest.mark.parametrize(
    "target",
    [[0.3, 0.0, -0.2], [0.5, 0.3, -0.05], [0.0, 0.0, 0.3], [-0.1, 0.0, 0.1], [0.05, 0.0, 1.2]],
    ids=["below_floor", "in_floor", "into_column", "into_base", "above_reach"],
)
def test_ik_never_collides_with_unreachable_targets(fr3_ik, fr3, target) -> None:
    _run(fr3_ik, fr3.home.copy(), target, steps=120)


def test_ik_g1_both_hands_into_the_body(g1) -> None:
    ik = TaskIK(g1, ["left_palm", "right_palm"], frozen_joints=["waist_roll_joint",
                                                                "waist_pitch_joint"])
    q = g1.home.copy()
    for _ in range(120):
        q = ik.solve_many(q, {"left_palm": ([0.05, 0.0, 0.9], None),
                              "right_palm": ([0.05, 0.0, 0.75], None)}, 0.01)
        assert np.all(q >= ik.lower - 1e-9) and np.all(q <= ik.upper + 1e-9)
        assert ik.checker.min_distance(q, 0.1)[0] >= ik.params.hard_margin - 1e-9
    assert q[1] == pytest.approx(g1.home[1]) and q[2] == pytest.approx(g1.home[2])


def test_ik_rejects_bad_input(fr3_ik, fr3) -> None:
    with pytest.raises(ValueError):
        fr3_ik.solve(fr3.home, [np.nan, 0, 0], None, 0.01)
    with pytest.raises(ValueError):
        fr3_ik.solve(fr3.home, [0.4, 0, 0.4], [0, 0, 0, 0], 0.01)
    with pytest.raises(ValueError):
        fr3_ik.solve(fr3.home[:3], [0.4, 0, 0.4], None, 0.01)
    with pytest.raises(ValueError):
        IKParams(hard_margin=0.05, collision_margin=0.03)


# ---------------------------------------------------------------- task retargeting


def operator_pose(flexion: float, abduction: float, elbow: float, yaw: float = 0.0) -> np.ndarray:
    """SMPL joints in the camera frame: operator facing the camera 3 m away, right arm set.

    Body frame (x forward, y left, z up); camera = (left, -up, -forward) + (0, 0, 3),
    optionally the whole body turned by `yaw` about its vertical axis.
    """
    rest = REST_JOINTS_APPROX.astype(float)
    body = np.stack([rest[:, 2], rest[:, 0], rest[:, 1]], axis=1)  # SMPL -> fwd, left, up
    s = body[JOINT_INDEX["right_shoulder"]]
    lu = np.linalg.norm(rest[JOINT_INDEX["right_elbow"]] - rest[JOINT_INDEX["right_shoulder"]])
    lf = np.linalg.norm(rest[JOINT_INDEX["right_wrist"]] - rest[JOINT_INDEX["right_elbow"]])
    ca, sa = math.cos(abduction), math.sin(abduction)
    u = np.array([math.sin(flexion) * ca, -sa, -math.cos(flexion) * ca])
    w = np.array([1.0, 0.0, 0.0]) - u[0] * u
    w = w / np.linalg.norm(w) if np.linalg.norm(w) > 1e-6 else np.array([0.0, 0.0, 1.0])
    f = math.cos(elbow) * u + math.sin(elbow) * w
    body[JOINT_INDEX["right_elbow"]] = s + lu * u
    body[JOINT_INDEX["right_wrist"]] = s + lu * u + lf * f
    c, sn = math.cos(yaw), math.sin(yaw)
    body = body @ np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]]).T
    cam = np.stack([body[:, 1], -body[:, 2], -body[:, 0]], axis=1)
    return (cam + np.array([0.0, 0.0, 3.0])).astype(np.float32)


@pytest.fixture(scope="module")
def fr3_map(fr3_ik, fr3):
    pos, quat = fr3_ik.site_pose(fr3.home)
    return TaskMap(home_position=pos, home_quat=quat, reach=0.35,
                   home_elbow=fr3_ik.body_position(fr3.home, "fr3_link4"))


def test_rest_pose_maps_to_home_and_camera_placement_does_not_matter(fr3_map) -> None:
    rest = operator_pose(0.0, 0.0, 0.0)
    assert target_position(rest, "right", fr3_map) == pytest.approx(fr3_map.home_position)
    assert target_orientation(rest, "right", fr3_map) == pytest.approx(fr3_map.home_quat)
    a = target_position(operator_pose(0.7, 0.4, 0.5), "right", fr3_map)
    b = target_position(operator_pose(0.7, 0.4, 0.5, yaw=0.8), "right", fr3_map)
    assert a == pytest.approx(b, abs=1e-5)
    assert arm_length(rest, "right") == pytest.approx(0.332 * 1.75, abs=1e-3)


def test_retarget_directions(fr3_map) -> None:
    home = fr3_map.home_position
    side = target_position(operator_pose(0.0, math.pi / 2, 0.0), "right", fr3_map) - home
    assert side[1] < -0.3 and side[2] > 0.3  # right arm raised sideways: robot's right, up
    fwd = target_position(operator_pose(math.pi / 2, 0.0, 0.0), "right", fr3_map) - home
    assert fwd[0] > 0.3 and abs(fwd[1]) < 1e-6
    quat = target_orientation(operator_pose(math.pi / 2, 0.0, 0.0), "right", fr3_map)
    assert tool_direction(quat) == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)


def test_retarget_rejects_bad_poses(fr3_map) -> None:
    bad = operator_pose(0.0, 0.0, 0.0)
    bad[JOINT_INDEX["right_wrist"]] = np.nan
    with pytest.raises(RetargetError):
        target_position(bad, "right", fr3_map)
    with pytest.raises(RetargetError):
        target_position(np.zeros((24, 3)), "right", fr3_map)
    with pytest.raises(RetargetError):
        target_position(np.zeros((5, 3)), "right", fr3_map)
    with pytest.raises(RetargetError):
        TaskMap(home_position=np.zeros(3), home_quat=np.array([0, 0, 0, 1.0]), reach=0.3,
                rotation=np.diag([1.0, -1.0, 1.0]))


def test_direction_fidelity_sweep(fr3_ik, fr3, fr3_map) -> None:
    """Robot hand displacement vs target displacement: cosine >= 0.9 where reachable."""
    checked = 0
    for flexion in (0.0, 0.6, 1.2):
        for abduction in (0.0, 0.6, 1.2):
            for elbow in (0.0, 1.0):
                pose = operator_pose(flexion, abduction, elbow)
                target = target_position(pose, "right", fr3_map)
                elbow_hint = None
                q = fr3.home.copy()
                for _ in range(150):
                    q = fr3_ik.solve(q, target, None, 0.01, elbow_pos=elbow_hint)
                want = target - fr3_map.home_position
                if np.linalg.norm(want) < 0.05 or fr3_ik.last.position_error > 0.03:
                    continue  # at rest, or out of reach / blocked by a collision
                got = fr3_ik.site_pose(q)[0] - fr3_map.home_position
                cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
                assert cos >= 0.9, (flexion, abduction, elbow, cos)
                checked += 1
    assert checked >= 8


def _angle_between(qa: np.ndarray, qb: np.ndarray) -> float:
    """Rotation angle (rad) between two xyzw quaternions."""
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(qa, qb)))))


def test_tool_orientation_target_flips_only_where_it_has_no_weight(fr3_map) -> None:
    """Issue 24 item 4: with the forearm pointing up (arm raised sideways, elbow bent 90 deg,
    turned out: a wave) the shortest swing from 'hanging' is a half turn about an axis that
    a small move spins around, so the tool target turns ~180 deg about its own axis for
    3 deg of forearm motion. The IK gets that target with weight 0 there."""
    from mocap_ros.teleop.task_retarget import orientation_weight

    elbow = np.array([0.0, -0.5, 0.0])  # arm length 1: upper arm sideways, horizontal
    quats = []
    for tilt in ([0.05, 0.0], [0.0, 0.05], [-0.05, 0.0], [0.0, -0.05], [0.035, 0.035]):
        fore = np.array([tilt[0], tilt[1], 1.0])
        fore /= np.linalg.norm(fore)
        _, quat, _ = targets_from_features(np.concatenate([elbow + 0.5 * fore, elbow]),
                                           fr3_map)
        assert tool_direction(quat) == pytest.approx(fore, abs=1e-6)  # the axis is fine
        assert orientation_weight(fore) == 0.0
        quats.append(quat)
    assert max(_angle_between(a, b) for a in quats for b in quats) > math.radians(170)


def test_orientation_weight_fades_only_near_the_swing_singularity() -> None:
    from mocap_ros.teleop.task_retarget import orientation_weight

    for fore in ([0, 0, -1], [1, 0, 0], [0, 1, 0], [0, -1, 0], [-1, 0, 0], [0.5, 0, -0.87]):
        assert orientation_weight(np.array(fore, float)) == pytest.approx(1.0), fore
    assert orientation_weight(np.array([0.0, 0.0, 1.0])) == 0.0  # straight up
    assert orientation_weight(np.array([0.3, 0.0, 1.0])) == 0.0  # 17 deg from it
    assert 0.0 < orientation_weight(np.array([1.0, 0.0, 1.0])) < 1.0  # 45 deg from it


def test_home_pull_gets_the_fr3_out_of_a_collision_boundary_minimum(fr3) -> None:
    """Issue 24 item 1: where the FR3 ended after the wave (wrist bent, forearm 21 mm from
    the flange, joint 1 swung right) the weak posture task left the QP at the collision
    boundary with the rest target 212 mm away. Near rest the home pull takes over."""
    stuck = np.array([-1.08, -0.58, 0.69, -2.81, -1.42, 3.74, 2.14])
    params = IKParams(limit_margin=0.05, collision_margin=0.04, collision_detection=0.12)
    results = {}
    for pull in (IKParams.posture_cost, IKParams.rest_posture_cost):
        ik = TaskIK(fr3, "tcp", params=dataclasses.replace(params, rest_posture_cost=pull,
                                                           escape=False),
                    elbow_body="fr3_link4")
        home_pos, home_quat = ik.site_pose(fr3.home)
        q = _run(ik, stuck.copy(), home_pos, home_quat, steps=40, dt=0.15)
        results[pull] = float(np.linalg.norm(ik.site_pose(q)[0] - home_pos))
    assert results[IKParams.posture_cost] > 0.1  # without the pull: a real local minimum
    assert results[IKParams.rest_posture_cost] < 0.005, results


@pytest.mark.parametrize("offset", [[0.2, 0.0, 0.0], [0.0, -0.2, 0.1]])
def test_escape_reseeds_from_home_out_of_a_local_minimum(fr3, offset) -> None:
    """Issue 24: away from rest the home pull is off, and from the configuration the wave
    left the QP stays 150-200 mm from a target that home reaches. The home-seeded second
    chain finds it; the way there keeps every limit and the margin (`_run` checks)."""
    stuck = np.array([-1.08, -0.58, 0.69, -2.81, -1.42, 3.74, 2.14])
    params = IKParams(limit_margin=0.05, collision_margin=0.04, collision_detection=0.12)
    errors = {}
    for escape in (False, True):
        ik = TaskIK(fr3, "tcp", params=dataclasses.replace(params, escape=escape),
                    elbow_body="fr3_link4")
        home_pos, home_quat = ik.site_pose(fr3.home)
        target = home_pos + np.asarray(offset)
        _run(ik, stuck.copy(), target, home_quat, steps=60, dt=0.15)
        errors[escape] = (ik.last.position_error, ik.escapes)
    assert errors[False][0] > 0.1 and errors[False][1] == 0  # a real local minimum
    assert errors[True][0] < 0.005 and errors[True][1] >= 1, errors

