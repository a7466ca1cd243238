"""REP-155 over DDS: mocap_node (landmarks backend, operator lock on) + hri_bridge, consumed
the way a ROS4HRI client (pyhri / libhri) does: discover the bodies on /humans/bodies/tracked,
subscribe each body's topics as it appears, read body_<id> from /tf.

On the shared photo with several people (multi/crowdpose/106848.jpg, two annotated people),
each annotated person must be one tracked body whose roi holds their annotated keypoints and
whose skeleton2d puts left and right where the annotation does -- checks against the
CrowdPose annotation, independent of the code under test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("hri_msgs.msg", reason="hri_msgs missing: run scripts/build_ros.sh")

from geometry_msgs.msg import PointStamped  # noqa: E402
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D, Skeleton2D  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from mocap_ros.core.skeleton import JOINT_NAMES  # noqa: E402
from mocap_ros.estimation import rep155  # noqa: E402
from mocap_ros.io.images import rgb_to_raw  # noqa: E402
from mocap_ros.msg import BodyPose  # noqa: E402

from real_images_pack import SKIP_REASON, pack_root  # noqa: E402
from ros_helpers import make_executor, ros_context, wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

PHOTO = "multi/crowdpose/106848.jpg"
CROWDPOSE = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
             "right_ankle")  # CrowdPose-14 rows 0-11 (the pack's README)


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Client:
    """A REP-155 consumer: bodies from `tracked`, per-body topics subscribed on discovery."""

    def __init__(self, ctx) -> None:
        self.node = rclpy.create_node("rep155_client", context=ctx)
        self.tracked: list[IdsList] = []
        self.roi: dict[str, list] = {}
        self.skel: dict[str, list] = {}
        self.joints: dict[str, list] = {}
        self.position: dict[str, list] = {}
        self.tf: dict[str, object] = {}
        self.node.create_subscription(IdsList, "/humans/bodies/tracked", self._on_tracked, 10)
        self.node.create_subscription(TFMessage, "/tf", self._on_tf, 100)

    def _on_tracked(self, msg: IdsList) -> None:
        self.tracked.append(msg)
        for bid in msg.ids:
            if bid in self.roi:
                continue
            ns = f"/humans/bodies/{bid}"
            for store, typ, sub in ((self.roi, NormalizedRegionOfInterest2D, "roi"),
                                    (self.skel, Skeleton2D, "skeleton2d"),
                                    (self.joints, JointState, "joint_states"),
                                    (self.position, PointStamped, "position")):
                store[bid] = []
                self.node.create_subscription(typ, f"{ns}/{sub}", store[bid].append, 10)

    def _on_tf(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            self.tf[t.child_frame_id] = t


def _annotated(root) -> list[dict[str, np.ndarray]]:
    """The photo's annotated people: name -> (x, y) of each labelled keypoint."""
    data = json.loads((root / "multi/crowdpose/test_crowdpose.json").read_text())
    img = next(i["id"] for i in data["images"] if i["file_name"] == PHOTO.split("/")[-1])
    out = []
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        if a["image_id"] == img and (kp[:12, 2] > 0).sum() >= 4:
            out.append({n: kp[i, :2] for i, n in enumerate(CROWDPOSE) if kp[i, 2] > 0})
    return out


def _image(node, rgb: np.ndarray) -> Image:
    data, step = rgb_to_raw(rgb, "rgb8")
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=step, data=data)
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = "cam"
    return msg


def test_several_people_become_rep155_bodies(ctx):
    root = pack_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe not installed")
    import cv2

    from mocap_ros.ros.hri_bridge import HriBridge
    from mocap_ros.ros.mocap_node import MocapNode

    rgb = np.ascontiguousarray(cv2.imread(str(root / PHOTO))[:, :, ::-1])
    h, w = rgb.shape[:2]
    people = _annotated(root)
    assert len(people) == 2

    mocap = MocapNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in {
        "backend": "landmarks", "operator_lock": True, "operator_max_people": 4,
        "publish_tf": False, "publish_markers": False}.items()])
    bridge = HriBridge(context=ctx)
    client = Client(ctx)
    probe = rclpy.create_node("rep155_probe", context=ctx)
    pub = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    poses: list[BodyPose] = []
    probe.create_subscription(BodyPose, "mocap/body_pose", poses.append, 10)
    ex = make_executor(ctx, mocap, bridge, client.node, probe)
    try:
        # discovery: frames until the client has seen two bodies on `tracked`
        assert wait_for(lambda: any(len(m.ids) >= 2 for m in client.tracked), ex, timeout=40.0,
                        on_tick=lambda: pub.publish(_image(probe, rgb)), tick_period=2.0)
        # then three frames, one at a time: the same people keep the same ids
        frames = []
        for _ in range(3):
            msg = _image(probe, rgb)
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            pub.publish(msg)
            assert wait_for(lambda k=key: any(
                (m.header.stamp.sec, m.header.stamp.nanosec) == k for m in client.tracked),
                ex, timeout=20.0)
            frames.append(next(m for m in client.tracked
                               if (m.header.stamp.sec, m.header.stamp.nanosec) == key))
        wait_for(lambda: False, ex, timeout=0.5)  # the per-body messages of the last frame
    finally:
        ex.shutdown()
        for n in (probe, client.node, bridge, mocap):
            n.destroy_node()

    ids = sorted(frames[-1].ids)
    assert len(ids) == 2 and all(sorted(f.ids) == ids for f in frames), \
        [list(f.ids) for f in frames]
    assert all(i[0].isalpha() for i in ids)  # REP-155's identifier syntax
    # the person BodyPose follows is body t<track_id>: the lock's track ids are the body ids
    followed = poses[-1]
    assert followed.valid and f"t{followed.track_id}" in ids

    # each annotated person is one body: their upper-body keypoints inside its roi, left/right right
    matched = set()
    for ann in people:
        # the upper body: MediaPipe's box for a person whose legs are hidden behind the other
        # one (the right person here) ends at the hips
        names = [n for n in ann if not n.endswith(("knee", "ankle"))]
        pts = np.array([ann[n] for n in names])
        best, best_in = None, 0.0
        for bid in ids:
            r = client.roi[bid][-1]
            assert 0 <= r.xmin < r.xmax <= 1 and 0 <= r.ymin < r.ymax <= 1
            dx, dy = 0.1 * (r.xmax - r.xmin) * w, 0.1 * (r.ymax - r.ymin) * h
            inside = np.mean((pts[:, 0] >= r.xmin * w - dx) & (pts[:, 0] <= r.xmax * w + dx)
                             & (pts[:, 1] >= r.ymin * h - dy) & (pts[:, 1] <= r.ymax * h + dy))
            if inside > best_in:
                best, best_in = bid, inside
        assert best_in >= 0.8, (best, best_in)
        matched.add(best)
        sk = client.skel[best][-1].skeleton
        assert len(sk) == 18
        got = {n: np.array([sk[i].x * w, sk[i].y * h])
               for i, n in enumerate(rep155.SKELETON2D_NAMES) if sk[i].c > 0.3}
        for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")):
            if a in ann and b in ann and a in got and b in got:
                same = np.linalg.norm(got[a] - ann[a]) + np.linalg.norm(got[b] - ann[b])
                swapped = np.linalg.norm(got[a] - ann[b]) + np.linalg.norm(got[b] - ann[a])
                assert same < swapped, (best, a, b)
    assert matched == set(ids)

    # 3D for the followed body: joint_states on the human model, body_<id> on /tf
    tid = f"t{followed.track_id}"
    js = client.joints[tid][-1]
    assert list(js.name) == [f"{n}_{tid}" for n in rep155.HUMAN_JOINT_NAMES]
    assert np.isfinite(js.position).all()
    tf = client.tf[f"body_{tid}"]
    assert tf.header.frame_id == "cam"
    q = tf.transform.rotation
    from mocap_ros.geometry.rotations import quat_to_matrix

    rot = quat_to_matrix(np.array([q.x, q.y, q.z, q.w]))
    # an upright person: the body's z (toward the head) points up the image (-y optical)
    assert rot[1, 2] < -0.5, rot
    t = tf.transform.translation
    joints = np.array([[p.x, p.y, p.z] for p in followed.joints])
    hips = (joints[JOINT_NAMES.index("left_hip")] + joints[JOINT_NAMES.index("right_hip")]) / 2
    np.testing.assert_allclose([t.x, t.y, t.z], hips, atol=0.05)  # mid-hips (last frame)
    pos = client.position[tid][-1]
    assert pos.header.frame_id == "cam" and pos.point.z > 0
    # the body's links as robot_state_publisher would name them (human_description)
    assert client.tf[f"l_elbow_{tid}"].header.frame_id == f"l_shoulder_{tid}"
    assert client.tf[f"waist_{tid}"].header.frame_id == f"body_{tid}"
    assert client.tf[f"head_{tid}"].header.frame_id == f"p_head_{tid}"
    # the others are 2D only
    assert all(not client.joints[b] for b in ids if b != tid)


def test_single_body_without_lock(ctx):
    """No operator lock (no People2D): one body per continuous run of valid BodyPose, the
    image size from camera_info, and an invalid pose empties `tracked`."""
    from mocap_ros.ros.hri_bridge import HriBridge

    bridge = HriBridge(context=ctx)
    client = Client(ctx)
    probe = rclpy.create_node("rep155_probe", context=ctx)
    pose_pub = probe.create_publisher(BodyPose, "mocap/body_pose", 10)
    info_pub = probe.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    ex = make_executor(ctx, bridge, client.node, probe)

    from test_rep155 import _in_camera, _skeleton

    joints, _, origin = _in_camera(_skeleton(l_fore=(1, 0, 0)), seed=3)

    def pose(valid: bool) -> BodyPose:
        m = BodyPose(valid=valid, confidence=0.9, track_id=0)
        m.header.stamp = probe.get_clock().now().to_msg()
        m.header.frame_id = "cam"
        if valid:
            from geometry_msgs.msg import Point

            m.joints = [Point(x=float(a), y=float(b), z=float(c)) for a, b, c in joints]
            kp = joints[:, :2] / joints[:, 2:] * 500 + [320, 240]
            m.keypoints_2d = kp.reshape(-1).astype(np.float32).tolist()
            m.bbox = [float(kp[:, 0].min()), float(kp[:, 1].min()),
                      float(np.ptp(kp[:, 0])), float(np.ptp(kp[:, 1]))]
        return m

    try:
        assert wait_for(lambda: client.tracked and client.tracked[-1].ids, ex, timeout=20.0,
                        on_tick=lambda: (info_pub.publish(CameraInfo(width=640, height=480)),
                                         pose_pub.publish(pose(True))), tick_period=0.5)
        first = client.tracked[-1].ids[0]
        assert first.startswith("b")
        assert wait_for(lambda: client.roi.get(first) and client.joints.get(first), ex,
                        timeout=10.0, on_tick=lambda: pose_pub.publish(pose(True)),
                        tick_period=0.3)
        n = len(client.tracked)
        pose_pub.publish(pose(False))
        assert wait_for(lambda: any(not m.ids for m in client.tracked[n:]), ex, timeout=5.0)
        n = len(client.tracked)
        assert wait_for(lambda: any(m.ids for m in client.tracked[n:]), ex, timeout=5.0,
                        on_tick=lambda: pose_pub.publish(pose(True)), tick_period=0.3)
        assert client.tracked[-1].ids[0] not in ("", first)  # a new run, a new id
        # a malformed People2D (boxes for 2 people, landmarks for 1): a counted drop
        from mocap_ros.msg import People2D

        bad_pub = probe.create_publisher(People2D, "mocap/people", 10)
        bad = People2D(width=640, height=480, followed=-1, boxes=[0.0] * 8,
                       landmarks=[0.0] * 99)
        assert wait_for(lambda: bridge.stats["bad_people"] > 0, ex, timeout=10.0,
                        on_tick=lambda: bad_pub.publish(bad), tick_period=0.3)
    finally:
        ex.shutdown()
        for nd in (probe, client.node, bridge):
            nd.destroy_node()

    js = client.joints[first][-1]
    q = dict(zip(rep155.HUMAN_JOINT_NAMES, js.position, strict=True))
    assert q["l_elbow"] == pytest.approx(np.pi / 2, abs=1e-3)
    r = client.roi[first][-1]
    assert 0 <= r.xmin < r.xmax <= 1 and 0 <= r.ymin < r.ymax <= 1
    tf = client.tf[f"body_{first}"]
    np.testing.assert_allclose([tf.transform.translation.x, tf.transform.translation.y,
                                tf.transform.translation.z], origin, atol=1e-6)
