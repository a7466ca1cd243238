import numpy as np
import pytest
import torch

from mocap_ros.estimation.hmr.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalizer,
    crop_batch,
    frame_to_tensor,
    frankmocap_crop,
    normalize_numpy,
    resize_short_side,
)
from mocap_ros.geometry.crop import CropBox, crop_box_from_bbox, full_frame_box
from mocap_ros.io.images import validate_frame


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()


def _torch_crop(img, box):
    norm = Normalizer(torch.device("cpu"), torch.float32)
    x = crop_batch(frame_to_tensor(img, torch.device("cpu"), torch.float32), [box], norm)
    return x[0].numpy()


def test_crop_box_is_frankmocaps_square():
    box = crop_box_from_bbox((100, 50, 80, 200))
    assert (box.cx, box.cy) == (140, 150)
    assert box.side == pytest.approx(240)  # 1.2 * max(w, h)
    assert box.scale_o2n == pytest.approx(224 / 240)


@pytest.mark.parametrize("bbox", [(150, 40, 220, 440), (-120, -60, 300, 400), (400, 300, 200, 300)])
def test_torch_crop_matches_seed_numpy_opencv_crop(photo, bbox):
    # integer-aligned square crops, so the seed's rounding and ours agree exactly
    box = crop_box_from_bbox(bbox)
    box = CropBox(round(box.cx), round(box.cy), round(box.side / 2) * 2)
    ref = normalize_numpy(frankmocap_crop(photo, box))
    ours = _torch_crop(photo, box)
    diff = np.abs(ours - ref) * np.asarray(IMAGENET_STD, np.float32)[:, None, None] * 255
    # OpenCV resizes uint8 with 11-bit fixed-point weights and rounds: at most ~1 level
    assert np.percentile(diff, 99) <= 1.01 and diff.max() <= 2.01


def test_padding_is_zero_pixels(photo):
    box = CropBox(0.0, 0.0, 200.0)  # top-left quadrant is outside the image
    crop = _torch_crop(photo, box)
    black = (-np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD))[:, None, None]
    assert np.allclose(crop[:, :100, :100], black, atol=1e-5)
    assert not np.allclose(crop[:, 150:, 150:], black[:, :1, :1], atol=1e-2)


def test_full_frame_box_covers_everything():
    box = full_frame_box(640, 480)
    assert box.side == 640 and box.top_left == (0.0, -80.0)


def test_resize_short_side_antialiases_and_reports_factor():
    frame = torch.zeros(1, 3, 1080, 1920)
    out, f = resize_short_side(frame, 540)
    assert out.shape[-2:] == (540, 960) and f == 0.5
    same, f1 = resize_short_side(frame, 2000)
    assert same is frame and f1 == 1.0


@pytest.mark.parametrize(
    "bad,msg",
    [
        (np.zeros((10, 10, 3), np.float32), "dtype"),
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2, 3]], "numpy"),
    ],
)
def test_bad_frames_raise_value_error_naming_the_problem(bad, msg):
    with pytest.raises(ValueError, match=msg):
        validate_frame(bad)
