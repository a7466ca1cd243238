"""camera_node: a USB camera, a video file or an image folder -> image_raw + camera_info.

The ROS 2 camera drivers (usb_cam, v4l2_camera) are not on PyPI, so a pip-only machine had
no camera. This node reads frames with OpenCV (mocap_ros.io.frames) and publishes

- ``image_raw`` (sensor_msgs/Image, rgb8 or bgr8) and ``camera_info``, sensor-data QoS,
  stamped at capture (the V4L2 buffer time for cameras) with ``frame_id``;
- ``image_raw/compressed`` when ``publish_compressed``: the camera's / file's own JPEG bytes
  (MJPG cameras and videos, .jpg folders) passed through, else a JPEG encoded here;
- ``/diagnostics``: requested vs granted format, frames, rate, errors, lost / re-opened;
- with ``source: synthetic[:SCRIPT[:FIGURE]]`` (the rendered operator of
  :mod:`mocap_ros.scene`), ``synthetic/truth``: its exact joints as a BodyPose stamped like
  the image, and camera_info from the renderer's own intrinsics.

A source that goes away (unplugged, file moved) is an ERROR on /diagnostics while the node
keeps re-opening it with back-off; it never exits for that.

Threading: one capture thread reads and publishes (a camera read blocks until the next
frame); the executor only runs the diagnostics timer.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mocap_ros.core.config import CameraSettings
from mocap_ros.io.calibration import (
    CalibrationError,
    CameraCalibration,
    calibration_from_fov,
    load_calibration,
)
from mocap_ros.io.frames import Frame, FrameSource, open_source
from mocap_ros.msg import BodyPose
from mocap_ros.ros.convert import to_body_pose
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import run_node

_STATE_LEVEL = {"streaming": DiagnosticStatus.OK, "ended": DiagnosticStatus.WARN,
                "opening": DiagnosticStatus.ERROR, "lost": DiagnosticStatus.ERROR,
                "closed": DiagnosticStatus.WARN}


def camera_info_msg(cal: CameraCalibration, header: object) -> CameraInfo:
    return CameraInfo(header=header, width=cal.width, height=cal.height,
                      distortion_model=cal.distortion_model,
                      d=[float(v) for v in cal.D], k=[float(v) for v in cal.K.reshape(-1)],
                      r=[float(v) for v in cal.R.reshape(-1)],
                      p=[float(v) for v in cal.P.reshape(-1)])


class CameraNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("camera_node", **kwargs)
        s: CameraSettings = declare_dataclass(self, CameraSettings)
        self.settings = s
        log = self.get_logger()
        # Explicitly named calibration that cannot be read: refuse to start (a silent FOV
        # guess would put every 3D pose at the wrong distance).
        self.calibration: CameraCalibration | None = None
        if s.camera_info_url:
            self.calibration = load_calibration(s.camera_info_url, s.camera_name)
            if self.calibration.camera_name and self.calibration.camera_name != s.camera_name:
                log.warning(f"calibration {self.calibration.source} is for camera "
                            f"'{self.calibration.camera_name}', this is '{s.camera_name}'")
        self.source: FrameSource = _open(s)
        self._calib_cache: dict[tuple[int, int], CameraCalibration] = {}
        self._calib_note = ""
        self.stats: Counter[str] = Counter()
        self._publish_times: deque[float] = deque(maxlen=120)
        self._last_frame_mono: float | None = None
        self._last_state = ""

        qos = qos_profile_sensor_data
        self.image_pub = self.create_publisher(Image, "image_raw", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.compressed_pub = self.create_publisher(
            CompressedImage, "image_raw/compressed", qos) if s.publish_compressed else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.truth_pub = None
        if getattr(self.source, "kind", "") == "synthetic":
            self.truth_pub = self.create_publisher(BodyPose, "synthetic/truth", 10)
            if self.calibration is not None:
                log.warning("camera_info_url is ignored for a synthetic source: camera_info "
                            "is the renderer's own pinhole")
            self.calibration = self.source.calibration  # type: ignore[attr-defined]
        self.create_timer(s.diagnostics_period, self._publish_diagnostics)

        cal = ("calibration " + self.calibration.source if self.calibration
               else f"no calibration file: camera_info is a pinhole from fov_deg={s.fov_deg:g}")
        log.info(f"{self.source.kind} {self.source.label} -> image_raw ({s.encoding}), "
                 f"camera_info ({cal})"
                 + (", image_raw/compressed" if s.publish_compressed else ""))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name="camera_capture",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ capture thread
    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read(timeout=0.25)
            except Exception as exc:  # a backend bug must not end the stream for good
                self.stats["capture_exceptions"] += 1
                self.get_logger().error(f"reading {self.source.label} failed: "
                                        f"{type(exc).__name__}: {exc}",
                                        throttle_duration_sec=2.0)
                self._stop.wait(0.5)
                continue
            self._log_state_change()
            if frame is None:
                if self.source.ended:
                    self._stop.wait(0.25)
                continue
            try:
                self._publish(frame)
            except Exception as exc:
                if not self.context.ok():
                    return  # shutting down: publishers are gone
                self.stats["publish_errors"] += 1
                self.get_logger().error(f"publishing a frame failed: {type(exc).__name__}: "
                                        f"{exc}", throttle_duration_sec=2.0)

    def _log_state_change(self) -> None:
        st = self.source.status()
        if st.state == self._last_state:
            return
        log = self.get_logger()
        if st.state == "streaming":
            log.info(st.message + (" (re-opened)" if st.reopened else ""))
        elif st.state in ("lost", "opening"):
            log.error(st.message)
        elif st.state == "ended":
            log.info(f"{st.message}; {st.frames} frames published")
        self._last_state = st.state

    def _calibration_for(self, width: int, height: int) -> CameraCalibration:
        cal = self._calib_cache.get((width, height))
        if cal is not None:
            return cal
        log = self.get_logger()
        s = self.settings
        if self.calibration is None:
            cal = calibration_from_fov(width, height, s.fov_deg)
            self._calib_note = f"pinhole from fov_deg={s.fov_deg:g} (no calibration file)"
        else:
            try:
                cal = self.calibration.scaled_to(width, height)
                self._calib_note = f"from {self.calibration.source}"
                if cal is not self.calibration:
                    self._calib_note += (f", scaled from {self.calibration.width}x"
                                         f"{self.calibration.height}")
                    log.warning(f"images are {width}x{height}; {self._calib_note}")
            except CalibrationError as exc:
                cal = calibration_from_fov(width, height, s.fov_deg)
                self._calib_note = f"pinhole from fov_deg={s.fov_deg:g}: {exc}"
                log.error(f"{exc}; publishing a pinhole from fov_deg={s.fov_deg:g} instead")
        self._calib_cache[(width, height)] = cal
        return cal

    def _publish(self, frame: Frame) -> None:
        s = self.settings
        # The ROS clock at the capture moment (== frame.stamp unless use_sim_time)
        age = max(0.0, time.time() - frame.stamp)
        stamp = (self.get_clock().now() - Duration(nanoseconds=int(age * 1e9))).to_msg()
        bgr = frame.image
        h, w = bgr.shape[:2]
        img = Image()
        img.header.stamp = stamp
        img.header.frame_id = s.frame_id
        img.height, img.width, img.encoding, img.is_bigendian, img.step = h, w, s.encoding, 0, \
            3 * w
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if s.encoding == "rgb8" \
            else np.ascontiguousarray(bgr)
        img.data = pixels.tobytes()
        self.image_pub.publish(img)
        self.info_pub.publish(camera_info_msg(self._calibration_for(w, h), img.header))
        truth = getattr(frame, "truth", None)
        if self.truth_pub is not None and truth is not None:
            from mocap_ros.scene.source import truth_result

            self.truth_pub.publish(to_body_pose(truth_result(truth), img.header))
        if self.compressed_pub is not None:
            self.compressed_pub.publish(self._compressed(frame, img.header))
        self.stats["published"] += 1
        now = time.monotonic()
        self._publish_times.append(now)
        self._last_frame_mono = now

    def _compressed(self, frame: Frame, header: object) -> CompressedImage:
        msg = CompressedImage(header=header, format="bgr8; jpeg compressed bgr8")
        if frame.jpeg is not None:
            msg.data = frame.jpeg
            self.stats["compressed_passthrough"] += 1
        else:
            ok, enc = cv2.imencode(".jpg", frame.image,
                                   [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
            if not ok:
                raise RuntimeError("cv2.imencode('.jpg') failed")
            msg.data = enc.tobytes()
            self.stats["compressed_encoded"] += 1
        return msg

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        st = self.source.status()
        now = time.monotonic()
        times = [t for t in self._publish_times if now - t <= 5.0]
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
            times[-1] > times[0] else 0.0
        level, message = _STATE_LEVEL.get(st.state, DiagnosticStatus.WARN), st.message
        if st.state == "streaming":
            stalled = self._last_frame_mono is None or \
                now - self._last_frame_mono > self.settings.frame_timeout
            if stalled and self._last_frame_mono is not None:
                level = DiagnosticStatus.WARN
                message = (f"no frame for {now - self._last_frame_mono:.1f} s; {st.message}")
            elif "(asked" in st.message:
                level = DiagnosticStatus.WARN  # running, but not in the mode asked for
        values = {
            "source": st.source, "kind": st.kind, "state": st.state,
            "frames_captured": st.frames, "frames_published": self.stats["published"],
            "rate_hz": f"{rate:.2f}", "dropped": st.dropped, "read_errors": st.read_errors,
            "lost": st.lost, "reopened": st.reopened, "loops": st.loops,
            "publish_errors": self.stats["publish_errors"],
            "camera_info": self._calib_note or ("calibration " + self.calibration.source
                                                if self.calibration else
                                                f"fov_deg={self.settings.fov_deg:g}"),
            "jpeg_passthrough": st.jpeg_passthrough,
            "compressed_passthrough": self.stats["compressed_passthrough"],
            "compressed_encoded": self.stats["compressed_encoded"],
        }
        values.update({f"requested_{k}": v for k, v in st.requested.items()})
        values.update({f"granted_{k}": v for k, v in st.granted.items()})
        status = DiagnosticStatus(level=level, name=f"camera_node: {st.kind} source",
                                  message=message, hardware_id=st.source,
                                  values=[KeyValue(key=k, value=str(v))
                                          for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        self._stop.set()
        self.source.interrupt()
        # a camera read blocks for at most one frame (or OpenCV's select timeout)
        self._thread.join(timeout=3.0)
        if not self._thread.is_alive():
            self.source.close()
        super().destroy_node()


def _open(s: CameraSettings) -> FrameSource:
    from mocap_ros.scene.source import SyntheticSource, is_synthetic

    if is_synthetic(s.source):
        return SyntheticSource(s.source, width=s.width, height=s.height, fps=s.fps or 15.0,
                               loop=s.loop, realtime=s.realtime)
    return open_source(s.source, pixel_format=s.pixel_format, width=s.width, height=s.height,
                       fps=s.fps, loop=s.loop, realtime=s.realtime,
                       jpeg_passthrough=s.publish_compressed, backoff_max=s.reopen_max_interval)


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, "camera_node", args)


if __name__ == "__main__":
    sys.exit(main())
