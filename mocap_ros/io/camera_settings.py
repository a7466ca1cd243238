"""camera_node's parameters, in the config-dataclass form the other nodes use.

Lives here until it joins mocap_ros.config (core/config); declared as ROS parameters by
mocap_ros.ros.params.declare_dataclass, so every field has its description and range.
"""

from __future__ import annotations

from dataclasses import dataclass

from mocap_ros.config import _f, _validate_fields

PIXEL_FORMATS = ("MJPG", "YUYV", "any")
ENCODINGS = ("rgb8", "bgr8")


@dataclass
class CameraSettings:
    source: str = _f("0", "What to play: a V4L2 camera by index (0) or device (/dev/video0), a "
                     "video file (clip.mp4), or a folder of images (frames/).")
    pixel_format: str = _f("MJPG", "Pixel format asked of a camera: MJPG (compressed; most "
                           "webcams reach 30 fps at 720p only in it), YUYV (uncompressed), or "
                           "any (keep the camera's). What was granted is logged and on "
                           "/diagnostics.", choices=PIXEL_FORMATS)
    width: int = _f(640, "Image width asked of a camera (0 = the camera's own).",
                    min_value=0, max_value=16384)
    height: int = _f(480, "Image height asked of a camera (0 = the camera's own).",
                     min_value=0, max_value=16384)
    fps: float = _f(30.0, "Frame rate asked of a camera (0 = the camera's own); for an image "
                    "folder, the rate its images are played at. Video files play at their "
                    "own timestamps.", min_value=0.0, max_value=1000.0)
    frame_id: str = _f("camera_optical_frame", "frame_id of image_raw and camera_info (an "
                       "optical frame: x right, y down, z forward).")
    camera_info_url: str = _f("", "Calibration in ROS camera_calibration YAML (what "
                              "cameracalibrator saves): a path, file:///path or "
                              "package://pkg/path. Empty = a pinhole from fov_deg, said in "
                              "the log and on /diagnostics.")
    camera_name: str = _f("camera", "Camera name: ${NAME} in camera_info_url; a calibration "
                          "file for another camera name is reported.")
    fov_deg: float = _f(60.0, "Horizontal field of view (degrees) for camera_info when no "
                        "calibration file is given (typical USB webcam).",
                        min_value=10.0, max_value=170.0)
    loop: bool = _f(False, "Video file / image folder: start again at the end.")
    realtime: bool = _f(True, "Video file / image folder: release frames at their timestamps "
                        "(true) or as fast as they can be read (false).")
    publish_compressed: bool = _f(False, "Also publish image_raw/compressed: the camera's or "
                                  "file's own JPEG bytes when it delivers MJPG/JPEG (no "
                                  "re-encoding), else a JPEG encoded here.")
    jpeg_quality: int = _f(90, "Quality of JPEGs encoded here for image_raw/compressed.",
                           min_value=1, max_value=100)
    encoding: str = _f("rgb8", "image_raw encoding: rgb8 (mocap_node reads it without a "
                       "copy) or bgr8 (OpenCV's order).", choices=ENCODINGS)
    reopen_max_interval: float = _f(5.0, "Longest wait (s) between attempts to re-open a "
                                    "source that went away (attempts start 0.25 s apart "
                                    "and double).", min_value=0.25, max_value=600.0)
    diagnostics_period: float = _f(1.0, "Seconds between /diagnostics reports.",
                                   min_value=0.1, max_value=60.0)
    frame_timeout: float = _f(2.0, "Seconds without a frame while streaming after which "
                              "diagnostics report the stream as stalled.",
                              min_value=0.05, max_value=600.0)

    def validate(self) -> CameraSettings:
        _validate_fields(self)
        if not self.source.strip():
            raise ValueError("source is empty: give a camera index, /dev/videoN, a video file "
                             "or an image folder")
        if not self.frame_id.strip():
            raise ValueError("frame_id is empty: tf2 cannot use an image without a frame")
        return self
