"""camera_node over real DDS: generated videos and real photos in, images + camera_info out."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")  # skip outside `bash scripts/in_env.sh`

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from test_calibration import D_EXPECTED, K_EXPECTED, OST_YAML, P_EXPECTED  # noqa: E402
from test_frames import FPS, N_FRAMES, find_real_frames, identity, write_video  # noqa: E402

from mocap_ros.core.config import CameraSettings  # noqa: E402
from mocap_ros.io.images import compressed_to_rgb, raw_to_rgb  # noqa: E402
from mocap_ros.ros.camera_node import CameraNode  # noqa: E402

from ros_helpers import DOMAIN_ID, make_executor, ros_context, wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Viewer:
    """Subscribes to what a camera driver publishes, as mocap_node does (sensor-data QoS)."""

    def __init__(self, ctx, compressed: bool = False) -> None:
        self.node = rclpy.create_node("viewer", context=ctx)
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.compressed: list[CompressedImage] = []
        self.diags: list[DiagnosticStatus] = []
        qos = qos_profile_sensor_data
        self.node.create_subscription(Image, "image_raw", self.images.append, qos)
        self.node.create_subscription(CameraInfo, "camera_info", self.infos.append, qos)
        if compressed:
            self.node.create_subscription(CompressedImage, "image_raw/compressed",
                                          self.compressed.append, qos)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda m: self.diags.extend(s for s in m.status
                                        if s.name.startswith("camera_node")), 10)

    def last_diag(self) -> dict[str, str] | None:
        if not self.diags:
            return None
        s = self.diags[-1]
        return {"level": s.level, "message": s.message} | {kv.key: kv.value for kv in s.values}


def make_camera(ctx, **params) -> CameraNode:
    params = {"diagnostics_period": 0.2, "reopen_max_interval": 0.5, **params}
    return CameraNode(context=ctx,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _calibration_160x120(path: Path) -> Path:
    # the cameracalibrator file of the other tests, for this video's 160x120 frames
    path.write_text(OST_YAML.replace("image_width: 640", "image_width: 160")
                    .replace("image_height: 480", "image_height: 120"))
    return path


def test_video_frames_and_camera_info_arrive_in_order(ctx, tmp_path):
    staged = write_video(tmp_path / "staged.mp4", "mp4v")
    video = tmp_path / "clip.mp4"  # not a video yet (a missing file is refused at once):
    video.write_text("still being written")  # the node starts and retries it
    cal = _calibration_160x120(tmp_path / "ost.yaml")
    cam = make_camera(ctx, source=str(video), frame_id="test_cam",
                      camera_info_url=f"file://{cal}", realtime=True)
    viewer = Viewer(ctx)
    ex = make_executor(ctx, cam, viewer.node)
    try:
        # the unreadable file is an ERROR on /diagnostics, not an exit
        assert wait_for(lambda: (d := viewer.last_diag()) is not None
                        and d["level"] == DiagnosticStatus.ERROR and "cannot open" in d["message"]
                        and cam.image_pub.get_subscription_count() > 0, ex, timeout=10.0)
        staged.rename(video)
        assert wait_for(lambda: len(viewer.images) >= N_FRAMES
                        and len(viewer.infos) >= N_FRAMES, ex, timeout=15.0)
        wait_for(lambda: False, ex, timeout=0.3)  # nothing more may come: the file ended
        assert len(viewer.images) == len(viewer.infos) == N_FRAMES
        frames = [raw_to_rgb(m.data, m.width, m.height, m.encoding, m.step)
                  for m in viewer.images]  # mocap_node's own decoder
        assert [identity(f) for f in frames] == list(range(N_FRAMES))
        assert all(m.encoding == "rgb8" and (m.width, m.height) == (160, 120)
                   for m in viewer.images)
        stamps = [_stamp(m) for m in viewer.images]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        # real time: the stamps are at least as far apart as the video's (lower bound only)
        assert stamps[-1] - stamps[0] >= (N_FRAMES - 1) / FPS - 0.01
        assert abs(stamps[-1] - time.time()) < 30  # wall-clock stamps, as teleop expects
        assert [_stamp(m) for m in viewer.infos] == stamps
        assert {m.header.frame_id for m in viewer.images + viewer.infos} == {"test_cam"}
        info = viewer.infos[0]
        assert (info.width, info.height, info.distortion_model) == (160, 120, "plumb_bob")
        np.testing.assert_array_equal(np.reshape(info.k, (3, 3)), K_EXPECTED)
        np.testing.assert_array_equal(info.d, D_EXPECTED)
        np.testing.assert_array_equal(np.reshape(info.p, (3, 4)), P_EXPECTED)
        np.testing.assert_array_equal(np.reshape(info.r, (3, 3)), np.eye(3))
        assert wait_for(lambda: viewer.last_diag()["state"] == "ended", ex, timeout=5.0)
        d = viewer.last_diag()
        assert d["frames_published"] == str(N_FRAMES) and d["level"] == DiagnosticStatus.WARN
        assert d["granted_frames"] == str(N_FRAMES) and "ost.yaml" in d["camera_info"]
        # every parameter is declared read-only with a description
        for name in CameraSettings.__dataclass_fields__:
            desc = cam.describe_parameter(name)
            assert desc.description and desc.read_only, name
    finally:
        cam.destroy_node()


def test_source_moved_away_is_an_error_then_frames_resume(ctx, tmp_path):
    video = write_video(tmp_path / "clip.mp4", "mp4v")
    cam = make_camera(ctx, source=str(video), loop=True, realtime=True, encoding="bgr8")
    viewer = Viewer(ctx)
    ex = make_executor(ctx, cam, viewer.node)
    try:
        assert wait_for(lambda: len(viewer.images) >= 5, ex, timeout=15.0)
        video.rename(tmp_path / "away.mp4")
        assert wait_for(lambda: (d := viewer.last_diag()) is not None
                        and d["level"] == DiagnosticStatus.ERROR
                        and "moved away" in d["message"], ex, timeout=5.0)
        wait_for(lambda: False, ex, timeout=0.3)  # frames in flight land
        n_gone = len(viewer.images)
        wait_for(lambda: False, ex, timeout=1.0)
        assert len(viewer.images) == n_gone  # nothing while it is gone
        assert viewer.last_diag()["state"] == "lost" and cam._thread.is_alive()
        (tmp_path / "away.mp4").rename(video)
        assert wait_for(lambda: len(viewer.images) >= n_gone + 5, ex, timeout=10.0)
        assert wait_for(lambda: viewer.last_diag()["level"] == DiagnosticStatus.OK, ex,
                        timeout=5.0)
        d = viewer.last_diag()
        assert (d["state"], d["lost"], d["reopened"]) == ("streaming", "1", "1")
        stamps = [_stamp(m) for m in viewer.images]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        # bgr8 goes through mocap_node's decoder too
        m = viewer.images[-1]
        assert m.encoding == "bgr8"
        assert raw_to_rgb(m.data, m.width, m.height, m.encoding, m.step).shape == (120, 160, 3)
    finally:
        cam.destroy_node()


def test_mjpg_video_compressed_is_passed_through(ctx, tmp_path):
    avi = write_video(tmp_path / "clip.avi", "MJPG")
    packets = []  # the JPEGs inside the file, read independently of the node
    cap = cv2.VideoCapture(str(avi), cv2.CAP_FFMPEG)
    assert cap.set(cv2.CAP_PROP_FORMAT, -1)
    while (got := cap.read())[0]:
        packets.append(got[1].reshape(-1).tobytes())
    cap.release()
    assert len(packets) == N_FRAMES
    cam = make_camera(ctx, source=str(avi), loop=True, realtime=True, publish_compressed=True)
    viewer = Viewer(ctx, compressed=True)
    ex = make_executor(ctx, cam, viewer.node)
    try:
        assert wait_for(lambda: len(viewer.compressed) >= 6 and len(viewer.images) >= 6, ex,
                        timeout=15.0)
        for c in viewer.compressed:
            assert bytes(c.data) in packets  # byte for byte: no re-encoding
        # the raw image is that same JPEG, decoded (matched by stamp)
        raw = {_stamp(m): m for m in viewer.images}
        pairs = [(c, raw[_stamp(c)]) for c in viewer.compressed if _stamp(c) in raw]
        assert pairs
        for c, m in pairs:
            assert np.array_equal(compressed_to_rgb(bytes(c.data), c.format),
                                  raw_to_rgb(m.data, m.width, m.height, m.encoding, m.step))
        assert wait_for(lambda: int(viewer.last_diag()["compressed_passthrough"]) >= 6, ex,
                        timeout=5.0)
        d = viewer.last_diag()
        assert d["compressed_encoded"] == "0" and d["jpeg_passthrough"] == "True"
        assert "fov_deg=60" in d["camera_info"]  # no calibration file: said so
    finally:
        cam.destroy_node()


def test_real_photo_folder_and_encoded_compressed_for_png(ctx, tmp_path):
    src = find_real_frames()
    if src is None:
        pytest.skip("real photos not found: shared/real_images beside the checkout is absent")
    folder = tmp_path / "frames"
    folder.mkdir()
    originals = sorted(src.glob("*.jpg"))
    for i, p in enumerate(originals):  # PNG copies: nothing to pass through, so encoded
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.imread(str(p)))
    cam = make_camera(ctx, source=str(folder) + "/", fps=10.0, publish_compressed=True,
                      jpeg_quality=95)
    viewer = Viewer(ctx, compressed=True)
    ex = make_executor(ctx, cam, viewer.node)
    try:
        assert wait_for(lambda: viewer.last_diag() is not None
                        and viewer.last_diag()["state"] == "ended", ex, timeout=20.0)
        wait_for(lambda: False, ex, timeout=0.3)
        assert len(viewer.images) == len(originals) == 5
        for m, p in zip(viewer.images, originals, strict=True):
            rgb = raw_to_rgb(m.data, m.width, m.height, m.encoding, m.step)
            assert np.array_equal(rgb, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
        assert len(viewer.compressed) == 5
        c = compressed_to_rgb(bytes(viewer.compressed[0].data), viewer.compressed[0].format)
        ref = cv2.cvtColor(cv2.imread(str(originals[0])), cv2.COLOR_BGR2RGB)
        assert np.abs(c.astype(int) - ref.astype(int)).mean() < 3  # a quality-95 JPEG
        d = viewer.last_diag()
        assert d["compressed_encoded"] == "5" and d["compressed_passthrough"] == "0"
        stamps = [_stamp(m) for m in viewer.images]
        assert all(b > a for a, b in itertools.pairwise(stamps))
    finally:
        cam.destroy_node()


def test_folder_without_a_rate_refuses_to_start(ctx, tmp_path):
    with pytest.raises(ValueError, match="fps > 0"):
        make_camera(ctx, source=str(tmp_path), fps=0.0)


def test_bad_calibration_file_refuses_to_start(ctx, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(OST_YAML.replace("rows: 3\n  cols: 4", "rows: 4\n  cols: 4"))
    with pytest.raises(ValueError, match=r"projection_matrix\.rows=4"):
        make_camera(ctx, source=str(tmp_path / "x.mp4"), camera_info_url=str(bad))


def test_sigint_stops_the_node_cleanly(tmp_path):
    video = write_video(tmp_path / "clip.mp4", "mp4v")
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mocap_ros.ros.camera_node", "--ros-args", "--params-file",
         str(ROOT / "config/camera.yaml"), "-p", f"source:={video}", "-p", "loop:=true"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        with ros_context() as ctx:
            viewer = Viewer(ctx)
            ex = make_executor(ctx, viewer.node)
            assert wait_for(lambda: len(viewer.images) >= 3, ex, timeout=30.0), \
                "no frames from the camera_node process"
            ex.shutdown()
            viewer.node.destroy_node()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out


def test_config_file_lists_every_parameter_with_valid_values():
    import yaml

    params = yaml.safe_load((ROOT / "config/camera.yaml").read_text())["camera_node"][
        "ros__parameters"]
    assert set(params) == set(CameraSettings.__dataclass_fields__)
    assert CameraSettings(**params).validate() == CameraSettings()  # the defaults, written out


def test_synthetic_operator_streams_in_real_time_with_its_truth(ctx):
    """source: synthetic:raise -> frames on the wall clock at fps, camera_info = the renderer's
    intrinsics, and synthetic/truth stamped exactly like each image, its keypoints the
    projection of its joints with that camera_info."""
    from mocap_ros.msg import BodyPose

    cam = make_camera(ctx, source="synthetic:raise", fps=10.0, width=320, height=240)
    viewer = Viewer(ctx)
    truths: list[BodyPose] = []
    viewer.node.create_subscription(BodyPose, "synthetic/truth", truths.append, 50)
    ex = make_executor(ctx, cam, viewer.node)
    try:
        assert wait_for(lambda: len(viewer.images) >= 40 and len(truths) >= 40, ex,
                        timeout=30), (len(viewer.images), len(truths))
        wait_for(lambda: False, ex, timeout=0.3)  # the truths of the last images
    finally:
        ex.shutdown()
        cam.destroy_node()
        viewer.node.destroy_node()
    img, info = viewer.images[-1], viewer.infos[-1]
    assert (img.width, img.height) == (320, 240)
    K = np.array(info.k).reshape(3, 3)
    np.testing.assert_allclose(K, cam.source.op.intrinsics)
    by_stamp = {_stamp(t): t for t in truths}
    stamps = [_stamp(i) for i in viewer.images]
    matched = [by_stamp[s] for s in stamps if s in by_stamp]
    assert len(matched) >= len(stamps) - 2  # every image has its truth (bar the in-flight)
    # real time: 10 fps on the wall clock (frames a slow reader missed are skipped, not late)
    gaps = np.diff(stamps)
    assert np.all(gaps > 0) and abs(np.median(gaps) - 0.1) < 0.01, gaps
    t = matched[-1]
    assert t.valid and t.confidence == 1.0 and t.reason.startswith("phase=")
    j = np.array([[p.x, p.y, p.z] for p in t.joints])
    kp = np.array(t.keypoints_2d).reshape(-1, 2)
    p = (K @ j.T).T
    np.testing.assert_allclose(p[:, :2] / p[:, 2:], kp, atol=1e-2)
    assert {m.reason.split()[0] for m in matched} >= {"phase=rest", "phase=raise_side"}
