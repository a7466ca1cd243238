"""The synthetic operator as a :class:`~mocap_ros.io.frames.FrameSource`: camera_node's
``source: synthetic[:SCRIPT[:FIGURE]]``.

Like a camera, it runs on the wall clock: frame k is taken at start + k / fps and shows the
script at t = k / fps (modulo the script's length with ``loop``); a consumer too slow to
take every frame skips frames instead of slowing the operator down. Each frame carries its
:class:`~mocap_ros.scene.operator.OperatorTruth` (``SyntheticFrame.truth``), and its stamp is
the capture instant of that truth. Without ``realtime`` frames come as fast as they are
rendered (the script still advances 1 / fps per frame).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, fields

import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.io.calibration import CameraCalibration
from mocap_ros.io.frames import Frame, FrameSource, SourceUnavailableError
from mocap_ros.scene.operator import FIGURES, SCRIPTS, OperatorTruth, SyntheticOperator

PREFIX = "synthetic"


def is_synthetic(spec: str) -> bool:
    text = str(spec).strip()
    return text == PREFIX or text.startswith(PREFIX + ":")


def parse_spec(spec: str) -> tuple[str, str]:
    """``synthetic[:SCRIPT[:FIGURE]]`` -> (script, figure); ValueError naming the choices."""
    parts = str(spec).strip().split(":")
    if parts[0] != PREFIX or len(parts) > 3:
        raise ValueError(f"synthetic source {spec!r}: expected synthetic[:SCRIPT[:FIGURE]]")
    script = parts[1] if len(parts) > 1 and parts[1] else "default"
    figure = parts[2] if len(parts) > 2 and parts[2] else "default"
    if script not in SCRIPTS:
        raise ValueError(f"synthetic source {spec!r}: unknown script {script!r} (scripts: "
                         f"{', '.join(SCRIPTS)})")
    if figure not in FIGURES:
        raise ValueError(f"synthetic source {spec!r}: unknown figure {figure!r} (figures: "
                         f"{', '.join(FIGURES)})")
    return script, figure


@dataclass
class SyntheticFrame(Frame):
    truth: OperatorTruth | None = None


class SyntheticSource(FrameSource):
    """The rendered operator of ``spec`` at ``fps`` (module doc). Rendering happens in the
    reading thread (it owns the GL context)."""

    kind = "synthetic"

    def __init__(self, spec: str = PREFIX, *, width: int = 640, height: int = 480,
                 fps: float = 15.0, loop: bool = False, realtime: bool = True) -> None:
        self.script, self.figure = parse_spec(spec)
        if not fps > 0:
            raise ValueError(f"a synthetic source needs fps > 0, got {fps}")
        # the base class's pacing works per frame; this source paces on the wall clock itself
        super().__init__(str(spec).strip(), loop=False, realtime=False)
        self.op = SyntheticOperator(script=self.script, figure=self.figure,
                                    width=width or 640, height=height or 480, fps=fps,
                                    loop=loop)
        self.fps = float(fps)
        self.synthetic_loop = loop
        self.synthetic_realtime = realtime
        self._k = 0
        self._start_mono: float | None = None
        self._start_wall = 0.0
        self._truth: OperatorTruth | None = None
        self._gl_thread: int | None = None
        self._gl_error = ""
        self.requested = {"script": self.script, "figure": self.figure, "fps": f"{fps:g}",
                          "size": f"{self.op.width}x{self.op.height}"}

    @property
    def calibration(self) -> CameraCalibration:
        K = self.op.intrinsics
        return CameraCalibration(width=self.op.width, height=self.op.height, K=K.copy(),
                                 D=np.zeros(5), R=np.eye(3),
                                 P=np.hstack([K, np.zeros((3, 1))]),
                                 distortion_model="plumb_bob",
                                 source=f"synthetic operator ({self.script}, {self.figure})")

    def read(self, timeout: float = 0.5) -> Frame | None:
        frame = super().read(timeout)
        if self._stop.is_set() and self._gl_thread == threading.get_ident():
            self.op.close()  # stopping: free the GL context in the thread that holds it
        return frame

    def _open(self) -> None:
        if self._gl_error:
            # MuJoCo's GL platform is fixed for the process: retrying cannot help, and a
            # second context attempt after this failure aborts the process in MuJoCo
            raise SourceUnavailableError(self._gl_error)
        self._gl_thread = threading.get_ident()
        try:
            self.op.render(0.0)  # makes the GL context in this (the reading) thread
        except RuntimeError as exc:
            self._gl_error = f"{exc} (not retried: restart the process with MUJOCO_GL set)"
            raise SourceUnavailableError(self._gl_error) from exc
        self.granted = dict(self.requested)

    def _describe_open(self) -> str:
        return (f"synthetic operator: script {self.script} ({self.op.duration:.1f} s"
                f"{', looping' if self.synthetic_loop else ''}), figure {self.figure}, "
                f"{self.op.width}x{self.op.height} at {self.fps:g} fps"
                + (" (real time)" if self.synthetic_realtime else " (as fast as possible)"))

    def _read_one(self) -> tuple | None:
        now = time.monotonic()
        if self._start_mono is None:
            self._start_mono, self._start_wall = now, time.time()
        k = self._k
        if self.synthetic_realtime:
            # the frame that is due now (skipping the ones a slow reader missed)
            k = max(k, math.floor((now - self._start_mono) * self.fps))
            due = self._start_mono + k / self.fps
            if due > now and self._stop.wait(due - now):
                return None
        t = k / self.fps
        if t > self.op.duration + 1e-9 and not self.synthetic_loop:
            return None
        loops = int(t // self.op.duration) if self.synthetic_loop else 0
        while self._counts["loops"] < loops:
            self._bump("loops")
        self._k = k + 1
        rgb, truth = self.op.frame(t)
        self._truth = truth
        stamp = self._start_wall + t if self.synthetic_realtime else None
        return rgb[..., ::-1].copy(), None, t, f"{self.script}@{t:.3f}", stamp

    def _end_of_stream(self) -> bool:
        self._set_state("ended", f"end of script {self.script} (loop is off)")
        return False

    def _deliver(self, bgr: np.ndarray, jpeg: bytes | None, media_time: float | None,
                 name: str, stamp: float | None = None) -> SyntheticFrame:
        f = super()._deliver(bgr, jpeg, media_time, name, stamp)
        return SyntheticFrame(**{x.name: getattr(f, x.name) for x in fields(Frame)},
                              truth=self._truth)

    def _release(self) -> None:
        # An EGL context is current in one thread: another thread cannot free it (read()
        # frees it in the reading thread when stopped).
        if self._gl_thread in (None, threading.get_ident()):
            self.op.close()

    def _rewind(self) -> None:  # looping is by script time (``_read_one``)
        pass


def truth_result(truth: OperatorTruth) -> BodyPoseResult:
    """The truth as a BodyPoseResult for ``synthetic/truth`` (valid, confidence 1, joints and
    keypoints exact; ``reason`` carries ``phase=NAME holding=0|1 t=SCRIPT_SECONDS`` (the
    script time re-renders the frame: ``SyntheticOperator.frame(t)``); rotations are not part
    of the truth and stay identity; backend ``synthetic``)."""
    r = BodyPoseResult.invalid("")
    r.valid, r.confidence, r.backend = True, 1.0, "synthetic"
    r.reason = f"phase={truth.phase} holding={int(truth.holding)} t={truth.t:.6f}"
    r.joints_cam = np.asarray(truth.joints_cam, np.float32)
    r.keypoints_2d = np.asarray(truth.keypoints_2d, np.float32)
    r.root_translation = r.joints_cam[0].copy()
    r.joint_confidence = np.ones(len(r.joints_cam), np.float32)
    return r
