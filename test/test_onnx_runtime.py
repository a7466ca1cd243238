"""``runtime: onnxruntime``: the exported HMR equals torch eager fp32, the export is cached
by the weights' hash and n_iter, and the pipeline gives the same poses with it."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from mocap_ros.estimation.hmr.onnx import (
    OnnxRuntimeMissingError,
    OrtHMR,
    export_hmr,
    weights_digest,
)
from mocap_ros.estimation.hmr.pipeline import MocapPipeline

FIELDS = ("local_rotations", "global_rotations", "joints_cam", "keypoints_2d", "betas",
          "camera", "root_translation", "bbox")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """``$MOCAP_ROS_CACHE/onnx`` of a fresh cache root (exports take seconds: shared)."""
    return tmp_path_factory.mktemp("mocap_cache") / "onnx"


@pytest.fixture(scope="module")
def ort_hmr(models, cache):
    return OrtHMR(models.hmr, n_iter=1, cache_dir=cache)


@pytest.fixture(scope="module")
def crops():
    from mocap_ros.estimation.hmr.preprocess import Normalizer, crop_batch, frame_to_tensor
    from mocap_ros.geometry.crop import crop_box_from_bbox
    from mocap_ros.tools.frames import bench_frames

    imgs, boxes = bench_frames(3, seed=2)
    norm = Normalizer(torch.device("cpu"), torch.float32)
    return torch.cat([crop_batch(frame_to_tensor(i, torch.device("cpu"), torch.float32),
                                 [crop_box_from_bbox(b)], norm) for i, b in zip(imgs, boxes,
                                                                                strict=True)])


def test_ort_equals_torch_eager_fp32(ort_hmr, models, crops):
    assert ort_hmr.exported and ort_hmr.path.is_file()
    with torch.inference_mode():
        want = models.hmr(crops, n_iter=1)
        for batch in (crops[:1], crops):  # batch 1 and 3: the batch axis is dynamic
            got = ort_hmr(batch)
            ref = models.hmr(batch, n_iter=1)
            for g, w, name in zip(got, ref, ("rotmat", "betas", "cam"), strict=True):
                assert g.shape == w.shape and g.dtype == torch.float32
                torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4, msg=name)
    # the crops give different outputs: equal outputs are not a constant network's
    assert float((want[0][0] - want[0][1]).abs().max()) > 1e-4


def test_cache_is_keyed_by_weights_and_n_iter(ort_hmr, models, cache):
    again = OrtHMR(models.hmr, n_iter=1, cache_dir=cache)
    assert not again.exported and again.path == ort_hmr.path
    assert "niter1" in again.path.name and ort_hmr.digest[:24] in again.path.name
    other = copy.deepcopy(models.hmr)
    with torch.no_grad():
        other.init_cam[0, 0] += 0.5  # the mean parameters are part of the key too
    assert weights_digest(other) != ort_hmr.digest
    assert weights_digest(copy.deepcopy(models.hmr)) == ort_hmr.digest


def test_damaged_cache_file_is_exported_again(models, tmp_path, crops):
    first = OrtHMR(models.hmr, n_iter=1, cache_dir=tmp_path, exporter="legacy")
    assert first.exporter == "legacy"  # the deprecated TorchScript exporter still works
    with torch.inference_mode():
        for g, w in zip(first(crops), models.hmr(crops, n_iter=1), strict=True):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    first.path.write_bytes(b"not an onnx file")
    again = OrtHMR(models.hmr, n_iter=1, cache_dir=tmp_path, exporter="legacy")
    assert again.exported and again.path == first.path
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind


def test_pipeline_with_onnxruntime_gives_the_same_poses(cfg, models, cache, monkeypatch):
    from mocap_ros.tools.frames import bench_frames

    monkeypatch.setenv("MOCAP_ROS_CACHE", str(cache.parent))
    torch_pipe = MocapPipeline(cfg, models=models)
    ort_pipe = MocapPipeline(cfg.replace(runtime="onnxruntime"), models=models)
    assert ort_pipe.ort is not None and ort_pipe.ort.path.parent == cache
    assert not ort_pipe.ort.exported  # the file test_ort_equals_torch_eager_fp32 exported
    imgs, boxes = bench_frames(3, seed=4)
    batch = ort_pipe.process_batch(imgs, boxes)
    for img, box, rb in zip(imgs, boxes, batch, strict=True):
        a, b = ort_pipe.process(img, box), torch_pipe.process(img, box)
        assert a.valid == b.valid and a.reason == b.reason
        for f in FIELDS:
            np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-4, rtol=1e-4,
                                       err_msg=f)
            np.testing.assert_allclose(getattr(rb, f), getattr(a, f), atol=1e-4, rtol=1e-4,
                                       err_msg=f)


def test_onnxruntime_is_cpu_only_and_fp32(cfg, models, monkeypatch):
    import mocap_ros.estimation.hmr.pipeline as pipeline_module

    # as on a GPU machine: the device resolves to CUDA (checked before any model moves)
    monkeypatch.setattr(pipeline_module, "resolve_device", lambda spec: torch.device("cuda"))
    monkeypatch.setattr(pipeline_module, "resolve_precision", lambda spec, dev: "fp16")
    with pytest.raises(ValueError, match=r"CPU only.*runtime=torch"):
        MocapPipeline(cfg.replace(runtime="onnxruntime"), models=models)
    monkeypatch.setattr(pipeline_module, "resolve_device", lambda spec: torch.device("cpu"))
    monkeypatch.setattr(pipeline_module, "resolve_precision", lambda spec, dev: "bf16")
    with pytest.raises(ValueError, match="fp32 only"):
        MocapPipeline(cfg.replace(runtime="onnxruntime"), models=models)


def test_missing_onnxruntime_says_how_to_install(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(OnnxRuntimeMissingError, match="pip install 'onnxruntime"):
        OrtHMR(models.hmr, n_iter=1, cache_dir=tmp_path)
    assert isinstance(OnnxRuntimeMissingError("x"), RuntimeError)  # the CLI reports these


@pytest.mark.parametrize("exporter", ["auto", "dynamo", "legacy"])
def test_missing_onnx_says_how_to_install(models, tmp_path, monkeypatch, exporter):
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(OnnxRuntimeMissingError, match=r"pip install .*'onnx>="):
        export_hmr(models.hmr, 1, tmp_path / "x.onnx", exporter=exporter)
    assert not (tmp_path / "x.onnx").exists()


def test_unknown_exporter(models, tmp_path):
    with pytest.raises(ValueError, match="exporter"):
        export_hmr(models.hmr, 1, tmp_path / "x.onnx", exporter="tflite")
