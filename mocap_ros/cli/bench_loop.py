"""``mocap-ros bench-loop``: synthetic operator -> mocap_node -> teleop_node -> sim_robot,
measured against the operator's known motion (mocap_ros.tools.bench_loop)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

import yaml


def _kv(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"bench-loop: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def register(sub: Any) -> None:
    p = sub.add_parser("bench-loop", help="the whole loop against a synthetic operator: "
                       "latency, tracking share, lag, fidelity, back home, contacts")
    p.add_argument("--robot", nargs="+", choices=("fr3", "g1"), default=["fr3", "g1"],
                   help="robots to run the loop on (shipped YAML and MuJoCo model), one run each")
    p.add_argument("--arrangement", nargs="+", choices=("one", "dds"), default=["one"],
                   help="one: one process (mocap-ros up); dds: a process per node")
    p.add_argument("--script", default="default", help="the synthetic operator's script")
    p.add_argument("--load", type=int, nargs="+", default=[0],
                   help="busy processes meanwhile (one run per value; 2 = one per core here)")
    p.add_argument("--pose-model", nargs="+", default=["full"],
                   choices=("lite", "full", "heavy"),
                   help="BlazePose model (only full ships inside the mediapipe wheel)")
    p.add_argument("--mocap-param", action="append", metavar="KEY=VALUE",
                   help="mocap_node parameter for every run (e.g. resize_short=240)")
    p.add_argument("--camera-param", action="append", metavar="KEY=VALUE",
                   help="camera_node parameter for every run (defaults: fps=15, loop=true)")
    p.add_argument("--teleop-param", action="append", metavar="KEY=VALUE",
                   help="teleop_node parameter for every run (e.g. pose_timeout=0.25)")
    p.add_argument("--min-tracking", type=float, default=0.5,
                   help="below this tracking share the robot did not follow: exit 1")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--plot", help="write the operator-wrist vs robot-hand plot (PNG) here")
    p.set_defaults(func=cmd_bench_loop)


def cmd_bench_loop(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from mocap_ros.tools.bench_loop import CAMERA_DEFAULTS, RunSpec, run

    specs = [RunSpec(robot=r, arrangement=a, script=args.script, load=n, pose_model=m,
                     mocap_overrides=_kv(args.mocap_param),
                     camera_overrides={**CAMERA_DEFAULTS, **_kv(args.camera_param)},
                     teleop_overrides=_kv(args.teleop_param))
             for m in args.pose_model for n in args.load for a in args.arrangement
             for r in args.robot]
    line = "mocap-ros " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        return run(specs, json_path=args.json, plot_path=args.plot,
                   min_tracking=args.min_tracking, command_line=line)
    except ValueError as exc:
        print(f"bench-loop: {exc}", file=sys.stderr)
        return 2
