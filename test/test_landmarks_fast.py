"""The landmarks backend's fast single-frame paths (issue 13, item 4: speed) compute what the
slow-but-clear forms compute, to float rounding.

* The IK: one finite frame goes through a plain-float transcription of the batched numpy IK
  (``ik._solve_single``); the batched path (any input with a leading batch axis) is the
  reference. Checked on random human-range poses, on degenerate skeletons that take every
  fallback branch (zero-length bones, straight limbs, a bone folded back onto its parent),
  and on BlazePose's landmarks of every real photo of the shared pack.
* The backend's other per-frame math (joint/landmark means by index arrays, the per-joint
  confidence by one gather): against the per-joint loops they replaced, written out below.

Nothing from the old code is stored: each reference is computed here. No timing is asserted
(the speed-up is measured by ``python -m mocap_ros.tools.bench_hands``, bench/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap_ros.core.skeleton import NUM_JOINTS
from mocap_ros.estimation.confidence import LANDMARKS_OF_JOINT, landmark_joint_confidence
from mocap_ros.estimation.landmarks.ik import (
    JOINT_LANDMARKS,
    NUM_LANDMARKS,
    LandmarkIK,
    lift_landmarks,
    solve_landmark_ik,
    solve_root_translation,
    straighten_elbow_depth,
    synthesize_world_landmarks,
)
from mocap_ros.geometry.rotations import axis_angle_to_matrix

from real_images_pack import SKIP_REASON, pack_root

TOL = 1e-9  # measured: <= 8e-15 on real frames (float rounding of a different op order)


def _batched(world: np.ndarray, vis: np.ndarray) -> LandmarkIK:
    """The reference: the batched numpy IK on a batch of one."""
    ik = solve_landmark_ik(world[None], vis[None])
    return LandmarkIK(ik.local_rotmats[0], ik.global_rotmats[0], ik.rest_joints[0],
                      ik.joints[0], ik.pelvis_world[0],
                      {k: v[0] for k, v in ik.twist_weights.items()})


def _assert_same_ik(world: np.ndarray, vis: np.ndarray, what: str) -> float:
    fast = solve_landmark_ik(world, vis)
    ref = _batched(world, vis)
    worst = 0.0
    for f in ("local_rotmats", "global_rotmats", "rest_joints", "joints", "pelvis_world"):
        a, b = getattr(fast, f), getattr(ref, f)
        assert a.shape == b.shape, (what, f)
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=f"{what}: {f}")
        worst = max(worst, float(np.abs(a - b).max()))
    assert fast.twist_weights.keys() == ref.twist_weights.keys()
    for k, v in fast.twist_weights.items():
        assert abs(float(v) - float(ref.twist_weights[k])) <= TOL, (what, k)
    return worst


def _random_local(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=(n, NUM_JOINTS, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis_angle_to_matrix(axis, np.radians(rng.uniform(0, max_deg, (n, NUM_JOINTS))))


def test_single_frame_ik_equals_the_batched_ik_on_random_poses() -> None:
    rng = np.random.default_rng(7)
    L = _random_local(rng, 60, 120.0)
    world = synthesize_world_landmarks(L)
    world = world + rng.normal(0.0, 0.02, world.shape)  # landmarks are never a perfect model
    vis = rng.uniform(0.0, 1.0, (60, NUM_LANDMARKS))  # every twist weight from 0 to 1
    vis[:10] = 1.0
    for i in range(len(world)):
        _assert_same_ik(world[i], vis[i], f"pose {i}")


def _degenerate_cases() -> dict[str, np.ndarray]:
    rest = synthesize_world_landmarks(np.tile(np.eye(3), (NUM_JOINTS, 1, 1)))
    cases: dict[str, np.ndarray] = {}

    def case(name: str, pairs: list[tuple[int, int]]) -> None:
        w = rest.copy()
        for dst, src in pairs:
            w[dst] = w[src]
        cases[name] = w

    case("zero_length_upper_arms", [(13, 11), (14, 12)])  # elbow on the shoulder
    case("zero_length_forearms_and_hands", [(15, 13), (17, 13), (19, 13), (16, 14),
                                            (18, 14), (20, 14)])
    case("index_on_pinky", [(19, 17), (20, 18)])  # no knuckle line: twist fallback
    case("heel_on_ankle_and_toe_on_ankle", [(29, 27), (31, 27), (30, 28), (32, 28)])
    case("hips_coincide", [(24, 23)])
    case("shoulders_coincide", [(12, 11)])
    case("ears_coincide", [(8, 7)])
    case("nose_between_ears", [(0, 7)])
    case("everything_at_one_point", [(i, 0) for i in range(1, NUM_LANDMARKS)])
    # a straight arm (bend weight 0) and an arm folded back onto itself (opposite vectors:
    # the shortest arc's pi branch)
    straight = rest.copy()
    straight[15] = straight[13] + (straight[13] - straight[11])
    cases["straight_arm"] = straight
    folded = rest.copy()
    folded[15] = folded[13] - (folded[13] - folded[11])  # the wrist back on the shoulder
    folded[16] = folded[14] - 0.5 * (folded[14] - folded[12])
    cases["folded_arms"] = folded
    # the torso along the hips (pelvis frame's fallback axis)
    flat = rest.copy()
    flat[11] = flat[23] + (flat[23] - flat[24])
    flat[12] = flat[24] + 2.0 * (flat[23] - flat[24])
    cases["torso_along_the_hips"] = flat
    return cases


@pytest.mark.parametrize("name", sorted(_degenerate_cases()))
def test_single_frame_ik_takes_the_same_fallbacks(name: str) -> None:
    world = _degenerate_cases()[name]
    for vis in (np.ones(NUM_LANDMARKS), np.zeros(NUM_LANDMARKS)):
        fast = solve_landmark_ik(world, vis)
        ref = _batched(world, vis)
        for f in ("local_rotmats", "global_rotmats", "rest_joints", "joints"):
            np.testing.assert_allclose(getattr(fast, f), getattr(ref, f), rtol=0, atol=TOL,
                                       equal_nan=True, err_msg=f"{name}: {f}")
        # every rotation the fast path returns is a rotation, whatever the input
        G = fast.global_rotmats
        assert np.isfinite(G).all(), name
        np.testing.assert_allclose(G @ np.swapaxes(G, -1, -2), np.broadcast_to(np.eye(3),
                                   G.shape), atol=1e-9)


def test_non_finite_and_batched_input_take_the_batched_path() -> None:
    world = synthesize_world_landmarks(np.tile(np.eye(3), (NUM_JOINTS, 1, 1)))
    bad = world.copy()
    bad[15] = np.nan  # a missing wrist: no crash, NaN only where the batched IK puts it
    ik = solve_landmark_ik(bad)
    assert ik.local_rotmats.shape == (NUM_JOINTS, 3, 3)
    assert np.isfinite(ik.local_rotmats[:18]).all()
    ik2 = solve_landmark_ik(np.stack((world, world)))
    assert ik2.local_rotmats.shape == (2, NUM_JOINTS, 3, 3)
    with pytest.raises(ValueError, match="33, 3"):
        solve_landmark_ik(np.zeros((32, 3)))


# ------------------------------------------------------------------ the per-joint loops
def test_landmark_joint_confidence_equals_the_per_joint_loop() -> None:
    rng = np.random.default_rng(3)
    h, w = 480, 640
    for trial in range(40):
        vis = rng.uniform(-0.2, 1.2, NUM_LANDMARKS)
        xy = rng.uniform(-100, 760, (NUM_LANDMARKS, 2))
        if trial % 4 == 1:
            vis[rng.integers(0, NUM_LANDMARKS, 5)] = np.nan
            vis[rng.integers(0, NUM_LANDMARKS, 2)] = np.inf
        if trial % 4 == 2:
            xy[rng.integers(0, NUM_LANDMARKS, 5), rng.integers(0, 2)] = np.nan
            xy[rng.integers(0, NUM_LANDMARKS, 3), 0] = np.inf
            xy[rng.integers(0, NUM_LANDMARKS, 3), 1] = -np.inf
        # the loop it replaced
        v = np.clip(np.nan_to_num(vis, nan=0.0), 0.0, 1.0)
        inside = (np.isfinite(xy).all(-1) & (xy[:, 0] >= 0) & (xy[:, 0] < w)
                  & (xy[:, 1] >= 0) & (xy[:, 1] < h))
        per = v * inside
        ref = np.array([per[list(lms)].min() for _, lms in sorted(LANDMARKS_OF_JOINT.items())],
                       np.float32)
        np.testing.assert_array_equal(landmark_joint_confidence(vis, xy, (h, w)), ref)


def _reference_backend(lms, shape, intr) -> dict[str, np.ndarray] | None:
    """The backend's math for one frame in its slow, clear form: per-joint loops and the
    batched IK. None where the backend says invalid (no depth)."""
    from mocap_ros.geometry.camera import project
    from mocap_ros.geometry.rotations import matrix_to_quat

    world_pts = np.stack([lms.world[list(v)].mean(0) for v in JOINT_LANDMARKS.values()])
    uv = np.stack([lms.image_xy[list(v)].mean(0) for v in JOINT_LANDMARKS.values()])
    wts = np.array([lms.visibility[list(v)].min() for v in JOINT_LANDMARKS.values()])
    T = solve_root_translation(world_pts, uv, np.maximum(wts, 1e-3), intr)
    if T is None:
        return None
    cam = lift_landmarks(lms.image_xy, lms.world, T, intr)
    if cam is not None:
        cam = straighten_elbow_depth(cam, lms.world, lms.image_xy, lms.visibility, intr)
        ik = _batched(cam, lms.visibility)
        joints = ik.joints + ik.pelvis_world
    else:
        ik = _batched(lms.world, lms.visibility)
        joints = ik.joints + ik.pelvis_world + T
    q = matrix_to_quat(np.stack((ik.local_rotmats, ik.global_rotmats)))
    per = np.clip(np.nan_to_num(lms.visibility, nan=0.0), 0.0, 1.0) * (
        (lms.image_xy[:, 0] >= 0) & (lms.image_xy[:, 0] < shape[1])
        & (lms.image_xy[:, 1] >= 0) & (lms.image_xy[:, 1] < shape[0]))
    jc = np.array([per[list(v)].min() for _, v in sorted(LANDMARKS_OF_JOINT.items())])
    return {"joints_cam": joints, "keypoints_2d": project(joints, intr),
            "local_rotations": q[0], "global_rotations": q[1], "root_translation": joints[0],
            "joint_confidence": jc}


@pytest.fixture(scope="module")
def real_landmarks() -> list[tuple[str, tuple[int, ...], object]]:
    """BlazePose's landmarks on every photo and video frame of the shared pack."""
    root = pack_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    from PIL import Image

    from mocap_ros.estimation.detector import MediaPipePose

    files = sorted([*root.glob("body/*/*.jpg"), *root.glob("multi/*/*.jpg"),
                    *root.glob("video/*/*.jpg")])
    out = []
    pose = MediaPipePose(static_image_mode=True)
    try:
        for p in files:
            rgb = np.asarray(Image.open(p).convert("RGB"))
            lms = pose(rgb)
            if lms is not None:
                out.append((p.name, rgb.shape, lms))
    finally:
        pose.close()
    assert len(out) >= 12, f"BlazePose found people on only {len(out)} of {len(files)} photos"
    return out


def test_single_frame_ik_equals_the_batched_ik_on_real_landmarks(real_landmarks) -> None:
    worst = 0.0
    for name, _shape, lms in real_landmarks:
        worst = max(worst, _assert_same_ik(lms.world, lms.visibility, name))
        # the backend solves on the lifted points: metres in the camera frame, ~2-10 m away
        worst = max(worst, _assert_same_ik(lms.world * 1.7 + [0.3, -0.2, 4.0],
                                           lms.visibility, name))
    print(f"\nworst |fast - batched| over {len(real_landmarks)} real frames: {worst:.1e}")


def test_backend_output_equals_the_reference_math_on_real_landmarks(real_landmarks) -> None:
    """The whole per-frame math of LandmarksBackend.process (MediaPipe replaced by its
    recorded landmarks) against :func:`_reference_backend`, to 1e-6 (the results are
    float32: a value can land on the neighbouring float32)."""
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    class Recorded:
        lms = None

        def landmarks(self, rgb: np.ndarray) -> object:
            return self.lms

    rec = Recorded()
    backend = LandmarksBackend(None, detector=rec)
    checked = 0
    for name, shape, lms in real_landmarks:
        rec.lms = lms
        rgb = np.zeros(shape, np.uint8)
        r = backend.process(rgb)
        ref = _reference_backend(lms, shape, backend._intrinsics(None, shape[1], shape[0]))
        if ref is None:
            assert not r.valid and r.reason == "no_depth", name
            continue
        assert r.valid, f"{name}: {r.reason}"
        checked += 1
        for k, v in ref.items():
            np.testing.assert_allclose(np.asarray(getattr(r, k), np.float64), v, rtol=1e-6,
                                       atol=1e-6, err_msg=f"{name}: {k}")
    assert checked >= 12
