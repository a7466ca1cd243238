"""Does the console slow the loop? ``mocap-ros up`` (camera -> mocap -> teleop -> sim_robot,
one process) on a frame source, with and without ``--console`` (and a page connected that
receives everything it is sent and beats its heartbeat), alternated in one run; poses/s and
frame -> pose lag measured by a listener in this process on its own DDS context.

    python -m mocap_ros.tools.bench_console SOURCE [--seconds 20] [--rounds 2] [--json F]

Lag = arrival time of a BodyPose here minus its header stamp (the camera frame's time).
The page is a separate process (as a browser would be): a WebSocket client, not a renderer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from mocap_ros.msg import BodyPose
from mocap_ros.ros.up import run_up
from mocap_ros.tools.machine import cpu_model

PAGE = r"""
import json, sys, time
from websockets.sync.client import connect
url = sys.argv[1]
end = time.monotonic() + float(sys.argv[2])
got = [0, 0]
while time.monotonic() < end:
    try:
        with connect(url, open_timeout=2) as ws:
            last = 0.0
            while time.monotonic() < end:
                if time.monotonic() - last > 0.25:
                    ws.send(json.dumps({"type": "heartbeat"}))
                    last = time.monotonic()
                try:
                    m = ws.recv(timeout=0.05)
                except TimeoutError:
                    continue
                got[0 if isinstance(m, bytes) else 1] += 1
    except Exception:  # not up yet, or going away at the end of the run
        time.sleep(0.3)
print(json.dumps({"images": got[0], "states": got[1]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    def __init__(self, domain_id: int) -> None:
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.node = rclpy.create_node("bench_console_listener", context=self.ctx)
        self.samples: list[tuple[float, float]] = []  # (rx wall time, lag s)
        self.node.create_subscription(BodyPose, "/mocap/body_pose", self._on_pose, 10)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self._stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _on_pose(self, msg: BodyPose) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.samples.append((now, now - stamp))

    def _spin(self) -> None:
        while not self._stop and self.ctx.ok():
            self.ex.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._stop = True
        self.thread.join(5.0)
        self.ex.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def _process_cpu() -> float:
    """CPU seconds (user + system) of this process so far: the whole loop runs in it."""
    t = os.times()
    return t.user + t.system


def one_run(source: str, console: bool, seconds: float, warmup: float, domain_id: int,
            listener: Listener) -> dict[str, Any]:
    port = _free_port()
    page = None
    if console:
        page = subprocess.Popen([sys.executable, "-c", PAGE, f"ws://127.0.0.1:{port}/ws",
                                 str(seconds + warmup + 8)], stdout=subprocess.PIPE,
                                text=True)
    listener.samples.clear()
    cpu0, wall0 = _process_cpu(), time.time()
    report = run_up(source, teleop="fr3", sim=True, camera_overrides={"loop": True},
                    duration=seconds + warmup, domain_id=domain_id, out=lambda _s: None,
                    console={"port": port} if console else None)
    t_end = time.time()
    cpu = (_process_cpu() - cpu0) / (t_end - wall0)
    page_got = None
    if page is not None:
        out, _ = page.communicate(timeout=60)
        page_got = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    # the measurement window: after the warm-up, until the run stopped
    start = t_end - seconds
    window = [lag for t, lag in listener.samples if start <= t <= t_end]
    lags = np.array(window) * 1e3
    return {"console": console, "poses_per_s": len(window) / seconds,
            "lag_median_ms": float(np.median(lags)) if lags.size else float("nan"),
            "lag_p90_ms": float(np.percentile(lags, 90)) if lags.size else float("nan"),
            "cpu_cores": cpu,
            "cpu_ms_per_pose": 1e3 * cpu * (t_end - wall0) / max(1, report.processed),
            "processed": report.processed, "captured": report.captured, "page": page_got}


def console_alone(seconds: float, domain_id: int) -> dict[str, Any]:
    """The console's own CPU (thread time of its timers) fed like a busy loop: a 640x480
    camera at 30 Hz, joint_states at 200 Hz, teleop/status at 50 Hz, a pose at 30 Hz."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from mocap_ros.msg import TeleopStatus
    from mocap_ros.ros.console_node import ConsoleNode

    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    port = _free_port()
    console = ConsoleNode(context=ctx, parameter_overrides=[Parameter("port", value=port)])
    feed = rclpy.create_node("bench_console_feed", context=ctx)
    rng = np.random.default_rng(0)
    img = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    image = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=img.tobytes())
    names = [f"fr3_joint{i}" for i in range(1, 8)]
    pubs = {"image": feed.create_publisher(Image, "image_raw", 10),
            "joints": feed.create_publisher(JointState, "joint_states", 10),
            "status": feed.create_publisher(TeleopStatus, "teleop/status", 10),
            "pose": feed.create_publisher(BodyPose, "mocap/body_pose", 10)}
    t = 0.0

    def joints() -> None:
        q = [0.3 * np.sin(t + i) for i in range(7)]
        pubs["joints"].publish(JointState(name=names, position=q))

    def status() -> None:
        pubs["status"].publish(TeleopStatus(enabled=True, mode="tracking", robot="fr3",
                                            joint_names=names,
                                            command=[0.3 * np.cos(t + i) for i in range(7)]))

    def pose() -> None:
        from geometry_msgs.msg import Point

        msg = BodyPose(valid=True, keypoints_2d=list(rng.random(48) * 400))
        msg.joints = [Point(x=float(x), y=float(y), z=float(z) + 2.0)
                      for x, y, z in rng.random((24, 3))]
        pubs["pose"].publish(msg)

    feed.create_timer(1 / 30, lambda: pubs["image"].publish(image))
    feed.create_timer(1 / 200, joints)
    feed.create_timer(1 / 50, status)
    feed.create_timer(1 / 30, pose)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(console)
    ex.add_node(feed)
    page = subprocess.Popen([sys.executable, "-c", PAGE, f"ws://127.0.0.1:{port}/ws",
                             str(seconds + 3)], stdout=subprocess.PIPE, text=True)
    end = time.monotonic() + 2.0  # warm-up
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.01)
    cpu0, srv0, wall0 = console.cpu_s, console.server.cpu_s, time.monotonic()
    while time.monotonic() < wall0 + seconds:
        t = time.monotonic()
        ex.spin_once(timeout_sec=0.01)
    wall = time.monotonic() - wall0
    share = (console.cpu_s - cpu0) / wall
    server_share = (console.server.cpu_s - srv0) / wall
    images = console.images_sent
    out, _ = page.communicate(timeout=30)
    console.destroy_node()
    feed.destroy_node()
    rclpy.try_shutdown(context=ctx)
    return {"console_cpu_share_of_a_core": share, "server_cpu_share_of_a_core": server_share,
            "images_sent": images,
            "page": json.loads(out.strip().splitlines()[-1]) if out.strip() else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="camera_node source: a video, a frame folder (looped)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs, alternated")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    domain_id = 40 + os.getpid() % 50
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    listener = Listener(domain_id)
    runs = []
    alone = console_alone(min(a.seconds, 15.0), domain_id + 1)
    print(f"console alone (640x480 camera 30 Hz, joint_states 200 Hz, status 50 Hz): its "
          f"timers use {100 * alone['console_cpu_share_of_a_core']:.1f} % of one core "
          f"(thread CPU time); page got {alone['page']}", flush=True)
    try:
        for r in range(a.rounds):
            for console in ((False, True) if r % 2 == 0 else (True, False)):
                res = one_run(a.source, console, a.seconds, a.warmup, domain_id, listener)
                runs.append(res)
                print(f"round {r + 1} console={'on ' if console else 'off'}: "
                      f"{res['poses_per_s']:.2f} poses/s, {res['cpu_cores']:.2f} cores, lag "
                      f"median {res['lag_median_ms']:.0f} ms, p90 {res['lag_p90_ms']:.0f} ms, "
                      f"page {res['page']}", flush=True)
    finally:
        listener.close()

    def mean(console: bool, key: str) -> float:
        return float(np.mean([x[key] for x in runs if x["console"] == console]))

    summary = {k: {"off": mean(False, k), "on": mean(True, k),
                   "on/off": mean(True, k) / mean(False, k)}
               for k in ("poses_per_s", "lag_median_ms", "lag_p90_ms", "cpu_cores",
                         "cpu_ms_per_pose")}
    load = os.getloadavg()
    print(f"\nconsole cost on {cpu_model()}, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; {a.rounds} rounds x {a.seconds:g} s per variant, source {a.source}")
    print(f"{'':16}{'off':>10}{'on':>10}{'on/off':>9}")
    for k, v in summary.items():
        print(f"{k:16}{v['off']:10.2f}{v['on']:10.2f}{v['on/off']:9.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"cpu": cpu_model(), "loadavg": load,
                                            "source": a.source, "seconds": a.seconds,
                                            "console_alone": alone,
                                            "runs": runs, "summary": summary}, indent=1))
        print(f"JSON: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
