"""rosbag2 bags without ROS: offline processing (``process_bag``) and DDS replay (``replay_bag``).

``process_bag`` reads a rosbag2 bag (sqlite3 or mcap, a bag directory or a single
``.mcap``/``.db3`` file) with the pure-Python ``rosbags`` library, runs the pipeline on every
``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` (no DDS, as fast as the device
allows) and writes a new bag holding

- every original message, copied byte for byte at its original bag time,
- ``/mocap/body_pose`` (``mocap_ros/msg/BodyPose``): exactly one per image, header = the
  image's header (stamp and frame_id), bag time = the image's bag time. Images that cannot
  be decoded get a pose with ``valid=false`` and ``reason="bad_image:<kind>"``,
- ``/tf`` (``tf2_msgs/msg/TFMessage``) for valid poses: ``<image frame_id>`` ->
  ``<prefix>pelvis`` -> every joint under its parent, as mocap_node broadcasts it.

The custom type is stored with its full message definition (the ``.msg`` text followed by
its dependencies, rosbag2's own layout) and its RIHS01 hash, so ``ros2 bag`` and ``rosbags``
read the output without having mocap_ros installed.

Camera intrinsics follow mocap_node: the newest valid ``CameraInfo`` before each image
(bag order) on ``<namespace>/camera_info`` of the image topic (``/cam/image_raw`` and
``/cam/image_raw/compressed`` -> ``/cam/camera_info``; the only CameraInfo topic of the bag
when that does not exist); a CameraInfo for another image size, or none, means the
focal-length fallback of the configuration.

CSV (``csv_path``): one row per image, in bag order. Columns: ``index, topic,
bag_time_ns, stamp_sec, stamp_nanosec, stamp, frame_id, valid, reason, confidence,
preprocess_ms, inference_ms, postprocess_ms, total_ms, root_x, root_y, root_z`` (pelvis in
the camera optical frame, metres), then per joint in SMPL order ``<joint>_qx, _qy, _qz,
_qw`` (the local, parent-relative rotation as a unit quaternion; the pelvis's is relative
to the camera optical frame) and ``<joint>_rx, _ry, _rz`` (the same rotation as a rotation
vector: unit axis times angle in radians, angle in [0, pi]).

``replay_bag`` publishes a bag's messages over DDS with their original timing scaled by
``rate`` (the serialized CDR bytes, nothing deserialized) and ``/clock`` with the bag time,
so nodes with ``use_sim_time`` follow it.

The ROS-free helpers :func:`body_pose_content` and :func:`transform_content` hold the field
values of BodyPose and of the TF tree; the rclpy conversion (``mocap_ros.ros.convert``) and
the bag writer here both fill their messages from them.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from mocap_ros.images import DEFAULT_MAX_PIXELS, ImageDecodeError, compressed_to_rgb, raw_to_rgb
from mocap_ros.quaternion import quat_to_matrix, quat_to_rotvec
from mocap_ros.result import BodyPoseResult
from mocap_ros.skeleton import JOINT_NAMES, PARENTS

if TYPE_CHECKING:
    from mocap_ros.config import MocapConfig
    from mocap_ros.pipeline import MocapPipeline

log = logging.getLogger("mocap_ros")

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
BODY_POSE_TYPE = "mocap_ros/msg/BodyPose"
TF_TYPE = "tf2_msgs/msg/TFMessage"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
POSE_TOPIC = "/mocap/body_pose"  # mocap_node's relative mocap/body_pose, fully qualified
TF_TOPIC = "/tf"
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # what Jazzy's rosbag2 writes (and reads)
_MSGDEF_SEP = "=" * 80 + "\n"


class BagError(RuntimeError):
    """A bag that cannot be processed or replayed; the message says why and what exists.

    ``summary`` is the :class:`ProcessSummary` of the work done before the error (the
    output bag, if one was started, is closed and readable), or None.
    """

    def __init__(self, message: str, summary: ProcessSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


# =========================================================================== shared content
def body_pose_content(result: BodyPoseResult) -> dict[str, Any]:
    """The values of every ``mocap_ros/msg/BodyPose`` field but ``header``, ROS-free.

    Vectors are tuples of Python floats (quaternions ``(x, y, z, w)``, points ``(x, y, z)``)
    for the ``geometry_msgs`` fields; the ``float32[]`` fields are float32 numpy arrays
    (rclpy wants ``.tolist()`` of them, rosbags the arrays). ``root_position`` and
    ``root_orientation`` fill ``root_pose``.
    """
    t = result.timings_ms

    def quats(a: np.ndarray) -> list[tuple[float, ...]]:
        return [tuple(float(v) for v in q) for q in a]

    return {
        "valid": bool(result.valid),
        "reason": str(result.reason),
        "confidence": float(result.confidence),
        "joint_names": list(result.joint_names),
        "local_rotations": quats(result.local_rotations),
        "global_rotations": quats(result.global_rotations),
        "root_position": tuple(float(v) for v in result.joints_cam[0]),
        "root_orientation": tuple(float(v) for v in result.global_rotations[0]),
        "joints": [tuple(float(v) for v in p) for p in result.joints_cam],
        "keypoints_2d": np.asarray(result.keypoints_2d, np.float32).reshape(-1),
        "betas": np.asarray(result.betas, np.float32).reshape(-1),
        "camera": np.asarray(result.camera, np.float32).reshape(3),
        "bbox": np.asarray(result.bbox, np.float32).reshape(4),
        "preprocess_ms": float(t.get("preprocess", 0.0)),
        "inference_ms": float(t.get("inference", 0.0)),
        "postprocess_ms": float(t.get("postprocess", 0.0)),
        "total_ms": float(t.get("total", 0.0)),
        "n_iter": int(result.n_iter),
        "precision": str(result.precision),
        "device": str(result.device),
        "backend": str(result.backend),
    }


def transform_content(result: BodyPoseResult, camera_frame: str,
                      prefix: str = "mocap_") -> list[dict[str, Any]]:
    """The TF tree of a pose: camera frame -> ``<prefix>pelvis`` -> every joint under its parent.

    One dict per joint (SMPL order): ``parent`` and ``child`` frame ids, ``translation``
    ``(x, y, z)`` metres and ``rotation`` ``(x, y, z, w)``. A child's translation is its offset
    from the parent in the parent's frame, ``R_parent^T (p_child - p_parent)`` (the bone
    vector); its rotation is the local (parent-relative) rotation. The pelvis is placed at
    its camera-frame position with its global rotation.
    """
    out = []
    glob = result.global_rotations
    for j, name in enumerate(JOINT_NAMES):
        p = PARENTS[j]
        if p < 0:
            parent = camera_frame
            offset, rot = result.joints_cam[0], glob[0]
        else:
            parent = prefix + JOINT_NAMES[p]
            offset = quat_to_matrix(glob[p]).T @ (result.joints_cam[j] - result.joints_cam[p])
            rot = result.local_rotations[j]
        out.append({
            "parent": parent,
            "child": prefix + name,
            "translation": tuple(float(v) for v in offset[:3]),
            "rotation": tuple(float(v) for v in rot[:4]),
        })
    return out


# =========================================================================== types
def body_pose_msg_path() -> Path:
    """``BodyPose.msg``: the checkout's ``msg/`` first, else an ament prefix's share folder."""
    candidates = [Path(__file__).resolve().parent.parent / "msg" / "BodyPose.msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "mocap_ros" / "msg" / "BodyPose.msg")
    for path in candidates:
        if path.is_file():
            return path
    raise BagError("cannot find BodyPose.msg (looked in: "
                   + ", ".join(str(c) for c in candidates) + ")")


_TYPESTORE_LOCK = threading.Lock()
_TYPESTORE: Any = None


def bag_typestore() -> Any:
    """A rosbags typestore: ROS 2 Jazzy's standard types plus ``mocap_ros/msg/BodyPose``."""
    global _TYPESTORE
    with _TYPESTORE_LOCK:
        if _TYPESTORE is None:
            from rosbags.typesys import Stores, get_types_from_msg, get_typestore

            store = get_typestore(Stores.ROS2_JAZZY)
            store.register(get_types_from_msg(body_pose_msg_path().read_text(), BODY_POSE_TYPE))
            _TYPESTORE = store
        return _TYPESTORE


def body_pose_msgdef() -> tuple[str, str]:
    """(full message definition, RIHS01 hash) of BodyPose as rosbag2 stores them.

    The definition is the ``.msg`` text (comments kept) followed by one
    ``====...\\nMSG: pkg/Name`` section per dependency (std_msgs/Header, geometry_msgs/...).
    """
    store = bag_typestore()
    generated, _ = store.generate_msgdef(BODY_POSE_TYPE, ros_version=2)
    deps = generated.split(_MSGDEF_SEP)[1:]
    text = body_pose_msg_path().read_text().rstrip("\n") + "\n"
    full = text + "".join(_MSGDEF_SEP + d for d in deps)
    return full, store.hash_rihs01(BODY_POSE_TYPE)


class _BagMessages:
    """rosbags message objects for BodyPose and TFMessage, filled from the shared content."""

    def __init__(self, store: Any) -> None:
        t = store.types
        self.store = store
        self.Header, self.Time = t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"]
        self.Quaternion = t["geometry_msgs/msg/Quaternion"]
        self.Point = t["geometry_msgs/msg/Point"]
        self.Pose, self.Vector3 = t["geometry_msgs/msg/Pose"], t["geometry_msgs/msg/Vector3"]
        self.Transform = t["geometry_msgs/msg/Transform"]
        self.TransformStamped = t["geometry_msgs/msg/TransformStamped"]
        self.TFMessage, self.BodyPose = t[TF_TYPE], t[BODY_POSE_TYPE]

    def header(self, sec: int, nanosec: int, frame_id: str) -> Any:
        return self.Header(stamp=self.Time(sec=int(sec), nanosec=int(nanosec)),
                           frame_id=str(frame_id))

    def body_pose(self, result: BodyPoseResult, header: Any) -> bytes:
        c = body_pose_content(result)
        q, pt = self.Quaternion, self.Point
        msg = self.BodyPose(
            header=header, valid=c["valid"], reason=c["reason"], confidence=c["confidence"],
            joint_names=c["joint_names"],
            local_rotations=[q(x=x, y=y, z=z, w=w) for x, y, z, w in c["local_rotations"]],
            global_rotations=[q(x=x, y=y, z=z, w=w) for x, y, z, w in c["global_rotations"]],
            root_pose=self.Pose(position=pt(*c["root_position"]),
                                orientation=q(*c["root_orientation"])),
            joints=[pt(x=x, y=y, z=z) for x, y, z in c["joints"]],
            keypoints_2d=c["keypoints_2d"], betas=c["betas"], camera=c["camera"],
            bbox=c["bbox"], preprocess_ms=c["preprocess_ms"], inference_ms=c["inference_ms"],
            postprocess_ms=c["postprocess_ms"], total_ms=c["total_ms"], n_iter=c["n_iter"],
            precision=c["precision"], device=c["device"], backend=c["backend"],
        )
        return bytes(self.store.serialize_cdr(msg, BODY_POSE_TYPE))

    def tf(self, result: BodyPoseResult, header: Any, prefix: str) -> bytes:
        transforms = [
            self.TransformStamped(
                header=self.Header(stamp=header.stamp, frame_id=t["parent"]),
                child_frame_id=t["child"],
                transform=self.Transform(translation=self.Vector3(*t["translation"]),
                                         rotation=self.Quaternion(*t["rotation"])),
            )
            for t in transform_content(result, header.frame_id, prefix)
        ]
        return bytes(self.store.serialize_cdr(self.TFMessage(transforms=transforms), TF_TYPE))


# =========================================================================== reading
class _Bag:
    """A rosbag2 bag opened for reading: rosbags' Reader, or a recovered truncated MCAP file.

    ``truncated`` is None for an intact bag, else why reading stops early (the messages up to
    the last complete record are still readable).
    """

    def __init__(self, path: Path, storage: Any, truncated: str | None = None) -> None:
        self.path, self._storage, self.truncated = path, storage, truncated

    @property
    def connections(self) -> list[Any]:
        return list(self._storage.connections)

    @property
    def start_time(self) -> int:
        return int(self._storage.metadata.start_time if self.truncated
                   else self._storage.start_time)

    @property
    def end_time(self) -> int:
        return int(self._storage.metadata.end_time if self.truncated else self._storage.end_time)

    def messages(self, connections: Sequence[Any] = ()) -> Iterable[tuple[Any, int, bytes]]:
        if self.truncated:
            return self._storage.messages(connections or self.connections)
        return self._storage.messages(connections=connections)

    def close(self) -> None:
        self._storage.close()


def _mcap_file_of(path: Path) -> Path | None:
    if path.is_file():
        return path if path.suffix == ".mcap" else None
    files = sorted(path.glob("*.mcap"))
    return files[0] if len(files) == 1 else None


def _recover_truncated_mcap(file: Path) -> tuple[Any, str] | None:
    """Open an MCAP file whose end is missing (a recorder that died): every complete record
    up to the cut is read. None when this is not such a file (or rosbags changed inside)."""
    try:
        from rosbags.rosbag2 import storage_mcap as sm
    except ImportError:  # pragma: no cover
        return None
    if not (hasattr(sm, "McapReader") and hasattr(sm.McapReader, "meta_scan")):
        return None  # pragma: no cover - a rosbags without the scanning reader

    class RecoveringMcapReader(sm.McapReader):  # type: ignore[misc, name-defined]
        cut = 0
        size = 0

        def _open(self) -> None:
            bio = self.bio
            if bio.read(8) != b"\x89MCAP0\r\n" or bio.read(1) != b"\x01":
                raise BagError(f"{file} is not an MCAP file")
            profile = sm.read_string(io.BytesIO(sm.read_sized(bio)))
            if profile != "ros2":
                raise BagError(f"{file}: MCAP profile {profile!r} is not ros2")
            self.data_start = pos = bio.tell()
            self.size = size = file.stat().st_size
            while pos + 9 <= size:
                _ = bio.seek(pos)
                head = bio.read(9)
                op_, length = head[0], int.from_bytes(head[1:9], "little")
                if op_ in (0x02, 0x0F) or pos + 9 + length > size:  # footer / data end / cut
                    break
                pos += 9 + length
            self.data_end = self.cut = pos
            self.meta_scan()
            stats = self.statistics
            counts = stats.channel_message_counts
            self.connections = [c._replace(msgcount=counts.get(c.id, 0))
                                for c in self.connections]
            n = stats.message_count
            self.metadata = self.metadata._replace(
                duration=stats.end_time - stats.start_time + 1 if n else 0,
                start_time=stats.start_time if n else 2**63 - 1,
                end_time=stats.end_time + 1 if n else 0, message_count=n)

    reader = RecoveringMcapReader(file)
    try:
        reader.open()
    except Exception as exc:
        log.debug("MCAP recovery of %s failed: %s", file, exc)
        return None
    why = (f"{file} is truncated: it ends at byte {reader.size} inside a record, without the "
           f"MCAP summary and footer (a recording that was cut off); the "
           f"{reader.metadata.message_count} messages before byte {reader.cut} are readable")
    return reader, why


def _open_reader(path: str | os.PathLike[str]) -> _Bag:
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if not p.exists():
        raise BagError(f"bag {p} does not exist")
    target = p
    if p.is_dir() and not (p / "metadata.yaml").exists():
        # a recorder that died writes no metadata.yaml: read its single storage file
        files = sorted(p.glob("*.mcap")) + sorted(p.glob("*.db3"))
        if len(files) == 1:
            target = files[0]
            log.info("%s has no metadata.yaml; reading %s directly", p, target.name)
    try:
        reader = Reader(target)
        reader.open()
    except Exception as exc:  # rosbags raises many kinds on broken files
        mcap = _mcap_file_of(target) if target.is_file() or \
            (target / "metadata.yaml").exists() else None
        recovered = _recover_truncated_mcap(mcap) if mcap is not None and \
            "end magic" in str(exc).lower() else None
        if recovered is not None:
            log.info("%s", recovered[1])
            return _Bag(p, recovered[0], recovered[1])
        raise BagError(f"cannot read bag {p}: it is corrupt, truncated or not a rosbag2 bag "
                       f"({type(exc).__name__}: {exc})") from exc
    return _Bag(p, reader)


def _topic_list(connections: Iterable[Any], types: Sequence[str] | None = None) -> str:
    seen = sorted({(c.topic, c.msgtype) for c in connections
                   if types is None or c.msgtype in types})
    return ", ".join(f"{t} ({m})" for t, m in seen) or "none"


def _select_image_connections(reader: Any, image_topic: str | Sequence[str] | None) -> list[Any]:
    conns = list(reader.connections)
    images = [c for c in conns if c.msgtype in IMAGE_TYPES]
    if image_topic is None:
        if not images:
            why = f"{reader.truncated}; " if reader.truncated else ""
            raise BagError(f"{why}no sensor_msgs/Image or CompressedImage topic in "
                           f"{reader.path}; its topics: {_topic_list(conns)}")
        return images
    wanted = [image_topic] if isinstance(image_topic, str) else list(image_topic)
    selected = []
    for topic in wanted:
        on_topic = [c for c in conns if c.topic == topic]
        if not on_topic:
            raise BagError(f"topic {topic!r} is not in {reader.path}; its image topics: "
                           f"{_topic_list(conns, IMAGE_TYPES)}")
        bad = sorted({c.msgtype for c in on_topic if c.msgtype not in IMAGE_TYPES})
        if bad:
            raise BagError(f"topic {topic!r} has message type {', '.join(bad)}, not "
                           f"sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage; the "
                           f"image topics of {reader.path}: {_topic_list(conns, IMAGE_TYPES)}")
        selected += on_topic
    return selected


def camera_info_topic_for(image_topic: str, info_topics: Iterable[str]) -> str | None:
    """The CameraInfo topic of an image topic: same namespace (transport suffix ignored)."""
    info_topics = sorted(set(info_topics))
    base = image_topic[: -len("/compressed")] if image_topic.endswith("/compressed") \
        else image_topic
    candidate = base.rsplit("/", 1)[0] + "/camera_info"
    if candidate in info_topics:
        return candidate
    return info_topics[0] if len(info_topics) == 1 else None


class _CameraInfoState:
    """Newest valid intrinsics per CameraInfo topic, with mocap_node's size check."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[Any, tuple[int, int]]] = {}

    def update(self, topic: str, msg: Any, stats: Counter[str]) -> None:
        from mocap_ros.camera import Intrinsics

        try:
            K = Intrinsics.from_k(list(np.asarray(msg.k, np.float64)))
        except ValueError:
            stats["camera_info_invalid"] += 1  # uncalibrated cameras publish zeros
            return
        self.latest[topic] = (K, (int(msg.width), int(msg.height)))

    def intrinsics(self, topic: str | None, width: int, height: int,
                   stats: Counter[str]) -> Any:
        if topic is None or topic not in self.latest:
            return None
        K, size = self.latest[topic]
        if size not in ((0, 0), (width, height)):
            stats["camera_info_size_mismatch"] += 1
            return None
        return K


def _messages(reader: Any, connections: Sequence[Any] = (),
              note: str = "") -> Iterable[tuple[Any, int, bytes]]:
    """``reader.messages()``, with any failure of the storage turned into a BagError."""
    it = iter(reader.messages(connections=connections))
    n = 0
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except Exception as exc:
            raise BagError(f"bag {reader.path} is corrupt or truncated: reading failed after "
                           f"{n} messages with {type(exc).__name__}: {exc}{note}") from exc
        n += 1
        yield item


# =========================================================================== progress
class Progress:
    """A one-line progress bar on a stream (stderr): count, bar, frames/s, ETA.

    On a terminal it redraws in place (at most 10 times a second); otherwise it prints a line
    every 10 % so logs stay short.
    """

    def __init__(self, total: int, label: str = "process", stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30) -> None:
        self.total, self.label, self.width = max(int(total), 0), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0
        self._last_draw = 0.0
        self._next_pct = 10

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        fps = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = round(frac * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            eta = (self.total - self.done) / fps if fps > 0 else float("nan")
            eta_s = f"ETA {eta:4.0f}s" if math.isfinite(eta) else "ETA    ?"
            return (f"{self.label}: {self.done}/{self.total} [{bar}] {frac * 100:3.0f}% "
                    f"{fps:5.1f} frames/s {eta_s}")
        return f"{self.label}: {self.done} {fps:5.1f} frames/s"

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self._last_draw = now
        elif self.total and self.done * 100 >= self._next_pct * self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            while self._next_pct * self.total <= self.done * 100:
                self._next_pct += 10

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()


# =========================================================================== processing
@dataclass
class ProcessSummary:
    """What :func:`process_bag` did."""

    in_path: str
    out_path: str
    storage: str
    image_topics: list[str]
    images: int = 0  # images seen (= poses written)
    valid: int = 0
    invalid: int = 0  # processed, but the pose says valid=false (reason in the message)
    bad_images: int = 0  # undecodable images (a valid=false pose each)
    tf_messages: int = 0
    messages_copied: int = 0
    wall_s: float = 0.0
    processing_s: float = 0.0  # time spent in decode + pipeline
    csv_path: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    skipped_topics: list[str] = field(default_factory=list)
    complete: bool = False  # False when the input ended in an error

    @property
    def fps(self) -> float:
        """Images per second of wall time (model loading and bag I/O included)."""
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def processing_fps(self) -> float:
        """Images per second of decoding + pipeline alone."""
        return self.images / self.processing_s if self.processing_s > 0 else 0.0

    def text(self) -> str:
        lines = [
            f"{'processed' if self.complete else 'PARTIALLY processed'} {self.in_path} -> "
            f"{self.out_path} ({self.storage})",
            f"  image topics: {', '.join(self.image_topics)}",
            f"  images: {self.images} (valid poses {self.valid}, invalid {self.invalid}, "
            f"undecodable {self.bad_images}); /tf messages: {self.tf_messages}; "
            f"messages copied: {self.messages_copied}",
            f"  {self.wall_s:.2f} s wall ({self.fps:.2f} frames/s); decode + pipeline "
            f"{self.processing_s:.2f} s ({self.processing_fps:.2f} frames/s)",
        ]
        if self.csv_path:
            lines.append(f"  CSV: {self.csv_path}")
        if self.stats:
            lines.append("  counters: " + ", ".join(f"{k}={v}" for k, v in
                                                    sorted(self.stats.items())))
        if self.skipped_topics:
            lines.append("  NOT copied (no message definition): "
                         + ", ".join(self.skipped_topics))
        return "\n".join(lines)


def csv_header() -> list[str]:
    cols = ["index", "topic", "bag_time_ns", "stamp_sec", "stamp_nanosec", "stamp", "frame_id",
            "valid", "reason", "confidence", "preprocess_ms", "inference_ms", "postprocess_ms",
            "total_ms", "root_x", "root_y", "root_z"]
    for name in JOINT_NAMES:
        cols += [f"{name}_q{a}" for a in "xyzw"]
    for name in JOINT_NAMES:
        cols += [f"{name}_r{a}" for a in "xyz"]
    return cols


def _csv_row(index: int, topic: str, bag_time: int, header: Any,
             result: BodyPoseResult) -> list[Any]:
    def g(v: float) -> str:
        return f"{float(v):.9g}"

    t = result.timings_ms
    sec, nsec = int(header.stamp.sec), int(header.stamp.nanosec)
    row: list[Any] = [index, topic, bag_time, sec, nsec, f"{sec}.{nsec:09d}",
                      header.frame_id, int(bool(result.valid)), result.reason,
                      g(result.confidence)]
    row += [g(t.get(k, 0.0)) for k in ("preprocess", "inference", "postprocess", "total")]
    row += [g(v) for v in result.joints_cam[0]]
    row += [g(v) for v in np.asarray(result.local_rotations).reshape(-1)]
    row += [g(v) for v in quat_to_rotvec(result.local_rotations).reshape(-1)]
    return row


def _qos_of(conn: Any) -> list[Any]:
    ext = getattr(conn, "ext", None)
    return list(getattr(ext, "offered_qos_profiles", None) or [])


def _definition_store(connections: Sequence[Any]) -> Any:
    """A typestore with Jazzy's types plus every definition stored in the input bag."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    typs: dict[str, Any] = {}
    for c in connections:
        if c.msgtype in store.types:
            continue
        try:
            if c.msgdef.format == MessageDefinitionFormat.MSG and c.msgdef.data:
                typs.update(get_types_from_msg(c.msgdef.data, c.msgtype))
            elif c.msgdef.format == MessageDefinitionFormat.IDL and c.msgdef.data:
                for part in c.msgdef.data.split(_MSGDEF_SEP):
                    if part.startswith("IDL: "):
                        part = part.split("\n", 1)[1]
                    if part.strip():
                        typs.update(get_types_from_idl(part))
        except Exception as exc:  # a broken stored definition: the type just stays unknown
            log.debug("cannot parse the definition of %s: %s", c.msgtype, exc)
    if typs:
        try:
            store.register(typs)
        except Exception as exc:
            log.debug("cannot register the bag's own types: %s", exc)
    return store


def _copy_definition(conn: Any, store: Any) -> tuple[str, str] | None:
    """(msgdef, rihs01) to write for an input connection; None when none can be had."""
    from rosbags.interfaces import MessageDefinitionFormat

    data = conn.msgdef.data if conn.msgdef.format != MessageDefinitionFormat.NONE else ""
    digest = conn.digest or ""
    if data and digest:
        return data, digest
    if conn.msgtype in store.types:
        try:
            gen, _ = store.generate_msgdef(conn.msgtype, ros_version=2)
            return data or gen, digest or store.hash_rihs01(conn.msgtype)
        except Exception as exc:
            log.debug("cannot generate the definition of %s: %s", conn.msgtype, exc)
    return None


def process_bag(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: MocapConfig | None = None,
    storage: str = "mcap",
    csv_path: str | os.PathLike[str] | None = None,
    image_topic: str | Sequence[str] | None = None,
    progress: bool = True,
    *,
    pipeline: MocapPipeline | None = None,
    frame_prefix: str = "mocap_",
    pose_topic: str = POSE_TOPIC,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    progress_stream: TextIO | None = None,
    batch_size: int | None = None,
) -> ProcessSummary:
    """Run the pipeline on every image of the bag ``in_path`` and write ``out_path``.

    ``image_topic``: one topic or a list (default: every Image/CompressedImage topic).
    ``pipeline``: an already built :class:`~mocap_ros.pipeline.MocapPipeline` to use instead
    of building one from ``config``. ``batch_size``: images per HMR forward
    (``MocapPipeline.process_batch``); None = :func:`default_batch_size` (8 on CUDA, 1 on the
    CPU). Batching changes no output but the timings (each pose gets its share of its
    batch's) and the last digits of the floats (batched kernels round differently).
    Raises :class:`BagError` (with ``.summary``) for an unreadable, corrupt or truncated bag,
    a missing topic or a topic of another type; an output bag that was started is closed
    first, so it holds everything read until then.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise BagError(f"storage={storage!r} is not one of {list(STORAGES)}")
    out = Path(out_path)
    if out.exists():
        raise BagError(f"output {out} exists already; choose a new path (bags are never "
                       "overwritten)")
    t_start = time.monotonic()
    reader = _open_reader(in_path)
    writer = None
    csv_file = None
    bar: Progress | None = None
    summary: ProcessSummary | None = None
    stats: Counter[str] = Counter()
    try:
        image_conns = _select_image_connections(reader, image_topic)
        image_ids = {c.id for c in image_conns}
        info_conns = [c for c in reader.connections if c.msgtype == CAMERA_INFO_TYPE]
        info_ids = {c.id for c in info_conns}
        info_topics = {c.topic for c in info_conns}
        info_for = {c.topic: camera_info_topic_for(c.topic, info_topics) for c in image_conns}
        summary = ProcessSummary(str(in_path), str(out), storage,
                                 sorted({c.topic for c in image_conns}),
                                 csv_path=str(csv_path) if csv_path else None)
        store = bag_typestore()
        defs = _definition_store(reader.connections)

        if pipeline is None:
            from mocap_ros.config import MocapConfig
            from mocap_ros.estimator import make_estimator

            pipeline = make_estimator(config or MocapConfig())
        cfg = pipeline.config
        meta = {"precision": pipeline.precision, "n_iter": cfg.n_iter,
                "device": str(pipeline.device)}
        batch = default_batch_size(pipeline) if batch_size is None else int(batch_size)
        if batch < 1:
            raise BagError(f"batch_size must be >= 1, got {batch_size!r}")

        writer = Writer(out, version=BAG_VERSION, storage_plugin=StoragePlugin[storage.upper()])
        writer.open()
        out_conn: dict[int, Any] = {}
        made: dict[tuple[str, str], Any] = {}
        for c in reader.connections:
            if c.topic == pose_topic and c.msgtype == BODY_POSE_TYPE:
                continue  # poses of an earlier run are replaced by this run's
            key = (c.topic, c.msgtype)
            if key in made:
                out_conn[c.id] = made[key]
                continue
            definition = _copy_definition(c, defs)
            if definition is None:
                summary.skipped_topics.append(f"{c.topic} ({c.msgtype})")
                continue
            made[key] = out_conn[c.id] = writer.add_connection(
                c.topic, c.msgtype, msgdef=definition[0], rihs01=definition[1],
                serialization_format=getattr(c.ext, "serialization_format", "cdr"),
                offered_qos_profiles=_qos_of(c))
        msgdef, rihs = body_pose_msgdef()
        pose_conn = writer.add_connection(pose_topic, BODY_POSE_TYPE, msgdef=msgdef, rihs01=rihs)
        tf_conn = made.get((TF_TOPIC, TF_TYPE)) or writer.add_connection(
            TF_TOPIC, TF_TYPE, typestore=store)
        writer.set_custom_data("mocap_ros.config", json.dumps(asdict(cfg), sort_keys=True))
        writer.set_custom_data("mocap_ros.source", str(in_path))

        if csv_path:
            csv_file = open(csv_path, "w", newline="")  # noqa: SIM115 - closed in finally
            csv_out = csv.writer(csv_file)
            csv_out.writerow(csv_header())
        total = sum(c.msgcount for c in image_conns)
        bar = Progress(total, "process", progress_stream, enabled=progress)
        msgs = _BagMessages(store)
        cams = _CameraInfoState()
        index = 0
        # Messages read since the oldest image still waiting for its batch, in bag order:
        # ("copy", connection, bag_time, data) or ("image", connection, bag_time, data,
        # decoded). They are written when the batch is processed, so the output keeps the
        # input's order and an image never goes out without its pose.
        pending: list[tuple[Any, ...]] = []
        waiting: list[_Decoded] = []

        def flush() -> None:
            nonlocal index
            if not pending:
                return
            t0 = time.monotonic()
            _run_images(pipeline, waiting, stats, meta)
            summary.processing_s += time.monotonic() - t0
            for kind, conn, bag_time, data, *rest in pending:
                target = out_conn.get(conn.id)
                if kind == "copy":
                    writer.write(target, bag_time, data)
                    summary.messages_copied += 1
                    continue
                result, header = rest[0].result, rest[0].header
                pose = msgs.body_pose(result, header)
                tf = msgs.tf(result, header, frame_prefix) if result.valid else None
                if target is not None:
                    writer.write(target, bag_time, data)
                    summary.messages_copied += 1
                writer.write(pose_conn, bag_time, pose)
                summary.images += 1
                if tf is not None:
                    writer.write(tf_conn, bag_time, tf)
                    summary.tf_messages += 1
                    summary.valid += 1
                elif result.reason.startswith("bad_image:"):
                    summary.bad_images += 1
                else:
                    summary.invalid += 1
                if csv_file is not None:
                    csv_out.writerow(_csv_row(index, conn.topic, bag_time, header, result))
                index += 1
                bar.update()
            pending.clear()
            waiting.clear()

        try:
            for conn, bag_time, data in _messages(reader, (), f"; the output {out} holds "
                                                  "what was read until then"):
                target = out_conn.get(conn.id)
                if conn.id not in image_ids:
                    if target is not None:
                        if pending:
                            pending.append(("copy", conn, bag_time, data))
                        else:
                            writer.write(target, bag_time, data)
                            summary.messages_copied += 1
                    if conn.id in info_ids:
                        try:
                            msg = store.deserialize_cdr(data, CAMERA_INFO_TYPE)
                            cams.update(conn.topic, msg, stats)
                        except Exception:
                            stats["camera_info_undecodable"] += 1
                    continue
                t0 = time.monotonic()
                # Decoded now: its intrinsics are the newest CameraInfo before it.
                decoded = _decode_image(store, msgs, conn, bag_time, data, cams,
                                        info_for.get(conn.topic), stats, meta,
                                        max_image_pixels)
                summary.processing_s += time.monotonic() - t0
                pending.append(("image", conn, bag_time, data, decoded))
                if decoded.result is None:
                    waiting.append(decoded)
                if len(waiting) >= batch or (decoded.result is not None and len(pending) == 1):
                    flush()
        except BagError:
            flush()  # what was read before the error is processed and written
            raise
        flush()
        if reader.truncated:
            raise BagError(f"{reader.truncated}; processed the {summary.images} images in it; "
                           f"the output {out} is closed and readable")
        summary.complete = True
    except BagError as exc:
        exc.summary = summary
        raise
    finally:
        if summary is not None:
            summary.stats = dict(stats)
        if bar is not None:
            bar.close()
        if csv_file is not None:
            csv_file.close()
        if writer is not None:
            writer.close()  # writes the index and metadata.yaml: a partial bag stays readable
        reader.close()
        if summary is not None:
            summary.wall_s = time.monotonic() - t_start
    return summary


def default_batch_size(pipeline: Any) -> int:
    """Images per HMR forward when process_bag is not told: 8 on CUDA; 1 on the CPU and for
    a pipeline-like object without ``process_batch``.

    Measured on a 2-core x86 CPU (fp32, n_iter=1, 640x480): torch 21 frames/s at batch 1,
    27.5 at 4, 18-25 at 8; ONNX Runtime 34.5, 42.5 and 44. The CPU default stays 1 all the
    same: batched kernels round differently (keypoints by ~4e-5 px), and frame by frame the
    offline poses equal the live node's (which processes one frame at a time) to the bit.
    Pass ``batch_size=4`` for the ~30 % more throughput.
    """
    if not callable(getattr(pipeline, "process_batch", None)):
        return 1
    device = getattr(pipeline, "device", None)
    return 8 if getattr(device, "type", "cpu") == "cuda" else 1


@dataclass
class _Decoded:
    """One image message, decoded: the frame and intrinsics, or already its (invalid) pose."""

    header: Any
    rgb: np.ndarray | None = None
    K: Any = None
    result: BodyPoseResult | None = None
    bag_time: int = 0


def _decode_image(store: Any, msgs: _BagMessages, conn: Any, bag_time: int, data: bytes,
                  cams: _CameraInfoState, info_topic: str | None, stats: Counter[str],
                  meta: dict[str, Any], max_pixels: int) -> _Decoded:
    """Decode one image message; an undecodable one gets its invalid pose here."""
    try:
        msg = store.deserialize_cdr(data, conn.msgtype)
    except Exception:
        stats["bad_images_cdr"] += 1
        header = msgs.header(bag_time // 10**9, bag_time % 10**9, "")
        return _Decoded(header, result=BodyPoseResult.invalid("bad_image:cdr", **meta))
    header = msgs.header(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id)
    try:
        if conn.msgtype == COMPRESSED_TYPE:
            rgb = compressed_to_rgb(msg.data, msg.format, max_pixels=max_pixels)
        else:
            rgb = raw_to_rgb(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                             msg.is_bigendian, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        stats[f"bad_images_{exc.kind}"] += 1
        return _Decoded(header, result=BodyPoseResult.invalid(f"bad_image:{exc.kind}", **meta))
    if not rgb.flags.writeable:  # a zero-copy view of rosbags' read-only buffer (rgb8)
        rgb = rgb.copy()
    h, w = rgb.shape[:2]
    return _Decoded(header, rgb, cams.intrinsics(info_topic, w, h, stats), bag_time=bag_time)


def _run_images(pipeline: MocapPipeline, images: list[_Decoded], stats: Counter[str],
                meta: dict[str, Any]) -> None:
    """Fill ``result`` of decoded images: one ``process_batch`` call for several, else
    ``process``; a frame the pipeline refuses gets an invalid pose (its batch is redone
    frame by frame so that only that frame does)."""
    if len(images) > 1:
        try:
            results = pipeline.process_batch([d.rgb for d in images], None,
                                             [d.K for d in images])
        except ValueError:
            pass  # one frame is refused: the loop below finds which
        else:
            for d, r in zip(images, results, strict=True):
                d.result = r
            return
    for d in images:
        try:
            d.result = pipeline.process(d.rgb, None, d.K)
        except ValueError as exc:
            stats["process_errors"] += 1
            log.warning("image at bag time %d: %s", d.bag_time, exc)
            d.result = BodyPoseResult.invalid("process_failed", **meta)


# =========================================================================== replay
@dataclass
class ReplaySummary:
    """What :func:`replay_bag` published."""

    published: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    loops: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0  # bag time covered by one pass
    skipped_topics: list[str] = field(default_factory=list)
    interrupted: bool = False
    truncated: str | None = None  # why only part of the bag could be read

    def text(self) -> str:
        total = sum(self.published.values())
        lines = [f"replayed {total} messages on {len(self.published)} topics in "
                 f"{self.wall_s:.2f} s ({self.loops} pass(es) of {self.bag_s:.2f} s of bag time)"
                 + (f", /clock x{self.clock_messages}" if self.clock_messages else "")
                 + (" [interrupted]" if self.interrupted else "")]
        lines += [f"  {t}: {n}" for t, n in sorted(self.published.items())]
        if self.skipped_topics:
            lines.append("  skipped (type not importable here): "
                         + ", ".join(self.skipped_topics))
        if self.truncated:
            lines.append(f"  WARNING: {self.truncated}")
        return "\n".join(lines)


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (or ``pkg/Name``), imported by name."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ImportError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    return getattr(module, parts[2])


def _replay_qos(conn: Any) -> Any:
    """Reliable/volatile keep-last 10 (matches reliable and best-effort subscribers), /tf 100,
    /tf_static transient-local; a reliability/durability recorded in the bag wins."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    depth = 100 if conn.topic == TF_TOPIC else 10
    qos = QoSProfile(depth=depth)
    if conn.topic == "/tf_static":
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    for recorded in _qos_of(conn)[:1]:
        rel = getattr(getattr(recorded, "reliability", None), "name", "")
        dur = getattr(getattr(recorded, "durability", None), "name", "")
        if rel == "BEST_EFFORT":
            qos.reliability = ReliabilityPolicy.BEST_EFFORT
        if dur == "TRANSIENT_LOCAL":
            qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return qos


def replay_bag(
    path: str | os.PathLike[str],
    rate: float = 1.0,
    loop: bool = False,
    clock: bool = True,
    topics: Sequence[str] | None = None,
    context: Any = None,
    on_published: Callable[[str, int, float], None] | None = None,
    stop_event: threading.Event | None = None,
    *,
    clock_hz: float = 40.0,
    wait_for_subscribers: float = 0.0,
    wait_topics: Sequence[str] | None = None,
    node_name: str = "mocap_bag_replay",
) -> ReplaySummary:
    """Publish the bag's messages over DDS at their bag times scaled by ``1 / rate``.

    The serialized CDR bytes are published as they are (nothing is deserialized); each
    topic's rclpy message class is imported by its type name, and topics whose type is not
    importable are skipped (listed in the summary). With ``clock`` ``/clock``
    (rosgraph_msgs/Clock) carries the bag time: before every message and ``clock_hz`` times
    a (wall) second in between, so nodes with ``use_sim_time`` follow the bag; a ``/clock``
    recorded in the bag is then not replayed. ``loop`` starts over at the end (bag time and
    /clock jump back, as with ``ros2 bag play --loop``) until ``stop_event`` is set.
    ``on_published(topic, bag_time_ns, time.monotonic())`` is called after each publish.
    ``wait_for_subscribers``: wait up to that many seconds before starting until every topic
    in ``wait_topics`` (default: any replayed topic) has a subscriber. ``context``: an
    initialised rclpy Context (else one is made and shut down here).
    """
    import rclpy
    from rclpy.context import Context

    if not (rate > 0 and math.isfinite(rate)):
        raise BagError(f"rate must be a positive number, got {rate!r}")
    reader = _open_reader(path)
    own_context = context is None
    node = None
    summary = ReplaySummary()
    t_start = time.monotonic()
    stop_event = stop_event or threading.Event()
    try:
        conns = list(reader.connections)
        if topics:
            missing = [t for t in topics if t not in {c.topic for c in conns}]
            if missing:
                raise BagError(f"topics {missing} are not in {path}; its topics: "
                               f"{_topic_list(conns)}")
            conns = [c for c in conns if c.topic in set(topics)]
        if clock:
            conns = [c for c in conns if c.topic != "/clock"]
        if own_context:
            context = Context()
            rclpy.init(context=context)
        node = rclpy.create_node(node_name, context=context,
                                 start_parameter_services=False)
        pubs: dict[int, Any] = {}
        by_topic: dict[str, Any] = {}
        for c in conns:
            if c.topic in by_topic:
                if by_topic[c.topic][0] == c.msgtype:
                    pubs[c.id] = by_topic[c.topic][1]
                continue
            try:
                cls = message_class(c.msgtype)
            except (ImportError, AttributeError):
                summary.skipped_topics.append(f"{c.topic} ({c.msgtype})")
                continue
            pub = node.create_publisher(cls, c.topic, _replay_qos(c))
            by_topic[c.topic] = (c.msgtype, pub)
            pubs[c.id] = pub
        if not pubs:
            raise BagError(f"nothing to replay from {path}: no topic with an importable type "
                           f"(skipped: {', '.join(summary.skipped_topics) or 'none'})")
        clock_pub = None
        Clock = None
        if clock:
            from rclpy.qos import QoSProfile
            from rosgraph_msgs.msg import Clock

            clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))

        def alive() -> bool:
            return not stop_event.is_set() and context.ok()

        if wait_for_subscribers > 0:
            deadline = time.monotonic() + wait_for_subscribers
            want = [p for _, p in by_topic.values()
                    if wait_topics is None or p.topic_name in set(wait_topics)]

            def ready() -> bool:
                counts = [p.get_subscription_count() for p in want]
                if wait_topics is None:
                    return any(counts)
                return bool(counts) and all(counts)

            while alive() and not ready() and time.monotonic() < deadline:
                stop_event.wait(0.02)
            if ready():
                stop_event.wait(0.3)  # let the subscribers' side of discovery settle too

        def publish_clock(ns: int) -> None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(ns // 10**9), int(ns % 10**9)
            clock_pub.publish(msg)
            summary.clock_messages += 1

        first_ns, last_ns = reader.start_time, reader.end_time
        summary.bag_s = max(0, last_ns - first_ns) / 1e9
        clock_period = 1.0 / clock_hz if clock_hz > 0 else float("inf")
        t_start = time.monotonic()  # playing starts (after the wait for subscribers)
        wanted = [c for c in conns if c.id in pubs]
        while alive():
            wall0 = time.monotonic()
            bag0 = None
            last_clock_ns = None
            for conn, bag_time, data in _messages(reader, wanted):
                if bag0 is None:
                    bag0 = bag_time
                target = wall0 + (bag_time - bag0) / 1e9 / rate
                while alive():
                    now = time.monotonic()
                    remaining = target - now
                    if remaining <= 0:
                        break
                    if clock_pub is not None and clock_period < float("inf"):
                        publish_clock(bag0 + int((now - wall0) * rate * 1e9))
                        stop_event.wait(min(remaining, clock_period))
                    else:
                        stop_event.wait(remaining)
                if not alive():
                    break
                if clock_pub is not None and bag_time != last_clock_ns:
                    publish_clock(bag_time)
                    last_clock_ns = bag_time
                pubs[conn.id].publish(data if isinstance(data, bytes) else bytes(data))
                summary.published[conn.topic] = summary.published.get(conn.topic, 0) + 1
                if on_published is not None:
                    on_published(conn.topic, bag_time, time.monotonic())
            else:
                summary.loops += 1
                if loop:
                    continue
                break
            break
        summary.interrupted = stop_event.is_set() or not context.ok()
        summary.truncated = reader.truncated
        return summary
    except KeyboardInterrupt:
        summary.interrupted = True
        return summary
    finally:
        summary.wall_s = time.monotonic() - t_start
        if node is not None:
            with contextlib.suppress(Exception):  # the context may be shut down (Ctrl-C)
                node.destroy_node()
        if own_context and context is not None and context.ok():
            rclpy.shutdown(context=context)
        reader.close()
