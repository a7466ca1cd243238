import numpy as np
import pytest

from mocap_ros.geometry.camera import (
    Intrinsics,
    project,
    root_translation,
    weak_perspective_to_image,
)
from mocap_ros.geometry.crop import CropBox


def frankmocap_reference(points, cam, box):
    """FrankMocap's convert_smpl_to_bbox + convert_bbox_to_oriIm, written out step by step."""
    s, tx, ty = cam
    p = points[:, :2] * s + np.array([tx, ty])  # scale first, then translate (body module)
    p = p * 112.0 + 112.0  # crop pixels of the 224 input
    scale_o2n = 224.0 / box.side
    top_left = np.array(box.top_left)
    return p / scale_o2n + top_left


@pytest.fixture
def body():
    rng = np.random.default_rng(1)
    return rng.uniform([-0.8, -1.0, -0.3], [0.8, 0.9, 0.3], size=(24, 3))


def test_2d_mapping_equals_frankmocaps(body):
    box = CropBox(300.0, 250.0, 420.0)
    cam = np.array([0.85, 0.07, -0.12])
    assert np.allclose(weak_perspective_to_image(body, cam, box),
                       frankmocap_reference(body, cam, box), atol=1e-9)


@pytest.mark.parametrize("K", [Intrinsics(600, 600, 320, 240), Intrinsics(900, 880, 300, 260)])
def test_root_translation_round_trips_through_projection(body, K):
    box = CropBox(330.0, 220.0, 380.0)
    cam = np.array([0.9, -0.05, 0.1])
    T = root_translation(cam, box, K)
    kp = weak_perspective_to_image(body, cam, box)
    proj = project(body + T, K)
    assert T[2] > 0
    # exact for points at the model origin's depth ...
    flat = body.copy()
    flat[:, 2] = 0.0
    if K.fx == K.fy:
        assert np.allclose(project(flat + T, K), weak_perspective_to_image(flat, cam, box),
                           atol=1e-6)
    # ... and for a real body the perspective differs from weak perspective by the depth ratio
    rel = np.abs(body[:, 2]).max() / T[2]
    extent = np.abs(kp - kp.mean(0)).max() + np.abs(kp.mean(0) - [K.cx, K.cy]).max()
    assert np.abs(proj - kp).max() <= rel * extent * 1.05 + 1e-6 + abs(K.fx - K.fy) / K.fx * extent


def test_depth_follows_apparent_size():
    K = Intrinsics.fallback(640, 480, focal_length=500.0)
    box = CropBox(320, 240, 300)
    near = root_translation(np.array([1.0, 0, 0]), box, K)
    far = root_translation(np.array([0.5, 0, 0]), box, K)
    assert far[2] == pytest.approx(2 * near[2]) and near[2] == pytest.approx(2 * 500 / 300)


def test_fallback_intrinsics_from_fov():
    K = Intrinsics.fallback(640, 480, hfov_deg=90.0)
    assert K.fx == pytest.approx(320.0) and (K.cx, K.cy) == (320.0, 240.0)
    assert Intrinsics.fallback(640, 480, focal_length=777.0).fx == 777.0


def test_bad_intrinsics_rejected():
    with pytest.raises(ValueError, match="fx"):
        Intrinsics.from_k([0, 0, 320, 0, 0, 240, 0, 0, 1])
    with pytest.raises(ValueError):
        Intrinsics.from_k([np.nan, 0, 320, 0, 500, 240, 0, 0, 1])
