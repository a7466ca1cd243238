"""A console test rig: teleop_node + sim_robot + the console node (+ a camera publisher),
real nodes over real DDS, spinning in a thread (test_console_node, test_console_browser)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from mocap_ros.msg import TeleopStatus
from mocap_ros.ros.console_node import ConsoleNode
from mocap_ros.ros.sim_robot import SimRobotNode
from mocap_ros.ros.teleop_node import TeleopNode

from ros_helpers import make_executor

CONFIG = Path(__file__).resolve().parents[1] / "config"


def free_port() -> int:
    # two consecutive free ports: the page's and the 3D view's
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


class Loop:
    """teleop_node + sim_robot + console (+ a camera publisher) spinning in a thread."""

    def __init__(self, ctx, **console_params) -> None:
        self.sim = SimRobotNode(context=ctx, parameter_overrides=[
            Parameter("robot", value="fr3")])
        self.teleop = TeleopNode(context=ctx, parameter_overrides=[
            Parameter("robot_config", value=str(CONFIG / "teleop_fr3.yaml")),
            Parameter("retarget", value="joint")])
        params = {"port": free_port(), "robot_config": str(CONFIG / "teleop_fr3.yaml"),
                  **console_params}
        self.console = ConsoleNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        self.cam = rclpy.create_node("camera", context=ctx)
        self.image_pub = self.cam.create_publisher(Image, "image_raw", 10)
        self.statuses: list[TeleopStatus] = []
        self.cam.create_subscription(TeleopStatus, "teleop/status", self.statuses.append, 10)
        self.executor = make_executor(ctx, self.sim, self.teleop, self.console, self.cam)
        self._stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self._stop:
            self.executor.spin_once(timeout_sec=0.02)

    def enabled(self) -> bool | None:
        return self.statuses[-1].enabled if self.statuses else None

    def close(self) -> None:
        self._stop = True
        self.thread.join(5.0)
        for n in (self.console, self.cam, self.teleop, self.sim):
            n.destroy_node()


def wait(pred, timeout=10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())
