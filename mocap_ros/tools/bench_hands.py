"""Benchmark: raw MediaPipe pose vs pose + both hands, per frame, on this machine's CPU.

    python -m mocap_ros.tools.bench_hands [--frames DIR] [--repeat N] [--warmup N] [--json]

Frames: every .jpg/.png in ``--frames`` (sorted), default the shared real-image pack's video
frames (``real_images/video/posetrack18_000001_mpiinew_test``), played ``--repeat`` times in
order (video mode, as the node runs). Both runs see the same frames; the first ``--warmup``
frames of each are not timed. Prints a table (ms/frame, the ratio, valid hands per frame,
the CPU model); ``--json`` prints the same numbers as one JSON object instead.
No timing is asserted anywhere: figures differ several-fold between machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

_DEFAULT_FRAMES = ("real_images", "video", "posetrack18_000001_mpiinew_test")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _default_frames_dir() -> Path | None:
    here = Path(__file__).resolve()
    for base in (*here.parents, Path("/work")):
        cand = base.joinpath("shared", *_DEFAULT_FRAMES)
        if cand.is_dir():
            return cand
    return None


def load_frames(folder: Path) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [np.asarray(Image.open(p).convert("RGB")) for p in files]


def run(frames: list[np.ndarray], warmup: int) -> dict[str, float | int | str]:
    from mocap_ros.estimation.detector import MediaPipePose
    from mocap_ros.estimation.hands.estimator import HandEstimator

    def timed(fn: Callable[[np.ndarray], object]) -> tuple[float, list]:
        outs = []
        for f in frames[:warmup]:
            fn(f)
        t0 = time.perf_counter()
        for f in frames[warmup:]:
            outs.append(fn(f))
        return (time.perf_counter() - t0) * 1e3 / max(1, len(frames) - warmup), outs

    pose = MediaPipePose()
    try:
        raw_ms, _ = timed(pose)
    finally:
        pose.close()
    pose = MediaPipePose()
    hands = HandEstimator(track=True)
    try:
        def both(f: np.ndarray) -> int:
            lms = pose(f)
            if lms is None:
                hands.reset()
                return 0
            out = hands.estimate_from_pose_landmarks(f, lms)
            return sum(r.valid for r in out.values())

        hands_ms, valid = timed(both)
    finally:
        pose.close()
        hands.close()
    return {"cpu": cpu_model(), "frames": len(frames) - warmup,
            "frame_size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
            "pose_ms": raw_ms, "pose_hands_ms": hands_ms, "ratio": hands_ms / raw_ms,
            "valid_hands_per_frame": float(np.mean(valid)) if valid else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, default=None, help="folder of .jpg/.png frames")
    ap.add_argument("--repeat", type=int, default=6, help="play the frames this many times")
    ap.add_argument("--warmup", type=int, default=3, help="untimed frames at the start")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    folder = args.frames or _default_frames_dir()
    if folder is None or not folder.is_dir():
        print("bench_hands: no frames: pass --frames DIR (the default, the shared "
              "real_images video frames, was not found)", file=sys.stderr)
        return 2
    frames = load_frames(folder) * max(1, args.repeat)
    if len(frames) <= args.warmup:
        print(f"bench_hands: {len(frames)} frames in {folder}, need more than --warmup "
              f"{args.warmup}", file=sys.stderr)
        return 2
    res = run(frames, args.warmup)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"CPU: {res['cpu']}   frames: {res['frames']} x {res['frame_size']} ({folder})")
    print(f"{'measure':<28}{'ms/frame':>10}")
    print(f"{'raw MediaPipe pose':<28}{res['pose_ms']:>10.1f}")
    print(f"{'pose + both hands':<28}{res['pose_hands_ms']:>10.1f}")
    print(f"{'ratio (hands / raw)':<28}{res['ratio']:>10.2f}")
    print(f"{'valid hands per frame':<28}{res['valid_hands_per_frame']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
