"""``mocap-ros process | replay | sample-bag``: rosbag2 bags without ``ros2 bag``.

Wired into ``mocap_ros.cli.main`` with ``cli_bags.register(sub)``. Every command returns its exit
code: 0 on success, 1 when the bag cannot be processed/replayed (the message says why; a
partial output bag is closed and readable), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys


def _error(command: str, exc: BaseException) -> None:
    print(f"mocap-ros {command}: error: {exc}", file=sys.stderr)


def cmd_process(args: argparse.Namespace) -> int:
    from mocap_ros.cli.config_args import config_from_args
    from mocap_ros.offline.video import detect_input

    try:
        # Offline, each frame is processed alone: no tracker, no background detector. These
        # modes were accepted and silently ran as full_frame.
        mode = config_from_args(args).bbox_mode
        if mode in ("track", "detector"):
            raise ValueError(f"bbox_mode {mode} is mocap_node's (up, ros2 launch); process "
                             "takes full_frame (the default) or roi; the landmarks backend "
                             "finds the person in the frame by itself")
        kind = detect_input(args.bag)
    except ValueError as exc:
        _error("process", exc)
        return 1
    if kind != "bag":
        return _process_media(args, kind)
    if not args.out:
        _error("process", "a bag input needs --out (the output bag)")
        return 1
    if args.jsonl or args.render:
        _error("process", "--jsonl and --render take a video file or an image folder; for a "
               "bag use --out/--csv")
        return 1
    from mocap_ros.cli.config_args import config_from_args, with_default_assets
    from mocap_ros.io.bags.types import BagError
    from mocap_ros.offline.process import process_bag

    cfg = with_default_assets(config_from_args(args))
    try:
        summary = process_bag(args.bag, args.out, cfg, storage=args.format, csv_path=args.csv,
                              image_topic=args.image_topic, progress=not args.no_progress,
                              frame_prefix=args.frame_prefix, batch_size=args.batch_size)
    except BagError as exc:
        _error("process", exc)
        if exc.summary is not None and exc.summary.images + exc.summary.messages_copied:
            print(exc.summary.text(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mocap-ros process: interrupted; {args.out} is closed and holds what was "
              "processed", file=sys.stderr)
        return 130
    print(summary.text())
    return 0


def _process_media(args: argparse.Namespace, kind: str) -> int:
    from mocap_ros.cli.config_args import config_from_args, with_default_assets
    from mocap_ros.io.bags.types import BagError
    from mocap_ros.offline.video import process_media

    if not (args.out or args.csv or args.jsonl or args.render):
        _error("process", "nothing to write: give any of --csv, --jsonl, --out, --render")
        return 1
    topic = (args.image_topic or ["/camera/image_raw"])[0]
    cfg = with_default_assets(config_from_args(args))
    try:
        summary = process_media(args.bag, cfg, csv_path=args.csv, jsonl_path=args.jsonl,
                                out_bag=args.out, render=args.render, fps=args.fps,
                                storage=args.format, image_topic=topic,
                                frame_id=args.frame_id, frame_prefix=args.frame_prefix,
                                calibration=args.calibration,
                                progress=not args.no_progress)
    except (BagError, FileExistsError, ValueError, RuntimeError) as exc:
        _error("process", exc)
        return 1
    except KeyboardInterrupt:
        print("mocap-ros process: interrupted; the outputs are closed and hold what was "
              "processed", file=sys.stderr)
        return 130
    print(summary.text())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from mocap_ros.io.bags.types import BagError
    from mocap_ros.ros.replay import replay_bag

    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        _error("replay", f"rclpy is not importable here ({exc}); `make setup` builds the ROS "
               "side and `bash scripts/in_env.sh mocap-ros replay ...` runs in it")
        return 1
    try:
        summary = replay_bag(args.bag, rate=args.rate, loop=args.loop, clock=args.clock,
                             topics=args.topics or None,
                             wait_for_subscribers=args.wait_for_subscribers)
    except BagError as exc:
        _error("replay", exc)
        return 1
    print(summary.text())
    if summary.truncated:
        _error("replay", summary.truncated)
        return 1
    return 130 if summary.interrupted else 0


def cmd_sample_bag(args: argparse.Namespace) -> int:
    from mocap_ros.io.bags.types import BagError
    from mocap_ros.tools.sample_bag import write_sample_bag

    try:
        bag = write_sample_bag(args.out, storage=args.format,
                               encodings=tuple(args.encodings), n_per=args.n_per,
                               rate_hz=args.rate)
    except BagError as exc:
        _error("sample-bag", exc)
        return 1
    except Exception as exc:  # e.g. rosbags' WriterError: the output exists
        _error("sample-bag", exc)
        return 1
    print(f"wrote {bag.path} ({bag.storage}): {len(bag.frames)} frames "
          f"({', '.join(dict.fromkeys(f.encoding for f in bag.frames))}), "
          f"{bag.duration_s:.2f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from mocap_ros.cli.config_args import add_config_args
    from mocap_ros.io.bags.types import STORAGES
    from mocap_ros.tools.sample_bag import DEFAULT_ENCODINGS

    p = sub.add_parser(
        "process", help="run the pipeline on every frame of a video file, an image folder or "
        "a bag (no DDS) and write poses (CSV, JSON lines, a bag) and/or a rendering",
        description="A bag (mcap or sqlite3): writes OUT with all original messages plus one "
        "BodyPose per image (the image's stamp) and /tf for valid poses, optionally a CSV. "
        "A video file or an image folder: any of --csv, --jsonl (one object per frame, the "
        "BodyPose fields), --out (a bag: the frames as JPEG CompressedImage, poses, /tf) and "
        "--render (an .mp4, or a folder of PNGs: skeleton, joint names, person box, 3D "
        "views, timing). Stamps are the video's timestamps.")
    p.add_argument("bag", metavar="INPUT", help="video file, image folder, or rosbag2 bag "
                   "(directory, or a single .mcap/.db3 file); detected from what it is")
    p.add_argument("--out", help="output bag directory (must not exist); required for a bag")
    p.add_argument("--format", choices=STORAGES, default="mcap", help="output storage")
    p.add_argument("--csv", help="also write one CSV row per image here")
    p.add_argument("--jsonl", help="video/folder: one JSON object per frame here")
    p.add_argument("--render", help="video/folder: rendered frames to this .mp4/.avi, or to "
                   "this folder as PNGs")
    p.add_argument("--fps", type=float, default=30.0, help="image folder: its frame rate "
                   "(stamps = index / fps)")
    p.add_argument("--calibration", help="video/folder: camera_calibration YAML for the "
                   "intrinsics (default: the configured focal-length fallback)")
    p.add_argument("--frame-id", default="camera_optical_frame",
                   help="video/folder: frame_id of the poses")
    p.add_argument("--image-topic", action="append", metavar="TOPIC",
                   help="bag: image topic to process (repeatable; default: every Image and "
                   "CompressedImage topic: name one when the bag holds the same camera twice, "
                   "raw and compressed). video/folder with --out: the images' topic "
                   "(default /camera/image_raw, written as TOPIC/compressed)")
    p.add_argument("--frame-prefix", default="mocap_", help="prefix of the joints' TF frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="frames per network call (default 8 on CUDA, 1 on the CPU; batch 4 was "
                   "~30%% faster on a 2-core CPU, with results differing from per-frame by "
                   "~1e-5)")
    add_config_args(p)
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("replay", help="publish a bag over DDS with its original timing "
                       "(and /clock), like `ros2 bag play --clock`")
    p.add_argument("bag", help="rosbag2 bag (directory, or a single .mcap/.db3 file)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    p.add_argument("--clock", action=argparse.BooleanOptionalAction, default=True,
                   help="publish /clock with the bag time (for use_sim_time nodes)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="replay only these topics")
    p.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SEC",
                   help="wait up to SEC seconds for a subscriber before starting")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("sample-bag", help="write a small sample bag (skimage's astronaut "
                       "photo in several encodings, with camera_info)")
    p.add_argument("out", help="output bag directory (must not exist)")
    p.add_argument("--format", choices=STORAGES, default="mcap", help="storage")
    p.add_argument("--encodings", nargs="+", default=list(DEFAULT_ENCODINGS),
                   help="raw encodings (bgr8, rgb8, mono8, yuv422_yuy2, ...) and/or jpeg, png")
    p.add_argument("--n-per", type=int, default=3, help="frames per encoding")
    p.add_argument("--rate", type=float, default=15.0, help="frames per second")
    p.set_defaults(func=cmd_sample_bag)
