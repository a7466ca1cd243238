"""Frame sources: a V4L2 USB camera, a video file or a folder of images, behind one interface.

``open_source("0" | "/dev/video2" | "clip.mp4" | "frames/", ...)`` returns a
:class:`FrameSource`; ``read()`` gives the next :class:`Frame` (BGR pixels, capture stamp,
the source's own JPEG bytes when it delivers JPEG) or ``None`` when no frame is there yet.

A source that goes away (camera unplugged, file or folder moved away) is never fatal: the
source reports ``state == "lost"`` with the reason in :meth:`FrameSource.status`, closes
what it held, and re-opens with back-off (0.25 s, doubling up to ``backoff_max``) until it
is back; a file or folder resumes at the frame after the last one delivered.

Pacing: cameras pace themselves. Files and folders play in real time (``realtime=True``:
frames are released as far apart as their timestamps, container timestamps for video,
``1/fps`` for folders) or as fast as they can be read.

JPEG pass-through (``jpeg_passthrough=True``), verified with OpenCV 5.0 here:
- V4L2 cameras in MJPG: ``CAP_PROP_CONVERT_RGB = 0`` makes OpenCV's V4L2 backend hand over
  the driver's buffer (one row of ``bytesused`` bytes) instead of decoding it.
- Video files whose codec is MJPG: FFmpeg's ``CAP_PROP_FORMAT = -1`` returns the demuxed
  packets (the JPEG files themselves) and ``CAP_PROP_POS_MSEC`` still gives their timestamps.
  Other codecs' packets are not images (mp4v packets start 00 00 01 b3), so they are decoded.
- Image folders: a ``.jpg`` file's bytes.
The frame is then decoded here once (``cv2.imdecode``) for the raw image.

No rclpy here: the ROS node (mocap_ros.ros.camera_node) and offline tools share it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from mocap_ros.core.config import PIXEL_FORMATS

__all__ = [
    "IMAGE_EXTENSIONS",
    "PIXEL_FORMATS",
    "VIDEO_EXTENSIONS",
    "CameraSource",
    "Capture",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "SourceStatus",
    "SourceUnavailableError",
    "VideoFileSource",
    "classify_source",
    "open_source",
    "open_v4l2",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".mjpeg", ".mjpg", ".ts")
_JPEG_MAGIC = b"\xff\xd8\xff"
_MJPEG_FOURCCS = {"MJPG", "JPEG", "mjpg", "jpeg", "AVRn", "LJPG", "dmb1"}


class Capture(Protocol):
    """What the sources use of ``cv2.VideoCapture``; tests substitute a fake camera."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


class SourceUnavailableError(Exception):
    """The source cannot be opened now (not there, or not readable); retried with back-off."""


class _SourceLostError(Exception):
    """A source that was streaming went away mid-stream."""


# (BGR pixels, the source's JPEG bytes or None, media time or None, file name, capture stamp
# or None = now)
_Raw = tuple[np.ndarray, bytes | None, float | None, str, float | None]


class _FrameDroppedError(Exception):
    """One frame could not be used (corrupt JPEG, unreadable image file); the next may be."""


@dataclass
class Frame:
    image: np.ndarray  # (H, W, 3) uint8, BGR (OpenCV's channel order)
    stamp: float  # wall-clock capture time, time.time() seconds; strictly increasing
    index: int  # 0, 1, 2, ... over the source's life, loops and re-opens included
    media_time: float | None  # seconds into the file / folder (None for a camera)
    loop: int = 0  # how many times a looping file or folder has wrapped
    jpeg: bytes | None = None  # the source's own JPEG bytes, when it delivered JPEG
    name: str = ""  # file name (image folders)


@dataclass
class SourceStatus:
    """A snapshot for logs and /diagnostics."""

    kind: str  # camera | video | folder
    source: str
    state: str  # opening | streaming | lost | ended | closed
    message: str
    frames: int  # frames delivered
    dropped: int  # frames read but unusable (corrupt JPEG, unreadable image file)
    read_errors: int  # failed reads / opens
    lost: int  # times the source went away
    reopened: int  # times it came back
    loops: int
    jpeg_passthrough: bool  # frames carry the source's own JPEG bytes
    requested: dict[str, str] = field(default_factory=dict)
    granted: dict[str, str] = field(default_factory=dict)


def _fourcc_text(value: float) -> str:
    code = int(value)
    if code <= 0:
        return ""
    text = code.to_bytes(4, "little").decode("ascii", errors="replace")
    return text if text.isprintable() else f"0x{code:08x}"


def _natural_key(path: Path) -> list[Any]:
    # frame2.png before frame10.png, as a person numbering frames means it
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FrameSource:
    """Common state machine: open -> streaming -> (lost -> re-open) / ended.

    Subclasses implement ``_open`` (raise SourceUnavailableError), ``_read_one`` (return
    a ``_Raw`` tuple, ``None`` at the end of the stream, raise _SourceLostError /
    _FrameDroppedError), ``_release`` and ``_rewind``. ``read`` is meant for one thread;
    ``status`` and ``interrupt`` may be called from any.
    """

    kind = "source"
    BACKOFF_INITIAL = 0.25

    def __init__(self, label: str, *, loop: bool = False, realtime: bool = False,
                 backoff_max: float = 5.0, max_lag: float = 0.5) -> None:
        self.label = label
        self.loop = loop
        self.realtime = realtime
        self.backoff_max = max(backoff_max, self.BACKOFF_INITIAL)
        self.max_lag = max_lag  # behind schedule by more: re-anchor instead of bursting
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = "opening"
        self._message = "not opened yet"
        self._counts = dict.fromkeys(("frames", "dropped", "read_errors", "lost", "reopened",
                                      "loops"), 0)
        self._ever_opened = False
        self._backoff = self.BACKOFF_INITIAL
        self._next_attempt = 0.0
        self._due: float | None = None  # monotonic time the next frame is released
        self._last_media: float | None = None
        self._last_stamp = 0.0
        self._wrapped_empty = 0
        self._lost_reason = ""
        self.jpeg_passthrough = False
        self.requested: dict[str, str] = {}
        self.granted: dict[str, str] = {}

    # ------------------------------------------------------------------ public
    @property
    def state(self) -> str:
        return self._state

    @property
    def ended(self) -> bool:
        return self._state in ("ended", "closed")

    def status(self) -> SourceStatus:
        with self._lock:
            return SourceStatus(kind=self.kind, source=self.label, state=self._state,
                                message=self._message, jpeg_passthrough=self.jpeg_passthrough,
                                requested=dict(self.requested), granted=dict(self.granted),
                                **self._counts)

    def interrupt(self) -> None:
        """Make a blocked or sleeping ``read`` return ``None`` soon (any thread)."""
        self._stop.set()

    def close(self) -> None:
        """Release the device/file. Call from the reading thread, or after it stopped."""
        self._stop.set()
        self._release()
        self._set_state("closed", "closed")

    def read(self, timeout: float = 0.5) -> Frame | None:
        """The next frame, or ``None`` if there is none within ``timeout`` seconds: the
        source is lost and not back yet, it ended (``ended``), or ``interrupt`` was called.
        Pacing waits (real time) may exceed ``timeout`` by up to one frame period.
        """
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            now = time.monotonic()
            if self._state in ("ended", "closed"):
                return None
            if self._state in ("opening", "lost"):
                if now < self._next_attempt:
                    if now >= deadline:
                        return None
                    self._stop.wait(min(self._next_attempt, deadline) - now)
                    continue
                self._try_open()
                continue
            try:
                raw = self._read_one()
            except _SourceLostError as exc:
                self._lose(str(exc))
                continue
            except _FrameDroppedError as exc:
                self._bump("dropped", f"dropped a frame: {exc}")
                if time.monotonic() >= deadline:
                    return None
                continue
            if raw is None:
                if not self._end_of_stream():
                    return None
                continue
            self._wrapped_empty = 0
            return self._deliver(*raw)
        return None

    # ------------------------------------------------------------------ internals
    def _set_state(self, state: str, message: str) -> None:
        with self._lock:
            self._state, self._message = state, message

    def _bump(self, counter: str, message: str | None = None) -> None:
        with self._lock:
            self._counts[counter] += 1
            if message is not None:
                self._message = message

    def _try_open(self) -> None:
        was_lost = self._state == "lost"
        try:
            self._open()
        except SourceUnavailableError as exc:
            self._release()
            lost = f"source lost: {self._lost_reason}; re-open failed: " if was_lost else ""
            self._bump("read_errors", f"{lost}{exc}; retrying in {self._backoff:.2g} s")
            self._next_attempt = time.monotonic() + self._backoff
            self._backoff = min(2 * self._backoff, self.backoff_max)
            return
        self._backoff = self.BACKOFF_INITIAL
        self._due = None
        self._ever_opened = True
        if was_lost:
            self._bump("reopened")
        self._set_state("streaming", self._describe_open())

    def _lose(self, reason: str) -> None:
        self._lost_reason = reason
        self._release()
        self._bump("lost")
        self._bump("read_errors")
        self._set_state("lost", f"source lost: {reason}; re-opening")
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(2 * self._backoff, self.backoff_max)

    def _end_of_stream(self) -> bool:
        """True to keep reading (looped), False when the stream ended."""
        if not self.loop:
            self._set_state("ended", "end of stream (loop is off)")
            return False
        self._wrapped_empty += 1
        if self._wrapped_empty > 1:  # a wrap that yielded nothing: nothing to loop over
            self._set_state("ended", "end of stream: no frames to loop over")
            return False
        self._bump("loops")
        try:
            self._rewind()
        except SourceUnavailableError as exc:
            self._lose(str(exc))
        return True

    def _deliver(self, bgr: np.ndarray, jpeg: bytes | None, media_time: float | None,
                 name: str, stamp: float | None = None) -> Frame:
        if self.realtime and media_time is not None:
            self._pace(media_time)
        now = time.time() if stamp is None else stamp
        # strictly increasing even if the wall clock steps back (NTP): consumers order by it
        now = max(now, self._last_stamp + 1e-6)
        self._last_stamp = now
        with self._lock:
            index = self._counts["frames"]
            self._counts["frames"] += 1
            loops = self._counts["loops"]
        return Frame(image=bgr, stamp=now, index=index, media_time=media_time, loop=loops,
                     jpeg=jpeg, name=name)

    def _pace(self, media_time: float) -> None:
        now = time.monotonic()
        if self._due is None or self._last_media is None:
            due = now
        else:
            step = media_time - self._last_media
            if step <= 0 or step > 10.0:  # wrapped or a gap: one nominal period
                step = self._nominal_period()
            due = self._due + step
            if now - due > self.max_lag:  # a slow consumer: do not burst to catch up
                due = now
        self._last_media = media_time
        self._due = due
        if due > now:
            self._stop.wait(due - now)

    def _nominal_period(self) -> float:
        return 1.0 / 30.0

    def _describe_open(self) -> str:
        return "streaming"

    # subclass hooks ----------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _read_one(self) -> _Raw | None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _rewind(self) -> None:
        raise NotImplementedError


def _decode_jpeg(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise _FrameDroppedError(f"corrupt JPEG ({len(data)} bytes)")
    return img


# ---------------------------------------------------------------------------- camera


def open_v4l2(device: int | str) -> Capture:
    """``cv2.VideoCapture`` on OpenCV's V4L2 backend; SourceUnavailableError when the device node
    is missing (unplugged), so OpenCV is not asked to open what is not there."""
    path = device if isinstance(device, str) else f"/dev/video{device}"
    if not os.path.exists(path):
        raise SourceUnavailableError(f"{path} does not exist (camera unplugged?)")
    return cv2.VideoCapture(device, cv2.CAP_V4L2)


class _CaptureSource(FrameSource):
    """A source read through an OpenCV capture, ``self._cap`` while open."""

    _cap: Capture | None = None

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            finally:
                self._cap = None


class CameraSource(_CaptureSource):
    """A V4L2 camera by index or ``/dev/videoN``.

    Requests ``pixel_format`` (MJPG / YUYV / any = the camera's current one), size and fps,
    then reads back what the driver granted (``granted``; a mismatch is said in the status
    message). Frames are stamped with the driver's capture time (the V4L2 buffer timestamp,
    CLOCK_MONOTONIC, as ``CAP_PROP_POS_MSEC``) when it is plausible, else the read time.
    """

    kind = "camera"

    def __init__(self, device: int | str, *, pixel_format: str = "MJPG", width: int = 640,
                 height: int = 480, fps: float = 30.0, jpeg_passthrough: bool = False,
                 opener: Callable[[int | str], Capture] = open_v4l2,
                 backoff_max: float = 5.0) -> None:
        label = device if isinstance(device, str) else f"/dev/video{device}"
        super().__init__(label, backoff_max=backoff_max)
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format={pixel_format!r} is not one of {PIXEL_FORMATS}")
        self.device = device
        self.pixel_format = pixel_format
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.want_passthrough = jpeg_passthrough
        self._opener = opener
        self._cap: Capture | None = None
        self.requested = {"pixel_format": pixel_format, "width": str(self.width or "default"),
                          "height": str(self.height or "default"),
                          "fps": f"{self.fps:g}" if self.fps > 0 else "default"}

    def _open(self) -> None:
        cap = self._opener(self.device)
        self._cap = cap
        if not cap.isOpened():
            raise SourceUnavailableError(f"cannot open camera {self.label}")
        # Order matters for V4L2: the format first (it resets the size), then size, then rate.
        if self.pixel_format != "any":
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.pixel_format))
        if self.width > 0 and self.height > 0:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps > 0:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        self.jpeg_passthrough = bool(self.want_passthrough and fourcc in _MJPEG_FOURCCS
                                     and cap.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        self.granted = {"pixel_format": fourcc or "unknown",
                        "width": str(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))),
                        "height": str(int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
                        "fps": f"{cap.get(cv2.CAP_PROP_FPS):g}"}

    def _describe_open(self) -> str:
        g, r = self.granted, self.requested
        text = (f"streaming {g['width']}x{g['height']} {g['pixel_format']} at {g['fps']} fps")
        differs = [k for k in ("pixel_format", "width", "height", "fps")
                   if r[k] not in ("default", "any") and not _same(r[k], g[k])]
        if differs:
            text += " (asked " + ", ".join(f"{k} {r[k]}" for k in differs) + ")"
        if self.want_passthrough and not self.jpeg_passthrough:
            text += "; JPEG pass-through unavailable (not MJPG), frames are encoded"
        return text

    def _read_one(self) -> _Raw | None:
        assert self._cap is not None
        ok, img = self._cap.read()
        mono = time.monotonic()
        if not ok or img is None or img.size == 0:
            raise _SourceLostError(f"read from {self.label} failed (unplugged?)")
        jpeg = None
        if self.jpeg_passthrough:
            if img.ndim == 3 and img.shape[2] == 3:
                # the backend decoded anyway: use the pixels, stop expecting JPEG
                self.jpeg_passthrough = False
            else:
                jpeg = img.reshape(-1).tobytes()
                if not jpeg.startswith(_JPEG_MAGIC):
                    raise _FrameDroppedError(f"MJPG buffer of {len(jpeg)} bytes is not a JPEG")
                img = _decode_jpeg(jpeg)
        stamp = None
        ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        age = mono - ts
        if ts > 0 and 0.0 <= age < 1.0:  # a CLOCK_MONOTONIC buffer stamp of this frame
            stamp = time.time() - age
        return img, jpeg, None, "", stamp

    def _rewind(self) -> None:  # a camera never ends
        pass


def _same(requested: str, granted: str) -> bool:
    try:
        return abs(float(requested) - float(granted)) < 0.5
    except ValueError:
        return requested == granted


# ---------------------------------------------------------------------------- video file


def _open_ffmpeg(path: str) -> Capture:
    return cv2.VideoCapture(path, cv2.CAP_FFMPEG)


class VideoFileSource(_CaptureSource):
    """A video file through OpenCV's FFmpeg backend; stamps from the container timestamps."""

    kind = "video"

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = False,
                 realtime: bool = True, jpeg_passthrough: bool = False,
                 opener: Callable[[str], Capture] = _open_ffmpeg,
                 backoff_max: float = 5.0) -> None:
        self.path = Path(path)
        super().__init__(str(self.path), loop=loop, realtime=realtime, backoff_max=backoff_max)
        self.want_passthrough = jpeg_passthrough
        self._opener = opener
        self._cap: Capture | None = None
        self._next_index = 0  # frame number in the file to read next (resume after loss)
        self._period = 1.0 / 30.0

    def _open(self) -> None:
        if not self.path.is_file():
            raise SourceUnavailableError(f"video file {self.path} not found")
        cap = self._opener(str(self.path))
        self._cap = cap
        if not cap.isOpened():
            raise SourceUnavailableError(f"cannot open {self.path} as a video")
        fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
        fps = cap.get(cv2.CAP_PROP_FPS)
        if fps and 0 < fps < 1000:
            self._period = 1.0 / fps
        self.jpeg_passthrough = bool(self.want_passthrough and fourcc in _MJPEG_FOURCCS
                                     and cap.set(cv2.CAP_PROP_FORMAT, -1))
        if self._next_index > 0:  # back after a loss: continue where it stopped
            cap.set(cv2.CAP_PROP_POS_FRAMES, self._next_index)
        self.granted = {"codec": fourcc or "unknown",
                        "width": str(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))),
                        "height": str(int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
                        "fps": f"{fps:g}", "frames": str(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))}

    def _describe_open(self) -> str:
        g = self.granted
        text = (f"playing {self.path.name}: {g['width']}x{g['height']} {g['codec']}, "
                f"{g['frames']} frames at {g['fps']} fps"
                + (" (real time)" if self.realtime else " (as fast as possible)"))
        if self.want_passthrough and not self.jpeg_passthrough:
            text += f"; JPEG pass-through needs an MJPG video, this is {g['codec']}"
        return text

    def _nominal_period(self) -> float:
        return self._period

    def _read_one(self) -> _Raw | None:
        assert self._cap is not None
        # an open file keeps reading after a rename on Linux: look at the path itself
        if not self.path.exists():
            raise _SourceLostError(f"{self.path} was moved away")
        ok, img = self._cap.read()
        if not ok or img is None or img.size == 0:
            if not self.path.exists():
                raise _SourceLostError(f"{self.path} was moved away")
            return None  # end of the file
        media_time = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        self._next_index += 1
        jpeg = None
        if self.jpeg_passthrough:
            jpeg = img.reshape(-1).tobytes()
            if not jpeg.startswith(_JPEG_MAGIC):
                raise _FrameDroppedError(f"MJPG packet of {len(jpeg)} bytes is not a JPEG")
            img = _decode_jpeg(jpeg)
        return img, jpeg, media_time, "", None

    def _rewind(self) -> None:
        self._release()
        self._next_index = 0
        self._open()


# ---------------------------------------------------------------------------- image folder


class ImageFolderSource(FrameSource):
    """The images of a folder in natural order (frame2 before frame10), at a stated fps.

    The folder is listed when opened and again at every loop. A file that cannot be read
    or decoded is a counted drop; the folder itself going away is a lost source.
    """

    kind = "folder"

    def __init__(self, folder: str | os.PathLike[str], *, fps: float = 30.0,
                 loop: bool = False, realtime: bool = True, backoff_max: float = 5.0) -> None:
        if not fps > 0:
            raise ValueError(f"an image folder needs fps > 0, got {fps}")
        self.folder = Path(folder)
        super().__init__(str(self.folder), loop=loop, realtime=realtime,
                         backoff_max=backoff_max)
        self.fps = float(fps)
        self.files: list[Path] = []
        self._next_index = 0
        self.requested = {"fps": f"{self.fps:g}"}

    def _open(self) -> None:
        if not self.folder.is_dir():
            raise SourceUnavailableError(f"image folder {self.folder} not found")
        try:
            files = [p for p in self.folder.iterdir()
                     if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
        except OSError as exc:
            raise SourceUnavailableError(f"cannot list {self.folder}: {exc}") from exc
        if not files:
            raise SourceUnavailableError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in "
                                    f"{self.folder}")
        self.files = sorted(files, key=_natural_key)
        # .jpg files are passed through as they are; other files carry no JPEG
        self.jpeg_passthrough = all(p.suffix.lower() in (".jpg", ".jpeg") for p in self.files)
        self.granted = {"images": str(len(self.files)), "fps": f"{self.fps:g}"}

    def _describe_open(self) -> str:
        return (f"playing {len(self.files)} images from {self.folder} at {self.fps:g} fps"
                + (" (real time)" if self.realtime else " (as fast as possible)"))

    def _nominal_period(self) -> float:
        return 1.0 / self.fps

    def _read_one(self) -> _Raw | None:
        if not self.folder.is_dir():
            raise _SourceLostError(f"{self.folder} was moved away")
        if self._next_index >= len(self.files):
            return None
        i = self._next_index
        self._next_index += 1
        path = self.files[i]
        try:
            data = path.read_bytes()
        except OSError as exc:
            if not self.folder.is_dir():
                raise _SourceLostError(f"{self.folder} was moved away") from exc
            raise _FrameDroppedError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None or img.size == 0:
            raise _FrameDroppedError(f"{path.name} is not an image OpenCV can decode")
        jpeg = data if data.startswith(_JPEG_MAGIC) else None
        return img, jpeg, i / self.fps, path.name, None

    def _release(self) -> None:
        pass  # nothing held open between reads

    def _rewind(self) -> None:
        self._next_index = 0
        self._open()


# ---------------------------------------------------------------------------- factory


def classify_source(spec: str) -> tuple[str, int | str]:
    """``("camera", 0 | "/dev/videoN")``, ``("video", path)`` or ``("folder", path)``.

    A missing video file raises ValueError at once (a typo would otherwise be retried
    forever); retrying is for devices, and for a folder named with a trailing slash, which
    is waited for like a lost source. Anything else that does not exist raises ValueError
    naming it.
    """
    text = str(spec).strip()
    if not text:
        raise ValueError("source is empty: give a camera index, /dev/videoN, a video file or "
                         "an image folder")
    if text.isdigit():
        return "camera", int(text)
    if text.startswith("/dev/"):
        return "camera", text
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder", str(path)
    if path.is_file():
        return "video", str(path)
    if text.endswith(("/", os.sep)):
        return "folder", str(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        raise ValueError(f"video file {text!r} not found")
    raise ValueError(f"source {text!r} does not exist and is not a camera index or /dev/videoN "
                     "(end a folder that will appear later with '/')")


def open_source(spec: str, *, pixel_format: str = "MJPG", width: int = 640, height: int = 480,
                fps: float = 30.0, loop: bool = False, realtime: bool = True,
                jpeg_passthrough: bool = False, backoff_max: float = 5.0,
                camera_opener: Callable[[int | str], Capture] = open_v4l2) -> FrameSource:
    """The frame source ``spec`` names (see :func:`classify_source`: ValueError for a
    missing video file). Nothing is opened yet: the first ``read`` opens it (and a camera
    or a folder is retried while it is not there)."""
    kind, target = classify_source(spec)
    if kind == "camera":
        return CameraSource(target, pixel_format=pixel_format, width=width, height=height,
                            fps=fps, jpeg_passthrough=jpeg_passthrough, opener=camera_opener,
                            backoff_max=backoff_max)
    if kind == "video":
        return VideoFileSource(str(target), loop=loop, realtime=realtime,
                               jpeg_passthrough=jpeg_passthrough, backoff_max=backoff_max)
    return ImageFolderSource(str(target), fps=fps, loop=loop, realtime=realtime,
                             backoff_max=backoff_max)
