"""FrankMocap's crop window, checked against its convention written out step by step.

The reference below follows FrankMocap's ``bodymocap/utils/imutils.py`` operation by
operation (``bbox_from_bbr`` -> ``get_transform`` -> ``transform(invert=1)`` ->
``crop_bboxInfo``), in plain numpy and OpenCV, independently of ``mocap_ros.geometry.crop``:
a 3x3 matrix inverted in floating point, corners truncated by ``astype(int)``, a zero canvas,
``cv2.resize``. Boxes are fractional, as detectors give them.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mocap_ros.estimation.hmr.preprocess import (
    IMAGENET_STD,
    Normalizer,
    crop_batch,
    frame_to_tensor,
    frankmocap_crop,
    normalize_numpy,
)
from mocap_ros.geometry.camera import weak_perspective_to_image
from mocap_ros.geometry.crop import crop_box_from_bbox

RES = 224


def _reference(img: np.ndarray, bbox_xywh) -> tuple[np.ndarray, float, np.ndarray]:
    """FrankMocap's process_image_bbox crop, step by step: (crop, boxScale_o2n, topLeft)."""
    b = np.asarray(bbox_xywh, dtype=np.float64)
    center = b[:2] + 0.5 * b[2:]
    scale = max(b[2:]) / 200.0 * 1.2
    h = 200 * scale
    t = np.zeros((3, 3))
    t[0, 0] = float(RES) / h
    t[1, 1] = float(RES) / h
    t[0, 2] = RES * (-float(center[0]) / h + 0.5)
    t[1, 2] = RES * (-float(center[1]) / h + 0.5)
    t[2, 2] = 1
    inv = np.linalg.inv(t)

    def back(pt):
        new_pt = np.dot(inv, np.array([pt[0] - 1, pt[1] - 1, 1.0]).T)
        return new_pt[:2].astype(int) + 1

    ul = np.array(back([1, 1])) - 1
    br = np.array(back([RES + 1, RES + 1])) - 1
    new_img = np.zeros([br[1] - ul[1], br[0] - ul[0], 3], dtype=np.uint8)
    new_x = max(0, -ul[0]), min(br[0], len(img[0])) - ul[0]
    new_y = max(0, -ul[1]), min(br[1], len(img)) - ul[1]
    old_x = max(0, ul[0]), min(len(img[0]), br[0])
    old_y = max(0, ul[1]), min(len(img), br[1])
    new_img[new_y[0]:new_y[1], new_x[0]:new_x[1]] = img[old_y[0]:old_y[1], old_x[0]:old_x[1]]
    o2n = RES / new_img.shape[0]
    return cv2.resize(new_img, (RES, RES)), o2n, ul


FRACTIONAL_BOXES = [
    (230.0, 100.0, 250.0, 250.0),  # the float-noise case: a 301x300 window
    (101.37, 57.8, 180.25, 311.6),
    (-40.5, 12.25, 150.75, 260.125),  # partly left of the image
    (300.9, 200.1, 199.3, 330.7),  # partly below and right of it
    (10.01, 10.99, 480.5, 470.3),
    (255.5, 255.5, 0.9, 77.7),
]


def test_window_of_the_float_noise_case():
    box = crop_box_from_bbox((230, 100, 250, 250))
    assert box.window == (204, 75, 505, 375)  # 301 wide, 300 high
    _, o2n, ul = _reference(np.zeros((480, 640, 3), np.uint8), (230, 100, 250, 250))
    assert tuple(ul) == box.window[:2] and o2n == pytest.approx(box.scale_o2n, abs=0)


@pytest.mark.parametrize("bbox", FRACTIONAL_BOXES)
def test_window_matches_frankmocap(bbox):
    box = crop_box_from_bbox(bbox)
    _, o2n, ul = _reference(np.zeros((480, 640, 3), np.uint8), bbox)
    assert box.window[:2] == tuple(int(v) for v in ul)
    assert box.scale_o2n == o2n  # both axes scaled by the window height, exactly


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    img = data.astronaut()  # 512x512, a real photograph shipped with scikit-image
    return np.ascontiguousarray(np.pad(img, ((0, 0), (64, 64), (0, 0)), mode="reflect"))


@pytest.mark.parametrize("bbox", FRACTIONAL_BOXES)
def test_numpy_crop_equals_frankmocaps_pixels(photo, bbox):
    ref, _, _ = _reference(photo, bbox)
    assert np.array_equal(frankmocap_crop(photo, crop_box_from_bbox(bbox)), ref)


@pytest.mark.parametrize("bbox", FRACTIONAL_BOXES)
def test_torch_crop_matches_frankmocap(photo, bbox):
    ref, _, _ = _reference(photo, bbox)
    norm = Normalizer(torch.device("cpu"), torch.float32)
    x = crop_batch(frame_to_tensor(photo, torch.device("cpu"), torch.float32),
                   [crop_box_from_bbox(bbox)], norm)[0].numpy()
    diff = np.abs(x - normalize_numpy(ref)) * np.asarray(IMAGENET_STD, np.float32)[:, None, None]
    diff *= 255
    # OpenCV resizes uint8 with 11-bit fixed-point weights and rounds: about 1 grey level
    assert np.percentile(diff, 99) <= 1.01 and diff.max() <= 2.01


@pytest.mark.parametrize("bbox", FRACTIONAL_BOXES[:3])
def test_keypoints_map_back_as_frankmocap(bbox):
    # convert_smpl_to_bbox + convert_bbox_to_oriIm: crop pixels / boxScale_o2n + topLeft
    rng = np.random.default_rng(0)
    pts = rng.normal(0.0, 0.4, (24, 3))
    cam = np.array([0.9, 0.05, -0.1])
    _, o2n, ul = _reference(np.zeros((480, 640, 3), np.uint8), bbox)
    crop_px = (cam[0] * pts[:, :2] + cam[1:]) * 112.0 + 112.0
    want = crop_px / o2n + ul
    got = weak_perspective_to_image(pts, cam, crop_box_from_bbox(bbox))
    np.testing.assert_allclose(got, want, atol=1e-9)
