"""Benchmark: raw MediaPipe pose vs the landmarks backend without and with both hands.

    python -m mocap_ros.tools.bench_hands [--frames DIR] [--repeat N] [--warmup N]
                                          [--hands-model full|lite] [--json]

Frames: every .jpg/.png in ``--frames`` (sorted), default the shared real-image pack's video
frames (``real_images/video/posetrack18_000001_mpiinew_test``), played ``--repeat`` times in
order (video mode, as the node runs). All three see the same frames; the first ``--warmup``
frames are not timed. Prints a table (median ms/frame, the ratios to raw pose against issue 13's
goals -- backend <= 1.1x, backend + both hands <= 1.6x --, the backend's own IK/placement
ms, valid hands and hand passes per frame, the CPU model and the load average before and
after, which on a shared machine says how much the figures can be trusted); ``--json``
prints the same numbers as JSON.
No timing is asserted anywhere: figures differ several-fold between machines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mocap_ros.tools.machine import cpu_model

_DEFAULT_FRAMES = ("real_images", "video", "posetrack18_000001_mpiinew_test")


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


# A hand with one of these reasons got no landmark pass (estimator: skipped before the model).
_NO_PASS = ("no_wrist", "out_of_view", "too_small", "disabled")


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


_ORDERS = tuple(itertools.permutations(range(3)))
GOAL_BACKEND = 1.1  # issue 13: the landmarks backend (hands off) <= 1.1x raw MediaPipe pose
GOAL_HANDS = 1.6  # ... and body + both hands <= 1.6x raw MediaPipe pose


def run(frames: list[np.ndarray], warmup: int, hands_model: str = "full"
        ) -> dict[str, Any]:
    """Raw MediaPipe pose, the landmarks backend with hands off and with hands on, each its
    own instance (its own video-mode tracking) over the same frames, run interleaved frame by
    frame so that another process's burst on a shared machine hits all three alike. The
    order cycles through all six permutations: a call right after another graph's call runs
    slower (its thread pool and caches), so no variant may always follow the same one (with
    a plain rotation raw pose followed the hands-on backend 2 frames in 3, which flattered
    both ratios)."""
    from mocap_ros.core.config import MocapConfig
    from mocap_ros.estimation.detector import MediaPipePose
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    pose = MediaPipePose()
    off = LandmarksBackend(MocapConfig(backend="landmarks"))
    on = LandmarksBackend(MocapConfig(backend="landmarks", hands=True, hands_model=hands_model))
    names = ("pose", "backend", "backend_hands")
    ms: dict[str, list[float]] = {n: [] for n in names}
    post: dict[str, list[float]] = {"backend": [], "backend_hands": []}
    hands_ms: list[float] = []
    valid_hands: list[int] = []
    passes: list[int] = []
    load_before = load_average()
    try:
        for i, f in enumerate(frames):
            outs = {}
            for k in _ORDERS[i % len(_ORDERS)]:
                name = names[k]
                fn = {"pose": pose, "backend": off.process, "backend_hands": on.process}[name]
                t0 = time.perf_counter()
                outs[name] = fn(f)
                dt = (time.perf_counter() - t0) * 1e3
                if i >= warmup:
                    ms[name].append(dt)
            if i < warmup:
                continue
            for name in post:
                post[name].append(outs[name].timings_ms.get("postprocess", 0.0))
            r = outs["backend_hands"]
            hands_ms.append(r.timings_ms.get("hands", 0.0))
            valid_hands.append(sum(bool(h is not None and h.valid)
                                   for h in (r.left_hand, r.right_hand)))
            passes.append(sum(bool(h is not None and h.reason not in _NO_PASS)
                              for h in (r.left_hand, r.right_hand)))
    finally:
        pose.close()
        off.close()
        on.close()
    # medians: a burst from another process on a shared machine moves a mean, not a median
    mean = {n: float(np.median(v)) for n, v in ms.items()}
    return {"cpu": cpu_model(), "frames": len(frames) - warmup,
            "frame_size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
            "pose_ms": mean["pose"], "backend_ms": mean["backend"],
            "backend_hands_ms": mean["backend_hands"],
            "backend_own_ms": float(np.median(post["backend"])),
            "hands_ms": float(np.median(hands_ms)),
            "ratio_backend": mean["backend"] / mean["pose"],
            "ratio_backend_hands": mean["backend_hands"] / mean["pose"],
            "goal_backend": GOAL_BACKEND, "goal_backend_hands": GOAL_HANDS,
            "valid_hands_per_frame": float(np.mean(valid_hands)) if valid_hands else 0.0,
            "hands_model": hands_model,
            "hand_passes_per_frame": float(np.mean(passes)) if passes else 0.0,
            "load_average_before": load_before, "load_average_after": load_average(),
            "cpu_count": os.cpu_count() or 0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, default=None, help="folder of .jpg/.png frames")
    ap.add_argument("--repeat", type=int, default=6, help="play the frames this many times")
    ap.add_argument("--warmup", type=int, default=3, help="untimed frames at the start")
    ap.add_argument("--hands-model", choices=("full", "lite"), default="full",
                    help="the hand landmark model of the hands-on backend (config hands_model)")
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
    res = run(frames, args.warmup, args.hands_model)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"CPU: {res['cpu']} x {res['cpu_count']}   load average (1/5/15 min) before "
          f"{res['load_average_before']}, after {res['load_average_after']}")
    print(f"frames: {res['frames']} x {res['frame_size']} ({folder})")
    print(f"{'measure':<40}{'ms/frame':>10}{'x raw':>8}{'goal':>7}")
    print(f"{'raw MediaPipe pose':<40}{res['pose_ms']:>10.1f}{1.0:>8.2f}")
    print(f"{'landmarks backend, hands off':<40}{res['backend_ms']:>10.1f}"
          f"{res['ratio_backend']:>8.2f}{GOAL_BACKEND:>7.2f}")
    print(f"{'  of which IK + placement + lift':<40}{res['backend_own_ms']:>10.1f}")
    label = f"landmarks backend, hands on ({res['hands_model']})"
    print(f"{label:<40}{res['backend_hands_ms']:>10.1f}"
          f"{res['ratio_backend_hands']:>8.2f}{GOAL_HANDS:>7.2f}")
    print(f"{'  of which the hand passes':<40}{res['hands_ms']:>10.1f}")
    print(f"{'valid hands per frame':<40}{res['valid_hands_per_frame']:>10.2f}")
    print(f"{'hand passes per frame':<40}{res['hand_passes_per_frame']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
