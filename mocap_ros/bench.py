"""Benchmark: the seed's baseline against our fast settings and path, in one run.

Variants (same weights, same frames, same device):
  baseline    FrankMocap-style: numpy/OpenCV crop + normalise on the CPU, fp32, n_iter=3
  fast        fp16 (fp32 on a CPU) + n_iter=1, same CPU preprocessing
  pipeline    MocapPipeline.process: torch crop on the device, fast settings
Each reports per-stage median and p95 in ms; ratios are against the baseline's total.
A model-only section times the regressor alone for n_iter 1 and 3.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mocap_ros.camera import Intrinsics
from mocap_ros.config import MocapConfig
from mocap_ros.pipeline import MocapPipeline
from mocap_ros.preprocess import crop_box_from_bbox, frankmocap_crop, normalize_numpy
from mocap_ros.rotations import rotmat_to_quat


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def _stats(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {"median": statistics.median(v), "p95": _pct(v, 95), "p99": _pct(v, 99)}
            for k, v in samples.items()}


def bench_frames(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[tuple]]:
    """640x480 RGB frames of a real photo at varying places, with the person's box."""
    from skimage import data

    rng = np.random.default_rng(seed)
    person = data.astronaut()  # 512x512 RGB, ships with scikit-image
    frames, boxes = [], []
    for _ in range(n):
        frame = np.zeros((480, 640, 3), np.uint8)
        size = int(rng.integers(300, 420))
        patch = np.asarray(
            torch.nn.functional.interpolate(
                torch.from_numpy(person).permute(2, 0, 1)[None].float(), size=(size, size),
                mode="bilinear", align_corners=False)[0].permute(1, 2, 0).clamp(0, 255).byte())
        x, y = int(rng.integers(0, 640 - size)), int(rng.integers(0, 480 - size))
        frame[y:y + size, x:x + size] = patch
        frames.append(frame)
        boxes.append((x + size * 0.15, y + size * 0.1, size * 0.7, size * 0.9))
    return frames, boxes


def _seed_style(pipe: MocapPipeline, n_iter: int) -> Callable:
    """The seed's per-frame path: CPU crop/normalise in numpy, tensor upload, model, FK."""
    def run(frame: np.ndarray, bbox: tuple) -> dict[str, float]:
        t0 = time.perf_counter()
        box = crop_box_from_bbox(bbox)
        x = torch.from_numpy(normalize_numpy(frankmocap_crop(frame, box)))[None].to(pipe.device)
        pipe._sync()
        t1 = time.perf_counter()
        with torch.inference_mode(), pipe._autocast():
            rotmat, betas, cam = pipe.hmr(x, n_iter=n_iter)
        pipe._sync()
        t2 = time.perf_counter()
        with torch.inference_mode():
            body = pipe.body(rotmat, betas)
            _ = (rotmat_to_quat(rotmat).cpu().numpy(), body.joints.cpu().numpy(),
                 cam.cpu().numpy())
        t3 = time.perf_counter()
        return {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                "postprocess": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3}
    return run


def _pipeline_path(pipe: MocapPipeline) -> Callable:
    K = Intrinsics.fallback(640, 480)

    def run(frame: np.ndarray, bbox: tuple) -> dict[str, float]:
        return pipe.process(frame, bbox, K).timings_ms
    return run


def _time_variant(fn: Callable, frames: list, boxes: list, warmup: int) -> dict[str, list[float]]:
    for i in range(warmup):
        fn(frames[i % len(frames)], boxes[i % len(boxes)])
    samples: dict[str, list[float]] = {}
    for frame, bbox in zip(frames, boxes, strict=True):
        for k, v in fn(frame, bbox).items():
            samples.setdefault(k, []).append(v)
    return samples


def _model_only(pipe: MocapPipeline, n_iter: int, reps: int, warmup: int) -> dict[str, float]:
    x = torch.randn(1, 3, 224, 224, device=pipe.device)
    if pipe.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), pipe._autocast():
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            pipe.hmr(x, n_iter=n_iter)
            pipe._sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return {"median": statistics.median(times), "p95": _pct(times, 95)}


def n_iter_drift(base: MocapPipeline, fast: MocapPipeline, frames: list, boxes: list
                 ) -> dict[str, float]:
    """How far n_iter=1 moves the outputs from the trained setting (n_iter=3).

    The checkpoint supervised only the last of 3 iterations, so this is the accuracy cost
    of the fast setting; with synthetic weights it only shows the machinery.
    """
    angles, mm = [], []
    for frame, bbox in zip(frames, boxes, strict=True):
        a, b = base.process(frame, bbox), fast.process(frame, bbox)
        dots = np.abs(np.sum(a.local_rotations[1:] * b.local_rotations[1:], axis=1))
        angles.append(np.degrees(2 * np.arccos(np.clip(dots, 0, 1))))
        rel_a = a.joints_cam - a.joints_cam[:1]
        rel_b = b.joints_cam - b.joints_cam[:1]
        mm.append(np.linalg.norm(rel_a - rel_b, axis=1) * 1e3)
    ang, dist = np.concatenate(angles), np.concatenate(mm)
    return {"rotation_deg_mean": float(ang.mean()), "rotation_deg_max": float(ang.max()),
            "joint_mm_mean": float(dist.mean())}


def _regressor_only(pipe: MocapPipeline, n_iter: int, reps: int, warmup: int
                    ) -> dict[str, float]:
    """The iterative regressor alone (features given): what n_iter actually costs."""
    xf = torch.randn(1, 2048, device=pipe.device)
    times = []
    with torch.inference_mode(), pipe._autocast():
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            pipe.hmr.regress(xf, n_iter)
            pipe._sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return {"median": statistics.median(times), "p95": _pct(times, 95)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def run_benchmark(config: MocapConfig, frames: int = 20, warmup: int = 3,
                  json_path: str | None = None, print_fn: Callable[[str], None] = print) -> dict:
    base_cfg = config.replace(n_iter=3, precision="fp32")
    fast_cfg = config.replace(n_iter=1, precision="auto")
    base = MocapPipeline(base_cfg)
    fast = MocapPipeline(fast_cfg, models=base.models)
    imgs, boxes = bench_frames(frames)
    variants = {
        "baseline (seed: CPU crop, fp32, n_iter=3)": _seed_style(base, 3),
        f"fast ({fast.precision}, n_iter=1, CPU crop)": _seed_style(fast, 1),
        f"pipeline ({fast.precision}, n_iter=1, device crop)": _pipeline_path(fast),
    }
    results = {name: _stats(_time_variant(fn, imgs, boxes, warmup))
               for name, fn in variants.items()}
    pipes = {"fp32": base, fast.precision: fast}  # one entry on a CPU (both fp32)
    model = {f"{p} n_iter={n}": _model_only(pipe, n, max(frames, 10), warmup)
             for p, pipe in pipes.items() for n in (3, 1)}
    model |= {f"regressor only, {p} n_iter={n}": _regressor_only(pipe, n, 200, warmup)
              for p, pipe in pipes.items() for n in (3, 1)}
    drift = n_iter_drift(base, fast, imgs, boxes)
    dev = device_name(base.device)
    out = {"device": dev, "torch": torch.__version__, "frames": frames, "frame_size": "640x480",
           "synthetic_weights": base.models.synthetic, "variants": results, "model_only": model,
           "n_iter_1_vs_3": drift}
    base_total = next(iter(results.values()))["total"]["median"]
    lines = [f"mocap_ros benchmark on {dev} (torch {torch.__version__}), {frames} frames 640x480",
             "", f"{'variant':<46}{'stage':<12}{'median ms':>10}{'p95 ms':>10}{'speed-up':>10}"]
    for name, stages in results.items():
        for stage, st in stages.items():
            ratio = base_total / st["median"] if stage == "total" else None
            lines.append(f"{name if stage == 'preprocess' else '':<46}{stage:<12}"
                         f"{st['median']:>10.2f}{st['p95']:>10.2f}"
                         f"{(f'{ratio:.2f}x' if ratio else ''):>10}")
    lines += ["", f"{'model only (HMR forward, batch 1)':<46}{'':<12}{'median ms':>10}"
              f"{'p95 ms':>10}{'vs fp32/3':>10}"]
    ref = next(iter(model.values()))["median"]
    for name, st in model.items():
        lines.append(f"{name:<58}{st['median']:>10.2f}{st['p95']:>10.2f}"
                     f"{ref / st['median']:>9.2f}x")
    kind = "synthetic" if out["synthetic_weights"] else "real"
    lines += ["", f"n_iter=1 vs 3 on these frames ({kind} weights): joint rotations differ "
              f"by {drift['rotation_deg_mean']:.2f} deg on average "
              f"(max {drift['rotation_deg_max']:.2f}), joints by "
              f"{drift['joint_mm_mean']:.1f} mm (camera-relative pose, root excluded)"]
    for line in lines:
        print_fn(line)
    out["table"] = lines
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=2))
    return out
