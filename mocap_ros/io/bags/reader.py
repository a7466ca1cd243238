"""Reading rosbag2 bags (sqlite3 or mcap; a bag directory or a single .mcap/.db3 file) with
the pure-Python ``rosbags`` library, recovering what a truncated MCAP file still holds.

Camera intrinsics follow mocap_node: the newest valid ``CameraInfo`` before each image
(bag order) on ``<namespace>/camera_info`` of the image topic (``/cam/image_raw`` and
``/cam/image_raw/compressed`` -> ``/cam/camera_info``; the only CameraInfo topic of the bag
when that does not exist); a CameraInfo for another image size, or none, means the
focal-length fallback of the configuration (:class:`CameraInfoState`).
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mocap_ros.io.bags.types import IMAGE_TYPES, BagError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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


def open_reader(path: str | os.PathLike[str]) -> _Bag:
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


def topic_list(connections: Iterable[Any], types: Sequence[str] | None = None) -> str:
    seen = sorted({(c.topic, c.msgtype) for c in connections
                   if types is None or c.msgtype in types})
    return ", ".join(f"{t} ({m})" for t, m in seen) or "none"


def select_image_connections(reader: Any, image_topic: str | Sequence[str] | None) -> list[Any]:
    conns = list(reader.connections)
    images = [c for c in conns if c.msgtype in IMAGE_TYPES]
    if image_topic is None:
        if not images:
            why = f"{reader.truncated}; " if reader.truncated else ""
            raise BagError(f"{why}no sensor_msgs/Image or CompressedImage topic in "
                           f"{reader.path}; its topics: {topic_list(conns)}")
        return images
    wanted = [image_topic] if isinstance(image_topic, str) else list(image_topic)
    selected = []
    for topic in wanted:
        on_topic = [c for c in conns if c.topic == topic]
        if not on_topic:
            raise BagError(f"topic {topic!r} is not in {reader.path}; its image topics: "
                           f"{topic_list(conns, IMAGE_TYPES)}")
        bad = sorted({c.msgtype for c in on_topic if c.msgtype not in IMAGE_TYPES})
        if bad:
            raise BagError(f"topic {topic!r} has message type {', '.join(bad)}, not "
                           f"sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage; the "
                           f"image topics of {reader.path}: {topic_list(conns, IMAGE_TYPES)}")
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


class CameraInfoState:
    """Newest valid intrinsics per CameraInfo topic, with mocap_node's size check."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[Any, tuple[int, int]]] = {}

    def update(self, topic: str, msg: Any, stats: Counter[str]) -> None:
        from mocap_ros.geometry.camera import Intrinsics

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


def iter_messages(reader: Any, connections: Sequence[Any] = (),
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


