"""Hands inside the pose backends (issue 13), on real photos.

Landmarks backend with ``hands: true`` over the shared body photos: hands found, rooted at the
body's wrists, and the SMPL wrist rotation replaced by the observed palm (and following it when
the hand turns). HMR (synthetic weights) with hands on: the fields are filled and well formed.
Skips, saying why, when the shared photos or mediapipe are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocap_ros.core.config import MocapConfig
from mocap_ros.geometry.rotations import axis_angle_to_matrix, quat_to_matrix

BODY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "real_images" / "body"
if not BODY_DIR.is_dir():  # worktrees live one level deeper than the main checkout
    BODY_DIR = Path("/work/shared/real_images/body")
WRIST = {"left": 20, "right": 21}
CHAIN = {"left": (18, 20, 22), "right": (19, 21, 23)}


def _need_mediapipe() -> None:
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (requirements-mediapipe.txt)")


@pytest.fixture(scope="module")
def body_photos() -> list[tuple[str, np.ndarray]]:
    if not BODY_DIR.is_dir():
        pytest.skip(f"real body photos not found ({BODY_DIR}): they live in the shared "
                    "real_images pack, not in the repository")
    from PIL import Image

    return [(p.name, np.asarray(Image.open(p).convert("RGB")))
            for p in sorted(BODY_DIR.glob("*/*.jpg"))]


def _landmarks(hands: bool, hand_estimator: object = None) -> object:
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    return LandmarksBackend(MocapConfig(backend="landmarks", hands=hands),
                            hand_estimator=hand_estimator)


@pytest.fixture(scope="module")
def hand_results(body_photos):
    """(name, result with hands, result without) per photo; a fresh backend per photo
    (single images: no tracking between unrelated photos)."""
    _need_mediapipe()
    out = []
    for name, rgb in body_photos:
        with _landmarks(True) as on, _landmarks(False) as off:
            out.append((name, on.process(rgb), off.process(rgb)))
    return out


def _same_rotation(q1: np.ndarray, q2: np.ndarray, atol: float = 1e-5) -> bool:
    return bool(np.allclose(quat_to_matrix(np.asarray(q1, np.float64)),
                            quat_to_matrix(np.asarray(q2, np.float64)), atol=atol))


def test_hands_off_leaves_them_unset_and_the_message_says_disabled(hand_results):
    from mocap_ros.io.messages import body_pose_content

    for _, _, off in hand_results:
        assert off.left_hand is None and off.right_hand is None
        c = body_pose_content(off)
        for side in ("left_hand", "right_hand"):
            assert not c[side]["valid"] and c[side]["reason"] == "disabled"


def test_landmarks_backend_finds_hands_rooted_at_the_body(hand_results):
    found = 0
    for name, on, off in hand_results:
        assert on.valid == off.valid, name
        # the body is the same with hands on, except the wrists/hands the palms replaced
        others = [j for j in range(24) if j not in (20, 21, 22, 23)]
        np.testing.assert_allclose(on.joints_cam[others], off.joints_cam[others], atol=1e-6)
        np.testing.assert_allclose(on.joints_cam[[20, 21]], off.joints_cam[[20, 21]],
                                   atol=1e-6)
        for side in ("left", "right"):
            h = getattr(on, f"{side}_hand")
            assert h is not None and h.side == side
            if not h.valid:
                assert h.reason and np.isfinite(h.keypoints_cam).all()
                continue
            found += 1
            assert 0.0 <= h.aperture <= 1.0 and h.confidence >= 0.5
            assert h.rooted_at_body_wrist
            np.testing.assert_allclose(h.keypoints_cam[0], on.joints_cam[WRIST[side]],
                                       atol=1e-5)
            # a hand is about 10-25 cm from wrist to fingertips, never metres
            span = np.linalg.norm(h.keypoints_cam - h.keypoints_cam[0], axis=1).max()
            assert 0.05 < span < 0.4, (name, side, span)
    # measured: 13 valid hands over the 11 body photos (of 22); floor with a margin
    assert found >= 9, found


def test_valid_hand_sets_the_smpl_wrist_rotation(hand_results):
    from mocap_ros.geometry.camera import Intrinsics, project

    checked = 0
    for name, on, off in hand_results:
        for side, (elb, wri, hnd) in CHAIN.items():
            h = getattr(on, f"{side}_hand")
            if not h.valid:
                # no hand: the IK's wrist is untouched
                assert _same_rotation(on.global_rotations[wri], off.global_rotations[wri])
                continue
            checked += 1
            G_palm = quat_to_matrix(np.asarray(h.orientation, np.float64))
            assert _same_rotation(on.global_rotations[wri], h.orientation), (name, side)
            assert _same_rotation(on.global_rotations[hnd], h.orientation)
            G_elb = quat_to_matrix(np.asarray(on.global_rotations[elb], np.float64))
            local = quat_to_matrix(np.asarray(on.local_rotations[wri], np.float64))
            np.testing.assert_allclose(G_elb @ local, G_palm, atol=1e-5)
            np.testing.assert_allclose(on.local_rotations[hnd], [0, 0, 0, 1], atol=1e-6)
            # the hand bone keeps its length and now points along the palm's x axis (the
            # rest skeleton's wrist -> hand bone direction turned by the new rotation)
            bone_on = on.joints_cam[hnd] - on.joints_cam[wri]
            bone_off = off.joints_cam[hnd] - off.joints_cam[wri]
            assert np.linalg.norm(bone_on) == pytest.approx(np.linalg.norm(bone_off), rel=1e-4)
            G_old = quat_to_matrix(np.asarray(off.global_rotations[wri], np.float64))
            np.testing.assert_allclose(G_palm.T @ bone_on, G_old.T @ bone_off, atol=1e-5)
            # the pixel keypoint of the hand joint is its projection (landmarks backend)
            K = Intrinsics.fallback(*_size(name), 0.0, 60.0)
            np.testing.assert_allclose(on.keypoints_2d[hnd],
                                       project(on.joints_cam[hnd].astype(np.float64), K),
                                       atol=1e-2)
    assert checked >= 9


_SIZES: dict[str, tuple[int, int]] = {}


def _size(name: str) -> tuple[int, int]:
    return _SIZES[name]


@pytest.fixture(scope="module", autouse=True)
def _photo_sizes(body_photos):
    _SIZES.update({n: (rgb.shape[1], rgb.shape[0]) for n, rgb in body_photos})


class _TurnedHands:
    """The real hand landmark graph, with each found hand's metric landmarks turned by
    ``R`` about its wrist: what the model would report for the same hand rotated."""

    def __init__(self, R: np.ndarray) -> None:
        from mocap_ros.estimation.hands.mediapipe_graph import HandLandmarkGraph

        self.graph = HandLandmarkGraph()
        self.R = R

    def __call__(self, rgb, roi):
        raw = self.graph(rgb, roi)
        if raw is not None:
            w0 = raw.world[0]
            raw.world = (raw.world - w0) @ self.R.T + w0
        return raw

    def close(self) -> None:
        self.graph.close()


@pytest.mark.parametrize("angle_deg", [35.0, -60.0])
def test_wrist_rotation_follows_a_rotated_hand(body_photos, angle_deg):
    """Turn the observed hand (about the camera's x axis, then about the forearm): the
    body's wrist global rotation turns by exactly that rotation, and its local rotation
    relative to the forearm changes: flexion/twist come from the hand now."""
    _need_mediapipe()
    from mocap_ros.estimation.hands.estimator import HandEstimator

    name, rgb = next((n, r) for n, r in body_photos if n == "003896.jpg")  # both hands valid
    with _landmarks(True, HandEstimator(track=False)) as plain:
        base = plain.process(rgb)
    Q = axis_angle_to_matrix(np.array([1.0, 0.0, 0.0]), np.radians(angle_deg))
    turned_est = HandEstimator(_TurnedHands(Q), track=False)
    with _landmarks(True, turned_est) as turned:
        res = turned.process(rgb)
    for side, (_elb, wri, _hnd) in CHAIN.items():
        hb, ht = getattr(base, f"{side}_hand"), getattr(res, f"{side}_hand")
        assert hb.valid and ht.valid, (name, side, hb.reason, ht.reason)
        G0 = quat_to_matrix(np.asarray(base.global_rotations[wri], np.float64))
        G1 = quat_to_matrix(np.asarray(res.global_rotations[wri], np.float64))
        np.testing.assert_allclose(G1, Q @ G0, atol=2e-4)
        L0 = quat_to_matrix(np.asarray(base.local_rotations[wri], np.float64))
        L1 = quat_to_matrix(np.asarray(res.local_rotations[wri], np.float64))
        cos = (np.trace(L0.T @ L1) - 1.0) / 2.0
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) == pytest.approx(abs(angle_deg),
                                                                          abs=0.05)


def test_hmr_backend_with_hands_fills_them(cfg, models, body_photos):
    """HMR (synthetic weights: a mean-ish body, so its wrists rarely sit on a hand) with hands
    on: both hands are reported, well formed, and any valid one drives the SMPL wrist."""
    _need_mediapipe()
    from mocap_ros.estimation.hmr.pipeline import MocapPipeline

    pipe = MocapPipeline(cfg.replace(hands=True), models=models)
    off = MocapPipeline(cfg, models=models)
    try:
        for _, rgb in body_photos[:4]:
            r = pipe.process(rgb)
            assert off.process(rgb).left_hand is None
            for side, (_elb, wri, _hnd) in CHAIN.items():
                h = getattr(r, f"{side}_hand")
                assert h is not None and h.side == side
                assert h.valid or h.reason
                assert np.isfinite(h.keypoints_cam).all() and np.isfinite(h.orientation).all()
                if h.valid:
                    assert _same_rotation(r.global_rotations[wri], h.orientation)
            assert "hands" in r.timings_ms
        bad = pipe.process(body_photos[0][1], bbox=(0, 0, 2, 2))  # too small: invalid body
        assert not bad.valid and bad.left_hand is not None and not bad.left_hand.valid
    finally:
        pipe.close()
