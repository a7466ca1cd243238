"""Hand estimation on real hand photos (FreiHAND, OneHand10K in ../shared/real_images/hands).

Skips, saying why, when the shared photos or mediapipe are absent. Floors were measured on
these 12 photos (numbers in the asserts' comments) and set with a margin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mocap_ros.estimation.hands import geometry as geo
from mocap_ros.geometry.rotations import quat_to_matrix

HANDS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "real_images" / "hands"
if not HANDS_DIR.is_dir():  # worktrees live one level deeper than the main checkout
    HANDS_DIR = Path("/work/shared/real_images/hands")


@pytest.fixture(scope="module")
def hand_photos() -> list[dict]:
    """Every annotated hand photo: name, rgb, keypoints (21, 2), labelled mask, box."""
    if not HANDS_DIR.is_dir():
        pytest.skip(f"real hand photos not found ({HANDS_DIR}): they live in the shared "
                    "real_images pack, not in the repository")
    from PIL import Image

    photos = []
    for ds in ("freihand", "onehand10k"):
        data = json.loads((HANDS_DIR / ds / f"test_{ds}.json").read_text())
        names = {im["id"]: im["file_name"] for im in data["images"]}
        for ann in data["annotations"]:
            kp = np.asarray(ann["keypoints"], np.float64).reshape(21, 3)
            name = names[ann["image_id"]]
            rgb = np.asarray(Image.open(HANDS_DIR / ds / name).convert("RGB"))
            photos.append({"name": f"{ds}/{name}", "rgb": rgb, "kp": kp[:, :2],
                           "labelled": kp[:, 2] > 0, "bbox": np.asarray(ann["bbox"], float)})
    return photos


@pytest.fixture(scope="module")
def estimator():
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (requirements-mediapipe.txt)")
    from mocap_ros.estimation.hands.estimator import HandEstimator

    est = HandEstimator(track=False, refine=True)
    yield est
    est.close()


def _photo(photos: list[dict], name: str) -> dict:
    return next(p for p in photos if p["name"] == name)


def _errors(pred: np.ndarray, photo: dict) -> tuple[np.ndarray, float]:
    """Per labelled keypoint pixel errors and the PCK@0.2 threshold (0.2 x the box's longer
    side)."""
    e = np.linalg.norm(pred - photo["kp"], axis=1)[photo["labelled"]]
    return e, 0.2 * float(max(photo["bbox"][2:]))


def _arm_from_annotation(photo: dict):
    """A body-like arm from the annotation: wrist = keypoint 0, knuckles = middle MCP (9),
    the elbow 2.5 palm lengths back along the hand. Stands in for the body's joints on
    close-ups without a body."""
    from mocap_ros.estimation.hands.estimator import ArmObservation

    w, k = photo["kp"][0], photo["kp"][9]
    return ArmObservation(wrist_px=w, elbow_px=w - 2.5 * (k - w), knuckles_px=k)


def _has_arm(photo: dict) -> bool:
    return bool(photo["labelled"][0] and photo["labelled"][9])


def test_keypoints_from_the_palm_detector_match_the_annotations(hand_photos, estimator
                                                                ) -> None:
    """Standalone path (palm detector ROI, no body): 2D error vs the annotations."""
    errs, hits, found = [], [], 0
    for photo in hand_photos:
        res = [r for r in estimator.detect(photo["rgb"]) if r.valid]
        if not res:
            continue
        found += 1
        e, thr = _errors(res[0].keypoints_2d, photo)
        errs.append(e.mean())
        hits.extend(e < thr)
        assert 0.0 <= res[0].aperture <= 1.0 and ((res[0].finger_curls >= 0)
                                                  & (res[0].finger_curls <= 1)).all()
    pck = float(np.mean(hits))
    print(f"\npalm detector: found {found}/{len(hand_photos)}, mean px {np.mean(errs):.1f}, "
          f"PCK@0.2 {pck:.3f}")
    assert found >= 8  # measured 10/12 (two FreiHAND background versions are missed)
    assert pck >= 0.85  # measured 0.91 (mean 10-11 px on ~100-370 px boxes)


def test_keypoints_from_a_wrist_roi_match_the_annotations(hand_photos, estimator) -> None:
    """The body path: ROI from a wrist/knuckles/elbow (here from the annotation), side given."""
    errs, hits, n = [], [], 0
    for photo in hand_photos:
        if not _has_arm(photo):
            continue
        n += 1
        out = estimator.estimate(photo["rgb"], {"right": _arm_from_annotation(photo)})
        assert not out["left"].valid and out["left"].reason == "no_wrist"
        r = out["right"]
        assert r.valid, f"{photo['name']}: {r.reason}"
        assert r.side == "right" and r.side_source == "body"
        e, thr = _errors(r.keypoints_2d, photo)
        errs.append(e.mean())
        hits.extend(e < thr)
    pck = float(np.mean(hits))
    print(f"\nwrist ROI: {n} photos, mean px {np.mean(errs):.1f}, PCK@0.2 {pck:.3f}")
    assert n >= 9
    assert pck >= 0.85  # measured 0.91 (mean 10-11 px on ~100-370 px boxes)


def test_pinch_low_and_open_thumb_high_on_photos(hand_photos, estimator) -> None:
    """1402.jpg: an OK sign (thumb and index tips touching); 33.jpg: the index finger raised
    to the lips, the thumb folded away from its tip."""
    pinch = _photo(hand_photos, "onehand10k/1402.jpg")
    apart = _photo(hand_photos, "onehand10k/33.jpg")
    r_pinch = estimator.estimate(pinch["rgb"], {"right": _arm_from_annotation(pinch)})["right"]
    r_apart = estimator.estimate(apart["rgb"], {"left": _arm_from_annotation(apart)})["left"]
    print(f"\naperture: pinch {r_pinch.aperture:.2f}, apart {r_apart.aperture:.2f}")
    assert r_pinch.valid and r_apart.valid
    assert r_pinch.aperture < 0.2  # measured 0.00
    assert r_apart.aperture > 0.6  # measured 0.83
    # the annotations themselves agree (2D, the hand seen roughly flat)
    assert geo.grip_aperture(pinch["kp"]) < 0.2
    # a pinch rendered by moving the annotated tips of the open photo together
    moved = apart["kp"].copy()
    moved[4] = moved[8] + 0.05 * (moved[4] - moved[8])
    assert geo.grip_aperture(moved) < geo.grip_aperture(apart["kp"])


def test_same_pose_same_answer_on_freihand_backgrounds(hand_photos, estimator) -> None:
    """FreiHAND stores each pose 4 times (green screen + 3 replaced backgrounds): the
    aperture and curls found should agree across the versions."""
    groups = {("00000355", "00032915", "00065475", "00098035"),
              ("00017620", "00050180", "00082740", "00115300")}
    for group in groups:
        aps, curls = [], []
        for stem in group:
            photo = _photo(hand_photos, f"freihand/{stem}.jpg")
            r = estimator.estimate(photo["rgb"], {"right": _arm_from_annotation(photo)})["right"]
            if r.valid:
                aps.append(r.aperture)
                curls.append(r.finger_curls)
        assert len(aps) >= 3
        spread = np.ptp(np.asarray(curls), axis=0)
        print(f"\n{group[0]}..: apertures {np.round(aps, 2)}, curl spread {np.round(spread, 2)}")
        assert np.ptp(aps) < 0.25
        # index..pinky agree (measured spread <= 0.06); the thumb, half hidden in this grasp,
        # does not (measured spread 0.44): not asserted, reported above.
        assert spread[1:].max() < 0.2


def test_left_right_from_the_body_on_a_body_photo(hand_photos, estimator) -> None:
    """33.jpg shows a woman's upper body: BlazePose's wrists place the ROIs, and the hand at
    the annotated wrist must come out on one side only, with the model's handedness
    agreeing with the side the body gave it."""
    from mocap_ros.estimation.detector import MediaPipePose
    from mocap_ros.estimation.hands.estimator import arms_from_pose_landmarks

    photo = _photo(hand_photos, "onehand10k/33.jpg")
    pose = MediaPipePose(static_image_mode=True)
    try:
        lms = pose(photo["rgb"])
    finally:
        pose.close()
    assert lms is not None
    out = estimator.estimate(photo["rgb"], arms_from_pose_landmarks(lms))
    valid = [s for s, r in out.items() if r.valid]
    assert len(valid) == 1, {s: r.reason for s, r in out.items()}
    r = out[valid[0]]
    e, thr = _errors(r.keypoints_2d, photo)
    print(f"\nbody photo: side {r.side}, mean px {e.mean():.1f}, agrees {r.handedness_agrees}")
    assert (e < thr).mean() >= 0.85
    assert r.handedness_agrees is True
    # The same hand offered to the OTHER side's wrist is that side's (left/right is the
    # body's), and a wrist far from any hand finds nothing there.
    other = "right" if r.side == "left" else "left"
    arm = _arm_from_annotation(photo)
    from mocap_ros.estimation.hands.estimator import ArmObservation

    far = ArmObservation(wrist_px=np.array([200.0, 320.0]), elbow_px=np.array([200.0, 345.0]))
    swapped = estimator.estimate(photo["rgb"], {other: arm, r.side: far})
    assert swapped[other].valid and swapped[other].side == other
    assert swapped[other].handedness_agrees is False  # the model's guess is only reported
    assert not swapped[r.side].valid


def test_both_wrists_on_one_hand_keeps_one(hand_photos, estimator) -> None:
    photo = _photo(hand_photos, "onehand10k/1402.jpg")
    arm = _arm_from_annotation(photo)
    from mocap_ros.estimation.hands.estimator import ArmObservation

    near = ArmObservation(wrist_px=arm.wrist_px + 25.0, elbow_px=arm.elbow_px + 25.0,
                          knuckles_px=arm.knuckles_px + 25.0)
    out = estimator.estimate(photo["rgb"], {"right": arm, "left": near})
    assert out["right"].valid
    assert not out["left"].valid and out["left"].reason in ("duplicate", "far_from_wrist")


def test_metres_rooted_at_the_body_wrist(hand_photos, estimator) -> None:
    photo = _photo(hand_photos, "onehand10k/1402.jpg")
    arm = _arm_from_annotation(photo)
    arm.wrist_cam = np.array([0.1, -0.2, 1.5])
    r = estimator.estimate(photo["rgb"], {"right": arm})["right"]
    assert r.valid and r.rooted_at_body_wrist
    np.testing.assert_allclose(r.keypoints_cam[0], arm.wrist_cam, atol=1e-6)
    palm = float(geo.palm_size(r.keypoints_cam))
    assert 0.05 < palm < 0.15  # an adult palm, metres (wrist to middle MCP ~9-10 cm)
    R = quat_to_matrix(r.orientation.astype(np.float64))
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-5)
    # unrooted: placed in front of the camera by the pinhole fit
    arm.wrist_cam = None
    r2 = estimator.estimate(photo["rgb"], {"right": arm})["right"]
    assert r2.valid and not r2.rooted_at_body_wrist and (r2.keypoints_cam[:, 2] > 0).all()


def test_bad_input_is_a_clear_error(estimator) -> None:
    with pytest.raises(ValueError):
        estimator.estimate(np.zeros((10, 10), np.uint8), {})
    out = estimator.estimate(np.zeros((64, 64, 3), np.uint8), {})
    assert all(not r.valid and r.reason == "no_wrist" for r in out.values())
    from mocap_ros.estimation.hands.estimator import ArmObservation

    off = ArmObservation(wrist_px=np.array([500.0, 500.0]), elbow_px=np.array([500.0, 600.0]))
    out = estimator.estimate(np.zeros((64, 64, 3), np.uint8), {"left": off})
    assert out["left"].reason == "out_of_view"
