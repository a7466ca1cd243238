"""MocapPipeline: one RGB frame in, one BodyPoseResult out (or a batch of frames).

Stages: upload + crop + normalise (torch, on the inference device) -> HMR (autocast in the
chosen precision, ``n_iter`` regressor iterations) -> body-model kinematics (fp32) -> camera
conversion -> one device-to-host copy of the small result.

On CUDA with ``fast_path`` the per-frame stages run through
:class:`~mocap_ros.estimation.hmr.fast_path.FastPath` (static buffers, one CUDA graph per
frame size). ``runtime: onnxruntime`` runs the HMR network in ONNX Runtime on the CPU
(:mod:`mocap_ros.estimation.hmr.onnx`). ``process_batch`` puts the crops of several frames
through one HMR forward (offline processing).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mocap_ros.core.config import MocapConfig
from mocap_ros.core.result import BodyPoseResult
from mocap_ros.core.skeleton import NUM_JOINTS
from mocap_ros.estimation.body_model import KinematicBody, skeleton_body, smpl_body
from mocap_ros.estimation.confidence import keypoint_joint_confidence
from mocap_ros.estimation.device import DTYPES, resolve_device, resolve_precision
from mocap_ros.estimation.hmr.network import HMR
from mocap_ros.estimation.hmr.preprocess import (
    Normalizer,
    crop_batch,
    frame_to_tensor,
    resize_short_side,
)
from mocap_ros.geometry.camera import Intrinsics, root_translation, weak_perspective_to_image
from mocap_ros.geometry.crop import CropBox, crop_box_from_bbox, full_frame_box
from mocap_ros.geometry.torch_rotations import rotmat_to_quat
from mocap_ros.io.images import validate_frame

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float] | np.ndarray


@dataclass
class _Job:
    """One frame that passed the checks: what the host-side finish needs."""

    box: CropBox
    box_xywh: np.ndarray
    intr: Intrinsics
    width: int
    height: int
    meta: dict


@dataclass
class LoadedModels:
    """What the pipeline runs: the regressor and the body model (shared by benchmarks)."""

    hmr: HMR
    body: KinematicBody
    synthetic: bool
    checkpoint_info: dict


def load_models(config: MocapConfig) -> LoadedModels:
    """Resolve, check and load every file the configuration names; clear errors if missing."""
    from mocap_ros.assets.files import AssetError, is_synthetic, missing_files, resolve_assets
    from mocap_ros.io.checkpoint import load_hmr_checkpoint, load_mean_params

    paths = resolve_assets(
        config.assets_dir or None, checkpoint=config.checkpoint or None,
        mean_params=config.mean_params or None, smpl_model=config.smpl_model or None,
        gender=config.gender, use_smplx=config.body_model == "smplx",
    )
    missing = missing_files(paths, need_body_model=config.body_model != "skeleton")
    if missing:
        raise AssetError("missing model files:\n" + "\n".join(f"  - {m}" for m in missing))
    mean = load_mean_params(paths.mean_params)
    hmr = HMR(mean["pose"], mean["shape"], mean["cam"])
    info = load_hmr_checkpoint(paths.checkpoint, hmr)
    if config.body_model == "skeleton":
        body = skeleton_body()
    else:
        body = smpl_body(paths.smpl_model, with_mesh=config.return_vertices,
                         smplx_model=config.body_model == "smplx")
    return LoadedModels(hmr, body, is_synthetic(paths), info)


class MocapPipeline:
    """The inference core. Thread-compatible, not thread-safe: one caller at a time."""

    name = "hmr"

    def __init__(self, config: MocapConfig | None = None, models: LoadedModels | None = None,
                 ) -> None:
        self.config = (config or MocapConfig()).validate()
        self.device = resolve_device(self.config.device)
        self.precision = resolve_precision(self.config.precision, self.device)
        if self.config.runtime == "onnxruntime":
            self._check_onnx_runtime()  # before any file is loaded or model moved
        self.models = models or load_models(self.config)
        if self.models.synthetic:
            log.warning("using SYNTHETIC model files (seeded random weights): poses are not "
                        "real; point assets_dir at FrankMocap's extra_data for real ones")
        self.hmr = self.models.hmr.eval().to(self.device)
        self.body = self.models.body.eval().to(self.device)
        if self.device.type == "cuda":
            self.hmr = self.hmr.to(memory_format=torch.channels_last)
        self.dtype = DTYPES[self.precision]
        # The crop is sampled in the network's precision on CUDA; CPU stays fp32.
        self.input_dtype = self.dtype if self.device.type == "cuda" else torch.float32
        self.normalizer = Normalizer(self.device, self.input_dtype)
        self.ort: Any = None
        if self.config.runtime == "onnxruntime":
            self.ort = self._onnx_runtime()
        self.fast: Any = None
        self.fast_path_reason = ""  # why the fast path is off ("" when it is on)
        if not self.config.fast_path:
            self.fast_path_reason = "fast_path=false"
        elif self.device.type != "cuda":
            self.fast_path_reason = f"CUDA only (device {self.device})"
        elif self.config.return_vertices:
            self.fast_path_reason = "return_vertices: the mesh is computed eagerly"
            log.info("fast path off: %s", self.fast_path_reason)
        else:
            from mocap_ros.estimation.hmr.fast_path import FastPath

            self.fast = FastPath(self)
        # Hands (config.hands): from the body's SMPL wrists/elbows/hand joints, after HMR.
        self.hands: Any = None
        if self.config.hands:
            from mocap_ros.estimation.hands.estimator import HandEstimator
            from mocap_ros.estimation.hands.mediapipe_graph import (
                HAND_MODEL_COMPLEXITY,
                HandLandmarkGraph,
            )

            self.hands = HandEstimator(
                min_presence=self.config.hands_min_presence,
                min_wrist_visibility=self.config.hands_min_wrist_visibility,
                min_roi_px=self.config.hands_min_roi_px,
                graph=HandLandmarkGraph(HAND_MODEL_COMPLEXITY[self.config.hands_model]),
                focal_length=self.config.focal_length,
                fallback_hfov_deg=self.config.fallback_hfov_deg)

    def _check_onnx_runtime(self) -> None:
        if self.device.type != "cpu":
            raise ValueError(f"runtime=onnxruntime runs on the CPU only, but device resolves "
                             f"to {self.device}; use runtime=torch on a GPU, or device=cpu")
        if self.precision != "fp32":
            raise ValueError(f"runtime=onnxruntime runs fp32 only, got precision="
                             f"{self.precision}; use precision=fp32 (or auto)")

    def _onnx_runtime(self) -> Any:
        from mocap_ros.estimation.hmr.onnx import OrtHMR

        return OrtHMR(self.hmr, self.config.n_iter)

    def close(self) -> None:
        """Release the hand graph (the models go with the object)."""
        if self.hands is not None:
            self.hands.close()

    @property
    def fast_path_status(self) -> str:
        """What serves ``process``: 'cuda_graph', 'eager (why)', 'off (why)'..."""
        if self.fast is not None:
            return self.fast.status()
        return f"off ({self.fast_path_reason})"

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> object:
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def crop_box(self, width: int, height: int,
                 bbox: tuple[float, float, float, float] | np.ndarray | None) -> CropBox:
        if bbox is None and self.config.bbox_mode == "roi":
            bbox = self.config.roi
        if bbox is None:
            return full_frame_box(width, height)
        b = np.asarray(bbox, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.isfinite(b).all():
            raise ValueError(f"bbox must be 4 finite numbers (x, y, w, h), got {bbox!r}")
        return crop_box_from_bbox(b)

    def _box_problem(self, box: CropBox, width: int, height: int) -> str:
        if not box.side >= self.config.min_crop_px:
            return "bbox_too_small"
        x0, y0 = box.top_left
        if x0 >= width or y0 >= height or x0 + box.side <= 0 or y0 + box.side <= 0:
            return "bbox_outside_image"
        return ""

    def _prepare(self, rgb: np.ndarray, bbox: BBox | None,
                 K: np.ndarray | Intrinsics | None) -> _Job | BodyPoseResult:
        """Host-side checks of one frame: its job, or the invalid result it gives."""
        validate_frame(rgb)
        height, width = rgb.shape[:2]
        box = self.crop_box(width, height, bbox)
        meta = {"precision": self.precision, "n_iter": self.config.n_iter,
                "device": str(self.device)}
        box_xywh = np.array([*box.top_left, box.side, box.side], np.float32)
        problem = self._box_problem(box, width, height)
        if problem:
            return BodyPoseResult.invalid(problem, box_xywh, **meta)
        intr = Intrinsics.given_or_fallback(K, width, height, self.config.focal_length,
                                            self.config.fallback_hfov_deg)
        return _Job(box, box_xywh, intr, width, height, meta)

    def _crop(self, rgb: np.ndarray, box: CropBox) -> torch.Tensor:
        """Upload one frame and cut its normalised (1, 3, 224, 224) crop on the device."""
        frame = frame_to_tensor(rgb, self.device, self.input_dtype)
        frame, factor = resize_short_side(frame, self.config.resize_short)
        return crop_batch(frame, [box], self.normalizer, factor=factor)

    def _infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The HMR network on a batch of crops: (rotmat, betas, cam), float32."""
        if self.ort is not None:
            return self.ort(x)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            return self.hmr(x, n_iter=self.config.n_iter)

    def pack(self, rotmat: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor,
              return_vertices: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Body kinematics, then everything small as one (B, 11*24 + 13) float32 tensor
        (local quats, global quats, joints, 10 betas, cam) for one device->host copy."""
        verts_on = self.config.return_vertices if return_vertices is None else return_vertices
        body = self.body(rotmat, betas, return_vertices=verts_on)
        b = rotmat.shape[0]
        packed = torch.cat((
            rotmat_to_quat(rotmat).reshape(b, -1),
            rotmat_to_quat(body.global_rotmat).reshape(b, -1),
            body.joints.reshape(b, -1), betas.float()[:, :10], cam.float(),
        ), dim=1)
        return packed, body.vertices

    def _finish_packed(self, row: np.ndarray, job: _Job, verts: np.ndarray | None
                       ) -> BodyPoseResult:
        n = NUM_JOINTS
        q_local, q_glob = row[: 4 * n].reshape(n, 4), row[4 * n: 8 * n].reshape(n, 4)
        joints = row[8 * n: 11 * n].reshape(n, 3)
        betas_np, cam_np = row[11 * n: 11 * n + 10], row[11 * n + 10:]
        return self._finish(q_local, q_glob, joints, betas_np, cam_np, job.box, job.box_xywh,
                            job.intr, job.width, job.height, verts, job.meta)

    # ------------------------------------------------------------------ main API
    @torch.inference_mode()
    def process(self, rgb: np.ndarray, bbox: BBox | None = None,
                K: np.ndarray | Intrinsics | None = None) -> BodyPoseResult:
        """Estimate the body pose of the person in ``bbox`` (x, y, w, h pixels; None: per
        ``bbox_mode``) of an HxWx3 uint8 RGB frame. ``K``: 3x3 intrinsics, else a fallback.

        Timings: on the fast path (CUDA) the crop runs inside the captured step, so
        ``preprocess`` is the host copy + queued upload and ``inference`` crop + HMR + body
        + download."""
        t0 = time.perf_counter()
        job = self._prepare(rgb, bbox, K)
        if isinstance(job, BodyPoseResult):
            return self._with_hands(rgb, job, None)
        verts = None
        if self.fast is not None:
            row, t1, t2 = self.fast.run(rgb, job.box)
        else:
            rows, all_verts, t1, t2 = self._run_network(self._crop(rgb, job.box))
            row = rows[0]
            verts = None if all_verts is None else all_verts[0]
        result = self._finish_packed(row, job, verts)
        t3 = time.perf_counter()
        result = self._with_hands(rgb, result, job.intr)
        t4 = time.perf_counter()
        result.timings_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                             "postprocess": (t3 - t2) * 1e3, "total": (t4 - t0) * 1e3}
        if self.hands is not None:
            result.timings_ms["hands"] = (t4 - t3) * 1e3
        return result

    def _with_hands(self, rgb: np.ndarray, result: BodyPoseResult,
                    intr: Intrinsics | None) -> BodyPoseResult:
        """Hands on: both hands from the body's arms (invalid body: invalid hands and the
        tracking reset), and each valid palm's orientation into the SMPL wrist."""
        if self.hands is None:
            return result
        from mocap_ros.estimation.hands.wrist import apply_hand_orientation

        hands = self.hands.estimate_from_body_result(rgb, result, intr)
        result.left_hand, result.right_hand = hands["left"], hands["right"]
        if result.valid and intr is not None:
            apply_hand_orientation(result, hands, intr)
        return result

    def _run_network(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None, float,
                                                       float]:
        """Crops -> packed host rows (one D2H copy) and vertices; returns the times at which
        inference started and ended (after the crops were ready)."""
        self.sync()
        t1 = time.perf_counter()
        rotmat, betas, cam = self._infer(x)
        self.sync()
        t2 = time.perf_counter()
        packed, vertices = self.pack(rotmat, betas, cam)
        rows = packed.double().cpu().numpy()
        verts = vertices.double().cpu().numpy() if vertices is not None else None
        return rows, verts, t1, t2

    @torch.inference_mode()
    def process_batch(self, frames: Sequence[np.ndarray],
                      bboxes: Sequence[BBox | None] | None = None,
                      Ks: Sequence[np.ndarray | Intrinsics | None] | None = None,
                      ) -> list[BodyPoseResult]:
        """``process`` for several frames with one HMR forward for all their crops.

        Frames may differ in size (each is cropped on the device, the 224x224 crops are
        stacked). Results equal per-frame ``process`` up to the batched kernels' rounding.
        A frame that is not an image raises ValueError for the whole call, as ``process``
        would. Each result's timings are the batch's stage times divided by the number of
        frames that ran the network (its share of the work).
        """
        n = len(frames)
        bboxes = [None] * n if bboxes is None else list(bboxes)
        Ks = [None] * n if Ks is None else list(Ks)
        if len(bboxes) != n or len(Ks) != n:
            raise ValueError(f"process_batch: {n} frames but {len(bboxes)} bboxes and "
                             f"{len(Ks)} intrinsics")
        t0 = time.perf_counter()
        results: list[BodyPoseResult | None] = [None] * n
        jobs: list[tuple[int, _Job]] = []
        crops = []
        for i, (rgb, bbox, K) in enumerate(zip(frames, bboxes, Ks, strict=True)):
            job = self._prepare(rgb, bbox, K)
            if isinstance(job, BodyPoseResult):
                results[i] = job
                continue
            jobs.append((i, job))
            crops.append(self._crop(rgb, job.box))
        if jobs:
            x = crops[0] if len(crops) == 1 else torch.cat(crops)
            rows, verts, t1, t2 = self._run_network(x)
            for k, (i, job) in enumerate(jobs):
                results[i] = self._finish_packed(rows[k], job,
                                                 None if verts is None else verts[k])
            t3 = time.perf_counter()
            m = len(jobs)
            share = {"preprocess": (t1 - t0) * 1e3 / m, "inference": (t2 - t1) * 1e3 / m,
                     "postprocess": (t3 - t2) * 1e3 / m, "total": (t3 - t0) * 1e3 / m}
            for i, _ in jobs:
                results[i].timings_ms = dict(share)
        return results  # type: ignore[return-value]

    def _finish(self, q_local: np.ndarray, q_glob: np.ndarray, joints: np.ndarray,
                betas: np.ndarray, cam: np.ndarray, box: CropBox, box_xywh: np.ndarray,
                intr: Intrinsics, width: int, height: int, verts: np.ndarray | None,
                meta: dict) -> BodyPoseResult:
        if not (np.isfinite(q_local).all() and np.isfinite(joints).all()
                and np.isfinite(betas).all() and np.isfinite(cam).all()):
            return BodyPoseResult.invalid("non_finite_output", box_xywh, **meta)
        if cam[0] <= 1e-6:
            # A non-positive scale puts the body behind the camera or at infinity.
            return BodyPoseResult.invalid("non_positive_scale", box_xywh, **meta)
        kp2d = weak_perspective_to_image(joints, cam, box)
        trans = root_translation(cam, box, intr)
        joints_cam = joints + trans
        if not (np.isfinite(kp2d).all() and np.isfinite(joints_cam).all()):
            return BodyPoseResult.invalid("non_finite_output", box_xywh, **meta)
        inside = ((kp2d[:, 0] >= 0) & (kp2d[:, 0] < width) & (kp2d[:, 1] >= 0)
                  & (kp2d[:, 1] < height))
        # HMR has no learned confidence; the visible fraction of the joints is an honest
        # proxy for "the whole body was in view", which is what a follower needs.
        confidence = float(inside.mean())
        valid, reason = True, ""
        if confidence < self.config.min_confidence or math.isclose(confidence, 0.0):
            valid, reason = False, "low_confidence"
        f32 = np.float32
        return BodyPoseResult(
            valid=valid, reason=reason, confidence=confidence,
            local_rotations=q_local.astype(f32), global_rotations=q_glob.astype(f32),
            joints_cam=joints_cam.astype(f32), keypoints_2d=kp2d.astype(f32),
            betas=betas.astype(f32), camera=cam.astype(f32), root_translation=trans.astype(f32),
            bbox=box_xywh, vertices=None if verts is None else (verts + trans).astype(f32),
            joint_confidence=keypoint_joint_confidence(kp2d, box.window, (height, width)),
            **meta,
        )
