"""``runtime: onnxruntime``: the HMR network in ONNX Runtime on the CPU.

The network (ResNet-50 features + ``n_iter`` regressor iterations + 6D -> rotation matrix)
is exported to ONNX from the weights the pipeline loaded, once: the file is cached under
``$MOCAP_ROS_CACHE/onnx`` (default ``~/.cache/mocap_ros/onnx``), named by a SHA-256 of the
weights (checkpoint and mean parameters) and ``n_iter``, and reused by every later start.
The batch dimension is dynamic, so ``process_batch`` works too. It runs with ONNX
Runtime's CPUExecutionProvider with as many intra-op threads as torch uses.

Inputs and outputs are the torch module's: a (B, 3, 224, 224) float32 crop in, (rotmat
(B, 24, 3, 3), betas (B, 10), cam (B, 3)) float32 out.

Exporting uses torch's dynamo exporter (``onnx`` + ``onnxscript``) when importable, else the
legacy TorchScript exporter (deprecated in torch, kept as the fallback; it needs ``onnx``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mocap_ros.core.cache import cache_dir
from mocap_ros.estimation.hmr.network import HMR, IMG_RES

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'onnxruntime>=1.20' 'onnx>=1.17' 'onnxscript>=0.5'"
EXPORT_FORMAT = "v1"  # bump when what is exported changes: old cache files are then unused
EXPORTERS = ("auto", "dynamo", "legacy")
INPUT_NAME = "crop"
OUTPUT_NAMES = ("rotmat", "betas", "cam")


class OnnxRuntimeMissingError(RuntimeError):
    """onnxruntime (or the exporter's packages) cannot be imported; says what to install."""


def onnx_cache_dir() -> Path:
    """``$MOCAP_ROS_CACHE/onnx``, else ``$XDG_CACHE_HOME/mocap_ros/onnx`` or ~/.cache's."""
    return cache_dir("onnx")


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes, bytes), in name order.

    Hashes what is exported, so a changed checkpoint *or* mean-parameter file gives a new
    cache entry, and the same weights loaded from another path reuse the old one.
    """
    h = hashlib.sha256(EXPORT_FORMAT.encode())
    for name, t in sorted(model.state_dict().items()):
        a = t.detach().to("cpu").contiguous().numpy()
        h.update(f"{name}|{a.dtype}|{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _import_ort() -> object:
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxRuntimeMissingError(f"runtime=onnxruntime needs the onnxruntime package, which "
                                 f"cannot be imported ({exc}); install it with: "
                                 f"{INSTALL_HINT}") from exc
    return onnxruntime


class _FixedIterations(nn.Module):
    """HMR with ``n_iter`` baked in: what is exported."""

    def __init__(self, hmr: HMR, n_iter: int) -> None:
        super().__init__()
        self.hmr, self.n_iter = hmr, n_iter

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.hmr(x, n_iter=self.n_iter)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _has_dynamo_exporter() -> bool:
    return _importable("onnx") and _importable("onnxscript")


def export_hmr(hmr: HMR, n_iter: int, path: str | os.PathLike[str],
               exporter: str = "auto") -> str:
    """Write ``hmr`` (on the CPU, fp32) with ``n_iter`` iterations to ``path`` as one ONNX
    file with a dynamic batch dimension; returns the exporter used (dynamo or legacy)."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter={exporter!r} is not one of {list(EXPORTERS)}")
    if exporter == "auto":
        exporter = "dynamo" if _has_dynamo_exporter() else "legacy"
    if exporter == "dynamo" and not _has_dynamo_exporter():
        raise OnnxRuntimeMissingError(f"the dynamo ONNX exporter needs onnx and onnxscript: "
                                      f"{INSTALL_HINT}")
    if not _importable("onnx"):  # the legacy exporter writes its file with onnx too
        raise OnnxRuntimeMissingError(f"exporting to ONNX needs the onnx package: "
                                      f"{INSTALL_HINT}")
    model = _FixedIterations(hmr, n_iter).eval()
    # Batch 2, not 1: an example of size 1 would let the exporter specialise the batch.
    x = torch.zeros(2, 3, IMG_RES, IMG_RES)
    printed = io.StringIO()
    # The exporters print progress, log each optimisation pass and warn about torchvision
    # ops this model does not use; none of it is actionable, so it is kept out of the log.
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    old_levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed), \
                torch.no_grad():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(model, (x,), str(path), dynamo=True,
                                  input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                                  dynamic_shapes=({0: batch},), external_data=False,
                                  verbose=False)
            else:
                axes = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
                torch.onnx.export(model, (x,), str(path), dynamo=False,
                                  input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                                  dynamic_axes=axes, opset_version=17)
    finally:
        for q, level in zip(quiet, old_levels, strict=True):
            q.setLevel(level)
    if printed.getvalue().strip():
        log.debug("torch.onnx.export said:\n%s", printed.getvalue().rstrip())
    return exporter


class OrtHMR:
    """The HMR network (``n_iter`` iterations) as an ONNX Runtime CPU session.

    Call it like the module: ``rotmat, betas, cam = ort_hmr(x)`` with a float32 CPU tensor.
    ``cache_dir``: where exported files live (default :func:`onnx_cache_dir`);
    ``threads``: intra-op threads (default ``torch.get_num_threads()``).
    """

    def __init__(self, hmr: HMR, n_iter: int, cache_dir: str | os.PathLike[str] | None = None,
                 threads: int | None = None, exporter: str = "auto") -> None:
        ort = _import_ort()
        self.n_iter = n_iter
        self.threads = threads or torch.get_num_threads()
        hmr = hmr.eval()
        if next(hmr.parameters()).device.type != "cpu":
            raise ValueError("OrtHMR exports from CPU weights; the model is on "
                             f"{next(hmr.parameters()).device}")
        folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        self.digest = weights_digest(hmr)
        self.path = folder / f"hmr-{self.digest[:24]}-niter{n_iter}.onnx"
        self.exported = False
        self.exporter = ""
        if not self.path.is_file():
            self._export(hmr, exporter)
        try:
            self.session = self._session(ort)
        except Exception as exc:  # a damaged cache file (disk full, foreign write): redo it
            log.warning("cached ONNX model %s does not load (%s); exporting it again",
                        self.path, exc)
            self._export(hmr, exporter)
            self.session = self._session(ort)

    def _export(self, hmr: HMR, exporter: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        t0 = time.perf_counter()
        try:
            self.exporter = export_hmr(hmr, self.n_iter, tmp, exporter)
            os.replace(tmp, self.path)  # atomic: a concurrent start sees all or nothing
        finally:
            tmp.unlink(missing_ok=True)
        self.exported = True
        log.info("exported HMR (n_iter=%d) to ONNX with the %s exporter in %.1f s: %s",
                 self.n_iter, self.exporter, time.perf_counter() - t0, self.path)

    def _session(self, ort: object) -> object:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting threads after a run: the pipeline's torch ops (crop, kinematics)
        # come right after and need the same cores. Measured on 2 cores: with spinning, a
        # torch forward after an ORT run took 73 ms instead of 45; ORT itself lost < 3 %.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])

    def run_numpy(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self.session.run(list(OUTPUT_NAMES),
                               {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
        return out[0], out[1], out[2]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rotmat, betas, cam = self.run_numpy(x.detach().float().contiguous().numpy())
        return torch.from_numpy(rotmat), torch.from_numpy(betas), torch.from_numpy(cam)
