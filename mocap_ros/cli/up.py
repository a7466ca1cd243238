"""``mocap-ros up``: a camera (or a video, or an image folder) to poses, in one command.

Wired into ``mocap_ros.cli.main`` with ``cli_up.register(sub)``; the work is in
:mod:`mocap_ros.ros.up`. Exit code 0 after Ctrl-C, 1 when something cannot start (the
message says why).
"""

from __future__ import annotations

import argparse
import os
import sys


def cmd_up(args: argparse.Namespace) -> int:
    # MuJoCo picks its OpenGL when first imported (sim_robot imports it before camera_node
    # renders a synthetic operator): off-screen EGL unless the user chose
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from mocap_ros.ros.up import run_up
    except ImportError as exc:
        print(f"mocap-ros up: rclpy is not importable here ({exc}); `make setup` builds the "
              "ROS side and `bash scripts/in_env.sh mocap-ros up ...` runs in it",
              file=sys.stderr)
        return 1
    mocap = {k: v for k, v in (("assets_dir", args.assets_dir), ("device", args.device),
                               ("backend", args.backend)) if v is not None}
    camera = {k: v for k, v in (("loop", args.loop), ("realtime", args.realtime))
              if v is not None}
    try:
        report = run_up(args.camera, teleop=args.teleop, sim=args.sim,
                        camera_config=args.camera_config, mocap_config=args.config,
                        mocap_overrides=mocap, camera_overrides=camera, console=_console(args),
                        camera_process=args.camera_process, exit_at_end=args.exit_at_end,
                        duration=args.duration, operator_lock=args.operator_lock,
                        exiting=True)
    except ValueError as exc:
        print(f"mocap-ros up: error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    return 1 if report.braked is False else 0  # the robot left moving: say so, non-zero


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "up", help="camera_node + mocap_node (+ teleop_node) in one process, no ros2 launch "
        "needed", description="Starts camera_node and mocap_node in one process and one "
        "executor (frames never cross processes), plus teleop_node with --teleop, with the "
        "parameters of config/camera.yaml and config/mocap.yaml (the files mocap.launch.py "
        "uses). Prints the topics; Ctrl-C stops everything and prints frames captured vs "
        "processed.")
    p.add_argument("--camera", required=True, metavar="SOURCE",
                   help="camera index (0), /dev/videoN, a video file, an image folder, or "
                   "synthetic[:SCRIPT[:FIGURE]] (a rendered operator with known motion: "
                   "docs/synthetic_operator.md)")
    p.add_argument("--teleop", metavar="ROBOT",
                   help="also start teleop_node with config/teleop_ROBOT.yaml (fr3, g1, "
                   "generic) or a robot map file; it starts disabled")
    p.add_argument("--operator-lock", action="store_true",
                   help="with --teleop: the robot follows only the person who armed it "
                   "(mocap_node's operator lock, asked for by teleop_node on ~/enable)")
    p.add_argument("--sim", action="store_true",
                   help="also start sim_robot (MuJoCo): with --teleop, that robot's model and "
                   "the limits of its teleop YAML")
    p.add_argument("--camera-config", metavar="YAML", help="camera_node parameters "
                   "(default: the package's config/camera.yaml)")
    p.add_argument("--config", metavar="YAML", help="mocap_node parameters (default: the "
                   "package's config/mocap.yaml)")
    p.add_argument("--assets-dir", help="override mocap_node's assets_dir")
    p.add_argument("--device", help="override mocap_node's device")
    p.add_argument("--backend", help="override mocap_node's backend")
    p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                   help="video/folder: start again at the end (default: camera.yaml's)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="video/folder: at their timestamps (default: camera.yaml's)")
    p.add_argument("--camera-process", action="store_true",
                   help="run camera_node as its own process (the launch file's arrangement; "
                   "for comparison: frames then cross DDS between processes)")
    p.add_argument("--exit-at-end", action="store_true",
                   help="stop when a video/folder has ended and its last frame is processed")
    p.add_argument("--duration", type=float, metavar="SEC", help="stop after SEC seconds")
    p.add_argument("--console", action="store_true",
                   help="also the operator console: a web page (URL printed) with the camera, "
                   "the skeleton, the robot, teleop's state and Enable / Disable / STOP")
    p.add_argument("--console-host", metavar="ADDR", help="serve the console on ADDR "
                   "(default 127.0.0.1; any other address needs the token printed in the URL)")
    p.add_argument("--console-port", type=int, metavar="PORT",
                   help="console page port (default 8090; the 3D view uses PORT+1)")
    p.set_defaults(func=cmd_up)


def _console(args: argparse.Namespace) -> dict | None:
    if not args.console:
        return None
    return {k: v for k, v in (("host", args.console_host), ("port", args.console_port))
            if v is not None}
