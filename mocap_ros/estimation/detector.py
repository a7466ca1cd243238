"""Finding the person: MediaPipe BlazePose from the ``mediapipe==0.10.14`` wheel.

That wheel carries the two models its legacy ``mp.solutions.pose`` graph needs for
``model_complexity=1`` (``pose_detection.tflite``, ``pose_landmark_full.tflite``), so nothing
is downloaded at run time. Complexities 0 and 2 would download their models from the
internet on first use: they are refused here.

Install (an optional extra; see the top of ``requirements-mediapipe.txt`` for why
``--no-deps``: its declared dependencies pull opencv-contrib-python, which clobbers our
opencv-python-headless, plus jax and sounddevice that pose does not use)::

    pip install --no-deps -r requirements-mediapipe.txt

* :class:`MediaPipePose` -- the pose graph: one RGB frame -> :class:`PoseLandmarks` (33 image
  landmarks in pixels, visibilities, 33 metric world landmarks) or None (nobody).
* :class:`PersonDetector` -- the person box: the bounds of the visible landmarks plus a margin
  (the pose graph's own detector + landmark ROI find the person; the legacy API does not
  expose its ROI, so the landmarks stand for it).
* :class:`BackgroundDetector` -- runs a detector on a thread on the newest submitted frame;
  ``latest()`` returns the most recent box at once, so the caller (the GPU path) never waits.

Protobuf: mediapipe 0.10.14 declares protobuf<5, but onnx (our ONNX runtime path) needs
protobuf>=6.31.1. Its pose graph runs on protobuf 6 except for one call that protobuf 5
removed (``SymbolDatabase.GetPrototype``, used to read its output protos); :class:`MediaPipePose`
reads those outputs with ``message_factory.GetMessageClass`` instead (a subclass override, no
global patch). protobuf 7 removed ``FieldDescriptor.label``, which its graph set-up needs:
protobuf must stay below 7 (pinned in requirements-mediapipe.txt).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.14"
INSTALL_HINT = (
    "install MediaPipe (models ship inside its wheel): "
    "`pip install --no-deps -r requirements-mediapipe.txt` from a mocap_ros checkout "
    "(`make setup` does this; --no-deps keeps out opencv-contrib-python, which clobbers "
    "opencv-python-headless, so there is deliberately no `mocap_ros[mediapipe]` extra)"
)
# Model files of model_complexity=1, relative to the mediapipe package.
_MODEL_FILES = ("modules/pose_detection/pose_detection.tflite",
                "modules/pose_landmark/pose_landmark_full.tflite")


class DetectorUnavailable(RuntimeError):  # noqa: N818 (the name the issue and docs use)
    """MediaPipe is not installed (or not usable); the message says how to install it."""


def _import_pose_module() -> Any:
    """``mediapipe.python.solutions.pose``, or DetectorUnavailable with the install command."""
    # Its C++ bindings print one harmless line at import on protobuf >= 5 ("AttributeError:
    # 'MessageFactory' object has no attribute 'GetPrototype'": a probe for an API that
    # protobuf removed, after which it falls back); keep it out of the user's console.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            import mediapipe
            from mediapipe.python.solutions import pose as mp_pose
    except Exception as e:  # ImportError, or a broken dependency (protobuf, matplotlib)
        raise DetectorUnavailable(
            f"mediapipe is not importable ({type(e).__name__}: {e}); {INSTALL_HINT}") from e
    finally:
        for line in captured.getvalue().splitlines():
            if "GetPrototype" in line:
                log.debug("mediapipe import: %s", line)
            elif line.strip():
                sys.stderr.write(line + "\n")
    version = getattr(mediapipe, "__version__", "?")
    if version != MEDIAPIPE_VERSION:
        log.warning("mediapipe %s found; mocap_ros is tested with %s", version,
                    MEDIAPIPE_VERSION)
    root = Path(mediapipe.__file__).parent
    missing = [f for f in _MODEL_FILES if not (root / f).is_file()]
    if missing:
        raise DetectorUnavailable(
            f"mediapipe {version} at {root} lacks its pose models {missing} (they would be "
            f"downloaded at run time, which mocap_ros never does); {INSTALL_HINT}")
    return mp_pose


def mediapipe_available() -> bool:
    """Whether :class:`MediaPipePose` can be built here (imports mediapipe if it can)."""
    try:
        _import_pose_module()
    except DetectorUnavailable:
        return False
    return True


_POSE_CLASS: Any = None


def _pose_class() -> Any:
    """``mp.solutions.pose.Pose`` reading its output protos without ``GetPrototype``."""
    global _POSE_CLASS
    if _POSE_CLASS is not None:
        return _POSE_CLASS
    mp_pose = _import_pose_module()
    from google.protobuf import message_factory, symbol_database
    from mediapipe.python._framework_bindings import _packet_getter
    from mediapipe.python.solution_base import PacketDataType

    def message_class(type_name: str) -> Any:
        desc = symbol_database.Default().pool.FindMessageTypeByName(type_name)
        return message_factory.GetMessageClass(desc)

    class _Pose(mp_pose.Pose):  # type: ignore[misc,name-defined]
        def _get_packet_content(self, packet_data_type: Any, output_packet: Any) -> Any:
            if output_packet.is_empty():
                return None
            if packet_data_type == PacketDataType.PROTO:
                cls = message_class(_packet_getter._get_proto_type_name(output_packet))
                return cls.FromString(_packet_getter._get_serialized_proto(output_packet))
            if packet_data_type == PacketDataType.PROTO_LIST:
                if _packet_getter._get_proto_vector_size(output_packet) == 0:
                    return []
                cls = message_class(
                    _packet_getter._get_proto_vector_element_type_name(output_packet))
                return [cls.FromString(s) for s in
                        _packet_getter._get_serialized_proto_list(output_packet)]
            return super()._get_packet_content(packet_data_type, output_packet)

    _POSE_CLASS = _Pose
    return _POSE_CLASS


@dataclass
class PoseLandmarks:
    """BlazePose's output for one person in one frame (float64 numpy)."""

    image_xy: np.ndarray  # (33, 2) image pixels
    image_z: np.ndarray  # (33,) MediaPipe's relative depth (image-width units, hips ~ 0)
    visibility: np.ndarray  # (33,) in [0, 1]: likelihood of being visible (not occluded)
    world: np.ndarray  # (33, 3) metres, hip-centred, axes x right, y down, z away from camera
    image_size: tuple[int, int]  # (width, height)


class MediaPipePose:
    """MediaPipe's legacy pose graph (``model_complexity=1``, its models in the wheel).

    ``static_image_mode=False`` (video mode): after the first detection the person is
    tracked from the previous frame's landmarks (no detector pass), which is what makes it
    fast; feed frames in order. Not thread-safe (one caller at a time; a
    :class:`BackgroundDetector` gives it its own thread).
    """

    def __init__(self, *, static_image_mode: bool = False, model_complexity: int = 1,
                 smooth_landmarks: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        if model_complexity != 1:
            raise ValueError(f"model_complexity={model_complexity}: only 1 ships inside the "
                             "mediapipe wheel (0 and 2 download their models at run time)")
        cls = _pose_class()
        self.static_image_mode = static_image_mode
        try:
            with warnings.catch_warnings():
                # protobuf 6 deprecates FieldDescriptor.label, which its graph set-up reads
                warnings.filterwarnings("ignore", message=r"label\(\) is deprecated",
                                        category=DeprecationWarning)
                self._pose = cls(static_image_mode=static_image_mode, model_complexity=1,
                                 smooth_landmarks=smooth_landmarks, enable_segmentation=False,
                                 min_detection_confidence=min_detection_confidence,
                                 min_tracking_confidence=min_tracking_confidence)
        except Exception as e:
            import google.protobuf

            raise DetectorUnavailable(
                f"mediapipe's pose graph failed to start ({type(e).__name__}: {e}) with "
                f"protobuf {google.protobuf.__version__} (needs >=4.25.3,<7); "
                f"{INSTALL_HINT}") from e

    def __call__(self, rgb: np.ndarray) -> PoseLandmarks | None:
        """One HxWx3 uint8 RGB frame -> its person's landmarks, or None when nobody is found."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        res = self._pose.process(np.ascontiguousarray(rgb))
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        img = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark],
                       np.float64)
        world = np.array([(p.x, p.y, p.z) for p in res.pose_world_landmarks.landmark],
                         np.float64)
        return PoseLandmarks(image_xy=img[:, :2] * (w, h), image_z=img[:, 2],
                             visibility=np.clip(img[:, 3], 0.0, 1.0), world=world,
                             image_size=(w, h))

    def reset(self) -> None:
        """Forget the tracked person (a new, unrelated sequence follows)."""
        self._pose.reset()

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


def box_from_landmarks(image_xy: np.ndarray, visibility: np.ndarray,
                       image_shape: tuple[int, ...], margin: float = 0.15,
                       min_visibility: float = 0.3) -> np.ndarray | None:
    """Person box (x, y, w, h) float64: the bounds of the landmarks with visibility >=
    ``min_visibility`` (all of them when fewer than 4 qualify), grown by ``margin`` times the
    larger side on every side, clipped to the image (H, W, ...). None if nothing is left."""
    xy = np.asarray(image_xy, np.float64)
    vis = np.asarray(visibility, np.float64)
    sel = vis >= min_visibility
    if sel.sum() < 4:
        sel = np.ones(len(xy), bool)
    pts = xy[sel & np.isfinite(xy).all(-1)]
    if len(pts) == 0:
        return None
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    m = margin * max(x1 - x0, y1 - y0)
    height, width = image_shape[:2]
    x0, y0 = max(0.0, x0 - m), max(0.0, y0 - m)
    x1, y1 = min(float(width), x1 + m), min(float(height), y1 + m)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


class PersonDetector:
    """The person's box in a frame, from MediaPipe BlazePose.

    ``detect(rgb)`` -> (x, y, w, h) float64 pixels, or None when nobody is found;
    ``landmarks(rgb)`` -> :class:`PoseLandmarks` | None (what the ``landmarks`` backend uses).
    Raises :class:`DetectorUnavailable` at construction when mediapipe is missing.
    ``pose``: a ready :class:`MediaPipePose` (or any callable rgb -> PoseLandmarks | None).
    """

    def __init__(self, *, margin: float = 0.15, min_visibility: float = 0.3,
                 static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, pose: Any = None) -> None:
        self.margin = margin
        self.min_visibility = min_visibility
        self.pose = pose if pose is not None else MediaPipePose(
            static_image_mode=static_image_mode,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)

    def landmarks(self, rgb: np.ndarray) -> PoseLandmarks | None:
        return self.pose(rgb)

    def box_for(self, lms: PoseLandmarks | None, image_shape: tuple[int, ...]
                ) -> np.ndarray | None:
        if lms is None:
            return None
        return box_from_landmarks(lms.image_xy, lms.visibility, image_shape, self.margin,
                                  self.min_visibility)

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        return self.box_for(self.landmarks(rgb), rgb.shape)

    __call__ = detect

    def close(self) -> None:
        close = getattr(self.pose, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> PersonDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Detection:
    """The most recent finished detection of a :class:`BackgroundDetector`."""

    box: np.ndarray | None  # (x, y, w, h), or None: nobody in that frame
    frame_index: int  # index (0-based, counting every submit) of the frame it was run on
    submitted_at: float  # time.monotonic() when that frame was submitted
    finished_at: float  # time.monotonic() when its detection finished


class BackgroundDetector:
    """Runs ``detector`` (``.detect(rgb)`` or a callable rgb -> box | None) on its own thread.

    ``submit(rgb)`` hands one frame in ``every_n`` to the thread (replacing a frame still
    waiting: the thread always takes the NEWEST) and returns at once; ``latest()`` returns the
    box of the most recent finished detection at once (None before the first, or when it is
    older than ``max_age_s``).

    Latency: the box describes a frame that is (detection time + up to ``every_n`` frame
    periods) old, e.g. ~20-45 ms of MediaPipe on 2 CPU cores plus the wait; a person moving
    fast may have left part of it. Use a margin (``PersonDetector.margin``), or ``track``
    boxes from the last pose with the detector as the re-initialisation only.

    Stalls: MediaPipe's graph runs with the GIL released, so the caller's thread keeps
    running. Measured on the 2-core machine (video mode, a 640x480 frame submitted every
    33 ms for 5 s): the caller's thread paused > 5 ms 3 times and > 10 ms once (48 ms), and
    the two share the 2 cores. A detector in its own process would remove even those.
    """

    def __init__(self, detector: Any, every_n: int = 1, copy_frames: bool = True) -> None:
        if every_n < 1:
            raise ValueError(f"every_n must be >= 1, got {every_n}")
        self._detect = detector.detect if hasattr(detector, "detect") else detector
        self.detector = detector
        self.every_n = int(every_n)
        self.copy_frames = copy_frames
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, int, float] | None = None
        self._busy = False
        self._latest: Detection | None = None
        self._submitted = 0
        self._stop = False
        self._close_on_exit = False
        self._finished = False  # the thread is past its last detection (under _cond)
        self.error: BaseException | None = None
        self.detections = 0
        self._thread = threading.Thread(target=self._run, name="mocap-person-detector",
                                        daemon=True)
        self._thread.start()

    def submit(self, rgb: np.ndarray) -> bool:
        """Offer a frame; True when it was queued for detection (one in ``every_n``)."""
        index = self._submitted
        self._submitted += 1
        if index % self.every_n:
            return False
        frame = rgb.copy() if self.copy_frames else rgb
        with self._cond:
            self._pending = (frame, index, time.monotonic())
            self._cond.notify()
        return True

    def latest(self, max_age_s: float | None = None) -> np.ndarray | None:
        det = self._latest
        if det is None or det.box is None:
            return None
        if max_age_s is not None and time.monotonic() - det.submitted_at > max_age_s:
            return None
        return det.box.copy()

    @property
    def last_detection(self) -> Detection | None:
        return self._latest

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no frame is waiting or being processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._finished = True
                    if self._close_on_exit:  # close() gave up waiting: closing is ours
                        self._close_detector()
                    return
                frame, index, t_sub = self._pending  # type: ignore[misc]
                self._pending = None
                self._busy = True
            try:
                box = self._detect(frame)
                self._latest = Detection(None if box is None else np.asarray(box, np.float64),
                                         index, t_sub, time.monotonic())
                self.detections += 1
            except Exception as e:  # keep the thread alive; the caller sees .error
                if self.error is None:
                    log.error("person detector failed: %s: %s", type(e).__name__, e)
                self.error = e
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, then close the detector. Closing MediaPipe under a detection
        still running on the thread is a use-after-free: when the thread does not stop
        within ``timeout``, the thread closes it once its detection is done."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout)
        with self._cond:
            if not self._finished:
                self._close_on_exit = True
                log.warning("person detector still busy after %.1f s: it is closed when its "
                            "detection ends", timeout)
                return
        self._close_detector()

    def _close_detector(self) -> None:
        close = getattr(self.detector, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> BackgroundDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
