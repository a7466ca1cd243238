"""REP-155 conversions (mocap_ros.estimation.rep155), checked against the published
conventions: REP-155's body frame (x out of the body, z toward the head, origin mid-hips),
human_description's joint axes/limits (elbow flexion positive, knee flexion negative, ...),
hri_msgs' Skeleton2D order, REP-155's identifier syntax."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocap_ros.core.skeleton import JOINT_INDEX as J
from mocap_ros.estimation import rep155
from mocap_ros.estimation.landmarks.ik import LM

HIP_W, SHOULDER_W, TRUNK = 0.18, 0.36, 0.5
UPPER_ARM, FOREARM, THIGH, SHIN = 0.3, 0.25, 0.42, 0.4


def _skeleton(l_upper=(0, 0, -1), l_fore=(0, 0, -1), r_upper=(0, 0, -1), r_fore=(0, 0, -1),
              l_thigh=(0, 0, -1), l_shin=(0, 0, -1), head=(0, 0, 1)) -> np.ndarray:
    """SMPL-order joints of a person in their own body frame (x forward, y left, z up,
    origin mid-hips), limbs along the given directions."""
    j = np.zeros((24, 3))
    j[J["left_hip"]], j[J["right_hip"]] = (0, HIP_W / 2, 0), (0, -HIP_W / 2, 0)
    j[J["neck"]] = (0, 0, TRUNK)
    j[J["head"]] = j[J["neck"]] + 0.15 * np.asarray(head, float) / np.linalg.norm(head)
    for side, s, upper, fore in (("left", 1, l_upper, l_fore), ("right", -1, r_upper, r_fore)):
        j[J[f"{side}_shoulder"]] = (0, s * SHOULDER_W / 2, TRUNK - 0.05)
        j[J[f"{side}_elbow"]] = j[J[f"{side}_shoulder"]] + UPPER_ARM * np.asarray(upper, float)
        j[J[f"{side}_wrist"]] = j[J[f"{side}_elbow"]] + FOREARM * np.asarray(fore, float)
    for side, thigh, shin in (("left", l_thigh, l_shin), ("right", (0, 0, -1), (0, 0, -1))):
        j[J[f"{side}_knee"]] = j[J[f"{side}_hip"]] + THIGH * np.asarray(thigh, float)
        j[J[f"{side}_ankle"]] = j[J[f"{side}_knee"]] + SHIN * np.asarray(shin, float)
    return j


def _in_camera(j: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skeleton seen by a camera (optical frame: x right, y down, z forward), the person
    facing it 3 m away and turned by a random angle: (joints, body rotation, body origin)."""
    # facing the camera: body x (forward) = -z_cam, body z (up) = -y_cam, body y = +x_cam
    facing = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], float)
    a = np.random.default_rng(seed).uniform(-0.8, 0.8)  # turned about the body's vertical
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rot = facing @ turn
    origin = np.array([0.2, 0.1, 3.0])
    return j @ rot.T + origin, rot, origin


def test_body_frame_follows_rep155_axes():
    joints, rot, origin = _in_camera(_skeleton(), seed=1)
    o, r = rep155.body_frame(joints)
    np.testing.assert_allclose(o, origin, atol=1e-9)  # mid-hips
    np.testing.assert_allclose(r, rot, atol=1e-9)
    # a person facing the camera head-up: x out of the body -> toward the camera (-z optical),
    # z toward the head -> up in the image (-y optical)
    _, r0 = rep155.body_frame(_skeleton() @ np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]).T)
    np.testing.assert_allclose(r0[:, 0], [0, 0, -1], atol=1e-9)
    np.testing.assert_allclose(r0[:, 2], [0, -1, 0], atol=1e-9)
    assert np.linalg.det(r0) == pytest.approx(1.0)


def test_body_frame_degenerate_is_none():
    assert rep155.body_frame(np.zeros((24, 3))) is None


def _q(name: str, q: np.ndarray) -> float:
    return float(q[rep155.HUMAN_JOINT_NAMES.index(name)])


def test_joint_names_match_hri_fullbody_order():
    assert len(rep155.HUMAN_JOINT_NAMES) == 20
    assert rep155.HUMAN_JOINT_NAMES[:4] == ("waist", "r_head", "y_head", "p_head")
    assert rep155.HUMAN_JOINT_NAMES[-1] == "r_knee"


def test_rest_pose_is_zero():
    joints, _, _ = _in_camera(_skeleton(), seed=2)
    q = rep155.human_joint_state(joints)
    np.testing.assert_allclose(q, 0.0, atol=1e-3)


@pytest.mark.parametrize("seed", [3, 4])
def test_elbow_flexion_is_positive_and_knee_flexion_negative(seed):
    # human_description: elbow limits [0, 2.5], knee [-2.5, 0]: flexion is + at the elbow
    # (forearm forward) and - at the knee (shin backward)
    joints, _, _ = _in_camera(_skeleton(l_fore=(1, 0, 0), l_shin=(-1, 0, 0)), seed=seed)
    q = rep155.human_joint_state(joints)
    assert _q("l_elbow", q) == pytest.approx(math.pi / 2, abs=1e-3)
    assert _q("l_knee", q) == pytest.approx(-math.pi / 2, abs=1e-3)
    assert _q("r_elbow", q) == pytest.approx(0.0, abs=1e-3)
    assert _q("r_knee", q) == pytest.approx(0.0, abs=1e-3)


def test_arms_out_sideways_is_shoulder_abduction():
    joints, _, _ = _in_camera(_skeleton(l_upper=(0, 1, 0), l_fore=(0, 1, 0),
                                        r_upper=(0, -1, 0), r_fore=(0, -1, 0)), seed=5)
    q = rep155.human_joint_state(joints)
    # the p_shoulder axis is x (left) / -x (right): both arms abduct with the same sign
    assert _q("l_p_shoulder", q) == pytest.approx(math.pi / 2, abs=1e-3)
    assert _q("r_p_shoulder", q) == pytest.approx(math.pi / 2, abs=1e-3)
    assert _q("l_elbow", q) == pytest.approx(0.0, abs=1e-3)


def test_hip_flexion_and_head_tilt():
    a = 0.5
    joints, _, _ = _in_camera(_skeleton(l_thigh=(math.sin(a), 0, -math.cos(a)),
                                        l_shin=(math.sin(a), 0, -math.cos(a)),
                                        head=(math.sin(0.3), 0, math.cos(0.3))), seed=6)
    q = rep155.human_joint_state(joints)
    assert _q("l_r_hip", q) == pytest.approx(a, abs=1e-3)  # axis -y: thigh forward is +
    assert _q("l_knee", q) == pytest.approx(0.0, abs=1e-3)
    # p_head's axis is -y: a head bowed forward is negative
    assert _q("p_head", q) == pytest.approx(-0.3, abs=1e-3)


@pytest.mark.parametrize("chain,slot,kw", [("l_arm", 4, ("l_upper", "l_fore")),
                                            ("r_arm", 8, ("r_upper", "r_fore")),
                                            ("l_leg", 12, ("l_thigh", "l_shin"))])
def test_solved_angles_reproduce_arbitrary_limb_directions(chain, slot, kw):
    joints_def = rep155._CHAINS[chain][0]
    rng = np.random.default_rng(slot)
    for _ in range(20):
        # a reachable pose: angles inside the URDF limits, their segment directions
        q_true = np.array([rng.uniform(lo, hi) for _, lo, hi in joints_def])
        up, lo = rep155.chain_directions(joints_def, q_true)
        joints, _, _ = _in_camera(_skeleton(**dict(zip(kw, (up, lo), strict=True))), seed=8)
        q = rep155.human_joint_state(joints)
        u2, l2 = rep155.chain_directions(joints_def, q[slot:slot + 4])
        np.testing.assert_allclose(u2, up, atol=1e-6)
        np.testing.assert_allclose(l2, lo, atol=1e-6)


def test_skeleton2d_from_blazepose_order_and_neck():
    xy = np.full((33, 2), np.nan)
    vis = np.zeros(33)
    xy[LM["left_shoulder"]], vis[LM["left_shoulder"]] = (300, 100), 0.9
    xy[LM["right_shoulder"]], vis[LM["right_shoulder"]] = (200, 100), 0.8
    xy[LM["nose"]], vis[LM["nose"]] = (250, 50), 1.0
    xy[LM["left_ankle"]], vis[LM["left_ankle"]] = (700, 500), 1.0  # outside a 640x480 image
    s = rep155.skeleton2d_from_blazepose(xy, vis, 640, 480)
    assert s.shape == (18, 3)
    np.testing.assert_allclose(s[0], [250 / 640, 50 / 480, 1.0])  # NOSE = 0
    np.testing.assert_allclose(s[5], [300 / 640, 100 / 480, 0.9], rtol=1e-6)  # LEFT_SHOULDER
    np.testing.assert_allclose(s[1], [250 / 640, 100 / 480, 0.8], rtol=1e-6)  # NECK
    assert s[13][2] == 0.0 and (s[:, :2] <= 1).all() and (s[:, :2] >= 0).all()


def test_skeleton2d_from_smpl_has_no_face_points():
    kp = np.tile([[320.0, 240.0]], (24, 1))
    s = rep155.skeleton2d_from_smpl(kp, None, 640, 480)
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        assert s[rep155.SKELETON2D_NAMES.index(name)][2] == 0.0
    assert s[rep155.SKELETON2D_NAMES.index("right_knee")].tolist() == [0.5, 0.5, 1.0]


def test_normalized_roi_clips_and_rejects():
    assert rep155.normalized_roi(np.array([-10, 40, 110, 200]), 640, 480) == \
        pytest.approx((0.0, 40 / 480, 100 / 640, 240 / 480))
    assert rep155.normalized_roi(np.array([700, 0, 10, 10]), 640, 480) is None
    assert rep155.normalized_roi(np.array([0, 0, np.nan, 10]), 640, 480) is None


def test_body_ids_follow_tracks_and_are_never_reused():
    ids = rep155.BodyIds()
    assert ids.followed(True, 3) == "t3"
    assert ids.followed(True, 0) == ids.followed(True, 0)  # one id per continuous run
    first = ids.followed(True, 0)
    assert ids.followed(False, 0) is None
    assert ids.followed(True, 0) != first
    a, b = np.array([0, 0, 100, 200]), np.array([300, 0, 100, 200])
    p = ids.others([a, b])
    assert ids.others([b + 5, a + 5]) == [p[1], p[0]]  # matched by overlap, not order
    for _ in range(6):
        ids.others([])
    assert set(ids.others([a])).isdisjoint(p)  # retired after max_missed frames
    for bid in [*p, first]:
        assert bid[0].isalpha()


def _compose(links: list, root: str = "body") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each link's pose in the root frame, from parent -> child transforms."""
    pose = {root: (np.zeros(3), np.eye(3))}
    for parent, child, t, r in links:
        pt, pr = pose[parent]
        pose[child] = (pt + pr @ t, pr @ r)
    return pose


def test_link_frames_draw_the_person_limbs():
    # the model's limbs, posed by the published angles, point where the person's do
    fore = np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    skel = _skeleton(l_upper=(0, 1, 0), l_fore=fore, l_thigh=(np.sin(0.4), 0, -np.cos(0.4)),
                     l_shin=(0, 0, -1))
    joints, _, _ = _in_camera(skel, seed=9)
    q = rep155.human_joint_state(joints)
    pose = _compose(rep155.human_link_transforms(q))
    names = {c for _, c, _, _ in rep155.human_link_transforms(q)}
    assert {"torso", "head", "l_wrist", "r_ankle", "l_elbow", "r_hip"} <= names

    def direction(a: str, b: str) -> np.ndarray:
        d = pose[b][0] - pose[a][0]
        return d / np.linalg.norm(d)

    np.testing.assert_allclose(direction("l_shoulder", "l_elbow"), [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(direction("l_elbow", "l_wrist"), fore, atol=1e-6)
    np.testing.assert_allclose(direction("l_hip", "l_knee"), [np.sin(0.4), 0, -np.cos(0.4)],
                               atol=1e-6)
    np.testing.assert_allclose(direction("r_elbow", "r_wrist"), [0, 0, -1], atol=1e-6)
    # the model stands head-up and its left side is +y (REP-103 body axes)
    assert pose["head"][0][2] > pose["torso"][0][2] > 0 > pose["l_ankle"][0][2]
    assert pose["l_y_shoulder"][0][1] > 0 > pose["r_y_shoulder"][0][1]
