"""MediaPipe's hand landmark model on a given region (ROI), and its palm detector.

Both models ship inside the ``mediapipe==0.10.14`` wheel (``modules/hand_landmark/
hand_landmark_full.tflite``, ``modules/palm_detection/palm_detection_full.tflite``): nothing is
downloaded. The legacy ``mp.solutions.hands`` graph always runs the palm detector on the full
frame and keeps no link to the body; here the landmark model runs on a ROI the caller places
(from the body's wrist, see :mod:`.estimator`), so a frame costs one landmark pass per hand and
the side (left/right) is the body's.

:class:`HandLandmarkGraph` is a small graph of MediaPipe's own calculators, written for this
project: crop the rotated ROI to the model's 224 x 224 input (``ImageToTensorCalculator``),
run ``hand_landmark_full.tflite`` (``model_complexity=1``, the default) or
``hand_landmark_lite.tflite`` (``0``, also in the wheel: about half the cost per pass, the same
2D accuracy on the real hand photos but noisier 3D; ``hands_model`` in the config)
(``HandLandmarkModelLoader`` + ``InferenceCalculator``),
split its four outputs (landmarks, presence, handedness, world landmarks) and map them back
to the image (letterbox removal, ROI projection) and to the camera axes (world landmarks
rotated by the ROI's rotation). Unlike MediaPipe's ``HandLandmarkCpu`` subgraph it does NOT
gate the outputs on the presence score: it returns the score, so the caller can report it as
a confidence and decide itself. It also returns MediaPipe's ROI recomputed from the found
landmarks (``HandLandmarkLandmarksToRoi``), for a refinement pass or the next frame.

:class:`PalmDetectionGraph`: MediaPipe's palm detector on the full image -> rotated hand ROIs
(``PalmDetectionDetectionToRoi``), for hands without a body (close-ups, tests).

ROI convention (MediaPipe's ``NormalizedRect``): centre and size normalised by the image
width / height, ``rotation`` in radians such that the crop's "up" points from the wrist to
the fingers; a hand with its fingers straight up in the image has rotation 0, fingers to the
image's right: +pi/2 (``rotation = pi/2 - atan2(-(dy), dx)`` for the wrist->fingers pixel
vector (dx, dy)).

Protobuf: as in :mod:`mocap_ros.estimation.detector`, the outputs are read with
``message_factory.GetMessageClass`` (protobuf >= 5 removed the ``GetPrototype`` the
solution base would use).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "world_landmarks"
output_stream: "presence"
output_stream: "handedness"
output_stream: "roi_next"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  input_stream: "NORM_RECT:roi"
  output_stream: "TENSORS:input_tensor"
  output_stream: "LETTERBOX_PADDING:letterbox_padding"
  options {
    [mediapipe.ImageToTensorCalculatorOptions.ext] {
      output_tensor_width: 224 output_tensor_height: 224 keep_aspect_ratio: true
      output_tensor_float_range { min: 0 max: 1 }
    }
  }
}
node {
  calculator: "HandLandmarkModelLoader"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  output_side_packet: "MODEL:model"
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensor"
  output_stream: "TENSORS:output_tensors"
  input_side_packet: "MODEL:model"
  options { [mediapipe.InferenceCalculatorOptions.ext] { delegate { xnnpack {} } } }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
  output_stream: "landmark_tensor"
  output_stream: "presence_tensor"
  output_stream: "handedness_tensor"
  output_stream: "world_tensor"
  options {
    [mediapipe.SplitVectorCalculatorOptions.ext] {
      ranges { begin: 0 end: 1 } ranges { begin: 1 end: 2 }
      ranges { begin: 2 end: 3 } ranges { begin: 3 end: 4 }
    }
  }
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:presence_tensor"
  output_stream: "FLOAT:presence"
}
node {
  calculator: "TensorsToClassificationCalculator"
  input_stream: "TENSORS:handedness_tensor"
  output_stream: "CLASSIFICATIONS:handedness"
  options {
    [mediapipe.TensorsToClassificationCalculatorOptions.ext] {
      top_k: 1 binary_classification: true
      label_map_path: "mediapipe/modules/hand_landmark/handedness.txt"
    }
  }
}
node {
  calculator: "TensorsToLandmarksCalculator"
  input_stream: "TENSORS:landmark_tensor"
  output_stream: "NORM_LANDMARKS:crop_landmarks"
  options {
    [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
      num_landmarks: 21 input_image_width: 224 input_image_height: 224 normalize_z: 0.4
    }
  }
}
node {
  calculator: "LandmarkLetterboxRemovalCalculator"
  input_stream: "LANDMARKS:crop_landmarks"
  input_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "LANDMARKS:roi_landmarks"
}
node {
  calculator: "LandmarkProjectionCalculator"
  input_stream: "NORM_LANDMARKS:roi_landmarks"
  input_stream: "NORM_RECT:roi"
  output_stream: "NORM_LANDMARKS:landmarks"
}
node {
  calculator: "TensorsToLandmarksCalculator"
  input_stream: "TENSORS:world_tensor"
  output_stream: "LANDMARKS:crop_world_landmarks"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] { num_landmarks: 21 } }
}
node {
  calculator: "WorldLandmarkProjectionCalculator"
  input_stream: "LANDMARKS:crop_world_landmarks"
  input_stream: "NORM_RECT:roi"
  output_stream: "LANDMARKS:world_landmarks"
}
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "HandLandmarkLandmarksToRoi"
  input_stream: "LANDMARKS:landmarks"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:roi_next"
}
"""

_PALM_GRAPH = """
input_stream: "image"
output_stream: "palms"
output_stream: "palm_rois"
node {
  calculator: "PalmDetectionCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  output_stream: "DETECTIONS:palms"
}
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "BeginLoopDetectionCalculator"
  input_stream: "ITERABLE:palms"
  input_stream: "CLONE:image_size"
  output_stream: "ITEM:palm"
  output_stream: "CLONE:palm_image_size"
  output_stream: "BATCH_END:palms_timestamp"
}
node {
  calculator: "PalmDetectionDetectionToRoi"
  input_stream: "DETECTION:palm"
  input_stream: "IMAGE_SIZE:palm_image_size"
  output_stream: "ROI:palm_roi"
}
node {
  calculator: "EndLoopNormalizedRectCalculator"
  input_stream: "ITEM:palm_roi"
  input_stream: "BATCH_END:palms_timestamp"
  output_stream: "ITERABLE:palm_rois"
}
"""


# The ``hands_model`` setting -> MediaPipe's MODEL_COMPLEXITY (HandLandmarkModelLoader picks
# modules/hand_landmark/hand_landmark_lite.tflite for 0, hand_landmark_full.tflite for 1).
HAND_MODEL_COMPLEXITY = {"lite": 0, "full": 1}


class HandsUnavailable(RuntimeError):  # noqa: N818 (mirrors detector.DetectorUnavailable)
    """MediaPipe (with its hand models) is not installed or its graph failed to start."""


@dataclass(frozen=True)
class HandRoi:
    """A square, rotated hand region in image pixels."""

    cx: float  # centre x (pixels)
    cy: float  # centre y (pixels)
    size: float  # side length (pixels)
    rotation: float  # radians, MediaPipe's convention (module doc): 0 = fingers up

    def to_norm_rect(self, width: int, height: int) -> Any:
        from mediapipe.framework.formats import rect_pb2

        return rect_pb2.NormalizedRect(
            x_center=self.cx / width, y_center=self.cy / height, width=self.size / width,
            height=self.size / height, rotation=self.rotation)

    @classmethod
    def from_norm_rect(cls, r: Any, width: int, height: int) -> HandRoi:
        # MediaPipe's ROIs are square in pixels; keep the larger side if they are not.
        return cls(float(r.x_center) * width, float(r.y_center) * height,
                   float(max(r.width * width, r.height * height)), float(r.rotation))

    def is_finite(self) -> bool:
        return bool(np.isfinite([self.cx, self.cy, self.size, self.rotation]).all()
                    and self.size > 0)


def rotation_from_direction(dx: float, dy: float) -> float:
    """MediaPipe ROI rotation for a wrist->fingers direction (dx, dy) in image pixels."""
    a = math.pi / 2.0 - math.atan2(-dy, dx)
    return math.atan2(math.sin(a), math.cos(a))  # wrapped to (-pi, pi]


@dataclass
class RawHand:
    """One landmark pass on one ROI (float64)."""

    image_xy: np.ndarray  # (21, 2) pixels
    image_z: np.ndarray  # (21,) MediaPipe's relative depth (roughly ROI-width units)
    world: np.ndarray  # (21, 3) metres, hand-centred, camera axes (x right, y down, z fwd)
    presence: float  # [0, 1] the model's hand-presence score
    model_label: str  # the model's handedness guess, "Left"/"Right" for a MIRRORED image
    model_label_score: float  # its score in [0.5, 1]
    roi: HandRoi  # the ROI it ran on
    roi_next: HandRoi | None  # MediaPipe's ROI around the found landmarks


def _message_class(type_name: str) -> Any:
    from google.protobuf import message_factory, symbol_database

    desc = symbol_database.Default().pool.FindMessageTypeByName(type_name)
    return message_factory.GetMessageClass(desc)


def _solution_class() -> Any:
    """``SolutionBase`` reading PROTO / PROTO_LIST outputs without ``GetPrototype``."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            from mediapipe.python import solution_base
            from mediapipe.python._framework_bindings import _packet_getter
            from mediapipe.python.solution_base import PacketDataType
    except Exception as e:
        raise HandsUnavailable(f"mediapipe is not importable ({type(e).__name__}: {e}); "
                               "install it with requirements-mediapipe.txt") from e

    class _Solution(solution_base.SolutionBase):  # type: ignore[misc,name-defined]
        def _get_packet_content(self, packet_data_type: Any, output_packet: Any) -> Any:
            if output_packet.is_empty():
                return None
            if packet_data_type == PacketDataType.PROTO:
                cls = _message_class(_packet_getter._get_proto_type_name(output_packet))
                return cls.FromString(_packet_getter._get_serialized_proto(output_packet))
            if packet_data_type == PacketDataType.PROTO_LIST:
                if _packet_getter._get_proto_vector_size(output_packet) == 0:
                    return []
                cls = _message_class(
                    _packet_getter._get_proto_vector_element_type_name(output_packet))
                return [cls.FromString(s) for s in
                        _packet_getter._get_serialized_proto_list(output_packet)]
            return super()._get_packet_content(packet_data_type, output_packet)

    return _Solution


def _start(graph: str, model_complexity: int) -> Any:
    if model_complexity not in (0, 1):
        raise ValueError(f"model_complexity={model_complexity}: 0 ('lite') or 1 ('full'), "
                         "the hand models in the wheel")
    cls = _solution_class()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"label\(\) is deprecated",
                                    category=DeprecationWarning)
            return cls(graph_config=graph, side_inputs={"model_complexity": model_complexity})
    except Exception as e:
        raise HandsUnavailable(f"mediapipe's hand graph failed to start "
                               f"({type(e).__name__}: {e})") from e


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got "
                         f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")


class HandLandmarkGraph:
    """The hand landmark model on caller-given ROIs (module doc). Not thread-safe."""

    def __init__(self, model_complexity: int = 1) -> None:
        self.model_complexity = model_complexity  # 0: lite, 1: full (HAND_MODEL_COMPLEXITY)
        self._graph = _start(_LANDMARK_GRAPH, model_complexity)

    def __call__(self, rgb: np.ndarray, roi: HandRoi) -> RawHand | None:
        """One pass on ``roi``; None only when the graph gave no output (e.g. an empty crop)."""
        _check_rgb(rgb)
        if not roi.is_finite():
            raise ValueError(f"ROI must be finite with a positive size, got {roi}")
        h, w = rgb.shape[:2]
        out = self._graph.process({"image": np.ascontiguousarray(rgb),
                                   "roi": roi.to_norm_rect(w, h)})
        if out.landmarks is None or out.world_landmarks is None or out.presence is None:
            return None
        img = np.array([(p.x * w, p.y * h, p.z) for p in out.landmarks.landmark], np.float64)
        world = np.array([(p.x, p.y, p.z) for p in out.world_landmarks.landmark], np.float64)
        label, score = "", 0.0
        if out.handedness is not None and out.handedness.classification:
            c = out.handedness.classification[0]
            label, score = str(c.label), float(c.score)
        nxt = None if out.roi_next is None else HandRoi.from_norm_rect(out.roi_next, w, h)
        return RawHand(image_xy=img[:, :2], image_z=img[:, 2], world=world,
                       presence=float(np.clip(out.presence, 0.0, 1.0)), model_label=label,
                       model_label_score=score, roi=roi, roi_next=nxt)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


class PalmDetectionGraph:
    """MediaPipe's palm detector on a full frame -> hand ROIs, best score first."""

    def __init__(self, model_complexity: int = 1) -> None:
        self._graph = _start(_PALM_GRAPH, model_complexity)

    def __call__(self, rgb: np.ndarray) -> list[tuple[HandRoi, float]]:
        _check_rgb(rgb)
        h, w = rgb.shape[:2]
        out = self._graph.process({"image": np.ascontiguousarray(rgb)})
        if not out.palms or not out.palm_rois:
            return []
        found = [(HandRoi.from_norm_rect(r, w, h), float(d.score[0]) if d.score else 0.0)
                 for d, r in zip(out.palms, out.palm_rois, strict=True)]
        return sorted(found, key=lambda t: -t[1])

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
