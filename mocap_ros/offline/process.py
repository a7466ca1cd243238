"""Offline processing of rosbag2 bags (``process_bag``, ``mocap-ros process``).

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

CSV (``csv_path``): one row per image, in bag order; the columns are in
:mod:`mocap_ros.io.bags.csv_rows`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.io.bags.csv_rows import csv_header, csv_row
from mocap_ros.io.bags.progress import ProcessSummary, Progress
from mocap_ros.io.bags.reader import (
    CameraInfoState,
    camera_info_topic_for,
    iter_messages,
    open_reader,
    select_image_connections,
)
from mocap_ros.io.bags.types import (
    BAG_VERSION,
    BODY_POSE_TYPE,
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    POSE_TOPIC,
    STORAGES,
    TF_TOPIC,
    TF_TYPE,
    BagError,
    BagMessages,
    bag_typestore,
    body_pose_msgdef,
    copy_definition,
    definition_store,
    qos_of,
)
from mocap_ros.io.images import DEFAULT_MAX_PIXELS, ImageDecodeError, compressed_to_rgb, raw_to_rgb

if TYPE_CHECKING:
    from mocap_ros.core.config import MocapConfig
    from mocap_ros.core.estimator import Estimator

log = logging.getLogger(__name__)


def process_bag(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: MocapConfig | None = None,
    storage: str = "mcap",
    csv_path: str | os.PathLike[str] | None = None,
    image_topic: str | Sequence[str] | None = None,
    progress: bool = True,
    *,
    pipeline: Estimator | None = None,
    frame_prefix: str = "mocap_",
    pose_topic: str = POSE_TOPIC,
    max_image_pixels: int = DEFAULT_MAX_PIXELS,
    progress_stream: TextIO | None = None,
    batch_size: int | None = None,
) -> ProcessSummary:
    """Run the pipeline on every image of the bag ``in_path`` and write ``out_path``.

    ``image_topic``: one topic or a list (default: every Image/CompressedImage topic).
    ``pipeline``: an already built :class:`~mocap_ros.core.estimator.Estimator` to use instead
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
    reader = open_reader(in_path)
    writer = None
    csv_file = None
    bar: Progress | None = None
    summary: ProcessSummary | None = None
    stats: Counter[str] = Counter()
    try:
        image_conns = select_image_connections(reader, image_topic)
        image_ids = {c.id for c in image_conns}
        info_conns = [c for c in reader.connections if c.msgtype == CAMERA_INFO_TYPE]
        info_ids = {c.id for c in info_conns}
        info_topics = {c.topic for c in info_conns}
        info_for = {c.topic: camera_info_topic_for(c.topic, info_topics) for c in image_conns}
        summary = ProcessSummary(str(in_path), str(out), storage,
                                 sorted({c.topic for c in image_conns}),
                                 csv_path=str(csv_path) if csv_path else None)
        store = bag_typestore()
        defs = definition_store(reader.connections)

        if pipeline is None:
            from mocap_ros.core.config import MocapConfig
            from mocap_ros.estimation.factory import make_estimator

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
            definition = copy_definition(c, defs)
            if definition is None:
                summary.skipped_topics.append(f"{c.topic} ({c.msgtype})")
                continue
            made[key] = out_conn[c.id] = writer.add_connection(
                c.topic, c.msgtype, msgdef=definition[0], rihs01=definition[1],
                serialization_format=getattr(c.ext, "serialization_format", "cdr"),
                offered_qos_profiles=qos_of(c))
        msgdef, rihs = body_pose_msgdef()
        pose_conn = writer.add_connection(pose_topic, BODY_POSE_TYPE, msgdef=msgdef, rihs01=rihs)
        tf_conn = made.get((TF_TOPIC, TF_TYPE)) or writer.add_connection(
            TF_TOPIC, TF_TYPE, typestore=store)
        writer.set_custom_data("mocap_ros.core.config", json.dumps(asdict(cfg), sort_keys=True))
        writer.set_custom_data("mocap_ros.source", str(in_path))

        if csv_path:
            csv_file = open(csv_path, "w", newline="")  # noqa: SIM115 - closed in finally
            csv_out = csv.writer(csv_file)
            csv_out.writerow(csv_header())
        total = sum(c.msgcount for c in image_conns)
        bar = Progress(total, "process", progress_stream, enabled=progress)
        msgs = BagMessages(store)
        cams = CameraInfoState()
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
                    csv_out.writerow(csv_row(index, conn.topic, bag_time, header, result))
                index += 1
                bar.update()
            pending.clear()
            waiting.clear()

        try:
            for conn, bag_time, data in iter_messages(reader, (), f"; the output {out} holds "
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


def _decode_image(store: Any, msgs: BagMessages, conn: Any, bag_time: int, data: bytes,
                  cams: CameraInfoState, info_topic: str | None, stats: Counter[str],
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


def _run_images(pipeline: Estimator, images: list[_Decoded], stats: Counter[str],
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


