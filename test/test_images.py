"""mocap_ros.io.images: ROS image fields <-> RGB arrays, on a real photo, without cv_bridge."""

from __future__ import annotations

import array
import pickle

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mocap_ros.io.images import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    _header_size,
    _rgb_to_yuv422_numpy,
    compressed_to_rgb,
    raw_to_rgb,
    rgb_to_compressed,
    rgb_to_raw,
)


def _photo() -> np.ndarray:
    """A real 512x512 RGB photo (skimage's astronaut); a structured synthetic image if absent."""
    try:
        from skimage.data import astronaut

        return np.ascontiguousarray(astronaut()[:, :, :3])
    except Exception:  # pragma: no cover - scikit-image is a dev dependency
        yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)
        img = np.stack([xx / 2, yy / 2, 128 + 127 * np.sin(xx / 9) * np.cos(yy / 13)], axis=-1)
        img[100:300, 200:240] = (250, 10, 10)  # hard edges, like a real scene
        return np.clip(img, 0, 255).astype(np.uint8)


PHOTO = _photo()
H, W = PHOTO.shape[:2]
GRAY = np.repeat(cv2.cvtColor(PHOTO, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)

EXACT = ("rgb8", "bgr8", "rgba8", "bgra8", "8UC3", "8UC4")
MONO = ("mono8", "mono16", "8UC1")
YUV422 = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")
NV = ("nv12", "nv21")


def _rows(encoding: str, height: int) -> int:
    return height * 3 // 2 if encoding.lower() in NV else height


def _pad(data: bytes, step: int, rows: int, extra: int) -> tuple[bytes, int]:
    """Re-lay ``data`` with ``extra`` garbage bytes at the end of every row."""
    a = np.frombuffer(data, np.uint8).reshape(rows, step)
    padded = np.full((rows, step + extra), 0xA5, np.uint8)
    padded[:, :step] = a
    return padded.tobytes(), step + extra


def _err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


def test_supported_encodings_cover_the_table():
    assert set(EXACT + MONO + YUV422 + NV) == set(SUPPORTED_ENCODINGS)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("encoding", EXACT)
def test_roundtrip_exact(encoding):
    data, step = rgb_to_raw(PHOTO, encoding)
    assert step == W * (4 if "a8" in encoding or "4" in encoding else 3)
    assert len(data) == step * H
    out = raw_to_rgb(data, W, H, encoding, step)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, PHOTO)


@pytest.mark.parametrize("encoding", MONO)
def test_mono_roundtrip_of_gray_is_exact_and_colour_gives_bt601_luma(encoding):
    data, step = rgb_to_raw(GRAY, encoding)
    np.testing.assert_array_equal(raw_to_rgb(data, W, H, encoding, step), GRAY)
    data, step = rgb_to_raw(PHOTO, encoding)
    np.testing.assert_array_equal(raw_to_rgb(data, W, H, encoding, step), GRAY)


@pytest.mark.parametrize("encoding", YUV422 + NV)
def test_yuv_roundtrip_error_is_codec_rounding_plus_chroma_subsampling(encoding):
    # Measured on the astronaut with OpenCV 5.0: 4:2:2 max 43 / mean 1.09, 4:2:0 max 96 /
    # mean 1.63 -- the large maxima are chroma subsampling at sharp colour edges, not bugs.
    data, step = rgb_to_raw(PHOTO, encoding)
    out = raw_to_rgb(data, W, H, encoding, step)
    err = _err(out, PHOTO)
    assert err.mean() < (1.25 if encoding in YUV422 else 1.8)
    # Without chroma detail to lose (grey, or pixels duplicated over each chroma block) only
    # the BT.601 8-bit rounding remains: measured 1 (grey) and 2 (duplicated).
    data, step = rgb_to_raw(GRAY, encoding)
    assert _err(raw_to_rgb(data, W, H, encoding, step), GRAY).max() <= 1
    block = np.repeat(PHOTO[::2, ::2], 2, axis=1)
    if encoding in NV:
        block = np.repeat(block, 2, axis=0)
    data, step = rgb_to_raw(block, encoding)
    hb, wb = block.shape[:2]
    assert _err(raw_to_rgb(data, wb, hb, encoding, step), block).max() <= 2


def test_ros_yuv422_means_uyvy_and_nv12_nv21_chroma_order():
    """Hand-built bytes for pure red (BT.601 limited: Y=82, U=90, V=240), not via rgb_to_raw."""
    red = np.array([255, 0, 0])
    uyvy = bytes([90, 82, 240, 82]) * 4  # 8x1 image
    yuyv = bytes([82, 90, 82, 240]) * 4
    for enc, data in (("yuv422", uyvy), ("uyvy", uyvy), ("yuyv", yuyv), ("yuv422_yuy2", yuyv)):
        out = raw_to_rgb(data, 8, 1, enc, 16)
        assert _err(out, red[None, None]).max() <= 2, enc
    assert _err(raw_to_rgb(yuyv, 8, 1, "yuv422", 16), red[None, None]).max() > 100
    y_plane = bytes([82]) * 8  # 4x2 image
    for enc, uv in (("nv12", bytes([90, 240]) * 2), ("nv21", bytes([240, 90]) * 2)):
        out = raw_to_rgb(y_plane + uv, 4, 2, enc, 4)
        assert _err(out, red[None, None]).max() <= 2, enc


def test_numpy_yuv422_fallback_matches_opencv():
    for uyvy, name in ((False, "COLOR_RGB2YUV_YUYV"), (True, "COLOR_RGB2YUV_UYVY")):
        mine = _rgb_to_yuv422_numpy(PHOTO, uyvy=uyvy)
        # Decoding it must be as good as decoding OpenCV's own encoder output.
        code = cv2.COLOR_YUV2RGB_UYVY if uyvy else cv2.COLOR_YUV2RGB_YUYV
        assert _err(cv2.cvtColor(mine, code), PHOTO).mean() < 1.25
        if hasattr(cv2, name):  # OpenCV >= 4.10
            ref = cv2.cvtColor(PHOTO, getattr(cv2, name))
            assert _err(mine, ref).max() <= 1
            assert (mine != ref).mean() < 0.05  # measured 0.026: fixed-point vs float rounding


def test_jpeg_and_png_roundtrip():
    jpg = rgb_to_compressed(PHOTO, "jpeg", quality=90)
    out = compressed_to_rgb(jpg, "rgb8; jpeg compressed bgr8")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    err = _err(out, PHOTO)
    # Measured at q90 (libjpeg-turbo in opencv-python 5.0): mean 2.37, p99 14, max 58.
    assert err.mean() < 2.6
    assert np.percentile(err, 99) <= 16
    # Colours not swapped: the per-channel means survive JPEG to within a level.
    assert _err(out.mean(axis=(0, 1)), PHOTO.mean(axis=(0, 1))).max() <= 1
    png = rgb_to_compressed(PHOTO, "png")
    for fmt in ("png", "bgr8; png compressed bgr8", ""):
        np.testing.assert_array_equal(compressed_to_rgb(png, fmt), PHOTO)
    # The format string is a hint only; the codec comes from the magic bytes.
    assert compressed_to_rgb(jpg, "png").shape == (H, W, 3)


def test_compressed_grey_jpeg_gives_three_channels():
    ok, enc = cv2.imencode(".jpg", GRAY[:, :, 0])
    assert ok
    out = compressed_to_rgb(enc.tobytes(), "mono8; jpeg compressed mono8")
    assert out.shape == (H, W, 3)
    assert (out[:, :, 0] == out[:, :, 1]).all()


def test_header_size_peek_reads_real_files():
    small = PHOTO[:37, :53]
    assert _header_size(rgb_to_compressed(small, "jpeg")) == (53, 37)
    assert _header_size(rgb_to_compressed(small, "png")) == (53, 37)


# ------------------------------------------------------------------ strides and copies


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_padded_step_gives_the_same_image(encoding):
    data, step = rgb_to_raw(PHOTO, encoding)
    ref = raw_to_rgb(data, W, H, encoding, step)
    padded, pstep = _pad(data, step, _rows(encoding, H), extra=13)
    out = raw_to_rgb(padded, W, H, encoding, pstep)
    np.testing.assert_array_equal(out, ref)
    assert all(s > 0 for s in out.strides)


def test_unpadded_rgb8_is_a_zero_copy_view():
    data, step = rgb_to_raw(PHOTO, "rgb8")
    out = raw_to_rgb(data, W, H, "rgb8", step)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8))
    assert out.flags.c_contiguous and not out.flags.writeable  # a view of immutable bytes
    # Also zero-copy when padded (strided rows) and for rgba8 (alpha dropped by a view).
    padded, pstep = _pad(data, step, H, 13)
    out = raw_to_rgb(padded, W, H, "rgb8", pstep)
    assert np.shares_memory(out, np.frombuffer(padded, np.uint8))
    assert not out.flags.c_contiguous
    rgba, rstep = rgb_to_raw(PHOTO, "rgba8")
    assert np.shares_memory(raw_to_rgb(rgba, W, H, "rgba8", rstep), np.frombuffer(rgba, np.uint8))


def test_buffer_types_from_rclpy_rosbags_and_tests():
    data, step = rgb_to_raw(PHOTO, "bgr8")
    variants = (
        data,
        bytearray(data),
        memoryview(data),
        array.array("B", data),  # rclpy uint8[]
        np.frombuffer(data, np.uint8),  # rosbags uint8[]
        np.frombuffer(data, np.uint8).reshape(H, step),
        data + b"\x00" * 7,  # trailing bytes beyond step*height are ignored
    )
    for v in variants:
        np.testing.assert_array_equal(raw_to_rgb(v, W, H, "bgr8", step), PHOTO)
    assert raw_to_rgb(data, np.int64(W), np.int32(H), "BGR8", np.uint32(step)).shape == (H, W, 3)


def test_mono16_endianness():
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 65536, size=(31, 17), dtype=np.uint16)
    want = np.repeat((vals >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    big = vals.astype(">u2").tobytes()
    little = vals.astype("<u2").tobytes()
    np.testing.assert_array_equal(raw_to_rgb(big, 17, 31, "mono16", 34, is_bigendian=1), want)
    np.testing.assert_array_equal(raw_to_rgb(little, 17, 31, "mono16", 34, is_bigendian=0), want)
    assert not np.array_equal(raw_to_rgb(big, 17, 31, "mono16", 34, is_bigendian=0), want)
    # Padded big-endian rows.
    padded, pstep = _pad(big, 34, 31, 6)
    np.testing.assert_array_equal(raw_to_rgb(padded, 17, 31, "mono16", pstep, 1), want)
    # Encoder side: gray*257 in the requested byte order.
    data, step = rgb_to_raw(GRAY, "mono16", is_bigendian=1)
    assert np.array_equal(
        np.frombuffer(data, ">u2").reshape(H, W), GRAY[:, :, 0].astype(np.uint16) * 257
    )
    np.testing.assert_array_equal(raw_to_rgb(data, W, H, "mono16", step, is_bigendian=1), GRAY)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 48),
    height=st.integers(1, 48),
    extra=st.integers(0, 19),
    seed=st.integers(0, 2**32 - 1),
    encoding=st.sampled_from(("bgr8", "bgr8", "rgb8", "bgra8", "8UC3")),
)
def test_property_random_sizes_and_padding_roundtrip_exactly(width, height, extra, seed, encoding):
    img = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data, step = rgb_to_raw(img, encoding)
    padded, pstep = _pad(data, step, height, extra)
    np.testing.assert_array_equal(raw_to_rgb(padded, width, height, encoding, pstep), img)


# ------------------------------------------------------------------ malformed input


def _kind(fn, *args, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value)  # a message, not just a kind
    return info.value.kind


GOOD, GOOD_STEP = rgb_to_raw(PHOTO[:8, :8], "rgb8")


@pytest.mark.parametrize(
    ("kwargs", "kind", "mentions"),
    [
        ({"encoding": "bayer_rggb8"}, "unknown_encoding", "bayer_rggb8"),
        ({"encoding": "32FC1"}, "unknown_encoding", "32FC1"),
        ({"step": 23}, "step_mismatch", "step=23"),
        ({"step": -24}, "step_mismatch", "step=-24"),
        ({"data": GOOD[:-1]}, "size_mismatch", "191 bytes"),
        ({"step": 25}, "size_mismatch", "25*8"),  # padded step but data wasn't padded
        ({"width": 0}, "zero_size", "width=0"),
        ({"height": -3}, "zero_size", "height=-3"),
        ({"width": 8.0}, "zero_size", "width=8.0"),
        ({"max_pixels": 63}, "too_large", "max_pixels=63"),
        # Checked before the data length: a huge claimed size never reaches allocation.
        ({"width": 100_000, "height": 100_000, "step": 300_000}, "too_large", "100000"),
        ({"encoding": "yuv422", "width": 7, "step": 14}, "odd_size", "width=7"),
        ({"encoding": "yuyv", "width": 7, "step": 14}, "odd_size", "width=7"),
        ({"encoding": "nv12", "height": 7, "step": 8}, "odd_size", "height=7"),
    ],
)
def test_malformed_raw_raises_with_kind(kwargs, kind, mentions):
    args = {"data": GOOD, "width": 8, "height": 8, "encoding": "rgb8", "step": GOOD_STEP}
    args.update(kwargs)
    with pytest.raises(ImageDecodeError, match=mentions.replace("*", r"\*")) as info:
        raw_to_rgb(**args)
    assert info.value.kind == kind


def test_malformed_compressed_raises_with_kind():
    rng = np.random.default_rng(1)
    jpg = rgb_to_compressed(PHOTO[:64, :64], "jpeg")
    png = rgb_to_compressed(PHOTO[:64, :64], "png")
    assert _kind(compressed_to_rgb, rng.bytes(5000), "jpeg") == "decode_failed"
    assert _kind(compressed_to_rgb, b"", "jpeg") == "decode_failed"
    # Right magic, garbage body.
    assert _kind(compressed_to_rgb, jpg[:3] + rng.bytes(5000), "jpeg") == "decode_failed"
    assert _kind(compressed_to_rgb, png[:8] + rng.bytes(5000), "png") == "decode_failed"
    assert _kind(compressed_to_rgb, png, "16UC1; compressedDepth png") == "unsupported_format"
    assert _kind(compressed_to_rgb, png, "tiff") == "unsupported_format"
    # Size limit, from the header (before decoding) and for real files.
    assert _kind(compressed_to_rgb, jpg, "jpeg", max_pixels=64 * 64 - 1) == "too_large"
    assert _kind(compressed_to_rgb, png, "png", max_pixels=100) == "too_large"
    # A small file whose header claims 60000x60000: refused before cv2 sees it.
    sof = jpg.index(b"\xff\xc0")
    bomb = bytearray(jpg)
    bomb[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    assert _header_size(bytes(bomb)) == (60000, 60000)
    with pytest.raises(ImageDecodeError, match="60000x60000") as info:
        compressed_to_rgb(bytes(bomb), "jpeg")
    assert info.value.kind == "too_large"


def test_encoder_rejects_bad_input():
    assert _kind(rgb_to_raw, PHOTO, "bayer_rggb8") == "unknown_encoding"
    assert _kind(rgb_to_raw, PHOTO[:, :, 0], "rgb8") == "bad_input"
    assert _kind(rgb_to_raw, PHOTO.astype(np.float32), "rgb8") == "bad_input"
    assert _kind(rgb_to_raw, PHOTO[:, :0], "rgb8") == "zero_size"
    assert _kind(rgb_to_raw, PHOTO[:, :7], "yuv422") == "odd_size"
    assert _kind(rgb_to_raw, PHOTO[:7], "nv21") == "odd_size"
    assert _kind(rgb_to_compressed, PHOTO, "webp") == "unsupported_format"
    assert _kind(rgb_to_compressed, PHOTO, "jpeg", quality=101) == "bad_input"
    # Non-contiguous / negative-stride input is fine.
    data, step = rgb_to_raw(PHOTO[:, ::-1][:, :, ::-1][:, :, ::-1], "rgb8")
    np.testing.assert_array_equal(raw_to_rgb(data, W, H, "rgb8", step), PHOTO[:, ::-1])


def test_error_kind_survives_pickling():
    err = pickle.loads(pickle.dumps(ImageDecodeError("too_large", "msg")))
    assert err.kind == "too_large" and str(err) == "msg"
