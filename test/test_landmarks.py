"""The landmarks backend: BlazePose landmarks -> SMPL local rotations (IK), and end to end
on a real photograph.

The IK tests are pure numpy (no mediapipe). The MediaPipe tests FAIL (not skip) when
mediapipe cannot be imported: ``make setup`` installs it (requirements-mediapipe.txt).
"""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch

from mocap_ros.core.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, REST_JOINTS_APPROX
from mocap_ros.estimation.landmarks.ik import (
    JOINT_LANDMARKS,
    LM,
    NUM_LANDMARKS,
    landmarks_to_local_rotations,
    lift_landmarks,
    solve_landmark_ik,
    solve_root_translation,
    synthesize_world_landmarks,
)
from mocap_ros.geometry.camera import Intrinsics, project
from mocap_ros.geometry.kinematics import forward_kinematics_np
from mocap_ros.geometry.torch_rotations import forward_kinematics

# ------------------------------------------------------------------ random human poses
# Per joint: ranges (degrees) of rotations about the joint's local x, y, z (SMPL rest axes:
# x body-left, y up, z forward), applied z * y * x. Roughly the human range of motion.
_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-110, 20), (-30, 30), (-15, 40)),  # flexion is about -x
    "right_hip": ((-110, 20), (-30, 30), (-40, 15)),
    "left_knee": ((0, 130), (0, 0), (0, 0)),  # the shank bends backwards: about +x
    "right_knee": ((0, 130), (0, 0), (0, 0)),
    "left_ankle": ((-30, 40), (-10, 10), (-15, 15)),
    "right_ankle": ((-30, 40), (-10, 10), (-15, 15)),
    "spine1": ((-10, 25), (-15, 15), (-10, 10)),
    "spine2": ((-10, 15), (-10, 10), (-8, 8)),
    "spine3": ((-5, 10), (-10, 10), (-8, 8)),
    "neck": ((-20, 30), (-25, 25), (-15, 15)),
    "head": ((-20, 20), (-40, 40), (-15, 15)),
    "left_collar": ((-10, 10), (-10, 10), (-10, 15)),
    "right_collar": ((-10, 10), (-10, 10), (-15, 10)),
    "left_shoulder": ((-60, 60), (-70, 70), (-80, 30)),
    "right_shoulder": ((-60, 60), (-70, 70), (-30, 80)),
    "left_elbow": ((-60, 30), (-140, 0), (0, 0)),  # flexion is about -y for the left arm
    "right_elbow": ((-30, 60), (0, 140), (0, 0)),
    "left_wrist": ((-70, 70), (-25, 25), (-60, 60)),
    "right_wrist": ((-70, 70), (-25, 25), (-60, 60)),
}


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros((*angle.shape, 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    """(n, 24, 3, 3) local rotations: human-range body poses, a random root facing roughly
    towards the camera (the camera-frame flip times a yaw of +-60 deg and a tilt)."""
    rng = np.random.default_rng(seed)
    L = np.tile(np.eye(3), (n, NUM_JOINTS, 1, 1))
    for name, ranges in _RANGES.items():
        ang = [np.radians(rng.uniform(lo, hi, n)) for lo, hi in ranges]
        L[:, JOINT_INDEX[name]] = _rot(2, ang[2]) @ _rot(1, ang[1]) @ _rot(0, ang[0])
    flip = _rot(0, np.full(n, math.pi))
    L[:, 0] = flip @ _rot(1, np.radians(rng.uniform(-60, 60, n))) @ _rot(
        0, np.radians(rng.uniform(-20, 20, n)))
    return L


# Segments between joints whose positions the landmarks determine: their directions must
# survive the round trip.
_SEGMENTS = [
    ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_foot"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_foot"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("left_wrist", "left_hand"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("right_wrist", "right_hand"), ("left_hip", "left_shoulder"),
    ("right_hip", "right_shoulder"),
]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0)))


def _rot_angle_deg(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Angle of the rotation between A and B (..., 3, 3)."""
    R = np.swapaxes(A, -1, -2) @ B
    c = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


# ------------------------------------------------------------------ IK round trip (pure)
def test_ik_round_trip_recovers_bone_directions_within_2_degrees():
    L = random_poses(400, seed=1)
    _, J = forward_kinematics_np(L, np.broadcast_to(REST_JOINTS_APPROX, (400, 24, 3)))
    world = synthesize_world_landmarks(L)
    local, rest = landmarks_to_local_rotations(world, np.ones((400, NUM_LANDMARKS)))
    assert local.shape == (400, 24, 3, 3) and rest.shape == (400, 24, 3)
    # The IK's rotations run through the pipeline's own (torch) forward kinematics.
    _, J2 = forward_kinematics(torch.from_numpy(local), torch.from_numpy(rest), PARENTS)
    J2 = J2.numpy()
    for a, b in _SEGMENTS:
        ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
        err = _angle_deg(J[:, ib] - J[:, ia], J2[:, ib] - J2[:, ia])
        assert err.max() < 2.0, f"{a}->{b}: max error {err.max():.3f} deg"
    # Every landmark-mapped joint lands exactly where it was (relative to the hip centre).
    hip_c = (J[:, 1:2] + J[:, 2:3]) / 2
    hip_c2 = (J2[:, 1:2] + J2[:, 2:3]) / 2
    mapped = list(JOINT_LANDMARKS)
    np.testing.assert_allclose(J2[:, mapped] - hip_c2, J[:, mapped] - hip_c, atol=1e-6)


def test_ik_rotations_are_proper_and_fk_reproduces_the_landmarks():
    L = random_poses(50, seed=2)
    world = synthesize_world_landmarks(L)
    ik = solve_landmark_ik(world)
    R = ik.local_rotmats
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    G, J = forward_kinematics_np(ik.local_rotmats, ik.rest_joints)
    np.testing.assert_allclose(J, ik.joints, atol=1e-9)
    np.testing.assert_allclose(G, ik.global_rotmats, atol=1e-9)
    for joint, lms in JOINT_LANDMARKS.items():
        target = world[:, list(lms)].mean(1)
        np.testing.assert_allclose(ik.joints[:, joint] + ik.pelvis_world, target, atol=1e-9)


def test_twists_are_recovered_where_observable():
    """Head, wrists (forearm pronation) and feet get their full orientation from the face,
    hand and heel landmarks; upper arms and thighs from a bent elbow / knee."""
    L = random_poses(200, seed=3)
    for side, elbow, knee in (("left", "left_elbow", "left_knee"),
                              ("right", "right_elbow", "right_knee")):
        # pure hinges bent >= 30 deg (the twist lives in the shoulder/hip and the wrist)
        flex = np.radians(np.random.default_rng(4).uniform(30, 130, 200))
        L[:, JOINT_INDEX[elbow]] = _rot(1, -flex if side == "left" else flex)
        L[:, JOINT_INDEX[knee]] = _rot(0, flex)
    G, _ = forward_kinematics_np(L, np.broadcast_to(REST_JOINTS_APPROX, (200, 24, 3)))
    ik = solve_landmark_ik(synthesize_world_landmarks(L))
    for name in ("head", "left_wrist", "right_wrist", "left_ankle", "right_ankle",
                 "left_shoulder", "right_shoulder", "left_hip", "right_hip",
                 "left_elbow", "right_elbow", "left_knee", "right_knee"):
        j = JOINT_INDEX[name]
        err = _rot_angle_deg(G[:, j], ik.global_rotmats[:, j])
        assert err.max() < 0.5, f"{name}: global orientation off by {err.max():.3f} deg"
    for w in ik.twist_weights.values():
        assert w.min() > 0.99


def test_upright_person_facing_the_camera():
    """Rest pose turned to face the camera: root = 180 deg about x (as HMR), the person's
    left on the camera's +x (image right), head up (camera -y), face towards the camera."""
    L = np.tile(np.eye(3), (24, 1, 1))
    L[0] = np.diag([1.0, -1.0, -1.0])
    world = synthesize_world_landmarks(L)
    assert world[LM["left_shoulder"], 0] > world[LM["right_shoulder"], 0]  # image right
    assert world[LM["nose"], 1] < world[LM["left_hip"], 1]  # y down: head above hips
    ik = solve_landmark_ik(world)
    np.testing.assert_allclose(ik.local_rotmats[0], np.diag([1.0, -1.0, -1.0]), atol=1e-9)
    np.testing.assert_allclose(ik.local_rotmats[1:], np.broadcast_to(np.eye(3), (23, 3, 3)),
                               atol=1e-6)


def test_ik_on_garbage_and_degenerate_input_stays_finite_and_proper():
    rng = np.random.default_rng(5)
    world = rng.normal(0, 0.4, (100, NUM_LANDMARKS, 3))
    world[0] = 0.0  # every landmark at one point
    world[1, [23, 24, 11, 12]] = 0.0  # hips and shoulders on top of each other
    vis = rng.uniform(0, 1, (100, NUM_LANDMARKS))
    local, rest = landmarks_to_local_rotations(world, vis)
    assert np.isfinite(local).all() and np.isfinite(rest).all()
    np.testing.assert_allclose(np.linalg.det(local), 1.0, atol=1e-6)


def test_low_visibility_turns_off_the_twist_it_would_guess():
    L = random_poses(1, seed=6)[0]
    world = synthesize_world_landmarks(L)
    vis = np.ones(NUM_LANDMARKS)
    vis[[LM["left_index"], LM["left_pinky"]]] = 0.05
    ik = solve_landmark_ik(world, vis)
    assert ik.twist_weights["left_forearm"] == 0.0
    assert ik.twist_weights["right_forearm"] > 0.99


def test_ik_with_teleop_angles():
    """The consumer's view: anatomical angles survive landmarks -> IK."""
    from mocap_ros.teleop.angles import angles_to_local_rotations, local_rotations_to_angles

    deg = math.radians
    angles = {"left_shoulder_flexion": deg(40), "left_shoulder_abduction": deg(20),
              "left_elbow_flexion": deg(90), "left_forearm_pronation": deg(30),
              "right_shoulder_abduction": deg(70), "right_elbow_flexion": deg(45),
              "right_shoulder_rotation": deg(20), "head_yaw": deg(25)}
    q = angles_to_local_rotations(angles)
    R = torch.from_numpy(q).float()
    from mocap_ros.geometry.torch_rotations import quat_to_rotmat, rotmat_to_quat

    L = quat_to_rotmat(R).double().numpy()
    L[0] = np.diag([1.0, -1.0, -1.0])
    ik = solve_landmark_ik(synthesize_world_landmarks(L))
    back = local_rotations_to_angles(rotmat_to_quat(torch.from_numpy(ik.local_rotmats)).numpy())
    for name, value in angles.items():
        assert abs(back[name] - value) < deg(2.0), (name, math.degrees(back[name]))


# ------------------------------------------------------------------ placement (pure)
def test_root_translation_least_squares_is_exact_without_noise():
    rng = np.random.default_rng(7)
    K = Intrinsics(500.0, 520.0, 320.0, 240.0)
    for _ in range(20):
        X = rng.normal(0, 0.4, (16, 3))
        T = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(2.0, 5.0)])
        uv = project(X + T, K)
        np.testing.assert_allclose(solve_root_translation(X, uv, np.ones(16), K), T,
                                   atol=1e-9)


def test_root_translation_weights_and_failures():
    K = Intrinsics(500.0, 500.0, 320.0, 240.0)
    rng = np.random.default_rng(8)
    X = rng.normal(0, 0.3, (10, 3))
    T = np.array([0.1, -0.2, 3.0])
    uv = project(X + T, K)
    uv[0] += 300.0  # an outlier with zero weight changes nothing
    w = np.ones(10)
    w[0] = 0.0
    np.testing.assert_allclose(solve_root_translation(X, uv, w, K), T, atol=1e-9)
    assert solve_root_translation(X[:1], uv[:1], w[:1], K) is None  # under-determined
    assert solve_root_translation(X, uv, np.zeros(10), K) is None


def test_lifted_landmarks_project_onto_the_image_landmarks():
    rng = np.random.default_rng(9)
    K = Intrinsics(450.0, 450.0, 256.0, 256.0)
    world = synthesize_world_landmarks(random_poses(1, seed=10)[0])
    uv = rng.uniform(0, 512, (NUM_LANDMARKS, 2))
    cam = lift_landmarks(uv, world, np.array([0.1, 0.0, 3.0]), K)
    np.testing.assert_allclose(project(cam, K), uv, atol=1e-9)
    np.testing.assert_allclose(cam[:, 2], 3.0 + world[:, 2])
    # consistent inputs come back unchanged
    T = np.array([0.2, -0.1, 2.5])
    np.testing.assert_allclose(lift_landmarks(project(world + T, K), world, T, K), world + T,
                               atol=1e-9)
    assert lift_landmarks(uv, world, np.array([0.0, 0.0, 0.01]), K) is None


# ------------------------------------------------------------------ MediaPipe, end to end
def _require_mediapipe():
    """PersonDetector, or FAIL (not skip): make setup installs mediapipe."""
    from mocap_ros.estimation.detector import (
        DetectorUnavailable,
        PersonDetector,
        _import_pose_module,
    )

    try:
        _import_pose_module()
    except DetectorUnavailable as e:
        pytest.fail(f"mediapipe is required for this test (make setup installs it): {e}")
    return PersonDetector


class _Recording:
    """A PersonDetector that remembers the landmarks it returned."""

    def __init__(self, detector):
        self.detector = detector
        self.last = None

    def landmarks(self, rgb):
        self.last = self.detector.landmarks(rgb)
        return self.last

    def close(self):
        self.detector.close()


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def test_landmarks_backend_on_the_astronaut(astronaut):
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    PersonDetector = _require_mediapipe()
    rec = _Recording(PersonDetector(static_image_mode=True))
    with LandmarksBackend(None, detector=rec) as backend:
        r = backend.process(astronaut)
    assert r.valid, r.reason
    assert r.backend == "landmarks"
    lms = rec.last
    for joint, lm in (("left_shoulder", "left_shoulder"), ("right_shoulder", "right_shoulder"),
                      ("left_elbow", "left_elbow"), ("right_elbow", "right_elbow"),
                      ("left_wrist", "left_wrist"), ("right_wrist", "right_wrist")):
        err = np.linalg.norm(r.keypoints_2d[JOINT_INDEX[joint]] - lms.image_xy[LM[lm]])
        assert err < 15.0, f"{joint}: {err:.1f} px from MediaPipe's 2D landmark"
    # Not mirrored: she faces the camera, so her left shoulder is on the image's right.
    assert r.keypoints_2d[JOINT_INDEX["left_shoulder"], 0] > \
        r.keypoints_2d[JOINT_INDEX["right_shoulder"], 0]
    assert r.joints_cam[JOINT_INDEX["left_shoulder"], 0] > \
        r.joints_cam[JOINT_INDEX["right_shoulder"], 0]
    assert r.root_translation[2] > 0 and (r.joints_cam[:, 2] > 0).all()
    np.testing.assert_allclose(r.root_translation, r.joints_cam[0], atol=1e-5)
    # Facing the camera and upright: the root's body-forward axis (+z) points at the camera
    # (camera -z) and its body-up axis (+y) points up the image (camera -y).
    R0 = quat_to_rotmat_np(r.local_rotations[0])
    assert R0[2, 2] < -0.5 and R0[1, 1] < -0.5
    assert 0.0 < r.confidence <= 1.0
    assert set(r.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
    assert r.local_rotations.shape == (24, 4) and r.local_rotations.dtype == np.float32
    # The box contains the head and both shoulders.
    x, y, w, h = r.bbox
    for i in (*range(11), LM["left_shoulder"], LM["right_shoulder"]):
        u, v = lms.image_xy[i]
        assert x <= u <= x + w and y <= v <= y + h, i


def test_landmarks_backend_without_lift_places_the_world_skeleton(astronaut):
    """lift=False: the world landmarks' own skeleton, rigidly placed; its projection is only
    roughly on the image landmarks (the two heads of MediaPipe's network disagree)."""
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    PersonDetector = _require_mediapipe()
    rec = _Recording(PersonDetector(static_image_mode=True))
    with LandmarksBackend(None, detector=rec, lift=False) as backend:
        r = backend.process(astronaut)
    assert r.valid and r.root_translation[2] > 0
    sh = [JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]]
    err = np.linalg.norm(r.keypoints_2d[sh] - rec.last.image_xy[[11, 12]], axis=-1)
    assert err.max() < 40.0
    # the rotations are the world-landmark IK's
    ik = solve_landmark_ik(rec.last.world, rec.last.visibility)
    np.testing.assert_allclose(quat_to_rotmat_np(r.local_rotations), ik.local_rotmats,
                               atol=1e-5)


def quat_to_rotmat_np(q: np.ndarray) -> np.ndarray:
    from mocap_ros.geometry.torch_rotations import quat_to_rotmat

    return quat_to_rotmat(torch.from_numpy(np.asarray(q, np.float32))).double().numpy()


def test_landmarks_backend_reports_no_person_on_a_blank_frame():
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    PersonDetector = _require_mediapipe()
    with LandmarksBackend(None, detector=PersonDetector(static_image_mode=True)) as backend:
        r = backend.process(np.full((480, 640, 3), 127, np.uint8))
    assert not r.valid and r.reason == "no_person" and r.backend == "landmarks"
    assert np.isfinite(r.local_rotations).all()


def test_landmarks_backend_box_masks_the_rest_of_the_frame(astronaut):
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    PersonDetector = _require_mediapipe()
    with LandmarksBackend(None, detector=PersonDetector(static_image_mode=True)) as backend:
        found = backend.process(astronaut, bbox=(0, 0, 512, 512))
        empty = backend.process(astronaut, bbox=(470, 0, 40, 40))
    assert found.valid
    np.testing.assert_allclose(found.bbox, [0, 0, 512, 512])
    assert not empty.valid and empty.reason == "no_person"


def test_landmarks_backend_follows_config(astronaut):
    from mocap_ros.core.config import MocapConfig
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    PersonDetector = _require_mediapipe()
    cfg = MocapConfig(backend="landmarks", min_confidence=0.99, focal_length=1500.0)
    with LandmarksBackend(cfg, detector=PersonDetector(static_image_mode=True)) as backend:
        r = backend.process(astronaut)
        K = np.array([[900.0, 0, 256], [0, 900.0, 256], [0, 0, 1]])
        r2 = backend.process(astronaut, K=K)
    assert not r.valid and r.reason == "low_confidence"  # the astronaut's legs are hidden
    assert r2.root_translation[2] < r.root_translation[2]  # shorter focal -> nearer


def test_pose_runs_offline_with_the_models_inside_the_wheel(astronaut, monkeypatch):
    """Nothing is downloaded: the download helper is made to fail, and pose still runs."""
    _require_mediapipe()
    from mediapipe.python.solutions import download_utils

    from mocap_ros.estimation.detector import MediaPipePose

    def no_download(*args, **kwargs):
        raise AssertionError(f"mediapipe tried to download {args}")

    monkeypatch.setattr(download_utils, "download_oss_model", no_download)
    monkeypatch.setattr(socket.socket, "connect", no_download)
    pose = MediaPipePose(static_image_mode=True)
    try:
        assert pose(astronaut) is not None
    finally:
        pose.close()
    with pytest.raises(ValueError, match="ships inside"):
        MediaPipePose(model_complexity=0)


def test_measure_fps_runs(astronaut):
    import cv2

    from mocap_ros.estimation.landmarks.backend import LandmarksBackend, measure_fps

    PersonDetector = _require_mediapipe()
    patch = cv2.resize(astronaut, (360, 360))
    frames = []
    for k in range(12):
        f = np.full((480, 640, 3), 90, np.uint8)
        f[60:420, 40 + 10 * k: 400 + 10 * k] = patch
        frames.append(f)
    with LandmarksBackend(None, detector=PersonDetector()) as backend:
        stats = measure_fps(frames, backend, warmup=2)
    assert stats["frames"] == 10 and stats["fps"] > 0 and stats["valid_fraction"] == 1.0
    print(f"landmarks backend at 640x480: {stats['fps']:.1f} FPS ({stats})")
