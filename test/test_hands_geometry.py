"""Hand geometry (palm frame, curls, aperture) and the body-arm ROI on keypoint sets built here.

The synthetic hand is a simple kinematic model in SMPL's rest axes for a RIGHT hand (fingers
along -x, back of the hand +y, thumb +z; metres): MCPs across the palm, straight phalanges,
flexion turning each finger towards the palm (-y). A LEFT hand is its mirror image in x.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocap_ros.core.result import HandResult
from mocap_ros.estimation.hands import geometry as geo
from mocap_ros.estimation.hands.estimator import ArmObservation, roi_from_arm
from mocap_ros.estimation.hands.mediapipe_graph import HandRoi, rotation_from_direction
from mocap_ros.geometry.rotations import quat_to_matrix

_MCP_Z = {"index": 0.03, "middle": 0.01, "ring": -0.01, "pinky": -0.03}
_PHALANGES = (0.045, 0.027, 0.022)


def make_hand(side: str = "right", curl_deg: float = 0.0, thumb_curl_deg: float = 0.0
              ) -> np.ndarray:
    """(21, 3) keypoints; every finger joint bent by ``curl_deg`` (the thumb's by
    ``thumb_curl_deg``), towards the palm."""
    kp = np.zeros((21, 3))
    for f, start in zip(("index", "middle", "ring", "pinky"), (5, 9, 13, 17), strict=True):
        p = np.array([-0.09, 0.0, _MCP_Z[f]])
        kp[start] = p
        ang = 0.0
        for i, length in enumerate(_PHALANGES):
            ang += math.radians(curl_deg)
            p = p + length * np.array([-math.cos(ang), -math.sin(ang), 0.0])
            kp[start + 1 + i] = p
    # Thumb: CMC near the wrist on the thumb side, pointing forward-out; bends towards the palm.
    kp[1] = (-0.025, -0.01, 0.025)
    kp[2] = (-0.05, -0.01, 0.05)
    d = np.array([-0.6, 0.0, 0.8])
    p = kp[2].copy()
    ang = 0.0
    for i, length in enumerate((0.032, 0.028)):
        ang += math.radians(thumb_curl_deg)
        # bend about the palm-normal-ish axis: rotate d towards the palm centre (-x, -z)
        dd = math.cos(ang) * d + math.sin(ang) * np.array([-0.8, 0.0, -0.6])
        p = p + length * dd
        kp[3 + i] = p
    if side == "left":
        kp[:, 0] *= -1.0
    return kp


def pinch(kp: np.ndarray, gap: float = 0.005) -> np.ndarray:
    """Move the thumb and index tips to within ``gap`` metres of their midpoint."""
    out = kp.copy()
    mid = (kp[4] + kp[8]) / 2.0
    d = (kp[4] - kp[8]) / np.linalg.norm(kp[4] - kp[8])
    out[4] = mid + d * gap / 2.0
    out[8] = mid - d * gap / 2.0
    return out


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---------------------------------------------------------------- palm frame
@pytest.mark.parametrize("side", ["left", "right"])
def test_palm_frame_is_the_smpl_rest_frame_for_a_rest_hand(side: str) -> None:
    R = geo.palm_frame(make_hand(side), side)
    np.testing.assert_allclose(R, np.eye(3), atol=0.25)  # MCPs not exactly on the axis
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)


@pytest.mark.parametrize("side", ["left", "right"])
def test_palm_frame_follows_a_rotated_hand(side: str) -> None:
    rng = np.random.default_rng(3)
    kp = make_hand(side, curl_deg=30.0)
    R0 = geo.palm_frame(kp, side)
    for _ in range(5):
        Q = random_rotation(rng)
        moved = kp @ Q.T + rng.normal(size=3)
        np.testing.assert_allclose(geo.palm_frame(moved, side), Q @ R0, atol=1e-9)


def test_palm_normal_of_a_right_hand_facing_the_camera() -> None:
    # Right hand held up, palm to the camera (camera frame: x right, y down, z forward):
    # rest fingers (-x) -> up (-y), rest palm (-y) -> towards the camera (-z).
    to_cam = np.column_stack((np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]),
                              np.array([1.0, 0.0, 0.0])))  # columns: images of x, y, z
    kp = make_hand("right") @ to_cam.T + np.array([0.0, 0.0, 1.0])
    n = geo.palm_normal(kp, "right")
    assert n[2] < -0.9  # out of the palm = towards the camera
    assert kp[4, 0] > kp[0, 0]  # the thumb is on the image's right (anatomy check)
    # the same points read as a left hand: the normal flips
    assert geo.palm_normal(kp, "left")[2] > 0.9


def test_palm_frame_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        geo.palm_frame(np.zeros((20, 3)), "left")
    with pytest.raises(ValueError):
        geo.palm_frame(make_hand(), "middle")
    with pytest.raises(ValueError):
        geo.palm_normal(make_hand()[:, :2], "left")
    assert np.isnan(geo.palm_frame(np.zeros((21, 3)), "right")).all()
    q = geo.rotmat_to_quat_xyzw(geo.palm_frame(np.zeros((21, 3)), "right"))
    assert np.isnan(q).all()


# ---------------------------------------------------------------- curls
def test_curls_straight_hand_is_open() -> None:
    c = geo.finger_curls(make_hand())
    assert c.shape == (5,)
    assert (c[1:] < 0.05).all()  # straight fingers (only the MCP's offset from the wrist line)


def test_curls_rise_with_flexion_and_saturate() -> None:
    values = [geo.finger_curls(make_hand(curl_deg=a, thumb_curl_deg=a / 2))
              for a in (0, 20, 45, 70, 90)]
    fingers = np.array([v[1:] for v in values])
    assert (np.diff(fingers, axis=0) > 0).all()
    assert (fingers[-1] == 1.0).all()  # 3 x 90 deg > the 250 deg full curl
    np.testing.assert_allclose(values[2][1:], 3 * 45 / 250, atol=0.06)


def test_curls_and_aperture_are_scale_and_pose_invariant() -> None:
    rng = np.random.default_rng(1)
    kp = make_hand("left", curl_deg=40.0, thumb_curl_deg=20.0)
    moved = 1000.0 * kp @ random_rotation(rng).T + 5.0  # millimetres, turned, shifted
    np.testing.assert_allclose(geo.finger_curls(moved), geo.finger_curls(kp), atol=1e-9)
    assert geo.grip_aperture(moved) == pytest.approx(geo.grip_aperture(kp))


def test_single_finger_curl_is_independent() -> None:
    kp = make_hand()
    curled = make_hand(curl_deg=85.0)
    mixed = kp.copy()
    mixed[13:17] = curled[13:17]  # curl only the ring finger
    c = geo.finger_curls(mixed)
    assert c[3] > 0.9 and (np.delete(c, 3)[1:] < 0.05).all()


# ---------------------------------------------------------------- aperture
def test_open_hand_high_pinch_low() -> None:
    for side in ("left", "right"):
        open_hand = make_hand(side)
        assert geo.grip_aperture(open_hand) > 0.7
        assert geo.grip_aperture(pinch(open_hand)) == 0.0
        assert geo.grip_aperture(pinch(open_hand, gap=0.02)) < 0.1


def test_aperture_falls_monotonically_as_the_tips_close() -> None:
    kp = make_hand()
    gaps = np.linalg.norm(kp[4] - kp[8]) * np.linspace(1.0, 0.05, 12)
    ap = np.array([geo.grip_aperture(pinch(kp, g)) for g in gaps])
    assert (np.diff(ap) <= 1e-12).all() and ap[0] > ap[-1]
    assert ((ap >= 0) & (ap <= 1)).all()


def test_aperture_formula_and_clip() -> None:
    kp = make_hand()
    palm = geo.palm_size(kp)
    r = np.linalg.norm(kp[4] - kp[8]) / palm
    assert geo.thumb_index_ratio(kp) == pytest.approx(r)
    expected = np.clip((r - geo.APERTURE_CLOSED_RATIO)
                       / (geo.APERTURE_OPEN_RATIO - geo.APERTURE_CLOSED_RATIO), 0, 1)
    assert geo.grip_aperture(kp) == pytest.approx(expected)
    far = kp.copy()
    far[4] += np.array([0.0, 0.0, 0.5])  # absurdly far thumb: clipped to 1
    assert geo.grip_aperture(far) == 1.0
    with pytest.raises(ValueError):
        geo.grip_aperture(kp, closed_ratio=1.0, open_ratio=0.5)


def test_batched_and_degenerate() -> None:
    batch = np.stack([make_hand(), pinch(make_hand()), np.zeros((21, 3))])
    ap = geo.grip_aperture(batch)
    assert ap.shape == (3,) and ap[0] > 0.7 and ap[1] == 0.0 and np.isnan(ap[2])
    assert geo.finger_curls(batch).shape == (3, 5)
    assert np.isnan(geo.finger_curls(batch)[2]).all()


# ---------------------------------------------------------------- ROI from the arm
def test_rotation_convention() -> None:
    assert rotation_from_direction(0.0, -1.0) == pytest.approx(0.0)  # fingers up
    assert rotation_from_direction(1.0, 0.0) == pytest.approx(math.pi / 2)  # to the right
    assert rotation_from_direction(-1.0, 0.0) == pytest.approx(-math.pi / 2)
    assert abs(rotation_from_direction(0.0, 1.0)) == pytest.approx(math.pi)


def test_roi_from_arm_points_along_the_hand() -> None:
    arm = ArmObservation(wrist_px=np.array([100.0, 100.0]), elbow_px=np.array([100.0, 200.0]))
    roi = roi_from_arm(arm)
    assert isinstance(roi, HandRoi)
    assert roi.rotation == pytest.approx(0.0)  # forearm up -> fingers up
    assert roi.cy < 100.0 and roi.cx == pytest.approx(100.0)  # past the wrist
    assert roi.size == pytest.approx(3.4 * 0.4 * 100.0)
    # knuckles override the forearm's direction (a bent wrist)
    arm.knuckles_px = np.array([140.0, 100.0])
    roi = roi_from_arm(arm)
    assert roi.rotation == pytest.approx(math.pi / 2) and roi.cx > 100.0
    # nothing to go on
    assert roi_from_arm(ArmObservation(wrist_px=np.array([np.nan, 1.0]))) is None
    assert roi_from_arm(ArmObservation(wrist_px=np.array([1.0, 1.0]))) is None


def test_invalid_hand_result_is_finite() -> None:
    r = HandResult.invalid("left", "no_wrist")
    assert not r.valid and r.reason == "no_wrist" and r.confidence == 0.0
    assert np.isfinite(r.keypoints_cam).all() and r.keypoints_2d.shape == (21, 2)
    np.testing.assert_allclose(quat_to_matrix(r.orientation.astype(np.float64)), np.eye(3))
