"""Camera calibration for CameraInfo: ROS camera_calibration YAML files, or a stated FOV.

The YAML is the file ROS's ``cameracalibrator`` saves (``ost.yaml``) and camera_info_manager
reads and writes (camera_calibration_parsers' format)::

    image_width: 640
    image_height: 480
    camera_name: webcam
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, t1, t2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    projection_matrix: {rows: 3, cols: 4, data: [fx', 0, cx', Tx, 0, fy', cy', Ty, 0, 0, 1, 0]}

Everything comes back as plain numpy data (:class:`CameraCalibration`); the ROS node turns it
into a ``sensor_msgs/CameraInfo``. No rclpy here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CalibrationError",
    "CameraCalibration",
    "calibration_from_fov",
    "load_calibration",
    "resolve_calibration_url",
]

# Distortion models CameraInfo documents, with the coefficient counts their users expect.
# Others are passed through (a driver may have its own), only the count is not checked.
_KNOWN_MODELS = {"plumb_bob": (5,), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}


class CalibrationError(ValueError):
    """A calibration file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class CameraCalibration:
    """Pinhole calibration as CameraInfo carries it (row-major numpy arrays).

    ``source`` says where it came from: the file's path, or ``"fov 60 deg"`` for the
    stated-FOV fallback (so logs and diagnostics can say which one is in use).
    """

    width: int
    height: int
    K: np.ndarray  # (3, 3)
    D: np.ndarray  # (n,)
    R: np.ndarray  # (3, 3)
    P: np.ndarray  # (3, 4)
    distortion_model: str
    camera_name: str = ""
    source: str = ""

    @property
    def from_fov(self) -> bool:
        return self.source.startswith("fov")

    def scaled_to(self, width: int, height: int) -> CameraCalibration:
        """The same calibration for images resized to ``width`` x ``height``.

        Valid only for a pure resize (same aspect ratio): focal lengths and principal point
        scale with the image, distortion coefficients do not. Raises CalibrationError when
        the aspect ratio differs (a crop, or a different sensor mode), where no scaling is
        right.
        """
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise CalibrationError(
                f"calibration {self.source or ''} is for {self.width}x{self.height}, images are "
                f"{width}x{height}: a different aspect ratio, cannot be scaled")
        S = np.diag([sx, sy, 1.0])
        return replace(self, width=int(width), height=int(height), K=S @ self.K, P=S @ self.P)


def calibration_from_fov(width: int, height: int, hfov_deg: float) -> CameraCalibration:
    """An undistorted pinhole with the stated horizontal FOV, square pixels, centred.

    The same focal length as mocap_node's own fallback (``Intrinsics.fallback``), so
    publishing it changes nothing for mocap_node but tells every other consumer the
    assumption.
    """
    if width <= 0 or height <= 0:
        raise CalibrationError(f"image size {width}x{height} must be positive")
    if not 0.0 < hfov_deg < 180.0:
        raise CalibrationError(f"horizontal FOV {hfov_deg} deg must be in (0, 180)")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return CameraCalibration(width=int(width), height=int(height), K=K, D=np.zeros(5),
                             R=np.eye(3), P=np.hstack([K, np.zeros((3, 1))]),
                             distortion_model="plumb_bob", source=f"fov {hfov_deg:g} deg")


def resolve_calibration_url(url: str, camera_name: str = "camera") -> Path:
    """A camera_info_url (``file:///abs/path.yaml``, ``package://pkg/rel/path.yaml`` or a plain
    path) as a local path. ``${NAME}`` becomes ``camera_name`` and ``${ROS_HOME}`` the ROS
    home folder, as camera_info_manager does."""
    text = url.strip()
    ros_home = os.environ.get("ROS_HOME") or str(Path.home() / ".ros")
    text = text.replace("${NAME}", camera_name).replace("${ROS_HOME}", ros_home)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if text.startswith("package://"):
        pkg, _, rel = text[len("package://"):].partition("/")
        try:
            from ament_index_python.packages import get_package_share_directory

            return Path(get_package_share_directory(pkg)) / rel
        except Exception as exc:  # not installed, or no ament index at all
            raise CalibrationError(f"camera_info_url {url!r}: package {pkg!r} not found "
                                   f"({exc})") from exc
    if "://" in text:
        raise CalibrationError(f"camera_info_url {url!r}: only file://, package:// or a plain "
                               "path are supported")
    return Path(text).expanduser()


def _matrix(doc: dict, key: str, rows: int | None, cols: int | None, where: str) -> np.ndarray:
    block = doc.get(key)
    if not isinstance(block, dict) or "data" not in block:
        raise CalibrationError(f"{where}: '{key}' must be a mapping with rows, cols and data")
    r, c, data = block.get("rows"), block.get("cols"), block["data"]
    for name, value, want in (("rows", r, rows), ("cols", c, cols)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CalibrationError(f"{where}: {key}.{name}={value!r} must be a positive integer")
        if want is not None and value != want:
            raise CalibrationError(f"{where}: {key}.{name}={value} but must be {want}")
    if not isinstance(data, list):
        raise CalibrationError(f"{where}: {key}.data must be a list of numbers")
    if len(data) != r * c:
        raise CalibrationError(f"{where}: {key}.data has {len(data)} numbers, rows*cols = "
                               f"{r}*{c} = {r * c}")
    try:
        arr = np.array([float(v) for v in data], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: {key}.data holds a non-number ({exc})") from exc
    if not np.isfinite(arr).all():
        raise CalibrationError(f"{where}: {key}.data holds a NaN or infinity")
    return arr.reshape(r, c)


def _positive_int(doc: dict, key: str, where: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CalibrationError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def parse_calibration(doc: Any, where: str = "calibration") -> CameraCalibration:
    """Validate a loaded camera_calibration YAML document (see the module docstring)."""
    if not isinstance(doc, dict):
        raise CalibrationError(f"{where}: expected a YAML mapping, got {type(doc).__name__}")
    width = _positive_int(doc, "image_width", where)
    height = _positive_int(doc, "image_height", where)
    K = _matrix(doc, "camera_matrix", 3, 3, where)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationError(f"{where}: camera_matrix needs positive fx, fy; got "
                               f"fx={K[0, 0]}, fy={K[1, 1]} (an uncalibrated camera?)")
    model = doc.get("distortion_model", "plumb_bob")
    if not isinstance(model, str) or not model:
        raise CalibrationError(f"{where}: distortion_model must be a name, got {model!r}")
    if "distortion_coefficients" in doc:
        D = _matrix(doc, "distortion_coefficients", 1, None, where).reshape(-1)
    else:
        D = np.zeros(_KNOWN_MODELS.get(model, (0,))[0])
    counts = _KNOWN_MODELS.get(model)
    if counts is not None and D.size not in counts:
        raise CalibrationError(f"{where}: distortion_model {model} takes {counts} coefficients, "
                               f"distortion_coefficients has {D.size}")
    # A monocular file may omit R and P; camera_info_manager's defaults are I and [K | 0].
    R = _matrix(doc, "rectification_matrix", 3, 3, where) if "rectification_matrix" in doc \
        else np.eye(3)
    P = _matrix(doc, "projection_matrix", 3, 4, where) if "projection_matrix" in doc \
        else np.hstack([K, np.zeros((3, 1))])
    name = doc.get("camera_name", "")
    return CameraCalibration(width=width, height=height, K=K, D=D, R=R, P=P,
                             distortion_model=model, camera_name=str(name or ""), source=where)


def load_calibration(url: str, camera_name: str = "camera") -> CameraCalibration:
    """Read a camera_calibration YAML named by a path or camera_info_url.

    Raises CalibrationError naming the file: missing, unreadable, not YAML, or a field
    that is absent or of the wrong shape.
    """
    import yaml

    path = resolve_calibration_url(url, camera_name)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f"calibration file {path}: cannot read ({exc.strerror or exc})") \
            from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError(f"calibration file {path}: not valid YAML ({exc})") from exc
    return parse_calibration(doc, str(path))
