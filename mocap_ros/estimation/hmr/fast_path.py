"""Fast path: one frame in host memory -> packed pose in host memory with few launches.

On a CUDA device the per-frame work is kernel launches, copies and synchronisations rather
than arithmetic, so the fast path removes them:

- preallocated buffers per frame size: a pinned host copy of the uint8 frame and of the box,
  their device twins, and a pinned host buffer for the packed result;
- one non-blocking upload of the uint8 frame and the box (cx, cy, side, float64), which
  share one buffer;
- crop + resize + normalise on the device from that box tensor: the affine ``theta`` is
  computed on the device, so the captured work does not depend on the box's values;
- the HMR forward (BatchNorm folded into the convolutions, weights in the network's
  precision, channels_last) and the body kinematics, packed into one static tensor;
- all of that captured once per frame size in a CUDA graph (or ``torch.compile`` with
  ``mode="reduce-overhead"``) and replayed per frame;
- one non-blocking device->host copy of the packed result and one event synchronisation.

Capture is chosen by :func:`select_runner`: a :class:`Capture` says whether it can run on the
device (CUDA graphs need CUDA) and builds a :class:`Runner`; when it cannot, or building
raises (an op that cannot be captured, out of memory...), or the captured result disagrees
with the eager one, the fast path runs the same step eagerly and logs why, once. The
selection logic runs on any device; only :class:`CudaGraphRunner` and :class:`CompiledRunner`
need a GPU.

The packed layout is the pipeline's (``MocapPipeline.pack``): local quaternions, global
quaternions, joints, 10 betas, camera; the pipeline turns it into a BodyPoseResult.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mocap_ros.estimation.hmr.preprocess import IMG_RES, resize_short_side, window_grid
from mocap_ros.geometry.crop import CropBox

log = logging.getLogger(__name__)

FAST_MODES = ("graph", "compile", "eager")
StepFn = Callable[..., Any]


# =========================================================================== runners
class Runner(Protocol):
    """Runs a step on its static inputs; returns the step's (static) outputs."""

    kind: str

    def __call__(self) -> Any: ...


class EagerRunner:
    """The step as plain Python + torch: the reference and the fallback."""

    kind = "eager"

    def __init__(self, step: StepFn, inputs: tuple[torch.Tensor, ...]) -> None:
        self.step, self.inputs = step, inputs

    def __call__(self) -> Any:
        return self.step(*self.inputs)


class CudaGraphRunner:
    """``step(*inputs)`` captured in a ``torch.cuda.CUDAGraph``, replayed per call.

    The inputs are the static buffers the caller refills before each call; the outputs are
    tensors of the graph's private memory pool, overwritten by the next replay.
    """

    kind = "cuda_graph"

    def __init__(self, step: StepFn, inputs: tuple[torch.Tensor, ...], warmup: int = 3) -> None:
        device = inputs[0].device
        main = torch.cuda.current_stream(device)
        side = torch.cuda.Stream(device)
        # Warm-up on a side stream (as torch.cuda.graph's docs prescribe): cuDNN picks its
        # algorithms and lazily allocated workspaces exist before the capture starts.
        side.wait_stream(main)
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step(*inputs)
        main.wait_stream(side)
        torch.cuda.synchronize(device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = step(*inputs)
        torch.cuda.synchronize(device)

    def __call__(self) -> Any:
        self.graph.replay()
        return self.outputs


class CompiledRunner:
    """``torch.compile(step, mode="reduce-overhead")``: inductor kernels in CUDA graphs."""

    kind = "torch_compile"

    def __init__(self, step: StepFn, inputs: tuple[torch.Tensor, ...], warmup: int = 3) -> None:
        self.inputs = inputs
        self.fn = torch.compile(step, mode="reduce-overhead", fullgraph=False, dynamic=False)
        for _ in range(warmup):  # compiles, then records its CUDA graph
            self()
        if inputs[0].device.type == "cuda":
            torch.cuda.synchronize(inputs[0].device)

    def __call__(self) -> Any:
        # Each call is a new step for cudagraph trees: the previous outputs may be reused.
        torch.compiler.cudagraph_mark_step_begin()
        return self.fn(*self.inputs)


class Capture(Protocol):
    """Builds a Runner for a step; ``unavailable`` says why it cannot on a device ("" = can)."""

    name: str

    def unavailable(self, device: torch.device) -> str: ...

    def __call__(self, step: StepFn, inputs: tuple[torch.Tensor, ...]) -> Runner: ...


def _cuda_unavailable(device: torch.device) -> str:
    if device.type != "cuda":
        return f"no CUDA device (the pipeline runs on {device})"
    if not torch.cuda.is_available():
        return f"torch.cuda.is_available() is False (torch {torch.__version__})"
    return ""


class CudaGraphCapture:
    name = "cuda_graph"

    def unavailable(self, device: torch.device) -> str:
        return _cuda_unavailable(device)

    def __call__(self, step: StepFn, inputs: tuple[torch.Tensor, ...]) -> Runner:
        return CudaGraphRunner(step, inputs)


class CompileCapture:
    name = "torch_compile"

    def unavailable(self, device: torch.device) -> str:
        # reduce-overhead's gain is its CUDA graphs; on a CPU it would only add compile time.
        return _cuda_unavailable(device)

    def __call__(self, step: StepFn, inputs: tuple[torch.Tensor, ...]) -> Runner:
        return CompiledRunner(step, inputs)


class EagerCapture:
    name = "eager"

    def unavailable(self, device: torch.device) -> str:
        return "fast path mode 'eager' (no capture asked for)"

    def __call__(self, step: StepFn, inputs: tuple[torch.Tensor, ...]) -> Runner:
        return EagerRunner(step, inputs)


CAPTURES: dict[str, Callable[[], Capture]] = {
    "graph": CudaGraphCapture, "compile": CompileCapture, "eager": EagerCapture,
}


def _flat(outputs: Any) -> list[torch.Tensor]:
    return [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)


def _mismatch(got: Any, want: Any, rtol: float, atol: float) -> str:
    """'' when the captured outputs match the eager ones, else what differs."""
    for i, (a, b) in enumerate(zip(_flat(got), _flat(want), strict=True)):
        a, b = a.float(), b.float()
        if a.shape != b.shape:
            return f"output {i} has shape {tuple(a.shape)}, eager {tuple(b.shape)}"
        if not torch.equal(torch.isfinite(a), torch.isfinite(b)):
            return f"output {i} is non-finite where the eager one is not (or the reverse)"
        fin = torch.isfinite(b)
        if not torch.allclose(a[fin], b[fin], rtol=rtol, atol=atol):
            diff = float((a[fin] - b[fin]).abs().max())
            return f"output {i} differs from eager by up to {diff:.3g}"
    return ""


def select_runner(step: StepFn, inputs: tuple[torch.Tensor, ...], capture: Capture,
                  verify: bool = True, rtol: float = 0.05, atol: float = 0.05,
                  ) -> tuple[Runner, str]:
    """(runner, why it is eager: '' when captured).

    Never raises for a capture problem: the step runs eagerly instead. ``verify`` replays the
    captured runner once and compares it with the eager step on the same inputs; the loose
    tolerance only tolerates fp16 kernel differences and catches garbage (stale memory, a
    capture that silently dropped work).
    """
    why = capture.unavailable(inputs[0].device)
    if why:
        return EagerRunner(step, inputs), why
    try:
        runner = capture(step, inputs)
        if verify:
            got = [t.clone() for t in _flat(runner())]
            problem = _mismatch(got, step(*inputs), rtol, atol)
            if problem:
                return EagerRunner(step, inputs), f"{capture.name}: {problem}"
    except Exception as exc:  # any capture failure means: run eagerly, and say why
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return EagerRunner(step, inputs), (f"{capture.name} capture failed: "
                                           f"{type(exc).__name__}: {msg}")
    return runner, ""


# =========================================================================== model prep
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval) with every Conv2d -> BatchNorm2d pair folded into the conv.

    Pairs are found structurally as HMR/ResNet names them: a module's ``convN``/``bnN``
    attributes and ``downsample`` Sequentials (conv, bn). Folded BatchNorms become Identity,
    which removes ~53 kernels and a pass over every activation per forward.
    """
    m = copy.deepcopy(model).eval()

    def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                        conv.padding, conv.dilation, conv.groups, bias=True,
                        padding_mode=conv.padding_mode)
        out = out.to(conv.weight.device)
        w = conv.weight.detach().double() * scale.view(-1, 1, 1, 1)
        b = bn.bias.detach().double() - bn.running_mean.double() * scale
        if conv.bias is not None:
            b = b + conv.bias.detach().double() * scale
        with torch.no_grad():
            out.weight.copy_(w.to(conv.weight.dtype))
            out.bias.copy_(b.to(conv.weight.dtype))
        return out

    for module in list(m.modules()):
        for idx in ("", "1", "2", "3"):
            conv, bn = getattr(module, f"conv{idx}", None), getattr(module, f"bn{idx}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, f"conv{idx}", fold(conv, bn))
                setattr(module, f"bn{idx}", nn.Identity())
        ds = getattr(module, "downsample", None)
        if isinstance(ds, nn.Sequential) and len(ds) == 2 and isinstance(ds[0], nn.Conv2d) \
                and isinstance(ds[1], nn.BatchNorm2d):
            module.downsample = nn.Sequential(fold(ds[0], ds[1]), nn.Identity())
    return m


# =========================================================================== the fast path
class HMRPipeline(Protocol):
    """The public pieces of :class:`~mocap_ros.estimation.hmr.pipeline.MocapPipeline` the fast
    path builds on (so this module does not import the pipeline, which imports it)."""

    device: torch.device
    dtype: torch.dtype
    input_dtype: torch.dtype
    config: Any
    hmr: nn.Module
    normalizer: Callable[[torch.Tensor], torch.Tensor]

    def autocast(self) -> Any: ...

    def pack(self, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor,
             return_vertices: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class FastPath:
    """Static-buffer, captured per-frame inference for a MocapPipeline (see module doc).

    ``mode``: graph (CUDA graph, the default), compile (torch.compile reduce-overhead) or
    eager. ``capture``: a Capture to use instead of the mode's (tests, experiments).
    ``fold_bn``: fold BatchNorm into the convolutions (default: on CUDA; the CPU default
    keeps the pipeline's own modules so that the CPU results equal the eager pipeline's
    bit for bit). ``verify``: compare the captured step with the eager one once per capture.

    Thread-compatible, not thread-safe (static buffers), like the pipeline.
    """

    def __init__(self, pipeline: HMRPipeline, mode: str = "graph", *,
                 capture: Capture | None = None, fold_bn: bool | None = None,
                 verify: bool = True) -> None:
        if mode not in FAST_MODES:
            raise ValueError(f"fast path mode {mode!r} is not one of {list(FAST_MODES)}")
        self.pipe = pipeline
        self.device = pipeline.device
        self.cuda = self.device.type == "cuda"
        self.mode = mode
        self.capture = capture or CAPTURES[mode]()
        self.verify = verify
        self.n_iter = pipeline.config.n_iter
        self.resize_short = pipeline.config.resize_short
        self.in_dtype = pipeline.input_dtype
        hmr = pipeline.hmr
        if fold_bn if fold_bn is not None else self.cuda:
            hmr = fold_batchnorm(hmr)
        # On CUDA the weights are stored in the network's precision: no autocast, whose
        # per-call weight casts would be re-done inside every graph replay.
        self.weights_cast = self.cuda and pipeline.dtype != torch.float32
        if self.weights_cast:
            hmr = copy.deepcopy(hmr) if hmr is pipeline.hmr else hmr
            hmr = hmr.to(pipeline.dtype)
        if self.cuda:
            hmr = hmr.to(memory_format=torch.channels_last)
        self.hmr = hmr.eval()
        self.shape: tuple[int, ...] | None = None
        self.runner: Runner | None = None
        self.reason = ""  # why the current runner is eager ("" when captured)
        self.captures = 0  # runners built so far (one per frame size)
        self._failed = ""  # why capture failed once: not tried again for other sizes
        self._logged: set[str] = set()
        self._event = torch.cuda.Event() if self.cuda else None

    # ------------------------------------------------------------------ status
    @property
    def kind(self) -> str:
        """What runs now: cuda_graph, torch_compile or eager (None before the first frame)."""
        return self.runner.kind if self.runner is not None else "not started"

    def status(self) -> str:
        return self.kind + (f" ({self.reason})" if self.reason else "")

    # ------------------------------------------------------------------ stages
    def _autocast(self) -> Any:
        if self.weights_cast:
            return nullcontext()
        return self.pipe.autocast()

    def crop(self, frame_u8: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """(H, W, 3) uint8 frame + (4,) float64 FrankMocap window (x0, y0, x1, y1) in its
        pixels -> the normalised (1, 3, 224, 224) crop, as ``preprocess.crop_batch`` cuts it
        (the same :func:`~mocap_ros.estimation.hmr.preprocess.window_grid`)."""
        frame = frame_u8.permute(2, 0, 1).unsqueeze(0).to(self.in_dtype)
        frame, factor = resize_short_side(frame, self.resize_short)
        _, _, h, w = frame.shape
        grid = window_grid(window.view(1, 4), h, w, factor, IMG_RES).to(frame.dtype)
        crops = F.grid_sample(frame, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=True)
        x = self.pipe.normalizer(crops)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with self._autocast():
            return self.hmr(x, n_iter=self.n_iter)

    def post(self, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor
             ) -> torch.Tensor:
        packed, _ = self.pipe.pack(rotmat, betas, cam, return_vertices=False)
        return packed

    def step(self, frame_u8: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """Everything between the uploaded frame and the packed (1, P) float32 result."""
        return self.post(*self.network(self.crop(frame_u8, window)))

    # ------------------------------------------------------------------ buffers
    def _allocate(self, shape: tuple[int, ...]) -> None:
        # The previous graph (and its memory pool) goes before the new one is captured.
        self.runner = None
        # One buffer holds the frame and, 8-byte aligned after it, the crop window: a single
        # host->device copy per frame instead of two.
        n = int(np.prod(shape))
        off = -(-n // 8) * 8
        self.host_buf = torch.empty(off + 32, dtype=torch.uint8, pin_memory=self.cuda)
        self.host_frame = self.host_buf[:n].view(shape)
        self.host_box = self.host_buf[off:off + 32].view(torch.float64)
        if self.cuda:
            self.dev_buf = torch.empty_like(self.host_buf, device=self.device)
            self.dev_frame = self.dev_buf[:n].view(shape)
            self.dev_box = self.dev_buf[off:off + 32].view(torch.float64)
        else:  # on the CPU the host buffers are the device buffers: no copy at all
            self.dev_buf, self.dev_frame, self.dev_box = \
                self.host_buf, self.host_frame, self.host_box
        self._host_frame_np = self.host_frame.numpy()
        self._host_box_np = self.host_box.numpy()
        self.host_out: torch.Tensor | None = None
        self.shape = shape

    def _load(self, rgb: np.ndarray, box: CropBox) -> None:
        np.copyto(self._host_frame_np, rgb)  # the one host copy: into pinned memory
        self._host_box_np[:] = box.window
        if self.cuda:
            self.dev_buf.copy_(self.host_buf, non_blocking=True)

    def _build_runner(self) -> None:
        inputs = (self.dev_frame, self.dev_box)
        if self._failed:
            # A capture that failed once would fail again for the next size: no new try.
            self.runner, self.reason = EagerRunner(self.step, inputs), self._failed
            return
        runner, why = select_runner(self.step, inputs, self.capture, verify=self.verify)
        self.runner, self.reason = runner, why
        self.captures += 1
        if why and not self.capture.unavailable(self.device):
            self._failed = why
        if why and why not in self._logged:
            self._logged.add(why)
            # Expected on a CPU (info); on a GPU it costs the speed asked for (warning).
            level = logging.WARNING if self.cuda else logging.INFO
            log.log(level, "fast path: running eager (%s)", why)
        elif not why:
            log.info("fast path: %s captured for %dx%d frames", runner.kind,
                     self.shape[1], self.shape[0])

    # ------------------------------------------------------------------ per frame
    def run(self, rgb: np.ndarray, box: CropBox) -> tuple[np.ndarray, float, float]:
        """(packed row (P,) float64, perf_counter after the upload was queued, after the
        result is on the host). ``rgb``: validated HxWx3 uint8; ``box``: in its pixels."""
        if rgb.shape != self.shape:
            self._allocate(tuple(rgb.shape))
        self._load(rgb, box)
        if self.runner is None:
            self._build_runner()
        t_loaded = time.perf_counter()
        out = self.runner()
        if self.cuda:
            if self.host_out is None:
                self.host_out = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
            self.host_out.copy_(out, non_blocking=True)
            self._event.record()
            self._event.synchronize()  # the one synchronisation of the frame
            row = self.host_out.numpy()[0].astype(np.float64)
        else:
            row = out[0].double().numpy()
        return row, t_loaded, time.perf_counter()

    def profile_stages(self, rgb: np.ndarray, box: CropBox) -> dict[str, float]:
        """Milliseconds per stage of one frame run eagerly: upload, crop, hmr, body+pack,
        download. CUDA events on a GPU (device time), perf_counter + sync on a CPU."""
        if rgb.shape != self.shape:
            self._allocate(tuple(rgb.shape))
        names = ("upload", "crop", "hmr", "body+pack", "download")
        if self.cuda:
            marks = [torch.cuda.Event(enable_timing=True) for _ in range(len(names) + 1)]

            def mark(i: int) -> None:
                marks[i].record()
        else:
            stamps = [0.0] * (len(names) + 1)

            def mark(i: int) -> None:
                stamps[i] = time.perf_counter()

        with torch.inference_mode():
            mark(0)
            self._load(rgb, box)
            mark(1)
            x = self.crop(self.dev_frame, self.dev_box)
            mark(2)
            rotmat, betas, cam = self.network(x)
            mark(3)
            packed = self.post(rotmat, betas, cam)
            mark(4)
            packed.cpu()
            mark(5)
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return {n: marks[i].elapsed_time(marks[i + 1]) for i, n in enumerate(names)}
        return {n: (stamps[i + 1] - stamps[i]) * 1e3 for i, n in enumerate(names)}

    def model_runner(self, batch: int = 1) -> tuple[Runner, str]:
        """The HMR forward alone on a static (batch, 3, 224, 224) input, captured as the
        frame step is (for the benchmark's model-only line)."""
        x = torch.randn(batch, 3, IMG_RES, IMG_RES, device=self.device).to(self.in_dtype)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return select_runner(self.network, (x,), self.capture, verify=False)
