"""Batch mode: ``MocapPipeline.process_batch`` equals per-frame ``process``, and
``process_bag`` with batches writes the same bag as frame by frame (timings aside)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocap_ros.core.config import MocapConfig
from mocap_ros.estimation.hmr.pipeline import MocapPipeline
from mocap_ros.geometry.camera import Intrinsics

FIELDS = ("local_rotations", "global_rotations", "joints_cam", "keypoints_2d", "betas",
          "camera", "root_translation", "bbox")
TIMINGS = ("preprocess_ms", "inference_ms", "postprocess_ms", "total_ms")


@pytest.fixture(scope="module")
def pipe(synthetic_assets_root):
    return MocapPipeline(MocapConfig(assets_dir=str(synthetic_assets_root), device="cpu"))


@pytest.fixture(scope="module")
def frames():
    from skimage import data

    from mocap_ros.tools.frames import bench_frames

    imgs, boxes = bench_frames(3, seed=11)
    photo = data.astronaut()  # 512x512: frames of different sizes share one batch
    return ([imgs[0], photo, imgs[1], imgs[2]],
            [boxes[0], (120, 20, 300, 490), boxes[1], None])


def assert_close(a, b, tol=1e-5):
    assert a.valid == b.valid and a.reason == b.reason
    assert a.confidence == pytest.approx(b.confidence, abs=tol)
    for f in FIELDS:
        # absolute in metres/radians-like units, relative for pixels (keypoints ~ 1e2-1e3)
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=tol, rtol=tol,
                                   err_msg=f)


def test_batch_equals_per_frame(pipe, frames):
    imgs, boxes = frames
    Ks = [None, Intrinsics(500.0, 500.0, 256.0, 256.0), None, np.array(
        [[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])]
    got = pipe.process_batch(imgs, boxes, Ks)
    assert len(got) == len(imgs)
    for img, box, K, r in zip(imgs, boxes, Ks, got, strict=True):
        assert r.valid
        assert_close(r, pipe.process(img, box, K))
        assert set(r.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
        assert r.timings_ms["total"] > 0


def test_invalid_boxes_keep_their_place(pipe, frames):
    imgs, boxes = frames
    boxes = [boxes[0], (10, 10, 2, 2), boxes[2], (5000, 5000, 100, 100)]
    got = pipe.process_batch(imgs, boxes)
    assert [r.reason for r in got[1::2]] == ["bbox_too_small", "bbox_outside_image"]
    for i in (0, 2):
        assert_close(got[i], pipe.process(imgs[i], boxes[i]))
    assert all(not r.valid for r in pipe.process_batch(imgs[1:2], [(10, 10, 2, 2)]))


def test_defaults_and_errors(pipe, frames):
    imgs, _ = frames
    assert pipe.process_batch([]) == []
    got = pipe.process_batch(imgs[:2])  # no boxes: bbox_mode (full frame)
    assert_close(got[1], pipe.process(imgs[1]))
    with pytest.raises(ValueError, match="2 frames but 1 bboxes"):
        pipe.process_batch(imgs[:2], [None])
    with pytest.raises(ValueError, match="dtype"):
        pipe.process_batch([imgs[0], imgs[1].astype(np.float32)])


# ----------------------------------------------------------------------------- bags
def _bag_messages(path):
    """[(topic, bag_time, raw bytes or BodyPose/TF values)] in the output bag's order."""
    from rosbags.rosbag2 import Reader

    from mocap_ros.io.bags.types import BODY_POSE_TYPE, TF_TYPE, bag_typestore

    store = bag_typestore()
    out = []
    with Reader(Path(path)) as reader:
        for c, t, data in reader.messages():
            if c.msgtype in (BODY_POSE_TYPE, TF_TYPE):
                out.append((c.topic, t, store.deserialize_cdr(data, c.msgtype)))
            else:
                out.append((c.topic, t, bytes(data)))
    return out


def _pose_numbers(msg):
    """A BodyPose's values but its timings: (texts/flags, one float vector)."""
    flags = (msg.valid, msg.reason, msg.header.frame_id, msg.header.stamp.sec,
             msg.header.stamp.nanosec, msg.n_iter, msg.precision, msg.device)
    nums = [msg.confidence, *msg.keypoints_2d, *msg.betas, *msg.camera, *msg.bbox]
    nums += [v for q in msg.local_rotations for v in (q.x, q.y, q.z, q.w)]
    nums += [v for q in msg.global_rotations for v in (q.x, q.y, q.z, q.w)]
    nums += [v for p in msg.joints for v in (p.x, p.y, p.z)]
    return flags, np.array(nums)


def _tf_numbers(msg):
    names = [(x.header.frame_id, x.child_frame_id) for x in msg.transforms]
    nums = []
    for x in msg.transforms:
        t, r = x.transform.translation, x.transform.rotation
        nums += [t.x, t.y, t.z, r.x, r.y, r.z, r.w]
    return names, np.array(nums)


def _write_mixed_bag(path):
    """Images of two sizes on two topics, CameraInfo changing between images, an image
    that does not decode and one that is not CDR at all, and an unrelated topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from mocap_ros.io.images import rgb_to_compressed, rgb_to_raw
    from mocap_ros.tools.sample_bag import sample_frame

    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types

    def header(sec):
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](
            sec=sec, nanosec=0), frame_id="camera_optical")

    def image(rgb, sec, data=None):
        raw, step = rgb_to_raw(rgb, "bgr8")
        return T["sensor_msgs/msg/Image"](
            header=header(sec), height=rgb.shape[0], width=rgb.shape[1], encoding="bgr8",
            is_bigendian=0, step=step, data=np.frombuffer(data or raw, np.uint8))

    def info(sec, fx):
        return T["sensor_msgs/msg/CameraInfo"](
            header=header(sec), height=480, width=640, distortion_model="plumb_bob",
            d=np.zeros(5), k=np.array([fx, 0, 319.5, 0, fx, 239.5, 0, 0, 1], np.float64),
            r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                      width=0, do_rectify=False))

    big = [sample_frame(i) for i in range(4)]
    small = np.ascontiguousarray(big[0][::2, ::2])
    jpeg = T["sensor_msgs/msg/CompressedImage"](
        header=header(9), format="jpeg",
        data=np.frombuffer(rgb_to_compressed(big[3], "jpeg"), np.uint8))
    messages = [
        ("/cam/camera_info", "sensor_msgs/msg/CameraInfo", info(0, 500.0)),
        ("/cam/image_raw", "sensor_msgs/msg/Image", image(big[0], 1)),
        ("/chatter", "std_msgs/msg/String", T["std_msgs/msg/String"](data="hello")),
        ("/cam/image_raw", "sensor_msgs/msg/Image", image(small, 2)),
        ("/cam/camera_info", "sensor_msgs/msg/CameraInfo", info(3, 800.0)),
        ("/cam/image_raw", "sensor_msgs/msg/Image", image(big[1], 4)),
        ("/cam/image_raw", "sensor_msgs/msg/Image", image(big[2], 5, data=bytes(100))),
        ("/cam/image_raw", "sensor_msgs/msg/Image", b"\x00\x01\x00\x00\x07"),
        ("/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage", jpeg),
        ("/cam/image_raw", "sensor_msgs/msg/Image", image(big[3], 10)),
        ("/chatter", "std_msgs/msg/String", T["std_msgs/msg/String"](data="bye")),
    ]
    conns = {}
    with Writer(Path(path), version=8, storage_plugin=StoragePlugin.MCAP) as w:
        for i, (topic, msgtype, msg) in enumerate(messages):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=store)
            data = msg if isinstance(msg, bytes) else bytes(store.serialize_cdr(msg, msgtype))
            w.write(conns[topic], (i + 1) * 10**8, data)


@pytest.mark.parametrize("batch_size", [3, 8])
def test_process_bag_in_batches_writes_the_same_bag(pipe, tmp_path, batch_size):
    pytest.importorskip("rosbags")
    from mocap_ros.io.bags.types import POSE_TOPIC
    from mocap_ros.offline.process import process_bag

    _write_mixed_bag(tmp_path / "in")
    one = process_bag(tmp_path / "in", tmp_path / "one", pipeline=pipe, progress=False,
                      csv_path=tmp_path / "one.csv", batch_size=1)
    many = process_bag(tmp_path / "in", tmp_path / "many", pipeline=pipe, progress=False,
                       csv_path=tmp_path / "many.csv", batch_size=batch_size)
    assert one.complete and many.complete
    for key in ("images", "valid", "invalid", "bad_images", "tf_messages", "messages_copied"):
        assert getattr(one, key) == getattr(many, key), key
    assert one.images == 7 and one.bad_images == 2 and one.stats == many.stats
    a, b = _bag_messages(tmp_path / "one"), _bag_messages(tmp_path / "many")
    assert [(t, s) for t, s, _ in a] == [(t, s) for t, s, _ in b]  # same messages, same order
    assert sum(1 for t, _, _ in a if t == POSE_TOPIC) == 7
    for (topic, _, x), (_, _, y) in zip(a, b, strict=True):
        if isinstance(x, bytes):
            assert x == y, topic  # copied byte for byte
        elif topic == POSE_TOPIC:
            (fx, nx), (fy, ny) = _pose_numbers(x), _pose_numbers(y)
            assert fx == fy
            np.testing.assert_allclose(nx, ny, atol=1e-5, rtol=1e-5)
        else:
            (fx, nx), (fy, ny) = _tf_numbers(x), _tf_numbers(y)
            assert fx == fy
            np.testing.assert_allclose(nx, ny, atol=1e-5, rtol=1e-5)
    # (frame by frame is the reference: test_bags checks it against the CameraInfo; equal
    # poses here mean the CameraInfo between two images of one batch applied to the later)
    rows_one = (tmp_path / "one.csv").read_text().splitlines()
    rows_many = (tmp_path / "many.csv").read_text().splitlines()
    assert len(rows_one) == len(rows_many) == 8 and rows_one[0] == rows_many[0]


def test_default_batch_size(pipe):
    import torch

    from mocap_ros.offline.process import default_batch_size

    class Frame:  # a pipeline-like object with process only: frame by frame
        device = torch.device("cuda")

        def process(self, *args):
            raise AssertionError("not called")

    class Batching(Frame):
        def process_batch(self, *args):
            raise AssertionError("not called")

    assert default_batch_size(pipe) == 1  # the CPU: poses equal the live node's to the bit
    assert default_batch_size(Batching()) == 8
    assert default_batch_size(Frame()) == 1


def test_bad_batch_size(pipe, tmp_path):
    pytest.importorskip("rosbags")
    from mocap_ros.io.bags.types import BagError
    from mocap_ros.offline.process import process_bag

    _write_mixed_bag(tmp_path / "in")
    with pytest.raises(BagError, match="batch_size"):
        process_bag(tmp_path / "in", tmp_path / "out", pipeline=pipe, progress=False,
                    batch_size=0)
