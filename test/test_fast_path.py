"""The fast path (mocap_ros.estimation.hmr.fast_path): its eager fallback equals the eager
pipeline on the
CPU, and the capture selection logic (no CUDA, capture errors, wrong captures, frame-size
changes) runs through real exceptions with the real model. The CUDA graph itself is tested
on a GPU only (marked ``cuda``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mocap_ros.estimation.hmr.fast_path import (
    CompileCapture,
    CudaGraphCapture,
    EagerRunner,
    FastPath,
    fold_batchnorm,
    select_runner,
)
from mocap_ros.estimation.hmr.pipeline import MocapPipeline, load_models
from mocap_ros.geometry.crop import CropBox, crop_box_from_bbox

FIELDS = ("local_rotations", "global_rotations", "joints_cam", "keypoints_2d", "betas",
          "camera", "root_translation", "bbox")


@pytest.fixture(scope="module")
def frames():
    from mocap_ros.tools.frames import bench_frames

    imgs, boxes = bench_frames(3, seed=5)
    small = np.ascontiguousarray(imgs[0][::2, ::2])  # 320x240: another frame size
    return [(imgs[0], boxes[0]), (imgs[1], boxes[1]), (small, (40, 20, 150, 200)),
            (imgs[2], boxes[2])]


def assert_same(a, b, atol=0.0, rtol=0.0):
    assert a.valid == b.valid and a.reason == b.reason
    assert a.confidence == pytest.approx(b.confidence, abs=atol)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=atol, rtol=rtol,
                                   err_msg=f)


def fast_results(pipe, fast, items):
    """process() with the fast path plugged in (as MocapPipeline does on CUDA)."""
    pipe.fast = fast
    try:
        return [pipe.process(img, box) for img, box in items]
    finally:
        pipe.fast = None


class RaisingCapture:
    """A capture that starts like CUDA graph capture does (the step runs on the real model)
    and then fails as an op that cannot be captured makes it fail."""

    name = "fake_graph"

    def __init__(self):
        self.calls = 0

    def unavailable(self, device):
        return ""

    def __call__(self, step, inputs):
        self.calls += 1
        step(*inputs)  # warm-up: the real step, on the real model
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


class CountingCapture:
    """A capture that works (an eager runner under another name) and counts the builds."""

    name = "fake_graph"

    def __init__(self):
        self.shapes = []

    def unavailable(self, device):
        return ""

    def __call__(self, step, inputs):
        self.shapes.append(tuple(inputs[0].shape))
        runner = EagerRunner(step, inputs)
        runner.kind = "fake_graph"
        return runner


class DroppingCapture(CountingCapture):
    """A capture whose replay silently does nothing useful (stale zeros)."""

    def __call__(self, step, inputs):
        out = step(*inputs)
        runner = EagerRunner(lambda *_: torch.zeros_like(out), inputs)
        runner.kind = "fake_graph"
        return runner


# ----------------------------------------------------------------------------- equality
def test_cpu_fast_path_equals_the_eager_pipeline(pipe, frames):
    """On the CPU the fast path runs its step eagerly: the same numbers, bit for bit."""
    fast = FastPath(pipe)
    got = fast_results(pipe, fast, frames)
    want = [pipe.process(img, box) for img, box in frames]
    for a, b in zip(got, want, strict=True):
        assert a.valid  # the comparison is of real poses, not of invalid placeholders
        assert_same(a, b)
        assert set(a.timings_ms) == {"preprocess", "inference", "postprocess", "total"}
    assert fast.kind == "eager" and "no CUDA device" in fast.reason
    assert fast.status().startswith("eager (no CUDA device")


def test_cpu_fast_path_with_resize_short_equals_eager(cfg, models, frames):
    p = MocapPipeline(cfg.replace(resize_short=200), models=models)
    got = fast_results(p, FastPath(p), frames[:3])
    for (img, box), a in zip(frames[:3], got, strict=True):
        assert_same(a, p.process(img, box))


def test_folded_batchnorm_matches_within_fp32_rounding(pipe, frames):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    folded = fold_batchnorm(pipe.hmr)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in pipe.hmr.modules())  # a copy
    with torch.inference_mode():
        fa, fb = folded.features(x), pipe.hmr.features(x)
        assert fa.abs().max() > 1e-3  # the features are not trivially zero
        torch.testing.assert_close(fa, fb, rtol=1e-4, atol=1e-5)
        for a, b in zip(folded(x, n_iter=3), pipe.hmr(x, n_iter=3), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    got = fast_results(pipe, FastPath(pipe, fold_bn=True), frames[:2])
    for (img, box), a in zip(frames[:2], got, strict=True):
        assert_same(a, pipe.process(img, box), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- selection
def test_no_cuda_means_eager_with_the_reason(pipe):
    frame = torch.zeros(48, 64, 3, dtype=torch.uint8)
    box = torch.tensor(CropBox(32.0, 24.0, 64.0).window, dtype=torch.float64)  # the step's input
    fast = FastPath(pipe)
    for capture in (CudaGraphCapture(), CompileCapture()):
        runner, why = select_runner(fast.step, (frame, box), capture)
        assert runner.kind == "eager"
        assert "no CUDA device" in why and "cpu" in why
        assert runner().shape == (1, 11 * 24 + 13)


def test_capture_error_falls_back_to_eager_logged_once(pipe, frames, caplog):
    capture = RaisingCapture()
    fast = FastPath(pipe, capture=capture)
    # caplog listens at the root: a module logger created after some library swapped the
    # logger class (launch's LaunchLogger does not propagate) must propagate for this test
    logger = logging.getLogger("mocap_ros.estimation.hmr.fast_path")
    propagate, logger.propagate = logger.propagate, True
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            got = fast_results(pipe, fast, frames)
    finally:
        logger.propagate = propagate
    assert fast.kind == "eager"
    assert fast.reason == ("fake_graph capture failed: RuntimeError: operation not permitted "
                           "when stream is capturing")
    # tried once: a capture that failed is not retried for the next frame size
    assert capture.calls == 1
    lines = [r.getMessage() for r in caplog.records if "fast path" in r.getMessage()]
    assert lines == [f"fast path: running eager ({fast.reason})"]
    for (img, box), a in zip(frames, got, strict=True):
        assert_same(a, pipe.process(img, box))


def test_a_capture_that_disagrees_with_eager_is_refused(pipe, frames):
    fast = FastPath(pipe, capture=DroppingCapture())
    got = fast_results(pipe, fast, frames[:1])
    assert fast.kind == "eager" and "differs from eager" in fast.reason
    assert_same(got[0], pipe.process(*frames[0]))
    # without the check the wrong capture would be used: the check is what caught it
    unchecked = FastPath(pipe, capture=DroppingCapture(), verify=False)
    bad = fast_results(pipe, unchecked, frames[:1])[0]
    assert unchecked.kind == "fake_graph" and not np.allclose(bad.betas, got[0].betas)


def test_frame_size_change_reallocates_and_recaptures(pipe, frames):
    capture = CountingCapture()
    fast = FastPath(pipe, capture=capture)
    got = fast_results(pipe, fast, frames)  # 640x480, 640x480, 320x240, 640x480
    assert capture.shapes == [(480, 640, 3), (240, 320, 3), (480, 640, 3)]
    assert fast.captures == 3 and fast.kind == "fake_graph" and fast.reason == ""
    assert fast.shape == (480, 640, 3) and tuple(fast.host_frame.shape) == (480, 640, 3)
    for (img, box), a in zip(frames, got, strict=True):
        assert_same(a, pipe.process(img, box))


def test_the_box_is_an_input_not_a_constant(pipe, frames):
    """One capture serves every box: the theta is computed from the box tensor."""
    capture = CountingCapture()
    fast = FastPath(pipe, capture=capture)
    img = frames[0][0]
    boxes = [(100, 50, 200, 300), (300, 100, 150, 250), (-50, -20, 300, 400)]
    got = fast_results(pipe, fast, [(img, b) for b in boxes])
    assert len(capture.shapes) == 1
    for b, a in zip(boxes, got, strict=True):
        assert_same(a, pipe.process(img, b))
    assert not np.allclose(got[0].keypoints_2d, got[1].keypoints_2d)


def test_unknown_mode_is_a_clear_error(pipe):
    with pytest.raises(ValueError, match="not one of"):
        FastPath(pipe, mode="turbo")


def test_pipeline_uses_the_fast_path_on_cuda_only(cfg, models, pipe):
    assert pipe.fast is None and pipe.fast_path_status.startswith("off (CUDA only")
    off = MocapPipeline(cfg.replace(fast_path=False), models=models)
    assert off.fast_path_status == "off (fast_path=false)"


def test_profile_stages_and_model_runner_on_cpu(pipe, frames):
    fast = FastPath(pipe)
    img, bbox = frames[0]
    stages = fast.profile_stages(img, crop_box_from_bbox(bbox))
    assert list(stages) == ["upload", "crop", "hmr", "body+pack", "download"]
    assert all(v >= 0 for v in stages.values())
    runner, why = fast.model_runner()
    assert runner.kind == "eager" and "no CUDA device" in why
    with torch.inference_mode():
        rotmat, betas, cam = runner()
    assert rotmat.shape == (1, 24, 3, 3) and betas.shape == (1, 10) and cam.shape == (1, 3)


# ----------------------------------------------------------------------------- CUDA
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_cuda_graph_fast_path_equals_eager(cfg, frames, precision):
    models = load_models(cfg)  # its own copy: the CPU fixtures' modules stay on the CPU
    c = cfg.replace(device="cuda", precision=precision)
    fast = MocapPipeline(c, models=models)
    eager = MocapPipeline(c.replace(fast_path=False), models=models)
    assert fast.fast is not None and eager.fast is None
    got = [fast.process(img, box) for img, box in frames]
    assert fast.fast.kind == "cuda_graph", fast.fast_path_status
    assert fast.fast.captures == 3  # 640x480, 320x240, 640x480 again
    tol = 2e-2 if precision == "fp16" else 1e-3  # fp32 convs may run in TF32 on a GPU
    for (img, box), a in zip(frames, got, strict=True):
        b = eager.process(img, box)
        assert a.valid == b.valid
        for f in ("local_rotations", "global_rotations", "betas", "camera"):
            np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=tol, err_msg=f)
        # metres; the depth (~3 m) scales with 1 / the camera scale, the most fp16-sensitive
        np.testing.assert_allclose(a.joints_cam, b.joints_cam,
                                   atol=0.05 if precision == "fp16" else 5e-3, rtol=0)
    assert fast.fast.host_frame.is_pinned() and fast.fast.host_out.is_pinned()


@pytest.mark.cuda
@cuda
def test_cuda_capture_error_falls_back_to_eager(cfg, frames):
    models = load_models(cfg)
    p = MocapPipeline(cfg.replace(device="cuda"), models=models)
    eager = MocapPipeline(cfg.replace(device="cuda", fast_path=False), models=models)
    p.fast = FastPath(p, capture=RaisingCapture())
    a = p.process(*frames[0])
    assert p.fast.kind == "eager" and "capture failed" in p.fast.reason
    b = eager.process(*frames[0])
    np.testing.assert_allclose(a.local_rotations, b.local_rotations, atol=2e-2)
