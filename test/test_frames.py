"""Frame sources (mocap_ros.io.frames): generated videos, real photos, sources that vanish.

The only fake here is the V4L2 camera (no USB camera exists on test machines): it stands
behind the same Capture interface as cv2.VideoCapture, so the re-open logic it drives is the
code a real camera runs.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mocap_ros.io.frames import (
    CameraSource,
    ImageFolderSource,
    SourceUnavailableError,
    VideoFileSource,
    classify_source,
    open_source,
)

pytestmark = pytest.mark.timeout(60)

N_FRAMES = 12
FPS = 25.0
SIZE = (160, 120)  # width, height


def _level(i: int) -> int:
    return 10 + 18 * i  # distinct flat grey per frame: the frame's identity survives codecs


def write_video(path: Path, fourcc: str, n: int = N_FRAMES, fps: float = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path.suffix}"
    for i in range(n):
        writer.write(np.full((SIZE[1], SIZE[0], 3), _level(i), np.uint8))
    writer.release()
    return path


def identity(frame_image: np.ndarray) -> int:
    """Which generated frame this is, from its grey level."""
    return round((float(frame_image.mean()) - 10) / 18)


def read_all(source, limit: int = 1000, timeout: float = 2.0) -> list:
    frames = []
    while len(frames) < limit:
        f = source.read(timeout=timeout)
        if f is None:
            break
        frames.append(f)
    return frames


@pytest.fixture
def mp4(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", "mp4v")


def find_real_frames() -> Path | None:
    """shared/real_images/video/...: 5 consecutive real 1280x720 JPEG frames, or None.

    shared/ lies beside the checkout (CI, the main checkout) or beside its worktrees' folder.
    """
    root = Path(__file__).resolve().parents[1]
    for base in (root.parent / "shared", root.parent.parent / "shared"):
        d = base / "real_images" / "video" / "posetrack18_000001_mpiinew_test"
        if d.is_dir():
            return d
    return None


@pytest.fixture
def real_frames_dir() -> Path:
    d = find_real_frames()
    if d is None:
        pytest.skip("real photos not found: shared/real_images beside the checkout is absent")
    return d


# ---------------------------------------------------------------------------- video files


def test_video_file_frames_stamps_and_container_timestamps(mp4):
    src = VideoFileSource(mp4, realtime=False)
    frames = read_all(src)
    assert len(frames) == N_FRAMES
    assert [identity(f.image) for f in frames] == list(range(N_FRAMES))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert all(f.image.shape == (SIZE[1], SIZE[0], 3) for f in frames)
    # container timestamps: frame i at i / fps
    np.testing.assert_allclose([f.media_time for f in frames],
                               np.arange(N_FRAMES) / FPS, atol=1e-3)
    stamps = [f.stamp for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    st = src.status()
    assert (st.state, st.frames, st.lost, st.kind) == ("ended", N_FRAMES, 0, "video")
    assert st.granted["frames"] == str(N_FRAMES) and st.granted["codec"] == "FMP4"
    assert src.ended and src.read(timeout=0.1) is None


def test_video_file_loops(mp4):
    src = VideoFileSource(mp4, loop=True, realtime=False)
    frames = read_all(src, limit=2 * N_FRAMES + 5)
    assert [identity(f.image) for f in frames] == \
        [i % N_FRAMES for i in range(2 * N_FRAMES + 5)]
    assert [f.loop for f in frames[N_FRAMES - 1:N_FRAMES + 1]] == [0, 1]
    assert frames[-1].loop == 2 and src.status().loops == 2
    stamps = [f.stamp for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert src.status().state == "streaming"


def test_realtime_playback_is_paced_by_the_timestamps(mp4):
    src = VideoFileSource(mp4, realtime=True)
    frames = read_all(src)
    assert len(frames) == N_FRAMES
    # a lower bound only (waits never end early): 11 periods of 40 ms between first and last
    span = frames[-1].stamp - frames[0].stamp
    assert span >= (N_FRAMES - 1) / FPS - 0.005, span


def test_mjpg_video_passes_the_jpeg_bytes_through(tmp_path):
    avi = write_video(tmp_path / "clip.avi", "MJPG")
    plain = read_all(VideoFileSource(avi, realtime=False))
    src = VideoFileSource(avi, realtime=False, jpeg_passthrough=True)
    frames = read_all(src)
    assert src.status().jpeg_passthrough
    assert len(frames) == len(plain) == N_FRAMES
    for f, p in zip(frames, plain, strict=True):
        assert f.jpeg is not None and f.jpeg[:3] == b"\xff\xd8\xff"
        # the raw image is exactly the pass-through JPEG decoded ...
        decoded = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(decoded, f.image)
        # ... and the same picture FFmpeg's own decoder gives
        assert np.abs(f.image.astype(int) - p.image.astype(int)).mean() < 3
    np.testing.assert_allclose([f.media_time for f in frames], [p.media_time for p in plain])


def test_passthrough_of_a_non_mjpg_video_is_refused_and_said(mp4):
    src = VideoFileSource(mp4, realtime=False, jpeg_passthrough=True)
    f = src.read()
    assert f is not None and f.jpeg is None and identity(f.image) == 0
    st = src.status()
    assert not st.jpeg_passthrough and "needs an MJPG video" in st.message


def test_video_moved_away_mid_stream_is_lost_then_resumes(mp4, tmp_path):
    src = VideoFileSource(mp4, realtime=False, backoff_max=0.5)
    first = [src.read() for _ in range(4)]
    away = tmp_path / "elsewhere.mp4"
    mp4.rename(away)
    assert src.read(timeout=0.3) is None
    st = src.status()
    assert st.state == "lost" and st.lost == 1 and "moved away" in st.message
    assert src.read(timeout=0.6) is None  # still gone: re-open attempts fail, no crash
    assert src.status().read_errors >= 2
    away.rename(mp4)
    rest = read_all(src, timeout=3.0)
    # nothing repeated, nothing skipped: it resumes at the frame after the last delivered
    assert [identity(f.image) for f in first + rest] == list(range(N_FRAMES))
    np.testing.assert_allclose([f.media_time for f in rest],
                               np.arange(4, N_FRAMES) / FPS, atol=1e-3)
    st = src.status()
    assert (st.reopened, st.state, st.frames) == (1, "ended", N_FRAMES)


def test_missing_video_is_an_error_at_once(tmp_path):
    """Issue 21 item 4: a video file that is not there is refused by name at once (it was
    retried forever: "video file nope.mp4 not found; retrying")."""
    with pytest.raises(ValueError, match=r"video file .*later\.mp4.* not found"):
        open_source(str(tmp_path / "later.mp4"), realtime=False, backoff_max=0.25)


def test_a_file_that_is_not_a_video_is_reported(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    src = VideoFileSource(bogus, realtime=False)
    assert src.read(timeout=0.3) is None
    st = src.status()
    assert st.state == "opening" and "cannot open" in st.message and st.read_errors >= 1


# ---------------------------------------------------------------------------- image folders


def _real_folder(real_frames_dir: Path, dest: Path) -> list[Path]:
    """The 5 real frames under names whose text order is not their number order."""
    originals = sorted(real_frames_dir.glob("*.jpg"))
    assert len(originals) == 5
    dest.mkdir()
    for n, src in zip((1, 2, 9, 10, 100), originals, strict=True):
        shutil.copyfile(src, dest / f"frame{n}.jpg")
    return originals


def test_image_folder_of_real_photos(real_frames_dir, tmp_path):
    originals = _real_folder(real_frames_dir, tmp_path / "frames")
    src = ImageFolderSource(tmp_path / "frames", fps=10.0, realtime=False)
    frames = read_all(src)
    assert len(frames) == 5
    assert [f.name for f in frames] == ["frame1.jpg", "frame2.jpg", "frame9.jpg", "frame10.jpg",
                                        "frame100.jpg"]
    for f, orig in zip(frames, originals, strict=True):
        assert f.jpeg == orig.read_bytes()  # pass-through is the file itself
        assert np.array_equal(f.image, cv2.imread(str(orig)))
        assert f.image.shape == (720, 1280, 3)
    np.testing.assert_allclose([f.media_time for f in frames], np.arange(5) / 10.0)
    stamps = [f.stamp for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert src.status().state == "ended" and src.status().jpeg_passthrough


def test_image_folder_loops_and_drops_unreadable_files(real_frames_dir, tmp_path):
    _real_folder(real_frames_dir, tmp_path / "frames")
    (tmp_path / "frames" / "frame5.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    src = ImageFolderSource(tmp_path / "frames", fps=30.0, loop=True, realtime=False)
    frames = read_all(src, limit=12)
    names = [f.name for f in frames]
    assert names[:5] == ["frame1.jpg", "frame2.jpg", "frame9.jpg", "frame10.jpg", "frame100.jpg"]
    assert names[5:10] == names[:5] and frames[5].loop == 1
    st = src.status()
    assert st.dropped >= 2 and "frame5.png" in st.message  # once per pass, counted
    assert not st.jpeg_passthrough  # a .png in the folder: not every frame is a JPEG


def test_image_folder_moved_away_and_back(real_frames_dir, tmp_path):
    _real_folder(real_frames_dir, tmp_path / "frames")
    src = ImageFolderSource(tmp_path / "frames", fps=30.0, realtime=False, backoff_max=0.25)
    got = [src.read().name for _ in range(2)]
    (tmp_path / "frames").rename(tmp_path / "away")
    assert src.read(timeout=0.3) is None
    assert src.status().state == "lost" and "moved away" in src.status().message
    (tmp_path / "away").rename(tmp_path / "frames")
    got += [f.name for f in read_all(src, timeout=3.0)]
    assert got == ["frame1.jpg", "frame2.jpg", "frame9.jpg", "frame10.jpg", "frame100.jpg"]
    assert src.status().reopened == 1


def test_empty_folder_is_reported_not_fatal(tmp_path):
    (tmp_path / "empty").mkdir()
    src = ImageFolderSource(tmp_path / "empty", fps=5.0, realtime=False)
    assert src.read(timeout=0.2) is None
    assert "no images" in src.status().message
    with pytest.raises(ValueError, match="fps > 0"):
        ImageFolderSource(tmp_path / "empty", fps=0.0)


# ---------------------------------------------------------------------------- V4L2 camera


class FakeCamera:
    """A USB camera that can be unplugged: what OpenCV's V4L2 backend shows of one.

    Grants only the modes in ``modes`` (nearest size, its fps), delivers MJPG as one row of
    JPEG bytes when CONVERT_RGB is off (as cap_v4l.cpp does), and stamps buffers with
    CLOCK_MONOTONIC like the UVC driver.
    """

    MJPG = cv2.VideoWriter_fourcc(*"MJPG")
    YUYV = cv2.VideoWriter_fourcc(*"YUYV")

    def __init__(self, modes: dict[tuple[str, int, int], float]) -> None:
        self.modes = modes
        self.plugged = True
        self.opens = 0
        self.sets: list[tuple[int, float]] = []
        self.produced = 0
        self.capture_age = 0.02  # s between the exposure and the read

    def open(self, device: int | str) -> FakeCapture:
        if not self.plugged:  # like open_v4l2: the /dev/videoN node is gone
            raise SourceUnavailableError(f"/dev/video{device} does not exist")
        self.opens += 1
        return FakeCapture(self)


class FakeCapture:
    def __init__(self, cam: FakeCamera) -> None:
        self.cam = cam
        fmt, w, h = next(iter(cam.modes))
        self.fourcc, self.w, self.h = cv2.VideoWriter_fourcc(*fmt), w, h
        self.fps = cam.modes[(fmt, w, h)]
        self.convert = True
        self.opened = True
        self.last_ts = 0.0

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def _apply(self, fmt: str, w: int, h: int) -> None:
        avail = [m for m in self.cam.modes if m[0] == fmt] or list(self.cam.modes)
        best = min(avail, key=lambda m: abs(m[1] - w) + abs(m[2] - h))
        self.fourcc, self.w, self.h = cv2.VideoWriter_fourcc(*best[0]), best[1], best[2]
        self.fps = self.cam.modes[best]

    def _fmt(self) -> str:
        return int(self.fourcc).to_bytes(4, "little").decode()

    def set(self, prop: int, value: float) -> bool:
        self.cam.sets.append((prop, value))
        if prop == cv2.CAP_PROP_FOURCC:
            self._apply(int(value).to_bytes(4, "little").decode(), self.w, self.h)
        elif prop == cv2.CAP_PROP_FRAME_WIDTH:
            self._apply(self._fmt(), int(value), self.h)
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            self._apply(self._fmt(), self.w, int(value))
        elif prop == cv2.CAP_PROP_CONVERT_RGB:
            if not value and self._fmt() != "MJPG":
                return True  # V4L2 hands out raw YUYV then; the source only asks for MJPG
            self.convert = bool(value)
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FOURCC: float(self.fourcc), cv2.CAP_PROP_FRAME_WIDTH: self.w,
                cv2.CAP_PROP_FRAME_HEIGHT: self.h, cv2.CAP_PROP_FPS: self.fps,
                cv2.CAP_PROP_POS_MSEC: self.last_ts * 1000.0}.get(prop, -1.0)

    def read(self):
        if not self.cam.plugged or not self.opened:
            return False, None
        i = self.cam.produced
        self.cam.produced += 1
        img = np.full((self.h, self.w, 3), _level(i % 14), np.uint8)
        self.last_ts = time.monotonic() - self.cam.capture_age
        if self._fmt() == "MJPG" and not self.convert:
            _ok, enc = cv2.imencode(".jpg", img)
            return True, enc.reshape(1, -1)
        return True, img

    def release(self) -> None:
        self.opened = False


def test_camera_reports_requested_and_granted_format():
    cam = FakeCamera({("YUYV", 640, 480): 30.0, ("YUYV", 320, 240): 30.0})
    src = CameraSource(0, pixel_format="MJPG", width=1280, height=720, fps=60,
                       opener=cam.open)
    f = src.read(timeout=1.0)
    assert f is not None and f.image.shape == (480, 640, 3) and f.media_time is None
    st = src.status()
    assert st.requested == {"pixel_format": "MJPG", "width": "1280", "height": "720",
                            "fps": "60"}
    assert st.granted == {"pixel_format": "YUYV", "width": "640", "height": "480", "fps": "30"}
    assert "asked pixel_format MJPG, width 1280, height 720, fps 60" in st.message
    # the format went in before the size (a V4L2 format change resets the size)
    props = [p for p, _ in cam.sets]
    assert props.index(cv2.CAP_PROP_FOURCC) < props.index(cv2.CAP_PROP_FRAME_WIDTH)


def test_camera_stamps_at_capture_from_the_buffer_timestamp():
    cam = FakeCamera({("YUYV", 640, 480): 30.0})
    cam.capture_age = 0.2
    src = CameraSource(0, pixel_format="YUYV", opener=cam.open)
    before = time.time()
    f = src.read(timeout=1.0)
    # stamped when the buffer was filled (0.2 s before the read), not when read
    assert f.stamp <= before - 0.15


def test_camera_mjpg_passthrough():
    cam = FakeCamera({("MJPG", 640, 480): 30.0, ("YUYV", 640, 480): 10.0})
    src = CameraSource("/dev/video7", pixel_format="MJPG", jpeg_passthrough=True,
                       opener=cam.open)
    f = src.read(timeout=1.0)
    assert src.status().jpeg_passthrough and f.jpeg[:3] == b"\xff\xd8\xff"
    assert np.array_equal(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR),
                          f.image)
    assert (cv2.CAP_PROP_CONVERT_RGB, 0) in cam.sets
    # YUYV: nothing to pass through; said so, frames still come
    src2 = CameraSource(0, pixel_format="YUYV", jpeg_passthrough=True, opener=cam.open)
    f2 = src2.read(timeout=1.0)
    assert f2.jpeg is None and f2.image.shape == (480, 640, 3)
    assert "pass-through unavailable" in src2.status().message


def test_camera_unplugged_is_reported_and_reopened_with_backoff():
    cam = FakeCamera({("MJPG", 640, 480): 30.0})
    src = CameraSource(0, opener=cam.open, backoff_max=0.5)
    got = [src.read(timeout=1.0) for _ in range(3)]
    assert all(f is not None for f in got)
    cam.plugged = False
    assert src.read(timeout=0.2) is None
    st = src.status()
    assert st.state == "lost" and st.lost == 1 and "unplugged" in st.message
    # 1.2 s unplugged: attempts back off (0.25, 0.5, 0.5 s ...), each one counted, no crash
    t_end = time.monotonic() + 1.2
    while time.monotonic() < t_end:
        assert src.read(timeout=0.1) is None
    st = src.status()
    assert st.state == "lost" and st.read_errors >= 3 and "does not exist" in st.message
    assert cam.opens == 1  # no successful open while unplugged
    cam.plugged = True
    f = src.read(timeout=2.0)
    assert f is not None and f.index == 3
    st = src.status()
    assert (st.state, st.reopened, cam.opens) == ("streaming", 1, 2)
    # the format was requested again on the new handle
    assert [p for p, _ in cam.sets].count(cv2.CAP_PROP_FOURCC) == 2
    src.close()
    assert src.status().state == "closed" and src.read(timeout=0.1) is None


def test_interrupt_wakes_a_waiting_reader():
    cam = FakeCamera({("MJPG", 640, 480): 30.0})
    cam.plugged = False
    src = CameraSource(0, opener=cam.open, backoff_max=5.0)
    src.read(timeout=0.05)
    src.interrupt()
    t0 = time.monotonic()
    assert src.read(timeout=5.0) is None
    assert time.monotonic() - t0 < 4.0  # returned on the interrupt, not the 5 s timeout


# ---------------------------------------------------------------------------- classification


def test_classify_source(tmp_path, mp4):
    assert classify_source("0") == ("camera", 0)
    assert classify_source(" 2 ") == ("camera", 2)
    assert classify_source("/dev/video4") == ("camera", "/dev/video4")
    assert classify_source(str(mp4)) == ("video", str(mp4))
    assert classify_source(str(tmp_path)) == ("folder", str(tmp_path))
    with pytest.raises(ValueError, match="not found"):
        classify_source(str(tmp_path / "later.mkv"))
    assert classify_source(str(tmp_path / "later") + "/")[0] == "folder"
    with pytest.raises(ValueError, match="does not exist"):
        classify_source(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="empty"):
        classify_source("")
    with pytest.raises(ValueError, match="pixel_format"):
        CameraSource(0, pixel_format="H264")
