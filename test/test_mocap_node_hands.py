"""mocap_node with hands over real DDS (issue 13): a real photo in, BodyPose with both hands,
TF frames for the hand keypoints, hand markers and the debug image out.

Skips, saying why, when the shared body photos or mediapipe are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from test_mocap_node import Probe
from visualization_msgs.msg import Marker, MarkerArray

from mocap_ros.core.skeleton import HAND_KEYPOINT_NAMES, JOINT_NAMES
from mocap_ros.ros.mocap_node import MocapNode

from ros_helpers import make_executor, ros_context, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

PHOTO = Path("/work/shared/real_images/body/ochuman/003896.jpg")  # both hands in view
_local = Path(__file__).resolve().parents[1].parent / "shared" / "real_images" / "body" / \
    "ochuman" / "003896.jpg"
if _local.is_file():
    PHOTO = _local


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (requirements-mediapipe.txt)")
    if not PHOTO.is_file():
        pytest.skip(f"real body photo not found ({PHOTO}): it lives in the shared "
                    "real_images pack, not in the repository")
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(PHOTO).convert("RGB"))


def _node(ctx, **params) -> MocapNode:
    params = {"backend": "landmarks", "diagnostics_period": 0.2, **params}
    return MocapNode(context=ctx,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _run(ctx, node, photo, want=lambda p: True):
    probe = Probe(ctx)
    markers, debug = [], []
    probe.node.create_subscription(MarkerArray, "mocap/markers", markers.append, 10)
    probe.node.create_subscription(Image, "mocap/debug_image", debug.append,
                                   rclpy.qos.qos_profile_sensor_data)
    ex = make_executor(ctx, node, probe.node)
    try:
        # a new stamp per frame: each pose (and its TF) is told apart by its stamp
        assert wait_for(lambda: any(want(p) for p, _ in probe.poses), ex, timeout=40.0,
                        on_tick=lambda: probe.publish(probe.image(photo)), tick_period=0.7)
        wait_for(lambda: False, ex, timeout=0.5)  # let TF / markers of that pose arrive
    finally:
        ex.shutdown()
        probe.node.destroy_node()
        node.destroy_node()
    return probe, markers, debug


def test_hands_on_fill_bodypose_tf_markers_and_debug_image(ctx, photo):
    node = _node(ctx, hands=True, publish_hand_tf=True, publish_debug_image=True)

    def both_hands(p):
        return p.valid and p.left_hand.valid and p.right_hand.valid

    probe, markers, debug = _run(ctx, node, photo, both_hands)
    pose = next(p for p, _ in probe.poses if both_hands(p))
    for side, wrist in (("left", 20), ("right", 21)):
        hand = getattr(pose, f"{side}_hand")
        assert hand.reason == "" and 0.5 <= hand.confidence <= 1.0
        assert len(hand.keypoints) == 21 and len(hand.keypoints_2d) == 42
        assert 0.0 <= hand.aperture <= 1.0 and len(hand.finger_curl) == 5
        # rooted at the body's wrist joint; the wrist's rotation is the palm's
        w = pose.joints[wrist]
        k0 = hand.keypoints[0]
        assert np.allclose([k0.x, k0.y, k0.z], [w.x, w.y, w.z], atol=1e-5)
        q, o = pose.global_rotations[wrist], hand.orientation
        assert abs(abs(q.x * o.x + q.y * o.y + q.z * o.z + q.w * o.w) - 1.0) < 1e-5
        # keypoints in pixels lie in the image
        uv = np.array(hand.keypoints_2d).reshape(21, 2)
        assert (uv[:, 0] > -50).all() and (uv[:, 0] < photo.shape[1] + 50).all()
    # TF: the body's joints plus one frame per hand keypoint, same stamp, camera parent
    key = (pose.header.stamp.sec, pose.header.stamp.nanosec)
    frames = {t.child_frame_id: t for m in probe.tfs for t in m.transforms
              if (t.header.stamp.sec, t.header.stamp.nanosec) == key}
    for side in ("left", "right"):
        hand = getattr(pose, f"{side}_hand")
        for i, name in enumerate(HAND_KEYPOINT_NAMES):
            t = frames[f"mocap_{side}_hand_{name}"]
            assert t.header.frame_id == "cam_optical"
            p = hand.keypoints[i]
            v = t.transform.translation
            assert np.allclose([v.x, v.y, v.z], [p.x, p.y, p.z], atol=1e-6)
    assert {"mocap_" + n for n in JOINT_NAMES} <= set(frames)
    # RViz: hand line lists next to the skeleton, 20 bones each
    hand_markers = [m for arr in markers for m in arr.markers if m.ns == "mocap_hands"
                    and m.action == Marker.ADD]
    assert {m.id for m in hand_markers} == {2, 3}
    assert all(len(m.points) == 40 for m in hand_markers)
    assert debug and debug[-1].width == photo.shape[1]
    assert node.stats["hands_valid"] >= 2


def test_hands_off_say_disabled_and_publish_no_hand_frames(ctx, photo):
    node = _node(ctx, publish_hand_tf=True)
    probe, markers, _ = _run(ctx, node, photo, lambda p: p.valid)
    pose = next(p for p, _ in probe.poses if p.valid)
    for hand in (pose.left_hand, pose.right_hand):
        assert not hand.valid and hand.reason == "disabled"
    children = {t.child_frame_id for m in probe.tfs for t in m.transforms}
    assert "mocap_pelvis" in children
    assert not any("_hand_" in c for c in children)
    assert not any(m.ns == "mocap_hands" and m.action == Marker.ADD
                   for arr in markers for m in arr.markers)
