"""mocap_node over real DDS: frames in from a separate node, poses/TF/diagnostics out."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from mocap_ros.core.skeleton import JOINT_NAMES
from mocap_ros.io.images import rgb_to_compressed, rgb_to_raw
from mocap_ros.msg import BodyPose
from mocap_ros.ros.mocap_node import MocapNode

from ros_helpers import make_executor, ros_context, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


@pytest.fixture(scope="module")
def frames():
    from mocap_ros.tools.frames import bench_frames

    return bench_frames(6, seed=3)[0]


def make_node(ctx, assets_root, **params):
    params = {"assets_dir": str(assets_root), "diagnostics_period": 0.2, **params}
    return MocapNode(context=ctx,
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


class Probe:
    """A separate node: publishes images, records poses, TF and diagnostics."""

    def __init__(self, ctx, compressed=False):
        self.node = rclpy.create_node("probe", context=ctx)
        if compressed:
            self.pub = self.node.create_publisher(CompressedImage, "image_raw/compressed",
                                                  qos_profile_sensor_data)
        else:
            self.pub = self.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.poses, self.tfs, self.diags = [], [], []
        self.node.create_subscription(BodyPose, "mocap/body_pose",
                                      lambda m: self.poses.append((m, time.monotonic())), 100)
        self.node.create_subscription(TFMessage, "/tf", self.tfs.append, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 100)
        self.sent: dict[tuple[int, int], float] = {}
        self.count = 0

    def image(self, rgb, enc="bgr8", **override):
        data, step = rgb_to_raw(rgb, enc)
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=enc, step=step,
                    data=data)
        for k, v in override.items():
            setattr(msg, k, v)
        return self._stamp(msg)

    def compressed(self, rgb, fmt="jpeg", data=None):
        msg = CompressedImage(format=fmt, data=data if data is not None
                              else rgb_to_compressed(rgb, fmt))
        return self._stamp(msg)

    def _stamp(self, msg):
        self.count += 1
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + self.count, 123
        msg.header.frame_id = "cam_optical"
        return msg

    def publish(self, msg):
        self.sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()
        self.pub.publish(msg)

    def last_status(self):
        for arr in reversed(self.diags):
            for st in arr.status:
                if st.name.startswith("mocap_node"):
                    return st
        return None

    def last_diag(self):
        for arr in reversed(self.diags):
            for st in arr.status:
                if st.name.startswith("mocap_node"):
                    return {kv.key: kv.value for kv in st.values}
        return {}


def discover(probe, node, ex, rgb):
    """Publish until the node answers once: rides out DDS discovery."""
    first = probe.image(rgb)
    assert wait_for(lambda: probe.poses, ex, timeout=20.0,
                    on_tick=lambda: probe.publish(first), tick_period=0.5)
    wait_for(lambda: False, ex, timeout=0.5)
    probe.poses.clear()
    probe.tfs.clear()


def test_poses_and_tf_carry_the_image_stamp_and_frame(ctx, synthetic_assets_root, frames):
    node = make_node(ctx, synthetic_assets_root)
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        discover(probe, node, ex, frames[0])
        for rgb in frames[1:]:
            msg = probe.image(rgb)
            probe.publish(msg)
            wait_for(lambda: False, ex, timeout=1 / 30)
        n_sent = len(frames) - 1
        assert wait_for(lambda: len(probe.poses) + node.stats["dropped_overload"] >= n_sent,
                        ex, timeout=30.0)
        wait_for(lambda: False, ex, timeout=0.5)
        assert probe.poses
        tf_by_stamp = {}
        for tfm in probe.tfs:
            for t in tfm.transforms:
                key = (t.header.stamp.sec, t.header.stamp.nanosec)
                tf_by_stamp.setdefault(key, []).append(t)
        for pose, _ in probe.poses:
            key = (pose.header.stamp.sec, pose.header.stamp.nanosec)
            assert key in probe.sent  # exactly a published image's stamp
            assert pose.header.frame_id == "cam_optical"
            assert len(pose.joints) == 24 and list(pose.joint_names) == list(JOINT_NAMES)
            assert len(pose.keypoints_2d) == 48 and pose.n_iter == 1
            if pose.valid:
                tfs = tf_by_stamp[key]
                children = {t.child_frame_id: t.header.frame_id for t in tfs}
                assert set(children) == {"mocap_" + n for n in JOINT_NAMES}
                assert children["mocap_pelvis"] == "cam_optical"
                # every joint's chain reaches the camera frame
                for child in children:
                    frame, hops = child, 0
                    while frame != "cam_optical":
                        frame, hops = children[frame], hops + 1
                        assert hops <= 24
                root = next(t for t in tfs if t.child_frame_id == "mocap_pelvis")
                assert root.transform.translation.z == pytest.approx(pose.root_pose.position.z)
        assert any(p.valid for p, _ in probe.poses)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


def test_overload_drops_newest_wins_and_latency_stays_bounded(ctx, synthetic_assets_root, frames):
    node = make_node(ctx, synthetic_assets_root, publish_tf=False, publish_markers=False)
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        discover(probe, node, ex, frames[0])
        # 60 frames at ~200 Hz: far faster than ResNet-50 on this CPU
        for i in range(60):
            probe.publish(probe.image(frames[i % len(frames)]))
            wait_for(lambda: False, ex, timeout=0.005)
        assert wait_for(lambda: node.stats["dropped_overload"] > 0 and not node._slot._item,
                        ex, timeout=30.0)
        wait_for(lambda: False, ex, timeout=1.0)
        lat = [(arr - probe.sent[(m.header.stamp.sec, m.header.stamp.nanosec)])
               for m, arr in probe.poses]
        per_frame = np.median([m.total_ms for m, _ in probe.poses]) / 1e3
        # no queue: a pose is at most ~two processing times behind its frame, never 60
        assert max(lat) < 3 * per_frame + 0.5, (max(lat), per_frame)
        # the last published frame is the one processed last (newest wins)
        last_stamp = max(probe.sent)
        assert (probe.poses[-1][0].header.stamp.sec,
                probe.poses[-1][0].header.stamp.nanosec) == last_stamp
        assert len(probe.poses) < 40
        # nothing is sent any more and the worker is idle: the count is final, and the next
        # report must carry exactly it
        final = node.stats["dropped_overload"]
        assert wait_for(lambda: probe.last_diag().get("dropped_overload") == str(final), ex,
                        timeout=5.0)
        assert node.stats["dropped_overload"] == final
        diag = probe.last_diag()
        assert diag["precision"] == "fp32" and diag["n_iter"] == "1"
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


MALFORMED = [
    ("unknown_encoding", dict(encoding="bayer_rggb16")),
    ("step_mismatch", dict(step=10)),
    ("size_mismatch", dict(data=b"\x00" * 100)),
    ("zero_size", dict(width=0, height=0, step=0, data=b"")),
]


def test_malformed_images_are_counted_and_never_crash(ctx, synthetic_assets_root, frames):
    node = make_node(ctx, synthetic_assets_root, publish_tf=False, max_image_pixels=1000 * 1000)
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        discover(probe, node, ex, frames[0])
        kinds = [k for k, _ in MALFORMED] + ["too_large"]
        big = np.zeros((1100, 1000, 3), np.uint8)
        bad = [probe.image(frames[1], **o) for _, o in MALFORMED] + [probe.image(big)]
        for msg in bad:
            probe.publish(msg)
            # one at a time, so none is replaced before the worker sees it
            n = node.stats["bad_frames"]
            assert wait_for(lambda n=n: node.stats["bad_frames"] > n, ex, timeout=10.0)
        for kind in kinds:
            assert node.stats[f"bad_frames_{kind}"] == 1, kind
        assert node._worker.is_alive()
        good = probe.image(frames[2])
        probe.publish(good)
        key = (good.header.stamp.sec, good.header.stamp.nanosec)
        assert wait_for(lambda: any((m.header.stamp.sec, m.header.stamp.nanosec) == key
                                    for m, _ in probe.poses), ex, timeout=20.0)
        assert wait_for(lambda: probe.last_diag().get("bad_frames") == str(len(kinds)), ex,
                        timeout=5.0)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


def test_diagnostics_judge_bad_frames_over_a_recent_window(ctx, synthetic_assets_root, frames):
    """One bad frame is a WARN for the window, then history: OK again, total kept."""
    node = make_node(ctx, synthetic_assets_root, publish_tf=False, diagnostics_window=1.0,
                     camera_timeout=5.0)
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        discover(probe, node, ex, frames[0])
        probe.publish(probe.image(frames[1], step=1))
        assert wait_for(lambda: node.stats["bad_frames"] == 1, ex, timeout=10.0)

        def level_is(level, prefix=""):
            st = probe.last_status()
            return st is not None and st.level == level and st.message.startswith(prefix)

        assert wait_for(lambda: level_is(DiagnosticStatus.WARN, "dropping bad frames"), ex,
                        timeout=5.0)
        # good frames keep arriving (no stall); after the 1 s window the warning is history
        good = lambda: probe.publish(probe.image(frames[2]))  # noqa: E731
        assert wait_for(lambda: level_is(DiagnosticStatus.OK), ex, timeout=15.0,
                        on_tick=good, tick_period=0.3)
        diag = probe.last_diag()
        assert diag["bad_frames"] == "1" and diag["problems_window"] == "0"
        assert diag["diagnostics_window_s"] == "1"
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


def test_frames_lost_before_the_callback_are_reported(ctx, synthetic_assets_root, frames):
    """camera_info arrives for every frame, the image for every other one: the node never
    sees the missing images, and /diagnostics must say how many were lost."""
    node = make_node(ctx, synthetic_assets_root, publish_tf=False, publish_markers=False,
                     camera_timeout=5.0)
    probe = Probe(ctx)
    info_pub = probe.node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    ex = make_executor(ctx, node, probe.node)
    try:
        discover(probe, node, ex, frames[0])
        assert wait_for(lambda: info_pub.get_subscription_count() > 0, ex, timeout=10.0)
        received0 = node.stats["received"]
        for i in range(40):
            img = probe.image(frames[i % len(frames)])
            info = CameraInfo(header=img.header, width=img.width, height=img.height)
            info_pub.publish(info)
            if i % 2 == 0:
                probe.publish(img)
            wait_for(lambda: False, ex, timeout=0.05)
        # judged after the grace period; the estimate is exact: every info stamp without an
        # image that reached the callback
        def lost_total():
            d = probe.last_diag()
            return d.get("frames_lost_source"), d.get("frames_lost_total")

        wait_for(lambda: False, ex, timeout=1.5)
        got = node.stats["received"] - received0
        assert got <= 20
        assert wait_for(lambda: lost_total() == ("camera_info", str(40 - got)), ex,
                        timeout=10.0), (lost_total(), got)
        st = probe.last_status()
        assert st.level == DiagnosticStatus.WARN and "lost before the callback" in st.message
        diag = probe.last_diag()
        assert float(diag["image_expected_rate_hz"]) > 0
        assert diag["image_reliability"] == "best_effort"
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


@pytest.mark.parametrize("reliability", ["best_effort", "reliable"])
def test_image_reliability_parameter_sets_the_subscription_qos(ctx, synthetic_assets_root,
                                                               reliability):
    node = make_node(ctx, synthetic_assets_root, image_reliability=reliability)
    try:
        infos = node.get_subscriptions_info_by_topic("/image_raw")
        mine = [i for i in infos if i.node_name == "mocap_node"]
        assert len(mine) == 1
        want = ReliabilityPolicy.RELIABLE if reliability == "reliable" else \
            ReliabilityPolicy.BEST_EFFORT
        assert mine[0].qos_profile.reliability == want
    finally:
        node.destroy_node()


def test_compressed_transport_and_garbage_jpeg(ctx, synthetic_assets_root, frames):
    node = make_node(ctx, synthetic_assets_root, image_transport="compressed", publish_tf=False)
    probe = Probe(ctx, compressed=True)
    ex = make_executor(ctx, node, probe.node)
    try:
        first = probe.compressed(frames[0])
        assert wait_for(lambda: probe.poses, ex, timeout=20.0,
                        on_tick=lambda: probe.publish(first), tick_period=0.5)
        probe.publish(probe.compressed(None, data=b"\xff\xd8 definitely not a jpeg"))
        assert wait_for(lambda: node.stats["bad_frames_decode_failed"] == 1, ex, timeout=10.0)
        good = probe.compressed(frames[1], fmt="png")
        probe.publish(good)
        assert wait_for(lambda: probe.poses[-1][0].header.stamp.sec == good.header.stamp.sec,
                        ex, timeout=20.0)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_iter": 9}, "n_iter"),
        ({"precision": "fp8"}, "precision"),
        ({"image_transport": "theora"}, "image_transport"),
        ({"process_every_n": 0}, "process_every_n"),
        ({"image_reliability": "maybe"}, "image_reliability"),
    ],
)
def test_invalid_parameters_are_rejected_by_name(ctx, synthetic_assets_root, params, match):
    with pytest.raises(ValueError, match=match):
        make_node(ctx, synthetic_assets_root, **params)


def test_missing_model_files_stop_startup_with_what_and_where(ctx, tmp_path):
    with pytest.raises(Exception, match=r"(?s)missing.*smpl_mean_params\.npz") as info:
        make_node(ctx, tmp_path)
    assert "download" in str(info.value).lower() or "fetch" in str(info.value).lower()
    with pytest.raises(ValueError, match="backend=hmr needs model files"):
        MocapNode(context=ctx, parameter_overrides=[Parameter("backend", value="hmr")])


def test_clean_shutdown_leaves_no_thread(ctx, synthetic_assets_root):
    before = {t.ident for t in threading.enumerate()}
    node = make_node(ctx, synthetic_assets_root)
    worker = node._worker
    assert worker.is_alive()
    node.destroy_node()
    assert not worker.is_alive()
    assert {t.ident for t in threading.enumerate()} - before == set()


def test_without_model_files_the_landmarks_backend_gives_real_poses(ctx):
    """The built-in default: no FrankMocap files -> MediaPipe landmarks + IK, same outputs."""
    from skimage import data

    node = MocapNode(context=ctx, parameter_overrides=[Parameter("diagnostics_period",
                                                                 value=0.2)])
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[:, 64:576] = data.astronaut()[16:496]
        msg = probe.image(frame)
        assert wait_for(lambda: probe.poses, ex, timeout=30.0,
                        on_tick=lambda: probe.publish(msg), tick_period=0.5)
        pose = probe.poses[-1][0]
        assert pose.backend == "landmarks" and len(pose.joints) == 24
        assert pose.header.frame_id == "cam_optical" and pose.confidence > 0
        assert pose.root_pose.position.z > 0
        # the person's left shoulder is on the image's right (she faces the camera)
        kp = np.array(pose.keypoints_2d).reshape(24, 2)
        assert kp[16, 0] > kp[17, 0]
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


def test_hmr_with_detector_reports_no_person_on_an_empty_scene(ctx, synthetic_assets_root):
    """HMR alone regresses a body from any crop; the detector box is what says nobody is
    there, so an empty scene never becomes a valid pose (teleop would follow it)."""
    node = make_node(ctx, synthetic_assets_root, bbox_mode="detector", detector_every_n=1,
                     publish_tf=False)
    probe = Probe(ctx)
    ex = make_executor(ctx, node, probe.node)
    try:
        empty = probe.image(np.full((480, 640, 3), 90, np.uint8))
        assert wait_for(lambda: len(probe.poses) >= 3, ex, timeout=30.0,
                        on_tick=lambda: probe.publish(empty), tick_period=0.3)
        assert all(not m.valid and m.reason == "no_person" for m, _ in probe.poses)
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.node.destroy_node()


def test_estimators_are_closed_only_after_the_worker_stopped(ctx):
    """Issue 21 item 6: destroy_node whose join times out must not close MediaPipe under the
    worker (a use-after-free); the worker closes the estimators when it ends. Before the fix
    they were closed right after the timed-out join, the worker still running."""
    node = MocapNode(context=ctx, parameter_overrides=[Parameter("publish_tf", value=False)])
    closed_while: list[tuple[bool, str]] = []  # (worker alive?, closing thread)
    real_close = node.estimator.close

    def close() -> None:
        closed_while.append((node._worker.is_alive(), threading.current_thread().name))
        real_close()

    node.estimator.close = close
    node.destroy_node(join_timeout=0.0)  # the worker is still in its loop
    node._worker.join(5.0)
    assert not node._worker.is_alive()
    assert len(closed_while) == 1, closed_while
    alive, thread = closed_while[0]
    assert not alive or thread == "mocap_worker", closed_while
