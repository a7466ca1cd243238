"""Offline processing of a video file or an image folder (``mocap-ros process clip.mp4``).

Frames come from :mod:`mocap_ros.io.frames` as fast as they can be read (no pacing, no
loop); each gets one pose. Stamps are the video's own timestamps (container presentation
times; ``index / fps`` for a folder), in seconds from the start of the recording. Outputs,
any of:

- CSV: the columns of :mod:`mocap_ros.io.bags.csv_rows`, one row per frame (``topic`` holds
  the file name for folders, ``bag_time_ns`` the stamp in nanoseconds);
- JSON lines: :mod:`mocap_ros.offline.jsonl`, one object per frame;
- a rosbag2 bag: ``<image_topic>/compressed`` (sensor_msgs/CompressedImage: the source's own
  JPEG bytes when it has them, else a JPEG encoded here), ``/mocap/body_pose`` and ``/tf``
  for valid poses. Images go in so the bag is a self-contained recording (replay, re-process,
  look at it next to the poses); JPEG rather than raw keeps it ~10x smaller;
- a rendering (:mod:`mocap_ros.offline.render`): an MP4 or a folder of PNGs.

Frames that cannot be read (a corrupt image in a folder) are counted and skipped (the
source says so); frames the estimator refuses get an invalid pose, as in bags.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

import cv2
import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.io.bags.csv_rows import csv_header, csv_row
from mocap_ros.io.bags.progress import Progress
from mocap_ros.io.frames import IMAGE_EXTENSIONS, Frame, FrameSource, open_source
from mocap_ros.offline.jsonl import JsonlWriter, pose_record
from mocap_ros.offline.render import RenderWriter, render_frame

if TYPE_CHECKING:
    from mocap_ros.core.config import MocapConfig
    from mocap_ros.core.estimator import Estimator

log = logging.getLogger(__name__)
BAG_SUFFIXES = (".mcap", ".db3")


def detect_input(path: str | os.PathLike[str]) -> str:
    """``"bag"``, ``"video"`` or ``"folder"``; ValueError naming the path otherwise."""
    p = Path(path)
    if p.is_file():
        return "bag" if p.suffix.lower() in BAG_SUFFIXES else "video"
    if p.is_dir():
        if (p / "metadata.yaml").is_file() or any(q.suffix in BAG_SUFFIXES for q in p.iterdir()):
            return "bag"
        if any(q.suffix.lower() in IMAGE_EXTENSIONS for q in p.iterdir()):
            return "folder"
        raise ValueError(f"{p} is a folder with neither a bag (metadata.yaml, .mcap, .db3) nor "
                         f"images ({', '.join(IMAGE_EXTENSIONS)})")
    raise ValueError(f"{p} does not exist")


@dataclass
class MediaSummary:
    source: str
    kind: str
    frames: int = 0
    valid: int = 0
    invalid: int = 0
    unreadable: int = 0  # frames the source could not decode (skipped, counted)
    width: int = 0
    height: int = 0
    wall_s: float = 0.0
    processing_s: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    def text(self) -> str:
        fps = self.frames / self.wall_s if self.wall_s > 0 else 0.0
        pfps = self.frames / self.processing_s if self.processing_s > 0 else 0.0
        lines = [f"{'processed' if self.complete else 'PARTIALLY processed'} {self.source} "
                 f"({self.kind}, {self.width}x{self.height}): {self.frames} frames, valid poses "
                 f"{self.valid}, invalid {self.invalid}, unreadable (skipped) {self.unreadable}",
                 f"  {self.wall_s:.2f} s wall ({fps:.2f} frames/s); pipeline "
                 f"{self.processing_s:.2f} s ({pfps:.2f} frames/s)"]
        lines += [f"  {k}: {v}" for k, v in self.outputs.items()]
        if self.stats:
            lines.append("  counters: " + ", ".join(f"{k}={v}" for k, v in
                                                    sorted(self.stats.items())))
        return "\n".join(lines)


def _header(stamp: float, frame_id: str) -> Any:
    sec = int(np.floor(stamp))
    nsec = min(round((stamp - sec) * 1e9), 999_999_999)
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nsec), frame_id=frame_id)


class _BagOut:
    """The rosbag2 output of a video: compressed images, poses, /tf."""

    def __init__(self, path: Path, storage: str, image_topic: str, config: Any,
                 source: str, jpeg_quality: int) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        from mocap_ros.io.bags.types import (
            BAG_VERSION,
            BODY_POSE_TYPE,
            COMPRESSED_TYPE,
            POSE_TOPIC,
            STORAGES,
            TF_TOPIC,
            TF_TYPE,
            BagError,
            BagMessages,
            bag_typestore,
            body_pose_msgdef,
        )

        if storage not in STORAGES:
            raise BagError(f"storage={storage!r} is not one of {list(STORAGES)}")
        if path.exists():
            raise BagError(f"output {path} exists already; choose a new path (bags are never "
                           "overwritten)")
        self.store = bag_typestore()
        self.msgs = BagMessages(self.store)
        self.compressed_type, self.tf_type = COMPRESSED_TYPE, TF_TYPE
        self.quality = jpeg_quality
        self.writer = Writer(path, version=BAG_VERSION,
                             storage_plugin=StoragePlugin[storage.upper()])
        self.writer.open()
        w = self.writer
        self.image_conn = w.add_connection(image_topic.rstrip("/") + "/compressed",
                                           COMPRESSED_TYPE, typestore=self.store)
        msgdef, rihs = body_pose_msgdef()
        self.pose_conn = w.add_connection(POSE_TOPIC, BODY_POSE_TYPE, msgdef=msgdef,
                                          rihs01=rihs)
        self.tf_conn = w.add_connection(TF_TOPIC, TF_TYPE, typestore=self.store)
        w.set_custom_data("mocap_ros.core.config", json.dumps(asdict(config), sort_keys=True))
        w.set_custom_data("mocap_ros.source", source)
        self.Compressed = self.store.types[COMPRESSED_TYPE]

    def write(self, frame: Frame, result: BodyPoseResult, stamp: float, frame_id: str,
              prefix: str) -> None:
        t_ns = max(0, round(float(stamp) * 1e9))
        header = self.msgs.header(t_ns // 10**9, t_ns % 10**9, frame_id)
        data = frame.jpeg
        if data is None:
            ok, enc = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise RuntimeError("cv2.imencode('.jpg') failed")
            data = enc.tobytes()
        img = self.Compressed(header=header, format="bgr8; jpeg compressed bgr8",
                              data=np.frombuffer(data, np.uint8))
        self.writer.write(self.image_conn, t_ns,
                          bytes(self.store.serialize_cdr(img, self.compressed_type)))
        self.writer.write(self.pose_conn, t_ns, self.msgs.body_pose(result, header))
        if result.valid:
            self.writer.write(self.tf_conn, t_ns, self.msgs.tf(result, header, prefix))

    def close(self) -> None:
        self.writer.close()


def process_media(
    in_path: str | os.PathLike[str],
    config: MocapConfig | None = None,
    *,
    csv_path: str | os.PathLike[str] | None = None,
    jsonl_path: str | os.PathLike[str] | None = None,
    out_bag: str | os.PathLike[str] | None = None,
    render: str | os.PathLike[str] | None = None,
    fps: float = 30.0,
    storage: str = "mcap",
    image_topic: str = "/camera/image_raw",
    frame_id: str = "camera_optical_frame",
    frame_prefix: str = "mocap_",
    calibration: str | None = None,
    progress: bool = True,
    progress_stream: TextIO | None = None,
    pipeline: Estimator | None = None,
    jpeg_quality: int = 90,
) -> MediaSummary:
    """Run the estimator on every frame of a video file or image folder; write the outputs
    asked for. ``fps``: an image folder's frame rate (its stamps; the rendered video's rate).
    ``calibration``: a camera_calibration YAML for the intrinsics (else the configuration's
    focal-length fallback, as mocap_node without camera_info)."""
    kind = detect_input(in_path)
    if kind == "bag":
        raise ValueError(f"{in_path} is a bag: use process_bag")
    t_start = time.monotonic()
    summary = MediaSummary(str(in_path), kind)
    src: FrameSource = open_source(str(in_path), fps=fps, loop=False, realtime=False,
                                   jpeg_passthrough=out_bag is not None)
    stats: Counter[str] = Counter()
    closers: list[Any] = []
    bar: Progress | None = None
    try:
        first = _first_frame(src)
        st = src.status()
        total = int(st.granted.get("frames") or st.granted.get("images") or 0)
        rate = float(st.granted.get("fps") or fps) or fps
        summary.height, summary.width = first.image.shape[:2]

        if pipeline is None:
            from mocap_ros.core.config import MocapConfig
            from mocap_ros.estimation.factory import make_estimator

            pipeline = make_estimator(config or MocapConfig())
        cfg = pipeline.config
        meta = {"precision": pipeline.precision, "n_iter": cfg.n_iter,
                "device": str(pipeline.device)}
        K = None
        if calibration:
            from mocap_ros.geometry.camera import Intrinsics
            from mocap_ros.io.calibration import load_calibration

            cal = load_calibration(calibration).scaled_to(summary.width, summary.height)
            K = Intrinsics.from_k(cal.K)

        csv_out = jsonl = bag = renderer = None
        if csv_path:
            f = open(csv_path, "w", newline="")  # noqa: SIM115 - closed in finally
            closers.append(f)
            csv_out = csv.writer(f)
            csv_out.writerow(csv_header())
            summary.outputs["CSV"] = str(csv_path)
        if jsonl_path:
            f = open(jsonl_path, "w")  # noqa: SIM115 - closed in finally
            closers.append(f)
            jsonl = JsonlWriter(f)
            summary.outputs["JSON lines"] = str(jsonl_path)
        if out_bag:
            bag = _BagOut(Path(out_bag), storage, image_topic, cfg, str(in_path), jpeg_quality)
            closers.append(bag)
            summary.outputs["bag"] = f"{out_bag} ({storage})"
        if render:
            renderer = RenderWriter(render, rate)
            closers.append(renderer)
            summary.outputs["render"] = str(render)

        bar = Progress(total, "process", progress_stream, enabled=progress)
        frame: Frame | None = first
        index = 0
        while frame is not None:
            t0 = time.monotonic()
            stamp = frame.media_time if frame.media_time is not None else index / rate
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            try:
                result = pipeline.process(rgb, None, K)
            except ValueError as exc:
                stats["process_errors"] += 1
                log.warning("frame %d: %s", index, exc)
                result = BodyPoseResult.invalid("process_failed", **meta)
            dt = time.monotonic() - t0
            summary.processing_s += dt
            summary.frames += 1
            if result.valid:
                summary.valid += 1
            else:
                summary.invalid += 1
            name = frame.name or Path(str(in_path)).name
            if csv_out is not None:
                csv_out.writerow(csv_row(index, name, round(stamp * 1e9),
                                         _header(stamp, frame_id), result))
            if jsonl is not None:
                jsonl.write(pose_record(result, index, stamp, frame_id, frame.name))
            if bag is not None:
                bag.write(frame, result, stamp, frame_id, frame_prefix)
            if renderer is not None:
                renderer.write(render_frame(frame.image, result, index, stamp, dt * 1e3))
            bar.update()
            index += 1
            frame = src.read(timeout=5.0)
        st = src.status()
        summary.unreadable = st.dropped
        if st.state == "lost":
            raise RuntimeError(f"{in_path}: {st.message}; processed {summary.frames} frames")
        summary.complete = True
    finally:
        if bar is not None:
            bar.close()
        for c in closers:
            c.close()
        src.close()
        summary.stats = dict(stats)
        summary.wall_s = time.monotonic() - t_start
    return summary


def _first_frame(src: FrameSource) -> Frame:
    frame = src.read(timeout=5.0)
    if frame is None:
        st = src.status()
        raise ValueError(f"{src.label}: no frame could be read ({st.message})")
    return frame
