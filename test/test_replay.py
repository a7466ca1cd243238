"""``replay_bag`` over real DDS: timing, /clock, and mocap_node fed from a bag with
use_sim_time, whose poses must equal the offline ``process_bag`` result for the same frames.

Needs the ROS environment: ``bash scripts/in_env.sh python -m pytest test/test_replay.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy missing: run under scripts/in_env.sh")
pytest.importorskip("rosbags")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from mocap_ros.io.bags.types import POSE_TOPIC, BagError  # noqa: E402
from mocap_ros.offline.process import process_bag  # noqa: E402
from mocap_ros.ros.replay import replay_bag  # noqa: E402
from mocap_ros.tools.sample_bag import COMPRESSED_TOPIC, INFO_TOPIC, RAW_TOPIC, write_sample_bag  # noqa: E402

from ros_helpers import make_executor, ros_context, wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]


@pytest.fixture(scope="session")
def assets_root(synthetic_assets_root):
    """The session's synthetic FrankMocap files (test/conftest.py)."""
    return Path(synthetic_assets_root)


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class SimTime:
    """A stand-in for replay's ``time`` module: its clock moves only when replay waits."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


class SimStopEvent(threading.Event):
    """replay's stop event: every ``wait(dt)`` advances the simulated clock by exactly
    ``dt``. It still waits a little in real time (at most 20 ms), so DDS discovery and the
    subscribers keep up; how long that really takes does not change the simulated schedule."""

    def __init__(self, sim: SimTime) -> None:
        super().__init__()
        self.sim = sim

    def wait(self, timeout=None):
        if timeout is None:
            return super().wait()
        stopped = super().wait(min(timeout, 0.02))
        self.sim.t += timeout
        return stopped


class Replay:
    """replay_bag in a thread; the test's thread spins the executors meanwhile."""

    def __init__(self, path, stop=None, **kw):
        self.published: list[tuple[str, int, float]] = []
        self.summary = None
        self.error: BaseException | None = None
        self.stop = stop if stop is not None else threading.Event()

        def run():
            try:
                self.summary = replay_bag(path, on_published=self._on, stop_event=self.stop, **kw)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, name="replay", daemon=True)
        self.thread.start()

    def _on(self, topic, bag_time, wall):
        self.published.append((topic, bag_time, wall))

    def done(self):
        return not self.thread.is_alive()

    def join(self):
        self.stop.set()
        self.thread.join(timeout=10.0)
        if self.error is not None:
            raise self.error


def stamp_of(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_replay_honours_the_rate_and_publishes_clock(ctx, tmp_path, monkeypatch):
    """25 frames at 15 Hz (1.6 s of bag) replayed at rate 2: every message is published at
    its bag-time offset / 2 on replay's clock, in bag order; /clock follows. replay's clock
    is simulated (it advances by exactly what replay waits for), so the schedule is checked
    exactly and a busy machine cannot make it flake."""
    import mocap_ros.ros.replay as replay_mod

    sim = SimTime()
    monkeypatch.setattr(replay_mod, "time", sim)
    sample = write_sample_bag(tmp_path / "bag", storage="mcap", n_per=5)
    assert sample.duration_s == pytest.approx(1.6)
    probe = rclpy.create_node("probe", context=ctx)
    raw, comp, clocks = [], [], []
    probe.create_subscription(Image, RAW_TOPIC, lambda m: raw.append(stamp_of(m)),
                              qos_profile_sensor_data)
    probe.create_subscription(CompressedImage, COMPRESSED_TOPIC,
                              lambda m: comp.append(stamp_of(m)), qos_profile_sensor_data)
    probe.create_subscription(Clock, "/clock",
                              lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec),
                              100)
    ex = make_executor(ctx, probe)
    rate = 2.0
    replay = Replay(tmp_path / "bag", stop=SimStopEvent(sim), rate=rate, context=ctx,
                    wait_for_subscribers=15.0,
                    wait_topics=[RAW_TOPIC, COMPRESSED_TOPIC, "/clock"])
    try:
        assert wait_for(replay.done, ex, timeout=30.0)
        last = sample.frames[-1].bag_time_ns
        wait_for(lambda: len(raw) + len(comp) >= 25 and clocks and clocks[-1] == last, ex,
                 timeout=3.0)
    finally:
        replay.join()
        ex.shutdown()
        probe.destroy_node()
    pubs = replay.published
    assert len(pubs) == 50  # 25 images + 25 camera_info
    # bag order, and each message at exactly its bag offset / rate on replay's clock
    bag_times = [b for _, b, _ in pubs]
    assert bag_times == sorted(bag_times)
    t0_sim, t0_bag = pubs[0][2], pubs[0][1]
    offsets_sim = np.array([t - t0_sim for _, _, t in pubs])
    offsets_bag = (np.array(bag_times) - t0_bag) / 1e9
    np.testing.assert_allclose(offsets_sim, offsets_bag / rate, atol=1e-6)
    # /clock carried bag time, never backwards, ending at the last message's
    assert clocks == sorted(clocks) and clocks[-1] == sample.frames[-1].bag_time_ns
    summary = replay.summary
    assert summary.loops == 1 and not summary.interrupted
    assert summary.published == {RAW_TOPIC: 20, COMPRESSED_TOPIC: 5, INFO_TOPIC: 25}
    # the images arrive with the bag's header stamps
    expected = {(f.stamp_ns // 10**9, f.stamp_ns % 10**9) for f in sample.frames}
    assert set(raw) | set(comp) <= expected
    assert len(raw) + len(comp) >= 23  # best effort on loopback: practically all
    # /clock carries the bag time, never going back, over the whole bag
    assert clocks and clocks == sorted(clocks)
    assert clocks[0] >= sample.frames[0].bag_time_ns - 10**7
    assert clocks[-1] == sample.frames[-1].bag_time_ns
    assert summary.clock_messages >= 50


def test_node_on_replayed_bag_matches_offline_processing(ctx, tmp_path, assets_root):
    """mocap_node (use_sim_time) on the replayed bag: its poses carry the bag's stamps, it
    runs on the bag's clock, and they equal process_bag's for the same frames (1e-5)."""
    from mocap_ros.ros.mocap_node import MocapNode

    encodings = ("bgr8", "rgb8", "mono8", "yuv422_yuy2")
    sample = write_sample_bag(tmp_path / "bag", storage="sqlite3", encodings=encodings,
                              n_per=1)
    node = MocapNode(context=ctx, namespace="camera", parameter_overrides=[
        Parameter("assets_dir", value=str(assets_root)), Parameter("device", value="cpu"),
        Parameter("use_sim_time", value=True), Parameter("publish_markers", value=False)])
    from mocap_ros.msg import BodyPose

    probe = rclpy.create_node("probe", context=ctx)
    poses: dict[tuple[int, int], BodyPose] = {}
    probe.create_subscription(BodyPose, "/camera" + POSE_TOPIC,
                              lambda m: poses.setdefault(stamp_of(m), m), 100)
    ex = make_executor(ctx, node, probe)
    # slow enough that the node (one worker, newest frame wins) processes every frame
    replay = Replay(tmp_path / "bag", rate=0.25, context=ctx, wait_for_subscribers=15.0,
                    wait_topics=[RAW_TOPIC, INFO_TOPIC])
    try:
        assert wait_for(replay.done, ex, timeout=60.0)
        wait_for(lambda: len(poses) >= len(sample.frames), ex, timeout=10.0)
        sim_now = node.get_clock().now().nanoseconds
    finally:
        replay.join()
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
    stamps = {(f.stamp_ns // 10**9, f.stamp_ns % 10**9) for f in sample.frames}
    assert poses and set(poses) <= stamps  # exactly the bag's image stamps
    assert len(poses) >= len(sample.frames) - 1, node.stats  # practically every frame
    # the node's clock is the bag's (use_sim_time + /clock), not the wall clock
    assert sample.frames[0].bag_time_ns <= sim_now <= sample.frames[-1].bag_time_ns

    config = node.estimator.config
    summary = process_bag(tmp_path / "bag", tmp_path / "out", config, storage="mcap",
                          progress=False)
    assert summary.images == len(sample.frames)
    from rosbags.highlevel import AnyReader

    offline = {}
    with AnyReader([tmp_path / "out"]) as reader:
        conns = [c for c in reader.connections if c.topic == POSE_TOPIC]
        for c, _, data in reader.messages(conns):
            m = reader.deserialize(data, c.msgtype)
            offline[(m.header.stamp.sec, m.header.stamp.nanosec)] = m
    assert set(poses) <= set(offline)
    for key, live in poses.items():
        off = offline[key]
        assert live.valid == off.valid and live.reason == off.reason
        assert live.header.frame_id == off.header.frame_id
        for field in ("local_rotations", "global_rotations"):
            a = np.array([[q.x, q.y, q.z, q.w] for q in getattr(live, field)])
            b = np.array([[q.x, q.y, q.z, q.w] for q in getattr(off, field)])
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0, err_msg=field)
        a = np.array([[p.x, p.y, p.z] for p in live.joints])
        b = np.array([[p.x, p.y, p.z] for p in off.joints])
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)  # also checks K from camera_info
        for field in ("keypoints_2d", "betas", "camera", "bbox"):
            np.testing.assert_allclose(np.asarray(getattr(live, field)),
                                       np.asarray(getattr(off, field)), atol=1e-5, rtol=0,
                                       err_msg=field)
        assert live.confidence == pytest.approx(off.confidence, abs=1e-5)


def test_replay_loop_until_stopped_and_topic_filter(ctx, tmp_path):
    write_sample_bag(tmp_path / "bag", storage="mcap", encodings=("jpeg",), n_per=3,
                     rate_hz=30.0)
    passes = []

    def on_published(topic, bag_time, wall):
        passes.append(bag_time)

    stop = threading.Event()
    result = {}

    def run():
        result["s"] = replay_bag(tmp_path / "bag", rate=4.0, loop=True, clock=False,
                                 topics=[COMPRESSED_TOPIC], context=ctx,
                                 on_published=on_published, stop_event=stop)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20.0
    while len(passes) < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=10.0)
    assert not thread.is_alive()
    summary = result["s"]
    assert summary.loops >= 2 and summary.interrupted
    assert set(summary.published) == {COMPRESSED_TOPIC}  # camera_info filtered out
    assert summary.clock_messages == 0
    assert passes[:6] == passes[:3] * 2  # the bag starts over


def test_replay_unknown_topic_and_broken_bag(ctx, tmp_path):
    write_sample_bag(tmp_path / "bag", storage="mcap", encodings=("jpeg",), n_per=1)
    with pytest.raises(BagError, match="not in .*" + COMPRESSED_TOPIC):
        replay_bag(tmp_path / "bag", topics=["/nope"], context=ctx)
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(BagError, match="cannot read bag"):
        replay_bag(tmp_path / "junk.mcap", context=ctx)
    with pytest.raises(BagError, match="rate"):
        replay_bag(tmp_path / "bag", rate=0.0, context=ctx)
    assert ctx.ok()  # a caller's context is left alone


def test_rclpy_conversion_matches_the_shared_content():
    """mocap_ros.ros.convert (rclpy messages) and the bag writer (rosbags messages) fill
    BodyPose and TF with the same values: body_pose_content / transform_content."""
    from std_msgs.msg import Header

    from mocap_ros.core.result import BodyPoseResult
    from mocap_ros.io.messages import body_pose_content, transform_content
    from mocap_ros.ros.convert import to_body_pose, to_transforms

    rng = np.random.default_rng(5)
    q = rng.normal(size=(2, 24, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    result = BodyPoseResult(
        valid=True, reason="", confidence=0.75, local_rotations=q[0].astype(np.float32),
        global_rotations=q[1].astype(np.float32),
        joints_cam=rng.normal(size=(24, 3)).astype(np.float32),
        keypoints_2d=rng.uniform(0, 640, size=(24, 2)).astype(np.float32),
        betas=rng.normal(size=10).astype(np.float32), camera=np.float32([0.9, 0.1, -0.2]),
        root_translation=np.float32([0.1, 0.2, 3.0]), bbox=np.float32([10, 20, 300, 300]),
        timings_ms={"preprocess": 1.5, "inference": 40.25, "postprocess": 2.0, "total": 43.75})
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    msg = to_body_pose(result, header)
    c = body_pose_content(result)
    for key in ("valid", "reason", "confidence", "joint_names", "preprocess_ms",
                "inference_ms", "postprocess_ms", "total_ms", "n_iter", "precision", "device",
                "backend"):
        value = getattr(msg, key)
        assert (list(value) if key == "joint_names" else value) == pytest.approx(c[key]), key
    assert [(r.x, r.y, r.z, r.w) for r in msg.local_rotations] == c["local_rotations"]
    assert [(r.x, r.y, r.z, r.w) for r in msg.global_rotations] == c["global_rotations"]
    assert [(p.x, p.y, p.z) for p in msg.joints] == c["joints"]
    pos, ori = msg.root_pose.position, msg.root_pose.orientation
    assert (pos.x, pos.y, pos.z) == c["root_position"]
    assert (ori.x, ori.y, ori.z, ori.w) == c["root_orientation"]
    for key in ("keypoints_2d", "betas", "camera", "bbox"):
        np.testing.assert_array_equal(np.asarray(getattr(msg, key), np.float32), c[key])
    tfs = to_transforms(result, header, "m_")
    content = transform_content(result, "cam", "m_")
    assert len(tfs) == len(content) == 24
    for tf, ref in zip(tfs, content, strict=True):
        assert tf.header.frame_id == ref["parent"] and tf.child_frame_id == ref["child"]
        assert (tf.header.stamp.sec, tf.header.stamp.nanosec) == (12, 34)
        t, r = tf.transform.translation, tf.transform.rotation
        assert (t.x, t.y, t.z) == ref["translation"]
        assert (r.x, r.y, r.z, r.w) == ref["rotation"]


def test_processed_bag_replays_as_real_ros_messages(ctx, tmp_path, assets_root):
    """The BodyPose/TFMessage CDR that process_bag writes (rosbags' serializer) is what
    rclpy's generated types read: replay the output and receive them over DDS."""
    from rosbags.highlevel import AnyReader
    from tf2_msgs.msg import TFMessage

    from mocap_ros.core.config import MocapConfig
    from mocap_ros.msg import BodyPose

    write_sample_bag(tmp_path / "in", storage="mcap", encodings=("jpeg", "rgb8"), n_per=1)
    config = MocapConfig(assets_dir=str(assets_root), device="cpu")
    process_bag(tmp_path / "in", tmp_path / "out", config, storage="sqlite3", progress=False)
    with AnyReader([tmp_path / "out"]) as reader:
        conns = [c for c in reader.connections if c.topic == POSE_TOPIC]
        offline = [reader.deserialize(d, c.msgtype) for c, _, d in reader.messages(conns)]
    probe = rclpy.create_node("probe", context=ctx)
    poses, tfs = [], []
    probe.create_subscription(BodyPose, POSE_TOPIC, poses.append, 10)
    probe.create_subscription(TFMessage, "/tf", tfs.append, 10)
    ex = make_executor(ctx, probe)
    replay = Replay(tmp_path / "out", rate=5.0, context=ctx, topics=[POSE_TOPIC, "/tf"],
                    wait_for_subscribers=15.0, wait_topics=[POSE_TOPIC, "/tf"])
    try:
        n_valid = sum(p.valid for p in offline)
        assert wait_for(lambda: replay.done() and len(poses) == 2 and len(tfs) == n_valid, ex,
                        timeout=20.0)
    finally:
        replay.join()
        ex.shutdown()
        probe.destroy_node()
    for live, off in zip(poses, offline, strict=True):
        assert stamp_of(live) == stamp_of(off) and live.header.frame_id == off.header.frame_id
        assert live.valid == off.valid and live.precision == off.precision == "fp32"
        assert list(live.joint_names) == list(off.joint_names)
        assert [(q.x, q.y, q.z, q.w) for q in live.local_rotations] == \
            [(q.x, q.y, q.z, q.w) for q in off.local_rotations]
        np.testing.assert_array_equal(np.asarray(live.keypoints_2d), off.keypoints_2d)
        np.testing.assert_array_equal(np.asarray(live.bbox), off.bbox)
        assert live.total_ms == off.total_ms
    assert all(len(t.transforms) == 24 for t in tfs)
