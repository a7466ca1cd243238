"""The mocap-ros command: the demo, the loop in one command (up) and arming it (teleop),
videos, folders and bags offline (process, replay, sample-bag), benchmarks, FrankMocap's
model files (assets) and the generated parameter pages (docs)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import numpy as np

from mocap_ros.cli.config_args import add_config_args, config_from_args, with_default_assets
from mocap_ros.core.config import MocapConfig
from mocap_ros.core.native_logs import VERBOSE_ENV, quiet_native_logs, verbose_from_env


def cmd_demo(args: argparse.Namespace) -> int:
    if args.robot:
        return _robot_demo(args)
    if not args.core:
        try:
            from mocap_ros.tools.demo import run_dds_demo
        except ImportError as exc:
            print(f"ROS 2 is not importable here ({exc}); running the core demo instead. "
                  "`make setup` builds the ROS side.")
        else:
            cfg = with_default_assets(config_from_args(args))
            overrides = {k: v for k, v in dataclasses.asdict(cfg).items()
                         if v != getattr(MocapConfig(), k)}
            code = run_dds_demo(cfg.assets_dir, frames=args.frames, rate_hz=args.rate,
                                overrides=overrides)
            print(next_steps())
            return code
    return _core_demo(args)


def _robot_demo(args: argparse.Namespace) -> int:
    import os

    # MuJoCo picks its OpenGL at import: off-screen EGL unless the user chose (osmesa, glfw)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from mocap_ros.tools.demo_robot import run_robot_demo

    cfg = with_default_assets(config_from_args(args))
    overrides = {k: v for k, v in dataclasses.asdict(cfg).items()
                 if v != getattr(MocapConfig(), k)}
    try:
        return run_robot_demo(cfg.assets_dir, robot=args.robot, script=args.script,
                              rate_hz=args.rate, out=args.out, video=args.video,
                              overrides=overrides)
    except ValueError as exc:
        print(f"mocap-ros demo: error: {exc}", file=sys.stderr)
        return 1


def cmd_bench_teleop(args: argparse.Namespace) -> int:
    from mocap_ros.tools.bench_teleop import run

    run(args.json, quick=args.quick)
    return 0


# What `make demo` ends with, 4 lines (in `bash scripts/in_env.sh bash`, mocap-ros is on PATH).
def next_steps() -> str:
    try:
        from mocap_ros.ros.up import sim_available

        sim = " --sim" if sim_available() else ""
    except ImportError:
        sim = ""
    return (
        "Try next: mocap-ros up --camera 0   (a USB camera; or /dev/video2, clip.mp4, frames/)\n"
        "  mocap-ros process clip.mp4 --render out.mp4 --jsonl poses.jsonl   (video or folder)\n"
        "  mocap-ros demo --robot g1   (a synthetic operator drives the simulated G1; then "
        f"you: mocap-ros up --camera 0 --teleop g1{sim})\n"
        "  mocap-ros sample-bag /tmp/b; mocap-ros process /tmp/b --out /tmp/p; "
        "mocap-ros replay /tmp/p")


def _core_demo(args: argparse.Namespace) -> int:
    from skimage import data

    from mocap_ros.estimation.factory import make_estimator, resolve_backend

    cfg = with_default_assets(config_from_args(args))
    pipe = make_estimator(cfg)
    photo = data.astronaut()  # a real photograph of a person that ships with scikit-image
    synthetic = getattr(getattr(pipe, "models", None), "synthetic", False)
    print(f"mocap_ros demo: {resolve_backend(cfg)} on {pipe.device} ({pipe.precision}, "
          f"n_iter={cfg.n_iter}), body model {cfg.body_model}, assets {cfg.assets_dir or '-'}"
          + (" [SYNTHETIC weights: poses are not real]" if synthetic else ""))
    cases = [("full frame", None), ("person box", (120, 20, 300, 490)),
             ("box half outside", (-100, -50, 300, 400)), ("degenerate box", (10, 10, 2, 2))]
    for _ in range(2):  # warm-up so the timings below are steady-state
        pipe.process(photo)
    for name, bbox in cases:
        r = pipe.process(photo, bbox)
        head = r.joints_cam[15]
        t = r.timings_ms
        print(f"- {name:<17} valid={r.valid!s:<5} reason={r.reason or '-':<15} "
              f"conf={r.confidence:.2f} pelvis=({r.root_position[0]:+.2f}, "
              f"{r.root_position[1]:+.2f}, {r.root_position[2]:+.2f}) m head=({head[0]:+.2f}, "
              f"{head[1]:+.2f}, {head[2]:+.2f}) m"
              + (f" | pre {t['preprocess']:.1f} inf {t['inference']:.1f} post "
                 f"{t['postprocess']:.1f} total {t['total']:.1f} ms" if t else ""))
    r = pipe.process(photo, cases[1][1])
    np.set_printoptions(precision=3, suppress=True)
    print("left elbow local rotation (x, y, z, w):", r.local_rotations[18])
    print("2D keypoints (px) pelvis/head:", r.keypoints_2d[0], r.keypoints_2d[15])
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from mocap_ros.tools.bench import run_benchmark

    cfg = with_default_assets(config_from_args(args), hmr_only=True)
    run_benchmark(cfg, frames=args.frames, warmup=args.warmup, json_path=args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mocap-ros", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and MediaPipe's/TFLite's own log lines (hidden "
                        "by default)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="mocap_node over DDS on sample frames (--core: the "
                       "pipeline alone on a sample photo)")
    add_config_args(p)
    p.add_argument("--core", action="store_true", help="run the core pipeline without ROS")
    p.add_argument("--frames", type=int, default=60, help="how many sample frames to publish")
    p.add_argument("--rate", type=float, default=15.0, help="frames per second to publish")
    p.add_argument("--robot", choices=("fr3", "g1"), help="close the loop: a synthetic "
                   "operator (camera_node source synthetic:SCRIPT) -> mocap_node -> teleop_node "
                   "(enabled) -> sim_robot, all in this process; exits 1 when the robot did "
                   "not follow")
    p.add_argument("--script", default="default", help="--robot: the operator's script "
                   "(default, raise, rest: docs/synthetic_operator.md)")
    p.add_argument("--out", default="demo_robot.png", help="--robot: the picture (PNG)")
    p.add_argument("--video", help="--robot: also an MP4 of every pose")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench-teleop", help="teleop latency: lag split into filter, control "
                       "period and limits, wave amplitude, filter candidates")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--quick", action="store_true", help="default and Kalman filters only")
    p.set_defaults(func=cmd_bench_teleop)

    p = sub.add_parser("bench", help="benchmark baseline vs fast settings vs the pipeline")
    add_config_args(p)
    p.add_argument("--frames", type=int, default=20, help="timed frames per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames before timing")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(func=cmd_bench)

    from mocap_ros.cli import assets as cli_assets

    cli_assets.register(sub)
    from mocap_ros.cli import teleop as cli_teleop

    cli_teleop.register(sub)
    from mocap_ros.cli import bags as cli_bags

    cli_bags.register(sub)
    from mocap_ros.cli import docs as cli_docs

    cli_docs.register(sub)
    from mocap_ros.cli import up as cli_up

    cli_up.register(sub)
    from mocap_ros.cli import bench_loop as cli_bench_loop

    cli_bench_loop.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"  # nodes started from here (--camera-process) show it too
    elif not verbose_from_env():
        quiet_native_logs()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"mocap-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
