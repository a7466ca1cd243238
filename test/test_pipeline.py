import numpy as np
import pytest
import torch

from mocap_ros.core.config import MocapConfig
from mocap_ros.estimation.hmr.pipeline import MocapPipeline, load_models
from mocap_ros.geometry.camera import Intrinsics, project


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()


def test_result_is_complete_and_consistent(pipe, photo):
    K = Intrinsics(500.0, 500.0, 256.0, 256.0)
    r = pipe.process(photo, (120, 20, 300, 490), K)
    assert r.valid and r.reason == "" and 0 < r.confidence <= 1
    assert r.local_rotations.shape == (24, 4) and r.global_rotations.shape == (24, 4)
    assert np.allclose(np.linalg.norm(r.local_rotations, axis=1), 1, atol=1e-5)
    assert r.joints_cam.shape == (24, 3) and r.keypoints_2d.shape == (24, 2)
    assert r.root_position[2] > 0  # in front of the camera
    assert set(r.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
    assert r.precision == "fp32" and r.n_iter == 1 and r.device == "cpu"
    # the 3D joints project onto the 2D keypoints (weak vs full perspective: depth ratio)
    proj = project(r.joints_cam.astype(np.float64), K)
    depth_ratio = np.abs(r.joints_cam[:, 2] - r.root_translation[2]).max() / \
        r.root_translation[2]
    assert np.abs(proj - r.keypoints_2d).max() <= depth_ratio * 400 + 1.0
    # box: FrankMocap's square of side 1.2 * max(w, h) around the centre
    assert np.allclose(r.bbox, [270 - 294, 265 - 294, 588, 588])


def test_deterministic_and_n_iter_changes_output(cfg, models, pipe, photo):
    a = pipe.process(photo)
    b = pipe.process(photo)
    assert np.array_equal(a.local_rotations, b.local_rotations)
    slow = MocapPipeline(cfg.replace(n_iter=3), models=models).process(photo)
    assert slow.n_iter == 3
    assert not np.allclose(slow.local_rotations, a.local_rotations, atol=1e-6)


def test_box_partly_outside_is_padded_not_rejected(pipe, photo):
    r = pipe.process(photo, (-150, -100, 300, 400))
    assert r.valid or r.reason == "low_confidence"
    assert r.reason != "bbox_outside_image"


@pytest.mark.parametrize(
    "bbox,reason",
    [((10, 10, 2, 2), "bbox_too_small"), ((5000, 5000, 100, 100), "bbox_outside_image")],
)
def test_degenerate_boxes_give_invalid_results_with_a_reason(pipe, photo, bbox, reason):
    r = pipe.process(photo, bbox)
    assert not r.valid and r.reason == reason
    assert np.isfinite(r.local_rotations).all() and np.isfinite(r.joints_cam).all()


@pytest.mark.parametrize("bad", [np.zeros((0, 5, 3), np.uint8), np.zeros((5, 5), np.uint8),
                                 np.zeros((5, 5, 3), np.float64)])
def test_bad_images_raise_value_error(pipe, bad):
    with pytest.raises(ValueError):
        pipe.process(bad)


def test_bad_bbox_raises_value_error(pipe, photo):
    with pytest.raises(ValueError, match="bbox"):
        pipe.process(photo, (1, 2, float("nan"), 4))


def test_nan_anywhere_in_outputs_marks_invalid(cfg, photo):
    models = load_models(cfg)
    with torch.no_grad():
        models.hmr.deccam.bias.fill_(float("nan"))
    r = MocapPipeline(cfg, models=models).process(photo)
    assert not r.valid and r.reason == "non_finite_output"
    assert np.isfinite(r.joints_cam).all()  # never a NaN in what gets published


def test_roi_mode_and_resize_short(cfg, models, photo):
    roi = MocapPipeline(cfg.replace(bbox_mode="roi", roi=[120.0, 20.0, 300.0, 490.0]),
                        models=models).process(photo)
    explicit = MocapPipeline(cfg, models=models).process(photo, (120, 20, 300, 490))
    assert np.array_equal(roi.local_rotations, explicit.local_rotations)
    small = MocapPipeline(cfg.replace(resize_short=256), models=models).process(
        photo, (120, 20, 300, 490))
    assert np.allclose(small.bbox, explicit.bbox)  # reported in input pixels
    assert np.abs(small.keypoints_2d - explicit.keypoints_2d).max() < 15


def test_missing_files_are_named_with_their_source(tmp_path):
    from mocap_ros.assets.files import AssetError

    with pytest.raises(AssetError, match=r"(?s)2020_05_31-00_50_43.*smpl_mean_params"):
        MocapPipeline(MocapConfig(assets_dir=str(tmp_path), device="cpu"))


def test_precision_rules_on_cpu(cfg, models):
    with pytest.raises(ValueError, match="fp16 needs a CUDA"):
        MocapPipeline(cfg.replace(precision="fp16"), models=models)
    assert MocapPipeline(cfg.replace(precision="auto"), models=models).precision == "fp32"


def test_cuda_request_without_gpu_is_a_clear_error(cfg, models):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path cannot occur")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        MocapPipeline(cfg.replace(device="cuda"), models=models)
    auto = MocapPipeline(cfg.replace(device="auto"), models=models)
    assert auto.device.type == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_pipeline_matches_fp32_on_cuda(cfg, photo):
    models = load_models(cfg)
    p32 = MocapPipeline(cfg.replace(device="cuda", precision="fp32"), models=models)
    r32 = p32.process(photo)
    p16 = MocapPipeline(cfg.replace(device="cuda", precision="fp16"), models=models)
    r16 = p16.process(photo)
    assert r16.precision == "fp16"
    rel = np.linalg.norm(r16.local_rotations - r32.local_rotations) / np.linalg.norm(
        r32.local_rotations)
    assert rel <= 1e-2
