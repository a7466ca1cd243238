"""mocap-ros process on videos and image folders: CSV/JSONL rows = frames, renderings open
with the right frame count and size, the bag holds one image and one pose per frame."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest
from media_helpers import write_person_video
from test_frames import find_real_frames

from mocap_ros.core.config import MocapConfig
from mocap_ros.offline.video import detect_input, process_media

pytestmark = pytest.mark.timeout(120)
N, FPS, SIZE = 8, 15.0, 256


@pytest.fixture(scope="module")
def pipeline():
    from mocap_ros.estimation.factory import make_estimator

    est = make_estimator(MocapConfig())  # the default: landmarks, no licensed files needed
    yield est
    close = getattr(est, "close", None)
    if close:
        close()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _video_info(path: Path) -> tuple[int, int, int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    n = 0
    while cap.read()[0]:
        n += 1
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return n, w, h


def test_video_to_csv_jsonl_render_and_bag(pipeline, tmp_path):
    video = write_person_video(tmp_path / "clip.mp4", n=N, fps=FPS, size=SIZE)
    out = tmp_path / "out"
    s = process_media(video, csv_path=tmp_path / "p.csv", jsonl_path=tmp_path / "p.jsonl",
                      render=tmp_path / "r.mp4", out_bag=out, pipeline=pipeline,
                      progress=False)
    assert s.complete and s.frames == N and s.valid + s.invalid == N
    rows, objs = _csv_rows(tmp_path / "p.csv"), _jsonl(tmp_path / "p.jsonl")
    assert len(rows) == N and len(objs) == N
    # stamps are the video's timestamps: i / fps from 0
    stamps = [o["stamp"] for o in objs]
    assert stamps == pytest.approx([i / FPS for i in range(N)], abs=2e-3)
    assert [float(r["stamp"]) for r in rows] == pytest.approx(stamps, abs=1e-6)
    o = objs[0]
    assert len(o["joint_names"]) == 24 and len(o["joints"]) == 24
    assert len(o["keypoints_2d"]) == 48 and set(o["root_pose"]) == {"position", "orientation"}
    assert s.valid >= 1, "the astronaut photo should give a pose"
    assert _video_info(tmp_path / "r.mp4") == (N, SIZE, SIZE)

    from rosbags.highlevel import AnyReader

    with AnyReader([out]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/camera/image_raw/compressed"] == N and counts["/mocap/body_pose"] == N
    assert counts.get("/tf", 0) == s.valid


def test_real_photo_folder(pipeline, tmp_path):
    folder = find_real_frames()
    if folder is None:
        pytest.skip("real photos not found: shared/real_images beside the checkout is absent")
    n = len(list(folder.glob("*.jpg")))
    assert detect_input(folder) == "folder"
    s = process_media(folder, csv_path=tmp_path / "p.csv", jsonl_path=tmp_path / "p.jsonl",
                      render=tmp_path / "r.mp4", fps=10.0, pipeline=pipeline, progress=False)
    assert s.frames == n and (s.width, s.height) == (1280, 720)
    objs = _jsonl(tmp_path / "p.jsonl")
    assert len(_csv_rows(tmp_path / "p.csv")) == n and len(objs) == n
    assert [o["source"] for o in objs] == sorted(p.name for p in folder.glob("*.jpg"))
    assert [o["stamp"] for o in objs] == pytest.approx([i / 10.0 for i in range(n)])
    assert _video_info(tmp_path / "r.mp4") == (n, 1280, 720)
    # PNG folder rendering: one PNG per frame at the frame's size
    s2 = process_media(folder, render=tmp_path / "pngs", pipeline=pipeline, progress=False)
    pngs = sorted((tmp_path / "pngs").glob("*.png"))
    assert len(pngs) == s2.frames == n
    assert cv2.imread(str(pngs[0])).shape == (720, 1280, 3)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        detect_input(tmp_path / "nothing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a bag"):
        detect_input(tmp_path / "empty")
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(ValueError, match="no frame could be read"):
        process_media(fake, jsonl_path=tmp_path / "x.jsonl", progress=False)


def test_cli_process_video_and_bag_rules(tmp_path, capsys):
    from mocap_ros.cli.main import main

    video = write_person_video(tmp_path / "clip.mp4", n=3, fps=FPS, size=128)
    assert main(["process", str(video), "--jsonl", str(tmp_path / "a.jsonl"),
                 "--no-progress"]) == 0
    assert len(_jsonl(tmp_path / "a.jsonl")) == 3
    assert main(["process", str(video)]) == 1
    assert "nothing to write" in capsys.readouterr().err
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("x: 1\n")
    assert main(["process", str(bag), "--csv", str(tmp_path / "b.csv")]) == 1
    assert "needs --out" in capsys.readouterr().err
