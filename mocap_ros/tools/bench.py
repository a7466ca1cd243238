"""Benchmark: the seed's baseline against our fast settings and paths, in one run.

Variants (same weights, same frames, same device):
  baseline    FrankMocap-style: numpy/OpenCV crop + normalise on the CPU, fp32, n_iter=3
  fast        fp16 (fp32 on a CPU) + n_iter=1, same CPU preprocessing
  pipeline    MocapPipeline.process, eager: torch crop on the device, fast settings
  fast path   (CUDA) MocapPipeline.process through the fast path: static buffers, crop + HMR
              + kinematics replayed as one CUDA graph (the default on CUDA)
  compile     (CUDA) the same step through torch.compile(mode="reduce-overhead")
  onnxruntime (CPU) MocapPipeline with runtime=onnxruntime
Each reports per-stage p50/p95/p99 in ms; ratios are against the baseline's total. Then:
model only (HMR forward, batch 1: eager torch, the fast path's captured forward, ONNX
Runtime), the regressor alone, the fast path's stages (CUDA events on a GPU), the fast path
vs eager check on the same frames, batch throughput (process_batch at 1/4/8), the n_iter=1
vs 3 drift and, on CUDA, issue #6's targets.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from mocap_ros.core.config import MocapConfig
from mocap_ros.estimation.hmr.fast_path import FastPath
from mocap_ros.estimation.hmr.pipeline import MocapPipeline
from mocap_ros.estimation.hmr.preprocess import frankmocap_crop, normalize_numpy
from mocap_ros.geometry.camera import Intrinsics
from mocap_ros.geometry.crop import crop_box_from_bbox
from mocap_ros.geometry.torch_rotations import rotmat_to_quat
from mocap_ros.tools.frames import bench_frames
from mocap_ros.tools.machine import cpu_model

BATCH_SIZES = (1, 4, 8)
# Issue #6's numbers for a GPU: model-only median, frame->result median, p99/median, speed-up.
TARGETS = {"model_ms": 1.0, "e2e_ms": 3.0, "p99_over_median": 2.0, "speedup": 10.0}


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def _stat(v: list[float]) -> dict[str, float]:
    return {"median": statistics.median(v), "p95": _pct(v, 95), "p99": _pct(v, 99)}


def _stats(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: _stat(v) for k, v in samples.items()}


def _seed_style(pipe: MocapPipeline, n_iter: int) -> Callable:
    """The seed's per-frame path: CPU crop/normalise in numpy, tensor upload, model, FK."""
    def run(frame: np.ndarray, bbox: tuple) -> dict[str, float]:
        t0 = time.perf_counter()
        box = crop_box_from_bbox(bbox)
        x = torch.from_numpy(normalize_numpy(frankmocap_crop(frame, box)))[None].to(pipe.device)
        pipe.sync()
        t1 = time.perf_counter()
        with torch.inference_mode(), pipe.autocast():
            rotmat, betas, cam = pipe.hmr(x, n_iter=n_iter)
        pipe.sync()
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


def _repeat(step: Callable[[], object], pipe: MocapPipeline, reps: int, warmup: int,
            autocast: bool = True) -> dict[str, float]:
    """Time ``step`` (synchronised) ``reps`` times after ``warmup`` untimed calls."""
    times = []
    with torch.inference_mode(), (pipe.autocast() if autocast else nullcontext()):
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            step()
            pipe.sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    return _stat(times)


def _model_only(pipe: MocapPipeline, n_iter: int, reps: int, warmup: int) -> dict[str, float]:
    x = torch.randn(1, 3, 224, 224, device=pipe.device)
    if pipe.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return _repeat(lambda: pipe.hmr(x, n_iter=n_iter), pipe, reps, warmup)


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
    return _repeat(lambda: pipe.hmr.regress(xf, n_iter), pipe, reps, warmup)


def _model_only_runner(runner: Callable, pipe: MocapPipeline, reps: int, warmup: int
                       ) -> dict[str, float]:
    """A captured (or eager) model step replayed on its static input, synchronised."""
    return _repeat(runner, pipe, reps, warmup, autocast=False)


def _model_only_ort(pipe: MocapPipeline, ort_pipe: MocapPipeline, reps: int, warmup: int
                    ) -> tuple[dict[str, float], dict[str, float]]:
    """torch eager fp32 and ONNX Runtime on the same crop, alternating rep by rep so that a
    busy (shared) CPU slows both alike. Returns (torch, onnxruntime) stats."""
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    n_iter = ort_pipe.config.n_iter
    t_torch, t_ort = [], []
    with torch.inference_mode():
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            pipe.hmr(x, n_iter=n_iter)
            t1 = time.perf_counter()
            ort_pipe.ort(x)
            t2 = time.perf_counter()
            if i >= warmup:
                t_torch.append((t1 - t0) * 1e3)
                t_ort.append((t2 - t1) * 1e3)
    return _stat(t_torch), _stat(t_ort)


def _max_diffs(a_pipe: MocapPipeline, b_pipe: MocapPipeline, frames: list, boxes: list
               ) -> dict[str, float]:
    """Largest differences between two pipelines' results on the same frames."""
    K = Intrinsics.fallback(640, 480)
    out = {"quat": 0.0, "joints_mm": 0.0, "keypoints_px": 0.0, "betas": 0.0, "valid_differ": 0}
    for frame, bbox in zip(frames, boxes, strict=True):
        a, b = a_pipe.process(frame, bbox, K), b_pipe.process(frame, bbox, K)
        out["quat"] = max(out["quat"], float(np.abs(
            np.concatenate((a.local_rotations, a.global_rotations))
            - np.concatenate((b.local_rotations, b.global_rotations))).max()))
        out["joints_mm"] = max(out["joints_mm"],
                               float(np.abs(a.joints_cam - b.joints_cam).max()) * 1e3)
        out["keypoints_px"] = max(out["keypoints_px"],
                                  float(np.abs(a.keypoints_2d - b.keypoints_2d).max()))
        out["betas"] = max(out["betas"], float(np.abs(a.betas - b.betas).max()))
        out["valid_differ"] += int(a.valid != b.valid)
    return out


def _stage_profile(fast: FastPath, frames: list, boxes: list, warmup: int
                   ) -> dict[str, dict[str, float]]:
    """Per-stage times of the fast path's step run eagerly (CUDA events on a GPU)."""
    for i in range(warmup):
        fast.profile_stages(frames[i % len(frames)], crop_box_from_bbox(boxes[i % len(boxes)]))
    samples: dict[str, list[float]] = {}
    for frame, bbox in zip(frames, boxes, strict=True):
        for k, v in fast.profile_stages(frame, crop_box_from_bbox(bbox)).items():
            samples.setdefault(k, []).append(v)
    return _stats(samples)


def batch_throughput(pipe: MocapPipeline, frames: list, boxes: list,
                     sizes: tuple[int, ...] = BATCH_SIZES) -> dict[str, float]:
    """Frames per second of ``process_batch`` at each batch size (after one warm-up batch),
    over at least 8 frames (the given ones, repeated)."""
    K = Intrinsics.fallback(640, 480)
    n = max(len(frames), max(sizes))
    n = -(-n // max(sizes)) * max(sizes)  # a whole number of the largest batches
    imgs = [frames[i % len(frames)] for i in range(n)]
    bbs = [boxes[i % len(boxes)] for i in range(n)]
    out = {}
    for b in sizes:
        pipe.process_batch(imgs[:b], bbs[:b], [K] * b)
        t0 = time.perf_counter()
        for i in range(0, n, b):
            pipe.process_batch(imgs[i:i + b], bbs[i:i + b], [K] * len(imgs[i:i + b]))
        out[f"batch {b}"] = n / (time.perf_counter() - t0)
    return out


def _onnx_pipeline(config: MocapConfig, models: object) -> tuple[MocapPipeline | None, str]:
    """(pipeline with runtime=onnxruntime, '') or (None, why it is not measured)."""
    try:
        return MocapPipeline(config.replace(runtime="onnxruntime", precision="fp32",
                                            fast_path=False), models=models), ""
    except (ImportError, RuntimeError, ValueError) as exc:
        return None, str(exc)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_model()}, {torch.get_num_threads()} threads"


def run_benchmark(config: MocapConfig, frames: int = 20, warmup: int = 3,
                  json_path: str | None = None, print_fn: Callable[[str], None] = print,
                  compile_variant: bool = True) -> dict:
    base_cfg = config.replace(n_iter=3, precision="fp32", fast_path=False)
    fast_cfg = config.replace(n_iter=1, precision="auto", runtime="torch")
    base = MocapPipeline(base_cfg)
    models = base.models
    eager = MocapPipeline(fast_cfg.replace(fast_path=False), models=models)
    cuda = eager.device.type == "cuda"
    imgs, boxes = bench_frames(frames)
    prec = eager.precision
    variants = {
        "baseline (seed: CPU crop, fp32, n_iter=3)": _seed_style(base, 3),
        f"fast ({prec}, n_iter=1, CPU crop)": _seed_style(eager, 1),
        f"pipeline ({prec}, n_iter=1, device crop)": _pipeline_path(eager),
    }
    fast_pipes: dict[str, MocapPipeline] = {}
    if cuda:
        graph = MocapPipeline(fast_cfg.replace(fast_path=True), models=models)
        graph.process(imgs[0], boxes[0])  # capture before naming: the name says what ran
        fast_pipes[f"fast path ({prec}, n_iter=1, {graph.fast_path_status})"] = graph
        if compile_variant:
            comp = MocapPipeline(fast_cfg.replace(fast_path=False), models=models)
            comp.fast = FastPath(comp, mode="compile")
            comp.process(imgs[0], boxes[0])
            fast_pipes[f"fast path ({prec}, n_iter=1, {comp.fast.status()})"] = comp
    for name, pipe in fast_pipes.items():
        variants[name] = _pipeline_path(pipe)
    ort_pipe, ort_why = (None, "CPU only: run `mocap-ros bench --device cpu`") if cuda else \
        _onnx_pipeline(fast_cfg, models)
    if ort_pipe is not None:
        variants["onnxruntime (fp32, n_iter=1, device crop)"] = _pipeline_path(ort_pipe)
    results = {name: _stats(_time_variant(fn, imgs, boxes, warmup))
               for name, fn in variants.items()}

    reps = max(frames, 10)
    pipes = {"fp32": base, prec: eager}  # one entry on a CPU (both fp32)
    model = {f"{p} n_iter={n}": _model_only(pipe, n, reps, warmup)
             for p, pipe in pipes.items() for n in (3, 1)}
    model_fast: dict[str, dict[str, float]] = {}
    if cuda:
        for pipe in fast_pipes.values():
            runner, why = pipe.fast.model_runner()
            label = f"{prec} n_iter=1, BN folded, {runner.kind}" + (f" ({why})" if why else "")
            model_fast[label] = _model_only_runner(runner, pipe, reps, warmup)
    ort_model = None
    if ort_pipe is not None:
        t_torch, t_ort = _model_only_ort(eager, ort_pipe, reps, warmup)
        ort_model = {"torch eager fp32 n_iter=1": t_torch, "onnxruntime fp32 n_iter=1": t_ort,
                     "ort_speedup": t_torch["median"] / t_ort["median"]}
    regressor = {f"regressor only, {p} n_iter={n}": _regressor_only(pipe, n, 200, warmup)
                 for p, pipe in pipes.items() for n in (3, 1)}
    model |= regressor
    model |= {f"fast path: {k}": v for k, v in model_fast.items()}

    first_fast = next(iter(fast_pipes.values()), None)
    prof_fast = FastPath(first_fast or eager, mode="eager")
    stages = _stage_profile(prof_fast, imgs, boxes, warmup)
    # Fast path vs eager on the same frames. On a CPU the fast path runs its eager fallback
    # (plugged into a copy of the pipeline): it shows the machinery, the GPU run the numbers.
    checks = {}
    if cuda:
        for name, pipe in fast_pipes.items():
            checks[name] = _max_diffs(pipe, eager, imgs, boxes)
    else:
        shadow = MocapPipeline(fast_cfg.replace(fast_path=False), models=models)
        shadow.fast = FastPath(shadow)
        diffs = _max_diffs(shadow, eager, imgs, boxes)  # the status is known after a frame
        checks[f"fast path ({shadow.fast.status()})"] = diffs
    if ort_pipe is not None:
        checks["onnxruntime"] = _max_diffs(ort_pipe, eager, imgs, boxes)
    throughput = batch_throughput(eager, imgs, boxes)
    drift = n_iter_drift(base, first_fast or eager, imgs, boxes)
    dev = device_name(base.device)
    base_total = next(iter(results.values()))["total"]["median"]
    out = {"device": dev, "torch": torch.__version__, "frames": frames, "frame_size": "640x480",
           "synthetic_weights": models.synthetic, "variants": results, "model_only": model,
           "stages_ms": stages, "stage_timer": "cuda events" if cuda else "perf_counter",
           "fast_vs_eager": checks, "batch_fps": throughput, "n_iter_1_vs_3": drift,
           "onnxruntime": ort_model if ort_model is not None else {"skipped": ort_why}}

    lines = [f"mocap_ros benchmark on {dev} (torch {torch.__version__}), {frames} frames 640x480",
             "", f"{'variant':<46}{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}"
             f"{'speed-up':>10}"]
    for name, st_all in results.items():
        for i, (stage, st) in enumerate(st_all.items()):
            ratio = base_total / st["median"] if stage == "total" else None
            head = name if i == 0 else ""
            if len(head) > 45:  # long names (a fallback's reason) get their own line
                lines.append(head)
                head = ""
            lines.append(f"{head:<46}{stage:<12}{st['median']:>10.2f}{st['p95']:>10.2f}"
                         f"{st['p99']:>10.2f}{(f'{ratio:.2f}x' if ratio else ''):>10}")
    lines += ["", f"{'model only (HMR forward, batch 1)':<58}{'p50 ms':>10}{'p95 ms':>10}"
              f"{'p99 ms':>10}{'vs fp32/3':>10}"]
    ref = next(iter(model.values()))["median"]
    for name, st in model.items():
        vs = f"{ref / st['median']:>9.2f}x" if not name.startswith("regressor") else ""
        lines.append(f"{name:<58}{st['median']:>10.2f}{st['p95']:>10.2f}{st['p99']:>10.2f}"
                     f"{vs:>10}")
    if ort_model is not None:
        t, o = ort_model["torch eager fp32 n_iter=1"], ort_model["onnxruntime fp32 n_iter=1"]
        verdict = "faster" if ort_model["ort_speedup"] > 1.0 else "NOT faster"
        lines += ["", "ONNX Runtime (CPU) vs torch eager fp32, same crop, alternating runs:",
                  f"  torch {t['median']:.2f} ms, onnxruntime {o['median']:.2f} ms (p50): "
                  f"onnxruntime is {ort_model['ort_speedup']:.2f}x ({verdict})"]
    else:
        lines += ["", f"ONNX Runtime: not measured ({ort_why})"]
    timer = "CUDA events, device time" if cuda else "perf_counter"
    lines += ["", f"fast path stages, run eagerly ({timer}):"]
    lines += [f"  {k:<12}{v['median']:>8.3f} ms p50 {v['p99']:>8.3f} ms p99"
              for k, v in stages.items()]
    lines += ["", "check: same frames through both paths (max abs difference):"]
    for name, d in checks.items():
        vs = "eager torch" if name == "onnxruntime" else "eager pipeline"
        lines.append(f"  {name} vs {vs}: quaternions {d['quat']:.2e}, joints "
                     f"{d['joints_mm']:.3f} mm, keypoints {d['keypoints_px']:.3f} px, betas "
                     f"{d['betas']:.2e}, validity differs on {d['valid_differ']} frame(s)")
    lines += ["", f"batch throughput (process_batch, {prec}, n_iter=1): " + ", ".join(
        f"{k}: {v:.1f} frames/s" for k, v in throughput.items())]
    kind = "synthetic" if out["synthetic_weights"] else "real"
    lines += ["", f"n_iter=1 vs 3 on these frames ({kind} weights): joint rotations differ "
              f"by {drift['rotation_deg_mean']:.2f} deg on average "
              f"(max {drift['rotation_deg_max']:.2f}), joints by "
              f"{drift['joint_mm_mean']:.1f} mm (camera-relative pose, root excluded)"]
    lm = _landmarks_fps(imgs)
    if lm is not None:
        out["landmarks_backend"] = lm
        lines += ["", f"landmarks backend (MediaPipe + IK, CPU, video mode, 640x480): "
                  f"{lm['fps']:.1f} FPS, {lm['p50_ms']:.1f} ms p50 per frame "
                  f"({lm['valid_fraction'] * 100:.0f}% valid)"]
    if cuda and fast_pipes:
        out["targets"] = _targets(results, model_fast, base_total)
        lines += ["", "issue #6 targets (GPU):"]
        lines += [f"  {t['what']}: {t['value']:.3f} vs {t['target']} -> "
                  f"{'PASS' if t['pass'] else 'FAIL'}" for t in out["targets"]]
    for line in lines:
        print_fn(line)
    out["table"] = lines
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=2))
    return out


def _landmarks_fps(frames: list[np.ndarray]) -> dict[str, float] | None:
    """The landmarks backend's rate on the same frames; None without mediapipe."""
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        return None
    from mocap_ros.estimation.landmarks.backend import measure_fps

    return measure_fps(frames)


def _targets(results: dict, model_fast: dict, base_total: float) -> list[dict]:
    """Issue #6's numbers from the first fast path variant (the default: CUDA graph)."""
    name = next(n for n in results if n.startswith("fast path"))
    total = results[name]["total"]
    model_ms = next(iter(model_fast.values()))["median"] if model_fast else float("nan")
    rows = [
        ("model only, fp16 n_iter=1 batch 1, median ms", model_ms, TARGETS["model_ms"],
         model_ms <= TARGETS["model_ms"]),
        ("640x480 host frame -> host BodyPoseResult, median ms", total["median"],
         TARGETS["e2e_ms"], total["median"] <= TARGETS["e2e_ms"]),
        ("same, p99 / median", total["p99"] / total["median"], TARGETS["p99_over_median"],
         total["p99"] <= TARGETS["p99_over_median"] * total["median"]),
        ("speed-up vs seed baseline (fp32, n_iter=3, CPU crop)", base_total / total["median"],
         TARGETS["speedup"], base_total / total["median"] >= TARGETS["speedup"]),
    ]
    return [{"what": w, "value": float(v), "target": t, "pass": bool(ok), "variant": name}
            for w, v, t, ok in rows]
