"""Anatomical angles from SMPL local rotations: round trip, pinned signs, mirror symmetry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mocap_ros.core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from mocap_ros.geometry.rotations import (
    matrix_to_quat,
    mirror_x,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    quat_to_matrix,
    swing_twist,
    wrap_angle,
)
from mocap_ros.teleop.angles import (
    ANGLE_NAMES,
    angles_to_local_rotations,
    local_rotations_to_angles,
    mirrored_name,
)

X = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
Z = np.array([0.0, 0.0, 1.0])
DEG = math.pi / 180.0


def rot(axis: np.ndarray, deg: float) -> np.ndarray:
    return quat_from_axis_angle(axis, deg * DEG)


def identity_pose() -> np.ndarray:
    q = np.zeros((NUM_JOINTS, 4))
    q[:, 3] = 1.0
    return q


def pose(**joints: np.ndarray) -> np.ndarray:
    q = identity_pose()
    for name, value in joints.items():
        q[JOINT_INDEX[name]] = value
    return q


def angles_deg(q: np.ndarray) -> dict[str, float]:
    return {k: v / DEG for k, v in local_rotations_to_angles(q).items()}


# Human ranges (rad) used for sampling; the shoulder swing is kept below 172 deg, away
# from the chart's only singularity (arm straight up, 180 deg).
RANGES = {
    "shoulder_flexion": (-1.0, 3.0),
    "shoulder_abduction": (-0.6, 3.0),
    "shoulder_rotation": (-1.6, 1.6),
    "elbow_flexion": (-0.2, 2.7),
    "forearm_pronation": (-1.6, 1.6),
    "wrist_flexion": (-1.3, 1.3),
    "wrist_deviation": (-0.6, 0.7),
    "torso_yaw": (-1.2, 1.2),
    "torso_pitch": (-0.6, 1.4),
    "head_yaw": (-1.4, 1.4),
    "head_pitch": (-1.0, 1.2),
}
MAX_SHOULDER_SWING = 3.0


def _range(name: str) -> tuple[float, float]:
    for suffix, r in RANGES.items():
        if name.endswith(suffix):
            return r
    raise KeyError(name)


@st.composite
def human_angles(draw: st.DrawFn) -> dict[str, float]:
    out = {}
    for name in ANGLE_NAMES:
        lo, hi = _range(name)
        out[name] = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
    for side in ("left", "right"):
        f, a = out[f"{side}_shoulder_flexion"], out[f"{side}_shoulder_abduction"]
        n = math.hypot(f, a)
        if n > MAX_SHOULDER_SWING:
            out[f"{side}_shoulder_flexion"] = f * MAX_SHOULDER_SWING / n
            out[f"{side}_shoulder_abduction"] = a * MAX_SHOULDER_SWING / n
    return out


# ------------------------------------------------------------------------------ round trip
@settings(max_examples=300, deadline=None)
@given(human_angles())
def test_round_trip_angles_quats_angles(angles: dict[str, float]) -> None:
    back = local_rotations_to_angles(angles_to_local_rotations(angles))
    for name in ANGLE_NAMES:
        assert abs(wrap_angle(back[name] - angles[name])) < 1e-6, name


@settings(max_examples=100, deadline=None)
@given(human_angles(), st.floats(-3.0, 3.0), st.floats(0.1, 5.0), st.booleans())
def test_collar_split_root_and_quaternion_scale_do_not_matter(
    angles: dict[str, float], collar_deg: float, scale: float, negate: bool
) -> None:
    """The shoulder angle uses collar*shoulder; the root is ignored; q and -k*q agree."""
    q = angles_to_local_rotations(angles)
    ref = local_rotations_to_angles(q)
    q2 = q.copy()
    for collar, shoulder in (("left_collar", "left_shoulder"), ("right_collar", "right_shoulder")):
        c = quat_from_axis_angle(np.array([0.3, -0.5, 0.8]), collar_deg * 0.1)
        q2[JOINT_INDEX[collar]] = c
        q2[JOINT_INDEX[shoulder]] = quat_mul(
            quat_from_axis_angle(np.array([0.3, -0.5, 0.8]), -collar_deg * 0.1),
            q[JOINT_INDEX[shoulder]],
        )
    q2[0] = rot(np.array([1.0, 2.0, 3.0]), 77.0)
    q2 *= -scale if negate else scale
    other = local_rotations_to_angles(q2)
    for name in ANGLE_NAMES:
        assert abs(wrap_angle(other[name] - ref[name])) < 1e-9, name


def mirror_pose(q: np.ndarray) -> np.ndarray:
    """The operator's mirror image: swap left/right joints and reflect every rotation."""
    out = np.empty_like(q)
    for j, name in enumerate(JOINT_NAMES):
        if name.startswith("left_"):
            src = JOINT_INDEX["right_" + name[5:]]
        elif name.startswith("right_"):
            src = JOINT_INDEX["left_" + name[6:]]
        else:
            src = j
        out[j] = mirror_x(q[src])
    return out


@settings(max_examples=150, deadline=None)
@given(human_angles())
def test_mirror_image_swaps_sides_and_negates_yaw(angles: dict[str, float]) -> None:
    """Left and right angles mean the same movement: the mirror image of a pose has the
    left/right values swapped, yaw negated and everything else unchanged."""
    q = angles_to_local_rotations(angles)
    ref = local_rotations_to_angles(q)
    mirrored = local_rotations_to_angles(mirror_pose(q))
    for name in ANGLE_NAMES:
        src, sign = mirrored_name(name)
        assert abs(wrap_angle(mirrored[name] - sign * ref[src])) < 1e-9, name


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(
            lambda v: np.linalg.norm(v) > 0.1
        ),
        min_size=NUM_JOINTS,
        max_size=NUM_JOINTS,
    )
)
def test_arbitrary_rotations_give_finite_wrapped_angles(quats: list[list[float]]) -> None:
    a = local_rotations_to_angles(np.array(quats))
    assert set(a) == set(ANGLE_NAMES)
    for v in a.values():
        assert math.isfinite(v) and -math.pi - 1e-12 <= v <= math.pi + 1e-12


# ------------------------------------------------------------- sign conventions, by hand
def test_rest_t_pose_is_90_deg_abduction_on_both_sides() -> None:
    a = angles_deg(identity_pose())
    for side in ("left", "right"):
        assert a[f"{side}_shoulder_abduction"] == pytest.approx(90.0, abs=1e-9)
        assert a[f"{side}_shoulder_flexion"] == pytest.approx(0.0, abs=1e-9)
        assert a[f"{side}_shoulder_rotation"] == pytest.approx(0.0, abs=1e-9)
        assert a[f"{side}_elbow_flexion"] == pytest.approx(0.0, abs=1e-9)
    for name in ("torso_yaw", "torso_pitch", "head_yaw", "head_pitch"):
        assert a[name] == pytest.approx(0.0, abs=1e-9)


def test_arms_down_at_the_sides_are_anatomical_zero() -> None:
    # SMPL: rotating the left upper arm (rest +x) by -90 deg about +z points it down (-y).
    q = pose(left_shoulder=rot(Z, -90), right_shoulder=rot(Z, 90))
    assert quat_rotate(q[JOINT_INDEX["left_shoulder"]], X) == pytest.approx([0, -1, 0], abs=1e-12)
    assert quat_rotate(q[JOINT_INDEX["right_shoulder"]], -X) == pytest.approx([0, -1, 0], abs=1e-12)
    a = angles_deg(q)
    for side in ("left", "right"):
        for k in ARM_KEYS:
            assert a[f"{side}_{k}"] == pytest.approx(0.0, abs=1e-9), (side, k)


ARM_KEYS = (
    "shoulder_flexion",
    "shoulder_abduction",
    "shoulder_rotation",
    "elbow_flexion",
    "forearm_pronation",
    "wrist_flexion",
    "wrist_deviation",
)


def test_arm_pointing_forward_is_plus_90_flexion_on_both_sides() -> None:
    q = pose(left_shoulder=rot(Y, -90), right_shoulder=rot(Y, 90))
    # Physically forward (+z) on both sides.
    assert quat_rotate(q[JOINT_INDEX["left_shoulder"]], X) == pytest.approx([0, 0, 1], abs=1e-12)
    assert quat_rotate(q[JOINT_INDEX["right_shoulder"]], -X) == pytest.approx([0, 0, 1], abs=1e-12)
    a = angles_deg(q)
    for side in ("left", "right"):
        assert a[f"{side}_shoulder_flexion"] == pytest.approx(90.0, abs=1e-9)
        assert a[f"{side}_shoulder_abduction"] == pytest.approx(0.0, abs=1e-9)
    # Swinging the T-pose arm forward keeps the elbow crease facing forward, i.e. the arm
    # is rotated 90 deg internally relative to "hanging, then raised forward".
    assert a["left_shoulder_rotation"] == pytest.approx(-90.0, abs=1e-9)
    assert a["right_shoulder_rotation"] == pytest.approx(-90.0, abs=1e-9)


@pytest.mark.parametrize("deg", [-40.0, 30.0, 60.0, 135.0])
def test_flexion_from_hanging_in_the_sagittal_plane(deg: float) -> None:
    # Hanging arm turned about the chest's -x axis (raise forward) by `deg`.
    left = quat_mul(rot(-X, deg), rot(Z, -90))
    right = quat_mul(rot(-X, deg), rot(Z, 90))
    q = pose(left_shoulder=left, right_shoulder=right)
    d_left = quat_rotate(left, X)
    assert d_left[0] == pytest.approx(0.0, abs=1e-12)
    assert np.sign(d_left[2]) == np.sign(deg)  # forward for +, backward for - (extension)
    a = angles_deg(q)
    for side in ("left", "right"):
        assert a[f"{side}_shoulder_flexion"] == pytest.approx(deg, abs=1e-9)
        assert a[f"{side}_shoulder_abduction"] == pytest.approx(0.0, abs=1e-9)
        assert a[f"{side}_shoulder_rotation"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("deg", [-20.0, 45.0, 120.0, 170.0])
def test_abduction_in_the_frontal_plane(deg: float) -> None:
    left = rot(Z, -90 + deg)  # left arm: from hanging toward +x (the body's left)
    right = rot(Z, 90 - deg)  # right arm: from hanging toward -x
    q = pose(left_shoulder=left, right_shoulder=right)
    assert np.sign(quat_rotate(left, X)[0]) == np.sign(deg)
    assert np.sign(quat_rotate(right, -X)[0]) == -np.sign(deg)
    a = angles_deg(q)
    for side in ("left", "right"):
        assert a[f"{side}_shoulder_abduction"] == pytest.approx(deg, abs=1e-9)
        assert a[f"{side}_shoulder_flexion"] == pytest.approx(0.0, abs=1e-9)


def test_external_rotation_turns_the_forearm_outward() -> None:
    # Arm hanging, elbow bent 90 deg (forearm forward), then the humerus turned about the
    # vertical: +y on the left, -y on the right (the same movement, mirrored).
    left_sh = quat_mul(rot(Y, 30), rot(Z, -90))
    right_sh = quat_mul(rot(Y, -30), rot(Z, 90))
    left_el, right_el = rot(Y, -90), rot(Y, 90)
    q = pose(
        left_shoulder=left_sh, right_shoulder=right_sh, left_elbow=left_el, right_elbow=right_el
    )
    left_forearm = quat_rotate(quat_mul(left_sh, left_el), X)
    right_forearm = quat_rotate(quat_mul(right_sh, right_el), -X)
    assert left_forearm[0] > 0.4 and right_forearm[0] < -0.4  # outward = lateral
    assert left_forearm[2] > 0.8 and right_forearm[2] > 0.8  # still mostly forward
    a = angles_deg(q)
    for side in ("left", "right"):
        assert a[f"{side}_shoulder_rotation"] == pytest.approx(30.0, abs=1e-9)
        assert a[f"{side}_elbow_flexion"] == pytest.approx(90.0, abs=1e-9)
        assert a[f"{side}_shoulder_flexion"] == pytest.approx(0.0, abs=1e-9)
        assert a[f"{side}_shoulder_abduction"] == pytest.approx(0.0, abs=1e-9)


def test_elbow_bend_of_90_deg_is_plus_90() -> None:
    q = pose(
        left_shoulder=rot(Z, -90),
        right_shoulder=rot(Z, 90),
        left_elbow=rot(Y, -90),
        right_elbow=rot(Y, 90),
    )
    # The forearm of the hanging arm points forward (+z) on both sides.
    for sh, el, bone in (("left_shoulder", "left_elbow", X), ("right_shoulder", "right_elbow", -X)):
        d = quat_rotate(quat_mul(q[JOINT_INDEX[sh]], q[JOINT_INDEX[el]]), bone)
        assert d == pytest.approx([0, 0, 1], abs=1e-12)
    a = angles_deg(q)
    assert a["left_elbow_flexion"] == pytest.approx(90.0, abs=1e-9)
    assert a["right_elbow_flexion"] == pytest.approx(90.0, abs=1e-9)
    # The same in the T-pose.
    a = angles_deg(pose(left_elbow=rot(Y, -90), right_elbow=rot(Y, 90)))
    assert a["left_elbow_flexion"] == pytest.approx(90.0, abs=1e-9)
    assert a["right_elbow_flexion"] == pytest.approx(90.0, abs=1e-9)


def test_pronation_turns_the_palm_down() -> None:
    # Hanging arm, elbow 90 deg, thumb up; pronation 90 deg must turn the palm down.
    # In SMPL's T-pose the palm faces -y and the thumb +z (both sides).
    sh = {"left": rot(Z, -90), "right": rot(Z, 90)}
    el = {"left": rot(Y, -90), "right": rot(Y, 90)}
    wr = rot(X, 90)  # the same quaternion on both sides (mirror keeps the x component)
    q = pose(
        left_shoulder=sh["left"],
        right_shoulder=sh["right"],
        left_elbow=el["left"],
        right_elbow=el["right"],
        left_wrist=wr,
        right_wrist=wr,
    )
    for side in ("left", "right"):
        chain = quat_mul(sh[side], el[side])
        assert quat_rotate(chain, Z) == pytest.approx([0, 1, 0], abs=1e-12)  # thumb up
        palm = quat_rotate(quat_mul(chain, wr), -Y)
        assert palm == pytest.approx([0, -1, 0], abs=1e-12)  # palm down
    a = angles_deg(q)
    assert a["left_forearm_pronation"] == pytest.approx(90.0, abs=1e-9)
    assert a["right_forearm_pronation"] == pytest.approx(90.0, abs=1e-9)


def test_elbow_twist_counts_as_pronation() -> None:
    a = angles_deg(pose(left_elbow=rot(X, 25), right_elbow=rot(X, 25)))
    assert a["left_forearm_pronation"] == pytest.approx(25.0, abs=1e-9)
    assert a["right_forearm_pronation"] == pytest.approx(25.0, abs=1e-9)
    assert a["left_elbow_flexion"] == pytest.approx(0.0, abs=1e-9)


def test_wrist_flexion_and_ulnar_deviation() -> None:
    # T-pose: palm -y, thumb +z. Flexion bends the hand toward the palm (-y); ulnar
    # deviation toward the little finger (-z).
    left_flex, right_flex = rot(Z, -30), rot(Z, 30)
    assert quat_rotate(left_flex, X)[1] < 0 and quat_rotate(right_flex, -X)[1] < 0
    a = angles_deg(pose(left_wrist=left_flex, right_wrist=right_flex))
    for side in ("left", "right"):
        assert a[f"{side}_wrist_flexion"] == pytest.approx(30.0, abs=1e-9)
        assert a[f"{side}_wrist_deviation"] == pytest.approx(0.0, abs=1e-9)
    left_uln, right_uln = rot(Y, 20), rot(Y, -20)
    assert quat_rotate(left_uln, X)[2] < 0 and quat_rotate(right_uln, -X)[2] < 0
    a = angles_deg(pose(left_wrist=left_uln, right_wrist=right_uln))
    for side in ("left", "right"):
        assert a[f"{side}_wrist_deviation"] == pytest.approx(20.0, abs=1e-9)
        assert a[f"{side}_wrist_flexion"] == pytest.approx(0.0, abs=1e-9)


def test_torso_and_head_signs() -> None:
    # Leaning forward: the spine's up axis tilts toward +z.
    assert quat_rotate(rot(X, 20), Y)[2] > 0
    a = angles_deg(pose(spine1=rot(X, 10), spine2=rot(X, 5), spine3=rot(X, 5)))
    assert a["torso_pitch"] == pytest.approx(20.0, abs=1e-9)
    assert a["torso_yaw"] == pytest.approx(0.0, abs=1e-9)
    # Turning left: the chest normal +z turns toward +x (the body's left).
    assert quat_rotate(rot(Y, 30), Z)[0] > 0
    a = angles_deg(pose(spine2=rot(Y, 30)))
    assert a["torso_yaw"] == pytest.approx(30.0, abs=1e-9)
    # Head turned left and looking down (face +z turns toward -y).
    assert quat_rotate(rot(X, 15), Z)[1] < 0
    a = angles_deg(pose(neck=rot(Y, 25), head=rot(X, 15)))
    assert a["head_yaw"] == pytest.approx(25.0, abs=1e-9)
    assert a["head_pitch"] == pytest.approx(15.0, abs=1e-9)
    # Arm angles are relative to the chest: turning the torso moves none of them.
    a = angles_deg(pose(spine1=rot(Y, 40), left_shoulder=rot(Z, -90)))
    assert a["left_shoulder_abduction"] == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------------ quat helpers
@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(lambda v: np.linalg.norm(v) > 0.1)
)
def test_quat_helpers_agree(v: list[float]) -> None:
    q = np.array(v) / np.linalg.norm(v)
    q = q if q[3] >= 0 else -q
    R = quat_to_matrix(q)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert abs(abs(float(np.dot(matrix_to_quat(R), q))) - 1.0) < 1e-9  # q and -q agree
    p = np.array([0.3, -0.2, 0.9])
    assert quat_rotate(q, p) == pytest.approx(R @ p, abs=1e-12)
    swing, twist = swing_twist(q, Y)
    recomposed = quat_mul(swing, quat_from_axis_angle(Y, twist))
    assert abs(abs(float(np.dot(recomposed, q))) - 1.0) < 1e-9
    assert abs(float(np.dot(swing[:3], Y))) < 1e-9  # the swing axis is perpendicular to Y


# ------------------------------------------------------------------------- bad input
def test_non_finite_or_zero_quaternions_give_nan() -> None:
    q = identity_pose()
    q[JOINT_INDEX["left_elbow"]] = [np.nan, 0, 0, 1]
    a = local_rotations_to_angles(q)
    assert math.isnan(a["left_elbow_flexion"])
    q = identity_pose()
    q[JOINT_INDEX["right_shoulder"]] = 0.0
    assert math.isnan(local_rotations_to_angles(q)["right_shoulder_flexion"])
    q = identity_pose()
    q[JOINT_INDEX["neck"]] = [np.inf, 0, 0, 1]
    assert math.isnan(local_rotations_to_angles(q)["head_yaw"])


def test_huge_finite_quaternions_are_normalised_without_overflow() -> None:
    q = angles_to_local_rotations({"left_elbow_flexion": 0.7, "head_yaw": -0.3})
    ref = local_rotations_to_angles(q)
    big = local_rotations_to_angles(q * 1e300)
    for name in ANGLE_NAMES:
        assert big[name] == pytest.approx(ref[name], abs=1e-12)


def test_bad_shapes_and_names_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        local_rotations_to_angles(np.zeros((23, 4)))
    with pytest.raises(ValueError, match="unknown angle"):
        angles_to_local_rotations({"left_knee_flexion": 0.1})


def test_anatomical_ranges_cover_every_angle_symmetrically() -> None:
    from mocap_ros.teleop.angles import ANATOMICAL_RANGES, OVERHEAD_PAST

    assert set(ANATOMICAL_RANGES) == set(ANGLE_NAMES)
    for name, (lo, hi) in ANATOMICAL_RANGES.items():
        assert lo < 0.0 < hi, name  # the anatomical neutral pose is always plausible
        # inside the charts' unique range, but for the shoulder swing's continuation past
        # straight up (angles.continue_overhead), which only a near-vertical pose opens
        top = np.pi + OVERHEAD_PAST if name.endswith(("shoulder_flexion",
                                                       "shoulder_abduction")) else np.pi
        assert -np.pi <= lo and hi <= top, name
        if name.startswith("left_"):
            assert ANATOMICAL_RANGES["right_" + name[5:]] == (lo, hi)
    # the forearm cannot twist to +-pi: the wrap-around the jump check cannot see
    lo, hi = ANATOMICAL_RANGES["left_forearm_pronation"]
    assert hi < np.pi - 0.8 and lo > -np.pi + 0.8
