"""A small, deterministic sample rosbag2 bag of a real photo, written without ROS.

The frames are scikit-image's astronaut photograph (it ships with the package; nothing is
downloaded) at varying sizes and places in a 640x480 frame, in several encodings:

- raw ``sensor_msgs/Image`` on ``/camera/image_raw`` (``bgr8``, ``rgb8``, ``mono8``,
  ``yuv422_yuy2``, or any other encoding :func:`mocap_ros.io.images.rgb_to_raw` writes),
- ``jpeg``/``png`` as ``sensor_msgs/CompressedImage`` on ``/camera/image_raw/compressed``,
- ``sensor_msgs/CameraInfo`` on ``/camera/camera_info`` before every frame.

Frame ``i`` (encodings cycle frame by frame) has the header stamp ``START + i / rate_hz``
and frame_id ``camera_optical_frame``; its CameraInfo carries the same stamp and is
recorded 1 ms (bag time) before the image, which is recorded 5 ms after its stamp, as a
recorder would receive them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mocap_ros.io.images import rgb_to_compressed, rgb_to_raw

RAW_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
INFO_TOPIC = "/camera/camera_info"
FRAME_ID = "camera_optical_frame"
WIDTH, HEIGHT = 640, 480
START_NS = 1_700_000_000 * 10**9  # header stamp of frame 0
DEFAULT_ENCODINGS = ("bgr8", "rgb8", "mono8", "yuv422_yuy2", "jpeg")
COMPRESSED_FORMATS = ("jpeg", "png")
# A typical VGA camera's intrinsics (pixels).
K = (525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0)


@dataclass
class SampleFrame:
    index: int
    topic: str
    encoding: str
    stamp_ns: int
    bag_time_ns: int


@dataclass
class SampleBag:
    path: str
    storage: str
    frames: list[SampleFrame] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        if not self.frames:
            return 0.0
        return (self.frames[-1].bag_time_ns - self.frames[0].bag_time_ns) / 1e9


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def sample_frame(i: int) -> np.ndarray:
    """Frame ``i``: the astronaut (crop and size vary) on a grey gradient, 640x480 RGB."""
    from skimage import data

    photo = data.astronaut()  # 512x512 RGB, a real photograph of a person
    # Deterministic variety: crop margin, size and position cycle with different periods.
    margin = (0, 24, 48, 12, 36)[i % 5]
    crop = photo[margin: 512 - margin // 2, margin // 2: 512 - margin]
    side = min(crop.shape[:2])
    crop = crop[:side, :side]
    size = (440, 360, 400, 300, 470)[i % 5]
    patch = _resize(np.ascontiguousarray(crop), size)
    x = (20, 160, 90, 300, 60, 220, 130)[i % 7] % (WIDTH - size + 1)
    y = (0, 60, 30, 90, 10, 45)[i % 6] % (HEIGHT - size + 1)
    ramp = np.linspace(70, 150, WIDTH, dtype=np.float32)
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[...] = ramp.astype(np.uint8)[None, :, None]
    frame[y: y + size, x: x + size] = patch
    return frame


def write_sample_bag(path: str | os.PathLike[str], storage: str = "mcap",
                     encodings: tuple[str, ...] | list[str] = DEFAULT_ENCODINGS,
                     n_per: int = 3, rate_hz: float = 15.0) -> SampleBag:
    """Write ``n_per`` frames per encoding (``len(encodings) * n_per`` in all) at ``rate_hz``.

    Same arguments, same bytes in every message (the bag's file itself also carries no
    wall-clock time). Returns what was written (topics, encodings, stamps, bag times).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from mocap_ros.io.bags.types import BAG_VERSION, STORAGES, BagError

    if storage not in STORAGES:
        raise BagError(f"storage={storage!r} is not one of {list(STORAGES)}")
    if n_per < 1 or not encodings:
        raise BagError("a sample bag needs at least one encoding and n_per >= 1")
    if not rate_hz > 0:
        raise BagError(f"rate_hz must be positive, got {rate_hz!r}")
    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Image, CompressedImage = T["sensor_msgs/msg/Image"], T["sensor_msgs/msg/CompressedImage"]
    CameraInfo, ROI = T["sensor_msgs/msg/CameraInfo"], T["sensor_msgs/msg/RegionOfInterest"]

    encodings = list(encodings)
    has_raw = any(e.lower() not in COMPRESSED_FORMATS for e in encodings)
    has_compressed = any(e.lower() in COMPRESSED_FORMATS for e in encodings)
    out = SampleBag(str(path), storage)
    writer = Writer(Path(path), version=BAG_VERSION,
                    storage_plugin=StoragePlugin[storage.upper()])
    writer.open()
    try:
        info_conn = writer.add_connection(INFO_TOPIC, CameraInfo.__msgtype__, typestore=store)
        raw_conn = writer.add_connection(RAW_TOPIC, Image.__msgtype__, typestore=store) \
            if has_raw else None
        comp_conn = writer.add_connection(COMPRESSED_TOPIC, CompressedImage.__msgtype__,
                                          typestore=store) if has_compressed else None
        for i in range(len(encodings) * n_per):
            enc = encodings[i % len(encodings)]
            stamp = START_NS + round(i * 1e9 / rate_hz)
            header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9),
                            frame_id=FRAME_ID)
            info = CameraInfo(
                header=header, height=HEIGHT, width=WIDTH, distortion_model="plumb_bob",
                d=np.zeros(5, np.float64), k=np.array(K, np.float64),
                r=np.eye(3).reshape(-1),
                p=np.array([K[0], 0, K[2], 0, 0, K[4], K[5], 0, 0, 0, 1, 0], np.float64),
                binning_x=0, binning_y=0,
                roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(info_conn, stamp + 4_000_000,
                         bytes(store.serialize_cdr(info, CameraInfo.__msgtype__)))
            rgb = sample_frame(i)
            if enc.lower() in COMPRESSED_FORMATS:
                fmt = enc.lower()
                msg = CompressedImage(
                    header=header, format=f"rgb8; {fmt} compressed bgr8",
                    data=np.frombuffer(rgb_to_compressed(rgb, fmt), np.uint8))
                conn, topic = comp_conn, COMPRESSED_TOPIC
            else:
                data, step = rgb_to_raw(rgb, enc)
                msg = Image(header=header, height=HEIGHT, width=WIDTH, encoding=enc,
                            is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))
                conn, topic = raw_conn, RAW_TOPIC
            bag_time = stamp + 5_000_000
            writer.write(conn, bag_time, bytes(store.serialize_cdr(msg, msg.__msgtype__)))
            out.frames.append(SampleFrame(i, topic, enc, stamp, bag_time))
    finally:
        writer.close()
    return out
