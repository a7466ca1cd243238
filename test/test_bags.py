"""Offline bag processing (``mocap_ros.io.bags.types.process_bag``, ``mocap-ros process``) on real
rosbag2 bags written by ``rosbags`` (mcap and sqlite3), with the real pipeline on the
synthetic model files. No ROS installation needed (rosbags is pure Python)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mocap_ros.geometry.rotations import quat_to_matrix, quat_to_rotvec

pytest.importorskip("rosbags")

from mocap_ros.core.skeleton import JOINT_NAMES, PARENTS
from mocap_ros.io.bags.csv_rows import csv_header
from mocap_ros.io.bags.progress import Progress
from mocap_ros.io.bags.reader import camera_info_topic_for
from mocap_ros.io.bags.types import BODY_POSE_TYPE, POSE_TOPIC, TF_TOPIC, BagError, body_pose_msgdef
from mocap_ros.io.messages import transform_content
from mocap_ros.offline.process import process_bag
from mocap_ros.tools.sample_bag import (
    COMPRESSED_TOPIC,
    FRAME_ID,
    INFO_TOPIC,
    RAW_TOPIC,
    K,
    sample_frame,
    write_sample_bag,
)

pytestmark = pytest.mark.timeout(120)

ENCODINGS = ("bgr8", "rgb8", "mono8", "yuv422_yuy2", "jpeg")
TIMING_FIELDS = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def assets_root(synthetic_assets_root):
    """The session's synthetic FrankMocap files (test/conftest.py)."""
    return Path(synthetic_assets_root)


@pytest.fixture(scope="module")
def config(assets_root):
    from mocap_ros.core.config import MocapConfig

    return MocapConfig(assets_dir=str(assets_root), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def pipeline(config):
    from mocap_ros.estimation.hmr.pipeline import MocapPipeline

    return MocapPipeline(config)


@pytest.fixture(scope="module")
def processed(tmp_path_factory, pipeline):
    """The sample bag (one frame per encoding) in both formats, and its processed output."""
    out = {}
    for storage in ("mcap", "sqlite3"):
        d = tmp_path_factory.mktemp(f"processed_{storage}")
        sample = write_sample_bag(d / "in", storage=storage, encodings=ENCODINGS, n_per=1)
        csv_path = d / "poses.csv" if storage == "mcap" else None
        summary = process_bag(d / "in", d / "out", pipeline=pipeline, storage=storage,
                              csv_path=csv_path, progress=False)
        out[storage] = (sample, summary, d / "out", csv_path)
    return out


# ----------------------------------------------------------------------------- helpers
def read_bag(path, tolerate_bad_cdr=False):
    """{topic: [(bag_time, msg)]}, deserialized with ONLY the definitions stored in the bag
    (a fresh, empty typestore: mocap_ros's types are not registered anywhere else)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    out: dict[str, list] = {}
    with Reader(Path(path)) as reader:
        types = {}
        for c in reader.connections:
            types.update(get_types_from_msg(c.msgdef.data, c.msgtype))
        store.register(types)
        for c in reader.connections:
            assert store.hash_rihs01(c.msgtype) == c.digest, c.topic
            out.setdefault(c.topic, [])
        for c, t, data in reader.messages():
            try:
                msg = store.deserialize_cdr(data, c.msgtype)
            except Exception:
                if not tolerate_bad_cdr:
                    raise
                msg = bytes(data)  # a broken message the test wrote on purpose
            out[c.topic].append((t, msg))
    return out


def raw_messages(path, topics=None):
    from rosbags.rosbag2 import Reader

    with Reader(Path(path)) as reader:
        return [(c.topic, c.msgtype, t, bytes(d)) for c, t, d in reader.messages()
                if topics is None or c.topic in topics]


def stamp(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def quats(arr):
    return np.array([[q.x, q.y, q.z, q.w] for q in arr])


def points(arr):
    return np.array([[p.x, p.y, p.z] for p in arr])


def pose_values(msg):
    """Every BodyPose field but the timings, as comparable numbers/strings."""
    return {
        "stamp": stamp(msg), "frame_id": msg.header.frame_id, "valid": msg.valid,
        "reason": msg.reason, "confidence": msg.confidence,
        "joint_names": list(msg.joint_names),
        "local": quats(msg.local_rotations), "global": quats(msg.global_rotations),
        "joints": points(msg.joints), "kp": np.asarray(msg.keypoints_2d),
        "betas": np.asarray(msg.betas), "camera": np.asarray(msg.camera),
        "bbox": np.asarray(msg.bbox), "n_iter": msg.n_iter, "precision": msg.precision,
        "device": msg.device, "backend": msg.backend,
    }


def assert_same_pose(a, b, atol=0.0):
    va, vb = pose_values(a), pose_values(b)
    for key in va:
        if isinstance(va[key], np.ndarray):
            np.testing.assert_allclose(va[key], vb[key], atol=atol, rtol=0, err_msg=key)
        else:
            assert va[key] == vb[key], key


def run_cli(argv):
    """`mocap-ros ...` in process, through the real command's parser: a command that the
    parser no longer registers fails the test (SystemExit), never falls back."""
    from mocap_ros.cli import main as cli

    args = cli.build_parser().parse_args(argv)
    return int(args.func(args))


def write_bag(path, messages, storage="mcap"):
    """messages: [(topic, msgtype, bag_time, msg object or raw bytes)] -> a rosbag2 bag."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    conns = {}
    with Writer(Path(path), version=8, storage_plugin=StoragePlugin[storage.upper()]) as w:
        for topic, msgtype, t, msg in messages:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=store)
            data = msg if isinstance(msg, bytes) else bytes(store.serialize_cdr(msg, msgtype))
            w.write(conns[topic], t, data)
    return store


def ros_types():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY).types


def image_msg(rgb, encoding, sec, frame_id=FRAME_ID, **override):
    from mocap_ros.io.images import rgb_to_raw

    T = ros_types()
    data, step = rgb_to_raw(rgb, encoding)
    fields = dict(header=T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=0), frame_id=frame_id),
        height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0, step=step,
        data=np.frombuffer(data, np.uint8))
    fields.update(override)
    return T["sensor_msgs/msg/Image"](**fields)


def camera_info_msg(sec, fx, width=640, height=480):
    T = ros_types()
    return T["sensor_msgs/msg/CameraInfo"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec,
                                                                                nanosec=0),
                                        frame_id=FRAME_ID),
        height=height, width=width, distortion_model="plumb_bob", d=np.zeros(5),
        k=np.array([fx, 0, 319.5, 0, fx, 239.5, 0, 0, 1], np.float64), r=np.eye(3).reshape(-1),
        p=np.zeros(12), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


# ----------------------------------------------------------------------------- happy path
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_one_pose_per_image_with_its_stamp(processed, storage):
    sample, summary, out, _ = processed[storage]
    assert summary.complete and summary.images == len(ENCODINGS) == len(sample.frames)
    assert summary.bad_images == 0
    bag = read_bag(out)
    images = bag[RAW_TOPIC] + bag[COMPRESSED_TOPIC]
    poses = bag[POSE_TOPIC]
    assert len(poses) == len(images) == len(ENCODINGS)
    image_by_stamp = {stamp(m): t for t, m in images}
    assert len(image_by_stamp) == len(images)
    for t, pose in poses:
        assert stamp(pose) in image_by_stamp  # exactly an image's header stamp
        assert t == image_by_stamp[stamp(pose)]  # ... at that image's bag time
        assert pose.header.frame_id == FRAME_ID
        assert list(pose.joint_names) == list(JOINT_NAMES)
        assert len(pose.local_rotations) == len(pose.joints) == 24
        assert len(pose.keypoints_2d) == 48 and pose.n_iter == 1 and pose.precision == "fp32"
        assert pose.total_ms > 0
    assert sorted(stamp(p) for _, p in poses) == sorted(image_by_stamp)
    # every encoding of the sample went through the decoder and the network
    assert {f.encoding for f in sample.frames} == set(ENCODINGS)
    assert summary.valid + summary.invalid == len(ENCODINGS)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_tf_for_valid_poses(processed, storage):
    _, summary, out, _ = processed[storage]
    bag = read_bag(out)
    valid = {stamp(p): (t, p) for t, p in bag[POSE_TOPIC] if p.valid}
    assert valid, "the sample should give valid poses"
    assert summary.tf_messages == len(valid) == len(bag[TF_TOPIC])
    for t, tfm in bag[TF_TOPIC]:
        stamps = {(x.header.stamp.sec, x.header.stamp.nanosec) for x in tfm.transforms}
        assert len(stamps) == 1
        key = stamps.pop()
        pose_t, pose = valid[key]
        assert t == pose_t
        children = {x.child_frame_id: x.header.frame_id for x in tfm.transforms}
        assert set(children) == {"mocap_" + n for n in JOINT_NAMES}
        assert children["mocap_pelvis"] == FRAME_ID
        for j, p in enumerate(PARENTS):
            if p >= 0:
                assert children["mocap_" + JOINT_NAMES[j]] == "mocap_" + JOINT_NAMES[p]
        root = next(x for x in tfm.transforms if x.child_frame_id == "mocap_pelvis")
        assert root.transform.translation.z == pytest.approx(pose.root_pose.position.z)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_original_topics_are_copied_byte_for_byte(processed, tmp_path, storage):
    sample, _, out, _ = processed[storage]
    topics = {RAW_TOPIC, COMPRESSED_TOPIC, INFO_TOPIC}
    before = raw_messages(sample.path, topics)
    after = raw_messages(out, topics)
    assert len(before) == 2 * len(ENCODINGS)
    assert sorted(before) == sorted(after)


def test_body_pose_definition_stored_in_full(processed):
    from rosbags.rosbag2 import Reader

    for storage in ("mcap", "sqlite3"):
        _, _, out, _ = processed[storage]
        with Reader(out) as reader:
            conn = next(c for c in reader.connections if c.topic == POSE_TOPIC)
        assert conn.msgtype == BODY_POSE_TYPE
        text = conn.msgdef.data
        # the .msg text itself (comments kept) and every dependency's section
        assert text.startswith("# One person's body pose")
        for dep in ("std_msgs/Header", "builtin_interfaces/Time", "geometry_msgs/Quaternion",
                    "geometry_msgs/Pose", "geometry_msgs/Point"):
            assert f"\nMSG: {dep}\n" in text
        assert conn.digest == body_pose_msgdef()[1]
        meta = (out / "metadata.yaml").read_text()
        assert conn.digest in meta and "mocap_ros.core.config" in meta


def test_body_pose_hash_equals_rosidl_build():
    """The RIHS01 stored in bags is the one rosidl computed for the built package."""
    root = Path(__file__).resolve().parent.parent
    built = root / "install" / "mocap_ros" / "share" / "mocap_ros" / "msg" / "BodyPose.json"
    if not built.exists():
        pytest.skip("mocap_ros messages not built (make setup)")
    hashes = {h["type_name"]: h["hash_string"]
              for h in json.loads(built.read_text())["type_hashes"]}
    assert body_pose_msgdef()[1] == hashes[BODY_POSE_TYPE]


def test_csv_one_row_per_image(processed):
    _, summary, out, csv_path = processed["mcap"]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == csv_header()
    assert len(rows) == summary.images == len(ENCODINGS)
    poses = {stamp(p): p for _, p in read_bag(out)[POSE_TOPIC]}
    for row in rows:
        pose = poses[(int(row["stamp_sec"]), int(row["stamp_nanosec"]))]
        assert int(row["valid"]) == pose.valid
        assert float(row["total_ms"]) == pytest.approx(pose.total_ms, rel=1e-6)
        q = np.array([[float(row[f"{n}_q{a}"]) for a in "xyzw"] for n in JOINT_NAMES])
        np.testing.assert_allclose(q, quats(pose.local_rotations), atol=1e-7)
        rv = np.array([[float(row[f"{n}_r{a}"]) for a in "xyz"] for n in JOINT_NAMES])
        np.testing.assert_allclose(rv, quat_to_rotvec(q), atol=1e-6)
        assert float(row["root_z"]) == pytest.approx(pose.root_pose.position.z, rel=1e-6)


def test_processing_twice_gives_identical_poses(processed, pipeline, tmp_path):
    sample, _, out, _ = processed["mcap"]
    process_bag(sample.path, tmp_path / "again", pipeline=pipeline, progress=False)
    first = dict((stamp(p), p) for _, p in read_bag(out)[POSE_TOPIC])
    again = dict((stamp(p), p) for _, p in read_bag(tmp_path / "again")[POSE_TOPIC])
    assert first.keys() == again.keys()
    for key in first:
        assert_same_pose(first[key], again[key])  # bit-identical on CPU fp32
    # the same frames in the sqlite3 bag give the same poses too
    other = dict((stamp(p), p) for _, p in read_bag(processed["sqlite3"][2])[POSE_TOPIC])
    for key in first:
        assert_same_pose(first[key], other[key])


def test_camera_info_sets_the_intrinsics(pipeline, tmp_path):
    """The newest CameraInfo before each image is used; a CameraInfo for another image size
    means the fallback, like mocap_node. Doubling f doubles the depth of the root."""
    rgb = sample_frame(0)
    s = 10**9
    write_bag(tmp_path / "in", [
        (INFO_TOPIC, "sensor_msgs/msg/CameraInfo", 1 * s, camera_info_msg(1, 525.0)),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 1 * s + 1, image_msg(rgb, "rgb8", 1)),
        (INFO_TOPIC, "sensor_msgs/msg/CameraInfo", 2 * s, camera_info_msg(2, 1050.0)),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 2 * s + 1, image_msg(rgb, "rgb8", 2)),
        (INFO_TOPIC, "sensor_msgs/msg/CameraInfo", 3 * s, camera_info_msg(3, 1050.0, 320, 240)),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 3 * s + 1, image_msg(rgb, "rgb8", 3)),
    ])
    summary = process_bag(tmp_path / "in", tmp_path / "out", pipeline=pipeline, progress=False)
    assert summary.stats.get("camera_info_size_mismatch") == 1
    poses = {p.header.stamp.sec: p for _, p in read_bag(tmp_path / "out")[POSE_TOPIC]}
    z = {sec: points(p.joints)[:, 2] for sec, p in poses.items()}
    cam, side = poses[1].camera[0], poses[1].bbox[2]
    # joints_cam = joints_model + T with T_z = 2 f / (s * side): shifts every joint equally
    np.testing.assert_allclose(z[2] - z[1], 2 * 525.0 / (cam * side), rtol=1e-4)
    f_fallback = 320.0 / np.tan(np.radians(30.0))  # 60 degree horizontal FOV, 640 px
    np.testing.assert_allclose(z[3] - z[1], 2 * (f_fallback - 525.0) / (cam * side), rtol=1e-4)


def test_undecodable_images_get_an_invalid_pose_each(pipeline, tmp_path):
    from mocap_ros.io.images import rgb_to_compressed

    T = ros_types()
    rgb = sample_frame(1)
    good = image_msg(rgb, "bgr8", 1)
    short = image_msg(rgb, "bgr8", 2, data=np.zeros(100, np.uint8))
    unknown = dataclasses.replace(image_msg(rgb, "bgr8", 3), encoding="bayer_xyz16")
    jpeg = rgb_to_compressed(rgb, "jpeg")
    broken_jpeg = T["sensor_msgs/msg/CompressedImage"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=4, nanosec=0),
                                        frame_id=FRAME_ID),
        format="jpeg", data=np.frombuffer(jpeg[: len(jpeg) // 8] + b"garbage", np.uint8))
    write_bag(tmp_path / "in", [
        (RAW_TOPIC, "sensor_msgs/msg/Image", 1 * 10**9, good),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 2 * 10**9, short),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 3 * 10**9, unknown),
        (COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage", 4 * 10**9, broken_jpeg),
        (RAW_TOPIC, "sensor_msgs/msg/Image", 5 * 10**9, b"\x00\x01\x00\x00\x07"),  # bad CDR
    ])
    summary = process_bag(tmp_path / "in", tmp_path / "out", pipeline=pipeline, progress=False)
    assert summary.complete and summary.images == 5 and summary.bad_images == 4
    bag = read_bag(tmp_path / "out", tolerate_bad_cdr=True)
    poses = {t // 10**9: p for t, p in bag[POSE_TOPIC]}
    assert sorted(poses) == [1, 2, 3, 4, 5]  # one pose per image, even the broken ones
    assert poses[1].reason in ("", "low_confidence")
    assert poses[2].reason == "bad_image:size_mismatch" and not poses[2].valid
    assert poses[3].reason == "bad_image:unknown_encoding" and not poses[3].valid
    assert poses[4].reason == "bad_image:decode_failed" and not poses[4].valid
    assert poses[5].reason == "bad_image:cdr" and not poses[5].valid
    assert stamp(poses[3]) == (3, 0) and poses[3].header.frame_id == FRAME_ID
    assert stamp(poses[5]) == (5, 0)  # no header to take: the bag time
    assert len(bag[TF_TOPIC]) == int(poses[1].valid)


# ----------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    write_sample_bag(d / "mcap", storage="mcap", encodings=("bgr8", "jpeg"), n_per=1)
    write_sample_bag(d / "sqlite3", storage="sqlite3", encodings=("bgr8", "jpeg"), n_per=1)
    return d


def test_missing_topic_lists_the_image_topics(small_bag, pipeline, tmp_path, capsys):
    with pytest.raises(BagError) as err:
        process_bag(small_bag / "mcap", tmp_path / "out", pipeline=pipeline, progress=False,
                    image_topic="/front/image_raw")
    msg = str(err.value)
    assert "'/front/image_raw' is not in" in msg
    assert RAW_TOPIC in msg and COMPRESSED_TOPIC in msg and INFO_TOPIC not in msg
    assert not (tmp_path / "out").exists()  # nothing was started
    code = run_cli(["process", str(small_bag / "mcap"), "--out", str(tmp_path / "cli"),
                    "--image-topic", "/front/image_raw", "--assets-dir", "/nonexistent"])
    assert code != 0
    assert "/front/image_raw" in capsys.readouterr().err


def test_wrong_message_type_on_the_image_topic(small_bag, pipeline, tmp_path, capsys):
    with pytest.raises(BagError) as err:
        process_bag(small_bag / "sqlite3", tmp_path / "out", pipeline=pipeline,
                    progress=False, image_topic=INFO_TOPIC)
    msg = str(err.value)
    assert "sensor_msgs/msg/CameraInfo" in msg and "not sensor_msgs/msg/Image" in msg
    assert RAW_TOPIC in msg
    code = run_cli(["process", str(small_bag / "sqlite3"), "--out", str(tmp_path / "cli"),
                    "--image-topic", INFO_TOPIC, "--assets-dir", "/nonexistent"])
    assert code != 0
    assert "CameraInfo" in capsys.readouterr().err


def test_bag_without_images(tmp_path, pipeline):
    write_bag(tmp_path / "in", [(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", 10**9,
                                 camera_info_msg(1, 500.0))])
    with pytest.raises(BagError, match=r"no sensor_msgs/Image or CompressedImage topic.*"
                       r"camera_info"):
        process_bag(tmp_path / "in", tmp_path / "out", pipeline=pipeline, progress=False)


@pytest.mark.parametrize("content", ["garbage", "missing", "empty_mcap"])
def test_not_a_bag(tmp_path, pipeline, content, capsys):
    path = tmp_path / "bag"
    if content == "garbage":
        path.mkdir()
        (path / "metadata.yaml").write_text("rosbag2_bagfile_information: [1, 2\n")
    elif content == "empty_mcap":
        path = tmp_path / "bag.mcap"
        path.write_bytes(b"")
    with pytest.raises(BagError, match="bag"):
        process_bag(path, tmp_path / "out", pipeline=pipeline, progress=False)
    assert not (tmp_path / "out").exists()
    assert run_cli(["process", str(path), "--out", str(tmp_path / "o2"),
                    "--assets-dir", "/nonexistent"]) != 0
    assert str(path) in capsys.readouterr().err


def test_output_exists(small_bag, pipeline, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(BagError, match="exists already"):
        process_bag(small_bag / "mcap", tmp_path / "out", pipeline=pipeline, progress=False)


def test_truncated_mcap_gives_a_readable_partial_output(tmp_path, pipeline, capsys):
    """A recording cut off (no MCAP summary/footer): the complete records are processed, the
    output is closed and readable, and it is still an error (non-zero exit)."""
    write_sample_bag(tmp_path / "full", storage="mcap", encodings=("mono8", "jpeg"), n_per=4)
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "full", cut)
    data = (cut / "full.mcap").read_bytes()
    (cut / "full.mcap").write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(BagError, match="truncated") as err:
        process_bag(cut, tmp_path / "out", pipeline=pipeline, progress=False)
    summary = err.value.summary
    assert summary is not None and not summary.complete and 0 < summary.images < 8
    bag = read_bag(tmp_path / "out")  # closed properly: metadata, index, definitions
    images = bag[RAW_TOPIC] + bag[COMPRESSED_TOPIC]
    assert len(bag[POSE_TOPIC]) == len(images) == summary.images
    assert sorted(stamp(p) for _, p in bag[POSE_TOPIC]) == sorted(stamp(m) for _, m in images)
    # what was read is the start of the original, byte for byte
    full = raw_messages(tmp_path / "full", {RAW_TOPIC, COMPRESSED_TOPIC, INFO_TOPIC})
    part = raw_messages(tmp_path / "out", {RAW_TOPIC, COMPRESSED_TOPIC, INFO_TOPIC})
    assert part == full[: len(part)]
    code = run_cli(["process", str(cut), "--out", str(tmp_path / "cli"), "--no-progress",
                    "--assets-dir", str(pipeline.config.assets_dir)])
    assert code != 0
    assert "truncated" in capsys.readouterr().err
    assert read_bag(tmp_path / "cli")[POSE_TOPIC]
    # a recorder killed before writing metadata.yaml: the same
    (cut / "metadata.yaml").unlink()
    with pytest.raises(BagError, match="truncated") as err:
        process_bag(cut, tmp_path / "out2", pipeline=pipeline, progress=False)
    assert err.value.summary.images == summary.images


def test_corrupt_sqlite_gives_a_readable_partial_output(tmp_path, pipeline, capsys):
    write_sample_bag(tmp_path / "in", storage="sqlite3", encodings=("mono8", "jpeg"), n_per=4)
    db = tmp_path / "in" / "in.db3"
    data = bytearray(db.read_bytes())
    start = len(data) // 2  # garbage across the middle of the messages table
    data[start: start + 20000] = bytes((i * 7 + 3) % 256 for i in range(20000))
    db.write_bytes(bytes(data))
    with pytest.raises(BagError, match="corrupt") as err:
        process_bag(tmp_path / "in", tmp_path / "out", pipeline=pipeline, progress=False)
    summary = err.value.summary
    assert summary is not None and not summary.complete and 0 < summary.images < 8
    bag = read_bag(tmp_path / "out")
    images = bag[RAW_TOPIC] + bag[COMPRESSED_TOPIC]
    assert len(bag[POSE_TOPIC]) == len(images) == summary.images
    code = run_cli(["process", str(tmp_path / "in"), "--out", str(tmp_path / "cli"),
                    "--no-progress", "--assets-dir", str(pipeline.config.assets_dir)])
    assert code != 0
    assert "corrupt" in capsys.readouterr().err


def test_interrupted_run_leaves_a_readable_bag_with_a_pose_per_image(pipeline, tmp_path):
    """Ctrl-C mid-run: the output is closed; every image in it has its pose."""
    write_sample_bag(tmp_path / "in", storage="mcap", encodings=("mono8", "jpeg"), n_per=2)

    class Interrupting:
        def __init__(self, inner, after):
            self.inner, self.after, self.calls = inner, after, 0
            self.config, self.precision, self.device = inner.config, inner.precision, \
                inner.device

        def process(self, *args):
            self.calls += 1
            if self.calls > self.after:
                raise KeyboardInterrupt
            return self.inner.process(*args)

    with pytest.raises(KeyboardInterrupt):
        process_bag(tmp_path / "in", tmp_path / "out", pipeline=Interrupting(pipeline, 2),
                    progress=False)
    bag = read_bag(tmp_path / "out")
    images = bag[RAW_TOPIC] + bag[COMPRESSED_TOPIC]
    assert len(images) == len(bag[POSE_TOPIC]) == 2


# ----------------------------------------------------------------------------- CLI, sample bag
def test_cli_sample_bag_then_process(tmp_path, assets_root, capsys):
    assert run_cli(["sample-bag", str(tmp_path / "s"), "--format", "sqlite3",
                    "--encodings", "jpeg", "rgb8", "--n-per", "1"]) == 0
    code = run_cli(["process", str(tmp_path / "s"), "--out", str(tmp_path / "o"),
                    "--format", "mcap", "--csv", str(tmp_path / "o.csv"),
                    "--image-topic", COMPRESSED_TOPIC, "--assets-dir", str(assets_root),
                    "--device", "cpu"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "images: 1" in out.out
    assert (tmp_path / "o" / "o.mcap").exists()
    bag = read_bag(tmp_path / "o")
    assert len(bag[POSE_TOPIC]) == 1 and len(bag[RAW_TOPIC]) == 1  # raw copied, not processed
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 2


def test_sample_bag_is_deterministic_and_consistent(tmp_path):
    a = write_sample_bag(tmp_path / "a", storage="mcap", n_per=2)
    b = write_sample_bag(tmp_path / "b", storage="sqlite3", n_per=2)
    assert [(f.stamp_ns, f.encoding) for f in a.frames] == \
        [(f.stamp_ns, f.encoding) for f in b.frames]
    assert raw_messages(tmp_path / "a") == raw_messages(tmp_path / "b")
    bag = read_bag(tmp_path / "a")
    assert len(bag[RAW_TOPIC]) == 8 and len(bag[COMPRESSED_TOPIC]) == 2
    assert len(bag[INFO_TOPIC]) == 10
    for topic in (RAW_TOPIC, COMPRESSED_TOPIC, INFO_TOPIC):
        for t, m in bag[topic]:
            ns = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
            assert 0 < t - ns <= 10_000_000  # recorded a few ms after its stamp
            assert m.header.frame_id == FRAME_ID
    info = bag[INFO_TOPIC][0][1]
    assert tuple(info.k) == K and (info.width, info.height) == (640, 480)
    encodings = [m.encoding for _, m in bag[RAW_TOPIC]]
    assert set(encodings) == {"bgr8", "rgb8", "mono8", "yuv422_yuy2"}
    assert all(m.format.endswith("jpeg compressed bgr8") for _, m in bag[COMPRESSED_TOPIC])
    assert abs(a.duration_s - 9 / 15) < 1e-6


# ----------------------------------------------------------------------------- helpers
def test_camera_info_topic_for():
    infos = {"/cam/camera_info", "/front/camera_info"}
    assert camera_info_topic_for("/cam/image_raw", infos) == "/cam/camera_info"
    assert camera_info_topic_for("/cam/image_raw/compressed", infos) == "/cam/camera_info"
    assert camera_info_topic_for("/front/image_rect", infos) == "/front/camera_info"
    assert camera_info_topic_for("/back/image_raw", infos) is None
    assert camera_info_topic_for("/back/image_raw", {"/x/camera_info"}) == "/x/camera_info"
    assert camera_info_topic_for("/image_raw", {"/camera_info"}) == "/camera_info"


def test_transforms_compose_back_to_the_joints(processed):
    """Chaining the TF tree from the camera frame reproduces every joint position."""
    from mocap_ros.core.result import BodyPoseResult

    _, _, out, _ = processed["mcap"]
    pose = next(p for _, p in read_bag(out)[POSE_TOPIC] if p.valid)
    result = BodyPoseResult(
        valid=True, reason="", confidence=1.0,
        local_rotations=quats(pose.local_rotations).astype(np.float32),
        global_rotations=quats(pose.global_rotations).astype(np.float32),
        joints_cam=points(pose.joints).astype(np.float32),
        keypoints_2d=np.asarray(pose.keypoints_2d).reshape(24, 2),
        betas=np.asarray(pose.betas), camera=np.asarray(pose.camera),
        root_translation=np.zeros(3, np.float32), bbox=np.asarray(pose.bbox))
    tfs = transform_content(result, "cam", "p_")
    R, t = {"cam": np.eye(3)}, {"cam": np.zeros(3)}
    for tf in tfs:  # parents come first in SMPL order
        Rp, tp = R[tf["parent"]], t[tf["parent"]]
        t[tf["child"]] = tp + Rp @ np.array(tf["translation"])
        R[tf["child"]] = Rp @ quat_to_matrix(tf["rotation"])
    for j, name in enumerate(JOINT_NAMES):
        np.testing.assert_allclose(t["p_" + name], result.joints_cam[j], atol=1e-5)
        np.testing.assert_allclose(R["p_" + name], quat_to_matrix(result.global_rotations[j]),
                                   atol=1e-5)


def test_quat_to_rotvec():
    s = np.sqrt(0.5)
    q = np.array([[0, 0, 0, 1], [s, 0, 0, s], [0, 0, -s, -s], [0, 1, 0, 0], [1e-9, 0, 0, 1]])
    rv = quat_to_rotvec(q)
    np.testing.assert_allclose(rv, [[0, 0, 0], [np.pi / 2, 0, 0], [0, 0, np.pi / 2],
                                    [0, np.pi, 0], [2e-9, 0, 0]], atol=1e-12)


def test_progress_bar_on_a_pipe_prints_few_lines():
    stream = io.StringIO()
    bar = Progress(50, "process", stream)
    for _ in range(50):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 5 <= len(lines) <= 11
    assert lines[-1].startswith("process: 50/50 [") and "frames/s" in lines[-1]
    quiet = io.StringIO()
    bar = Progress(5, stream=quiet, enabled=False)
    bar.update()
    bar.close()
    assert quiet.getvalue() == ""
