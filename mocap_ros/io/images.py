"""ROS image messages <-> RGB ``uint8`` numpy arrays, without cv_bridge.

cv_bridge needs a matching OpenCV/Boost build and is often unusable next to a pip-installed
OpenCV, so mocap_ros carries its own small converter. Every function takes plain fields
(bytes, ints, strings) rather than message objects, so the same code serves rclpy messages,
rosbags messages and tests, and this module never imports rclpy.

Decoding (``raw_to_rgb``, ``compressed_to_rgb``) validates every field before touching the
pixels and raises :class:`ImageDecodeError` with a short ``kind`` so a node can count
dropped frames per cause instead of crashing on one malformed message.

Colour conventions follow cv_bridge and the camera drivers: YUV 4:2:2 and NV12/NV21 are
BT.601 limited range ("studio swing", Y in 16..235), which is what USB (UVC) cameras
deliver and what OpenCV's ``COLOR_YUV2RGB_*`` conversions assume. In ROS,
``yuv422`` means UYVY byte order and ``yuv422_yuy2`` means YUYV.
"""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_ENCODINGS",
    "ImageDecodeError",
    "compressed_to_rgb",
    "raw_to_rgb",
    "rgb_to_compressed",
    "rgb_to_raw",
]

DEFAULT_MAX_PIXELS = 4096 * 4096


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into pixels (or, encoding, into a message).

    ``kind`` is a short machine-readable cause for per-cause drop counters:

    - ``unknown_encoding``: encoding string not in :data:`SUPPORTED_ENCODINGS`
    - ``unsupported_format``: CompressedImage format that is not JPEG/PNG colour
      (e.g. ``compressedDepth``)
    - ``zero_size``: width or height not a positive integer
    - ``too_large``: width * height above ``max_pixels``
    - ``odd_size``: YUV 4:2:2 with odd width, NV12/NV21 with odd width or height
    - ``step_mismatch``: row stride smaller than one row of pixels
    - ``size_mismatch``: fewer data bytes than ``step * height`` requires
    - ``bad_input``: an array argument of the wrong shape/dtype (encode side)
    - ``decode_failed``: the JPEG/PNG decoder rejected the data
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:  # keep ``kind`` across pickling (multiprocessing)
        return (type(self), (self.kind, str(self)))


# encoding (lower-case) -> (family, bytes per pixel of the first plane).
# Families: how the bytes are laid out, independent of the ROS spelling.
_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("rgb", 3),
    "bgr8": ("bgr", 3),
    "rgba8": ("rgba", 4),
    "bgra8": ("bgra", 4),
    "mono8": ("mono8", 1),
    "mono16": ("mono16", 2),
    # OpenCV type names: an untyped 3/4-channel 8-bit Mat is BGR(A) by OpenCV convention,
    # which is how cv_bridge treats them.
    "8uc1": ("mono8", 1),
    "8uc3": ("bgr", 3),
    "8uc4": ("bgra", 4),
    # YUV 4:2:2, 2 bytes per pixel. ROS `yuv422` is UYVY (image_encodings.h), not YUYV.
    "yuv422": ("uyvy", 2),
    "uyvy": ("uyvy", 2),
    "yuv422_yuy2": ("yuyv", 2),
    "yuyv": ("yuyv", 2),
    # YUV 4:2:0 semi-planar: a Y plane (1 byte per pixel, `step` bytes per row) followed by
    # an interleaved chroma plane of height/2 rows with the same step.
    "nv12": ("nv12", 1),
    "nv21": ("nv21", 1),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "8UC1",
    "8UC3",
    "8UC4",
    "yuv422",
    "uyvy",
    "yuv422_yuy2",
    "yuyv",
    "nv12",
    "nv21",
)
"""Encodings accepted by :func:`raw_to_rgb` and :func:`rgb_to_raw` (matched case-insensitively)."""

# OpenCV >= 4.10 has RGB -> YUV 4:2:2; older builds (pyproject allows 4.8) get the numpy path.
_CV_RGB2YUYV: int | None = getattr(cv2, "COLOR_RGB2YUV_YUYV", None)
_CV_RGB2UYVY: int | None = getattr(cv2, "COLOR_RGB2YUV_UYVY", None)


def _lookup(encoding: str) -> tuple[str, int]:
    spec = _ENCODINGS.get(str(encoding).strip().lower())
    if spec is None:
        raise ImageDecodeError(
            "unknown_encoding",
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
        )
    return spec


def _as_bytes_array(data: Any) -> np.ndarray:
    """A flat ``uint8`` view of ``data`` without copying when the buffer allows it.

    Accepts bytes, bytearray, memoryview, array.array (rclpy's ``uint8[]``), numpy arrays
    (rosbags' ``uint8[]``) and, as a slow fallback, sequences of ints.
    """
    if isinstance(data, np.ndarray):
        arr = data if data.flags.c_contiguous else np.ascontiguousarray(data)
        return arr.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _check_dims(width: Any, height: Any, max_pixels: int) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ImageDecodeError("zero_size", f"{name}={value!r} must be a positive integer")
    width, height = int(width), int(height)
    if width * height > max_pixels:
        raise ImageDecodeError(
            "too_large",
            f"width*height = {width}*{height} = {width * height} pixels exceeds "
            f"max_pixels={max_pixels}",
        )
    return width, height


def raw_to_rgb(
    data: bytes | bytearray | memoryview | np.ndarray,
    width: int,
    height: int,
    encoding: str,
    step: int,
    is_bigendian: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Convert the fields of a ``sensor_msgs/Image`` to an ``(height, width, 3)`` RGB uint8 array.

    ``step`` (bytes per row) may exceed ``width * bytes_per_pixel``; the padding is skipped
    with a strided view. ``data`` must hold at least ``step * height`` bytes (``step *
    height * 3 / 2`` for NV12/NV21), as the message definition and cv_bridge require; extra
    trailing bytes are ignored. ``is_bigendian`` only matters for ``mono16``, which is scaled
    to 8 bits by ``>> 8`` (i.e. its high byte is taken).

    The result is not necessarily C-contiguous and may share memory with ``data``: for
    ``rgb8`` it is a pure view (zero-copy, read-only if ``data`` is ``bytes``), for
    ``rgba8`` a view that drops the alpha channel, and padded rows stay strided. Other
    encodings produce a fresh array. Strides are never negative (so ``torch.from_numpy``
    accepts it). Copy (``np.ascontiguousarray``) before writing into it or when ``data`` is a
    buffer that will be reused.

    Raises :class:`ImageDecodeError` (a ``ValueError``) naming the offending field.
    """
    family, bpp = _lookup(encoding)
    width, height = _check_dims(width, height, max_pixels)
    if family in ("yuyv", "uyvy") and width % 2:
        raise ImageDecodeError(
            "odd_size", f"YUV 4:2:2 ({encoding}) needs an even width, got width={width}"
        )
    if family in ("nv12", "nv21") and (width % 2 or height % 2):
        raise ImageDecodeError(
            "odd_size",
            f"{encoding} needs even width and height, got width={width} height={height}",
        )
    row_bytes = width * bpp
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < row_bytes:
        raise ImageDecodeError(
            "step_mismatch",
            f"step={step!r} is smaller than width*bytes_per_pixel = {width}*{bpp} = "
            f"{row_bytes} for encoding {encoding!r}",
        )
    step = int(step)
    rows = height * 3 // 2 if family in ("nv12", "nv21") else height
    buf = _as_bytes_array(data)
    if buf.size < step * rows:
        raise ImageDecodeError(
            "size_mismatch",
            f"data has {buf.size} bytes, expected at least step*rows = {step}*{rows} = "
            f"{step * rows} for {width}x{height} {encoding!r}",
        )
    # (rows, row_bytes) view with row stride `step`: no copy, whatever the padding.
    px = buf[: step * rows].reshape(rows, step)[:, :row_bytes]

    if family == "rgb":
        return px.reshape(height, width, 3)
    if family == "rgba":
        return px.reshape(height, width, 4)[:, :, :3]
    # cv2 accepts row-strided input as long as each row is contiguous, so no copy first.
    if family == "bgr":
        return cv2.cvtColor(px.reshape(height, width, 3), cv2.COLOR_BGR2RGB)
    if family == "bgra":
        return cv2.cvtColor(px.reshape(height, width, 4), cv2.COLOR_BGRA2RGB)
    if family == "mono8":
        return cv2.cvtColor(px, cv2.COLOR_GRAY2RGB)
    if family == "mono16":
        # value >> 8 is just the high byte: index 0 of each pair if big-endian, else 1.
        high = px[:, 0::2] if is_bigendian else px[:, 1::2]
        out = np.empty((height, width, 3), dtype=np.uint8)
        out[...] = high[:, :, None]
        return out
    if family == "yuyv":
        return cv2.cvtColor(px.reshape(height, width, 2), cv2.COLOR_YUV2RGB_YUYV)
    if family == "uyvy":
        return cv2.cvtColor(px.reshape(height, width, 2), cv2.COLOR_YUV2RGB_UYVY)
    if family == "nv12":
        return cv2.cvtColor(px, cv2.COLOR_YUV2RGB_NV12)
    if family == "nv21":
        return cv2.cvtColor(px, cv2.COLOR_YUV2RGB_NV21)
    raise AssertionError(f"unhandled family {family}")  # pragma: no cover


# --------------------------------------------------------------------------- compressed

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) share the range but don't.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(b: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF segment, or None if the header can't be walked.

    Walks marker segments only (a handful per file), never entropy-coded data.
    """
    i, n = 2, len(b)
    while i + 4 <= n:
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers, no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI / start of scan before any SOF
            return None
        seg_len = int.from_bytes(b[i + 2 : i + 4], "big")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            height = int.from_bytes(b[i + 5 : i + 7], "big")
            width = int.from_bytes(b[i + 7 : i + 9], "big")
            return width, height
        if seg_len < 2:
            return None
        i += 2 + seg_len
    return None


def _header_size(b: bytes) -> tuple[int, int] | None:
    if b.startswith(_PNG_MAGIC) and len(b) >= 24 and b[12:16] == b"IHDR":
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    if b.startswith(_JPEG_MAGIC):
        return _jpeg_size(b)
    return None


_FORMAT_WORDS = re.compile(r"[a-z0-9_]+")


def compressed_to_rgb(
    data: bytes | bytearray | memoryview | np.ndarray,
    format: str,  # shadows the builtin on purpose: the CompressedImage field name
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to ``(H, W, 3)`` RGB uint8.

    ``format`` is parsed leniently: ``"jpeg"``, ``"png"``, ``"rgb8; jpeg compressed bgr8"``,
    ``"bgr8; png compressed bgr8"`` and ``""`` are all fine, because the codec is detected
    from the data's magic bytes (image_transport always stores colour as BGR inside the
    file, whatever the original encoding, so the decoded colours are right regardless of the
    prefix). Formats naming something else (``compressedDepth``, ``tiff``, ...) are refused
    with ``kind="unsupported_format"``: depth PNGs carry a private header and are not colour.

    The image size is read from the PNG/JPEG header and checked against ``max_pixels``
    before decoding, so a small malicious file can't make the decoder allocate gigabytes;
    the decoded size is checked again. Grey images come back as 3 equal channels and PNG
    alpha is dropped; 16-bit PNGs are reduced to 8 bits by OpenCV.
    """
    words = set(_FORMAT_WORDS.findall(str(format).lower()))
    if "compresseddepth" in words or (
        words & {"tiff", "tif", "webp", "bmp", "jp2", "exr", "hdr", "pgm", "ppm", "pnm"}
        and not words & {"jpeg", "jpg", "png"}
    ):
        raise ImageDecodeError(
            "unsupported_format",
            f"CompressedImage format {format!r} is not a JPEG/PNG colour image",
        )
    buf = _as_bytes_array(data)
    if buf.size == 0:
        raise ImageDecodeError("decode_failed", f"empty CompressedImage data (format {format!r})")
    head = buf[:65536].tobytes()  # the SOF is within the first few kB in practice
    if not (head.startswith(_JPEG_MAGIC) or head.startswith(_PNG_MAGIC)):
        raise ImageDecodeError(
            "decode_failed",
            f"data ({buf.size} bytes, starts {head[:8].hex()}) is neither JPEG nor PNG "
            f"(format {format!r})",
        )
    size = _header_size(head)
    if size is not None:
        w, h = size
        if w * h > max_pixels:
            raise ImageDecodeError(
                "too_large",
                f"compressed image header says {w}x{h} = {w * h} pixels, exceeds "
                f"max_pixels={max_pixels}",
            )
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(
            "decode_failed", f"cv2.imdecode failed on {buf.size} bytes (format {format!r})"
        )
    h, w = bgr.shape[:2]
    if w * h > max_pixels:
        raise ImageDecodeError(
            "too_large", f"decoded image {w}x{h} = {w * h} pixels exceeds max_pixels={max_pixels}"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- encoding


def _check_rgb(rgb: Any) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageDecodeError(
            "bad_input",
            f"expected an (H, W, 3) RGB array, got {getattr(rgb, 'shape', type(rgb).__name__)}",
        )
    if rgb.dtype != np.uint8:
        raise ImageDecodeError("bad_input", f"expected dtype uint8, got {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageDecodeError("zero_size", f"empty image of shape {rgb.shape}")
    # cv2 needs contiguous pixels; also removes negative strides (e.g. bgr[..., ::-1]).
    return np.ascontiguousarray(rgb)


def _rgb_to_yuv422_numpy(rgb: np.ndarray, uyvy: bool) -> np.ndarray:
    """BT.601 limited-range RGB -> YUYV/UYVY, the inverse of OpenCV's ``YUV2RGB_YUYV``.

    Fallback for OpenCV < 4.10, which lacks ``COLOR_RGB2YUV_YUYV``. Chroma is taken from the
    average of each horizontal pixel pair, as OpenCV does. Agrees with OpenCV to 1 level.
    """
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    pair = 0.5 * (f[:, 0::2] + f[:, 1::2])
    pr, pg, pb = pair[..., 0], pair[..., 1], pair[..., 2]
    u = 128.0 + (-37.797 * pr - 74.203 * pg + 112.0 * pb) / 255.0
    v = 128.0 + (112.0 * pr - 93.786 * pg - 18.214 * pb) / 255.0
    h, w = y.shape
    out = np.empty((h, w, 2), dtype=np.float32)
    out[:, :, 0] = y
    out[:, 0::2, 1] = u
    out[:, 1::2, 1] = v
    if uyvy:
        out = out[:, :, ::-1]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rgb_to_raw(rgb: np.ndarray, encoding: str, *, is_bigendian: int = 0) -> tuple[bytes, int]:
    """Encode an ``(H, W, 3)`` RGB uint8 array as ``sensor_msgs/Image`` ``(data, step)``.

    Rows are unpadded (``step = width * bytes_per_pixel``). ``mono8``/``mono16`` use the
    BT.601 luma (``cv2.COLOR_RGB2GRAY``); ``mono16`` is ``gray * 257`` so that ``>> 8``
    recovers ``gray`` exactly, little-endian unless ``is_bigendian``. Alpha is 255. YUV
    outputs are BT.601 limited range with horizontally (4:2:2) or 2x2 (NV12/NV21) averaged
    chroma, matching what :func:`raw_to_rgb` decodes. Bad input raises
    :class:`ImageDecodeError` (``bad_input``, ``zero_size``, ``odd_size``,
    ``unknown_encoding``).
    """
    family, bpp = _lookup(encoding)
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if family in ("yuyv", "uyvy") and w % 2:
        raise ImageDecodeError("odd_size", f"YUV 4:2:2 ({encoding}) needs an even width, got {w}")
    if family in ("nv12", "nv21") and (w % 2 or h % 2):
        raise ImageDecodeError("odd_size", f"{encoding} needs even width and height, got {w}x{h}")

    if family == "rgb":
        out = rgb
    elif family == "bgr":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif family == "rgba":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    elif family == "bgra":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    elif family == "mono8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif family == "mono16":
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        out = (gray.astype(np.uint16) * np.uint16(257)).astype(">u2" if is_bigendian else "<u2")
    elif family in ("yuyv", "uyvy"):
        code = _CV_RGB2YUYV if family == "yuyv" else _CV_RGB2UYVY
        if code is not None:
            out = cv2.cvtColor(rgb, code)
        else:  # pragma: no cover - exercised directly by the tests on any OpenCV
            out = _rgb_to_yuv422_numpy(rgb, uyvy=family == "uyvy")
    elif family in ("nv12", "nv21"):
        # OpenCV has RGB -> I420 (planar Y, U, V) but no RGB -> NV12; interleave the planes.
        i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
        n, q = h * w, (h // 2) * (w // 2)
        u, v = i420[n : n + q], i420[n + q : n + 2 * q]
        out = np.empty(n + 2 * q, dtype=np.uint8)
        out[:n] = i420[:n]
        out[n + 0 :: 2] = u if family == "nv12" else v
        out[n + 1 :: 2] = v if family == "nv12" else u
    else:  # pragma: no cover
        raise AssertionError(f"unhandled family {family}")
    return out.tobytes(), w * bpp


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode an ``(H, W, 3)`` RGB uint8 array as JPEG or PNG bytes for a CompressedImage.

    ``quality`` (0..100) is the JPEG quality and is ignored for PNG. The matching ROS
    ``format`` field is e.g. ``"rgb8; jpeg compressed bgr8"`` (the file stores BGR, as
    image_transport's compressed plugin does; :func:`compressed_to_rgb` handles it).
    """
    rgb = _check_rgb(rgb)
    f = str(fmt).strip().lower()
    if f in ("jpeg", "jpg"):
        if not 0 <= int(quality) <= 100:
            raise ImageDecodeError("bad_input", f"JPEG quality={quality} not in 0..100")
        ext, params = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif f == "png":
        ext, params = ".png", []
    else:
        raise ImageDecodeError("unsupported_format", f"fmt={fmt!r}; use 'jpeg' or 'png'")
    ok, enc = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - imencode fails only on unsupported builds
        raise ImageDecodeError("decode_failed", f"cv2.imencode({ext!r}) failed")
    return enc.tobytes()


def validate_frame(rgb: object) -> np.ndarray:
    """Reject what is not an HxWx3 uint8 image with a ValueError that names the problem."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"image dtype must be uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image shape must be (H, W, 3), got {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"image is empty: shape {rgb.shape}")
    return rgb
