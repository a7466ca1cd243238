"""Per-joint confidence (BodyPose.joint_confidence), calibrated on real annotated photos:
a joint in view scores high, a joint out of the frame scores low (issue 10 item 12).

The landmarks backend runs on every annotated person of the shared photo pack (box = the
annotated one), then on the same photos cut off at hip height, where the legs are out of the
frame: what an operator at a desk looks like to the camera.
"""

from __future__ import annotations

import numpy as np
import pytest

from mocap_ros.estimation.confidence import keypoint_joint_confidence, landmark_joint_confidence

from real_images_pack import SKIP_REASON, SMPL_OF_CANONICAL, load_people, pack_root

ARMS = slice(0, 6)  # canonical shoulders, elbows, wrists
LEGS = slice(8, 12)  # canonical knees, ankles


@pytest.fixture(scope="module")
def measured():
    root = pack_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    from mocap_ros.estimation.detector import PersonDetector
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    people = load_people(root, min_visibility=2)  # visible joints only
    in_view, cut_legs, cut_arms, matched = [], [], [], 0
    # unrelated photos: no tracking from one to the next
    with LandmarksBackend(None, detector=PersonDetector(static_image_mode=True)) as backend:
        for person in people:
            box = person.box
            r = backend.process(person.image, bbox=box)
            if not r.valid:
                continue
            # the backend found this person: its keypoints lie on the annotated joints
            ann = person.joints
            kp = r.keypoints_2d[list(SMPL_OF_CANONICAL)]
            ok = np.isfinite(ann).all(-1)
            torso = np.nanmax(np.linalg.norm(ann[[0, 1]] - ann[[6, 7]], axis=-1))
            if not np.isfinite(torso) or np.nanmedian(
                    np.linalg.norm(kp[ok] - ann[ok], axis=-1)) > 0.3 * torso:
                continue
            matched += 1
            conf = r.joint_confidence[list(SMPL_OF_CANONICAL)]
            in_view += list(conf[ARMS][ok[ARMS]])
            # the same photo cut off just below the hips: knees and ankles leave the frame
            hips = ann[6:8]
            knees = ann[8:10]
            if not (np.isfinite(hips).all() and np.isfinite(knees).any()):
                continue
            cut = int(np.nanmax(hips[:, 1]) + 0.25 * (np.nanmin(knees[:, 1])
                                                      - np.nanmax(hips[:, 1])))
            if cut <= int(np.nanmax(ann[:6, 1])) + 5:
                continue  # an arm hangs below the hips: no clean cut
            image = np.ascontiguousarray(person.image[:cut])
            r2 = backend.process(image, bbox=np.array([box[0], box[1], box[2], cut - box[1]]))
            if not r2.valid:
                continue
            c2 = r2.joint_confidence[list(SMPL_OF_CANONICAL)]
            cut_legs += list(c2[LEGS][np.isfinite(ann[LEGS]).all(-1)])
            cut_arms += list(c2[ARMS][ok[ARMS]])
    print(f"\nmatched people: {matched}; in view arms n={len(in_view)} median "
          f"{np.median(in_view):.2f} p10 {np.percentile(in_view, 10):.2f}; cut: legs n="
          f"{len(cut_legs)} max {max(cut_legs, default=float('nan')):.2f}, arms median "
          f"{np.median(cut_arms) if cut_arms else float('nan'):.2f}")
    return np.array(in_view), np.array(cut_legs), np.array(cut_arms), matched


def test_visible_joints_score_high(measured):
    in_view, _, _, matched = measured
    assert matched >= 6 and len(in_view) >= 30
    assert np.median(in_view) >= 0.8
    assert np.mean(in_view >= 0.5) >= 0.8  # teleop's default threshold passes most of them


def test_out_of_frame_joints_score_low_while_the_arms_stay_high(measured):
    _, cut_legs, cut_arms, _ = measured
    assert len(cut_legs) >= 6 and len(cut_arms) >= 6
    assert cut_legs.max() <= 0.1
    assert np.median(cut_arms) >= 0.8


def test_landmark_rule_on_constructed_input():
    vis = np.full(33, 0.9)
    xy = np.full((33, 2), 100.0)
    xy[27] = (100.0, 900.0)  # left ankle placed below a 480-high image
    vis[13] = 0.2  # left elbow barely visible
    c = landmark_joint_confidence(vis, xy, (480, 640))
    assert c.shape == (24,) and c.dtype == np.float32
    assert c[7] == 0.0 and c[8] == pytest.approx(0.9)  # ankles: outside vs inside
    assert c[18] == pytest.approx(0.2) and c[16] == pytest.approx(0.9)
    vis[0] = np.nan  # a NaN visibility never reads as confident
    assert landmark_joint_confidence(vis, xy, (480, 640))[15] == 0.0


def test_keypoint_rule_fades_at_the_crop_and_image_edges():
    window = (100, 50, 400, 350)  # 300 high: the ramp is 15 px
    kp = np.array([[250.0, 200.0], [101.0, 200.0], [95.0, 200.0], [250.0, 342.5],
                   [639.0, 200.0], [np.nan, 1.0]] + [[250.0, 200.0]] * 18)
    c = keypoint_joint_confidence(kp, window, (480, 640))
    assert c[0] == 1.0 and c[1] == pytest.approx(1 / 15) and c[2] == 0.0
    assert c[3] == pytest.approx(0.5) and c[4] == 0.0 and c[5] == 0.0
