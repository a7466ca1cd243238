"""BodyPose and tf2_msgs/TFMessage over real DDS: a publisher node and a subscriber node,
each in its own rclpy context (its own DDS participant), exchange fully filled messages.

Needs the ROS environment: `bash scripts/in_env.sh python -m pytest test/test_ros_messages.py`.
"""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy missing: run under scripts/in_env.sh")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_helpers import make_executor, ros_context, wait_for  # noqa: E402

try:
    from tf2_msgs.msg import TFMessage

    from mocap_ros.msg import BodyPose
except ImportError as exc:  # rclpy is there, so the build is: a missing message is a bug
    raise ImportError(f"{exc}: the ROS messages are not built; run `make setup`") from exc

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

JOINTS = ["pelvis", "left_hip", "right_hip"]


@pytest.fixture
def pub_ctx():
    with ros_context() as context:
        yield context


@pytest.fixture
def sub_ctx():
    with ros_context() as context:
        yield context


def _exchange(pub_ctx, sub_ctx, msg_type, topic, msg, qos=10, publish_once=False):
    """Publish ``msg`` from a node in ``pub_ctx``; return what a node in ``sub_ctx`` got."""
    pub_node = rclpy.create_node("test_pub", context=pub_ctx)
    sub_node = rclpy.create_node("test_sub", context=sub_ctx)
    pub_exec = make_executor(pub_ctx, pub_node)
    sub_exec = make_executor(sub_ctx, sub_node)
    received = []
    try:
        pub = pub_node.create_publisher(msg_type, topic, qos)
        if publish_once:  # transient local: published before anyone listens
            pub.publish(msg)
        sub_node.create_subscription(msg_type, topic, received.append, qos)
        # Publishing every 100 ms until one arrives rides out discovery.
        ok = wait_for(
            lambda: bool(received),
            pub_exec,
            sub_exec,
            timeout=20.0,
            on_tick=None if publish_once else (lambda: pub.publish(msg)),
        )
        assert ok, f"nothing received on {topic} within 20 s"
        # The graph shows the wire type name real ROS 2 tools expect.
        types = dict(sub_node.get_topic_names_and_types())
        assert topic in types
        return received[0], types[topic]
    finally:
        pub_exec.shutdown()
        sub_exec.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()


def _quat(i: int) -> Quaternion:
    return Quaternion(x=0.125 * i, y=-0.25, z=0.5, w=1.0 - 0.0625 * i)


def _full_body_pose() -> BodyPose:
    msg = BodyPose()
    msg.header.stamp = Time(sec=1_700_000_123, nanosec=456_789_000)
    msg.header.frame_id = "camera_color_optical_frame"
    msg.valid = True
    msg.reason = "ok – ünïcode"
    msg.confidence = 0.875
    msg.joint_names = JOINTS
    msg.local_rotations = [_quat(i) for i in range(len(JOINTS))]
    msg.global_rotations = [_quat(i + 3) for i in range(len(JOINTS))]
    msg.root_pose = Pose()
    msg.root_pose.position = Point(x=0.1, y=-0.2, z=2.5)
    msg.root_pose.orientation = _quat(7)
    msg.joints = [Point(x=0.5 * i, y=-0.25 * i, z=2.0 + i) for i in range(len(JOINTS))]
    msg.keypoints_2d = [320.5, 240.25, 300.0, 260.0, 340.0, 261.5]
    msg.betas = [0.5, -1.25, 0.0, 2.0, 0.125, -0.5, 1.0, 0.75, -2.0, 0.25]
    msg.camera = [0.875, 0.0625, -0.125]
    msg.bbox = [100.0, 50.5, 224.0, 448.0]
    msg.preprocess_ms = 1.5
    msg.inference_ms = 165.25
    msg.postprocess_ms = 3.75
    msg.total_ms = 170.5
    msg.n_iter = 3
    msg.precision = "fp32"
    msg.device = "cuda:0"
    msg.backend = "hmr"
    return msg


def test_body_pose_fields_are_the_contract():
    assert BodyPose.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "valid": "boolean",
        "reason": "string",
        "confidence": "float",
        "joint_names": "sequence<string>",
        "local_rotations": "sequence<geometry_msgs/Quaternion>",
        "global_rotations": "sequence<geometry_msgs/Quaternion>",
        "root_pose": "geometry_msgs/Pose",
        "joints": "sequence<geometry_msgs/Point>",
        "keypoints_2d": "sequence<float>",
        "betas": "sequence<float>",
        "camera": "float[3]",
        "bbox": "float[4]",
        "preprocess_ms": "float",
        "inference_ms": "float",
        "postprocess_ms": "float",
        "total_ms": "float",
        "n_iter": "uint8",
        "precision": "string",
        "device": "string",
        "backend": "string",
        "joint_confidence": "sequence<float>",
        "person_check": "uint8",
        "person_score": "float",
        "track_id": "uint32",
        "operator_match": "float",
        "operator_state": "string",
        "left_hand": "mocap_ros/HandPose",
        "right_hand": "mocap_ros/HandPose",
    }


def test_hand_pose_fields_are_the_contract():
    from mocap_ros.msg import HandPose

    assert HandPose.get_fields_and_field_types() == {
        "valid": "boolean",
        "reason": "string",
        "confidence": "float",
        "keypoints": "sequence<geometry_msgs/Point>",
        "keypoints_2d": "sequence<float>",
        "orientation": "geometry_msgs/Quaternion",
        "finger_curl": "float[5]",
        "aperture": "float",
    }
    # the core's constants are the message's
    from mocap_ros.core import result

    assert (BodyPose.PERSON_UNCHECKED, BodyPose.PERSON_CONFIRMED, BodyPose.PERSON_NOT_FOUND) \
        == (result.PERSON_UNCHECKED, result.PERSON_CONFIRMED, result.PERSON_NOT_FOUND)


def test_body_pose_round_trips_over_dds(pub_ctx, sub_ctx):
    sent = _full_body_pose()
    got, types = _exchange(pub_ctx, sub_ctx, BodyPose, "/mocap/body_pose", sent)
    assert types == ["mocap_ros/msg/BodyPose"]
    # Message __eq__ compares every field (arrays element-wise).
    assert got == sent
    # ...and spelled out, so a failure says which field.
    assert got.header.stamp == sent.header.stamp
    assert got.header.frame_id == "camera_color_optical_frame"
    assert got.valid is True
    assert got.reason == "ok – ünïcode"
    assert got.confidence == pytest.approx(0.875)
    assert list(got.joint_names) == JOINTS
    assert list(got.local_rotations) == list(sent.local_rotations)
    assert list(got.global_rotations) == list(sent.global_rotations)
    assert got.root_pose == sent.root_pose
    assert list(got.joints) == list(sent.joints)
    assert list(got.keypoints_2d) == [320.5, 240.25, 300.0, 260.0, 340.0, 261.5]
    assert list(got.betas) == list(sent.betas)
    assert list(got.camera) == [0.875, 0.0625, -0.125]
    assert list(got.bbox) == [100.0, 50.5, 224.0, 448.0]
    assert (got.preprocess_ms, got.inference_ms, got.postprocess_ms, got.total_ms) == (
        1.5,
        165.25,
        3.75,
        170.5,
    )
    assert got.n_iter == 3
    assert (got.precision, got.device, got.backend) == ("fp32", "cuda:0", "hmr")


def test_invalid_body_pose_round_trips(pub_ctx, sub_ctx):
    sent = BodyPose(valid=False, reason="no person detected", backend="landmarks")
    sent.header.frame_id = "camera_optical_frame"
    got, _ = _exchange(pub_ctx, sub_ctx, BodyPose, "/mocap/body_pose_invalid", sent)
    assert got == sent
    assert not got.valid and got.reason == "no person detected"
    assert len(got.joints) == 0 and len(got.joint_names) == 0


def _tf_message() -> TFMessage:
    transforms = []
    for i, child in enumerate(JOINTS):
        t = TransformStamped()
        t.header.stamp = Time(sec=42, nanosec=1000 * i)
        t.header.frame_id = "camera_color_optical_frame" if i == 0 else "mocap/pelvis"
        t.child_frame_id = f"mocap/{child}"
        t.transform.translation.x = 0.25 * i
        t.transform.translation.y = -0.5
        t.transform.translation.z = 2.0
        t.transform.rotation = _quat(i)
        transforms.append(t)
    return TFMessage(transforms=transforms)


def test_tf_message_round_trips_on_tf(pub_ctx, sub_ctx):
    sent = _tf_message()
    # tf2_ros's /tf QoS: reliable, volatile, depth 100.
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    got, types = _exchange(pub_ctx, sub_ctx, TFMessage, "/tf", sent, qos=qos)
    assert types == ["tf2_msgs/msg/TFMessage"]
    assert got == sent
    assert [t.child_frame_id for t in got.transforms] == [f"mocap/{j}" for j in JOINTS]


def test_tf_static_reaches_a_late_subscriber(pub_ctx, sub_ctx):
    sent = _tf_message()
    # tf2_ros's /tf_static QoS: reliable, transient local, depth 1; published once.
    qos = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    got, types = _exchange(
        pub_ctx, sub_ctx, TFMessage, "/tf_static", sent, qos=qos, publish_once=True
    )
    assert types == ["tf2_msgs/msg/TFMessage"]
    assert got == sent
