"""Camera calibration files (ROS camera_calibration YAML) and the stated-FOV fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocap_ros.io.calibration import (
    CalibrationError,
    calibration_from_fov,
    load_calibration,
    resolve_calibration_url,
)

# As cameracalibrator saves it (ost.yaml, camera_calibration_parsers' writer): flow-style
# data lists wrapped over several lines, numbers padded.
OST_YAML = """\
image_width: 640
image_height: 480
camera_name: logitech_c920
camera_matrix:
  rows: 3
  cols: 3
  data: [ 627.43211,    0.     ,  322.18394,
            0.     ,  626.97115,  238.51257,
            0.     ,    0.     ,    1.     ]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [ 0.071842, -0.178261, -0.000811, 0.001273, 0.000000]
rectification_matrix:
  rows: 3
  cols: 3
  data: [ 1.,  0.,  0.,
          0.,  1.,  0.,
          0.,  0.,  1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [ 633.10846,    0.     ,  322.78116,    0.     ,
            0.     ,  634.57422,  238.17652,    0.     ,
            0.     ,    0.     ,    1.     ,    0.     ]
"""

K_EXPECTED = [[627.43211, 0, 322.18394], [0, 626.97115, 238.51257], [0, 0, 1]]
D_EXPECTED = [0.071842, -0.178261, -0.000811, 0.001273, 0.0]
P_EXPECTED = [[633.10846, 0, 322.78116, 0], [0, 634.57422, 238.17652, 0], [0, 0, 1, 0]]


@pytest.fixture
def ost(tmp_path: Path) -> Path:
    path = tmp_path / "ost.yaml"
    path.write_text(OST_YAML)
    return path


def test_cameracalibrator_file_is_read_as_written(ost):
    cal = load_calibration(str(ost))
    assert (cal.width, cal.height, cal.camera_name) == (640, 480, "logitech_c920")
    assert cal.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(cal.K, K_EXPECTED)
    np.testing.assert_array_equal(cal.D, D_EXPECTED)
    np.testing.assert_array_equal(cal.R, np.eye(3))
    np.testing.assert_array_equal(cal.P, P_EXPECTED)
    assert cal.source == str(ost) and not cal.from_fov


def test_urls(ost, monkeypatch, tmp_path):
    assert load_calibration(f"file://{ost}").K[0, 0] == 627.43211
    named = tmp_path / "cam_left.yaml"
    named.write_text(OST_YAML)
    assert resolve_calibration_url(f"file://{tmp_path}/${{NAME}}.yaml", "cam_left") == named
    monkeypatch.setenv("ROS_HOME", str(tmp_path))
    assert resolve_calibration_url("${ROS_HOME}/cam_left.yaml") == named
    with pytest.raises(CalibrationError, match="only file://"):
        resolve_calibration_url("http://example.invalid/cal.yaml")


def test_rational_polynomial_and_optional_matrices(tmp_path):
    path = tmp_path / "rp.yaml"
    path.write_text("image_width: 1280\nimage_height: 720\n"
                    "camera_matrix: {rows: 3, cols: 3, data: [900, 0, 640, 0, 901, 360, 0, 0, 1]}\n"
                    "distortion_model: rational_polynomial\n"
                    "distortion_coefficients: {rows: 1, cols: 8, data: [1, 2, 3, 4, 5, 6, 7, 8]}\n")
    cal = load_calibration(str(path))
    assert cal.D.tolist() == [1, 2, 3, 4, 5, 6, 7, 8] and cal.camera_name == ""
    np.testing.assert_array_equal(cal.R, np.eye(3))  # camera_info_manager's defaults
    np.testing.assert_array_equal(cal.P[:, :3], cal.K)
    np.testing.assert_array_equal(cal.P[:, 3], 0)


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace("image_width: 640", "image_width: -640"), "image_width"),
    (lambda t: t.replace("image_height: 480\n", ""), "image_height"),
    (lambda t: t.replace("  data: [ 627.43211,    0.     ,",
                         "  data: [ 627.43211,"), "camera_matrix.data has 8"),
    (lambda t: t.replace("  rows: 3\n  cols: 4", "  rows: 4\n  cols: 4"),
     "projection_matrix.rows=4 but must be 3"),
    (lambda t: t.replace("627.43211", "0.0"), "positive fx"),
    (lambda t: t.replace("cols: 5", "cols: 4").replace(", 0.000000]", "]"),
     "plumb_bob takes"),
    (lambda t: t.replace("627.43211", "abc"), "non-number"),
    (lambda t: t.replace("627.43211", ".nan"), "NaN"),
    (lambda t: "[1, 2, 3]", "expected a YAML mapping"),
    (lambda t: t + "  bad: [unclosed\n", "not valid YAML"),
])
def test_bad_files_name_the_field(tmp_path, edit, match):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(OST_YAML))
    with pytest.raises(CalibrationError, match=match) as info:
        load_calibration(str(path))
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(str(tmp_path / "none.yaml"))


def test_fov_fallback_is_mocap_nodes_fallback():
    from mocap_ros.geometry.camera import Intrinsics

    cal = calibration_from_fov(640, 480, 60.0)
    ref = Intrinsics.fallback(640, 480, hfov_deg=60.0)
    np.testing.assert_allclose(cal.K, ref.matrix())
    np.testing.assert_array_equal(cal.D, np.zeros(5))
    np.testing.assert_allclose(cal.P[:, :3], cal.K)
    assert cal.from_fov and cal.source == "fov 60 deg"
    with pytest.raises(CalibrationError):
        calibration_from_fov(640, 480, 180.0)


def test_scaling_to_another_resolution(ost):
    cal = load_calibration(str(ost))
    half = cal.scaled_to(320, 240)
    np.testing.assert_allclose(half.K[:2], np.asarray(K_EXPECTED)[:2] / 2)
    np.testing.assert_allclose(half.P[:2], np.asarray(P_EXPECTED)[:2] / 2)
    np.testing.assert_array_equal(half.D, cal.D)
    assert (half.width, half.height) == (320, 240)
    with pytest.raises(CalibrationError, match="aspect ratio"):
        cal.scaled_to(1280, 720)
