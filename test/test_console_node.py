"""The console node against a real teleop_node and sim_robot over DDS, driven through its
WebSocket as the page does (the same in a real browser: test_console_browser.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
websockets = pytest.importorskip("websockets")
pytest.importorskip("viser")
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from mocap_ros.msg import TeleopStatus  # noqa: E402
from mocap_ros.ros.console_node import ConsoleNode  # noqa: E402
from mocap_ros.ros.sim_robot import SimRobotNode  # noqa: E402
from mocap_ros.ros.teleop_node import TeleopNode  # noqa: E402

from ros_helpers import make_executor, ros_context  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]
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


@pytest.fixture
def loop():
    with ros_context() as ctx:
        lp = Loop(ctx)
        yield lp
        lp.close()


def wait(pred, timeout=10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def recv(ws, kind: str, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = ws.recv(timeout=max(0.01, end - time.monotonic()))
        if kind == "image" and isinstance(m, bytes):
            return m
        if isinstance(m, str) and json.loads(m)["type"] == kind:
            return json.loads(m)
    raise AssertionError(f"no {kind}")


def test_enable_via_the_console_and_dead_man_on_close(loop):
    assert wait(lambda: loop.enabled() is False)
    with connect(loop.console.server.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        state = recv(ws, "state")
        assert state["teleop"] and not state["enabled"] and state["robot"] == "fr3"
        ws.send(json.dumps({"type": "enable"}))
        a = recv(ws, "answer")
        assert a["ok"], a
        assert wait(lambda: loop.enabled() is True)
        assert wait(lambda: loop.console.state()["enabled"])
        ws.send(json.dumps({"type": "heartbeat"}))
    t0 = time.monotonic()  # the page is gone: the dead-man disables teleop
    assert wait(lambda: loop.enabled() is False, 5.0)
    assert time.monotonic() - t0 < 2.0


def test_stop_disables_and_the_answer_is_shown(loop):
    with connect(loop.console.server.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        assert recv(ws, "answer")["ok"]
        assert wait(lambda: loop.enabled() is True)
        ws.send(json.dumps({"type": "disable"}))
        a = recv(ws, "answer")
        assert a["ok"] and a["message"].startswith("disabled")
        assert wait(lambda: loop.enabled() is False)
        for bad in ("nonsense", json.dumps({"type": "rm -rf"})):
            ws.send(bad)
            assert "refused" in recv(ws, "refused")["type"]
        ws.send(json.dumps({"type": "heartbeat"}))
        assert recv(ws, "state")["teleop"]  # still serving


def test_image_is_capped_in_size(loop):
    from skimage import data

    photo = data.astronaut()  # a real photograph, 512 x 512
    msg = Image(height=512, width=512, encoding="rgb8", step=512 * 3, data=photo.tobytes())
    import cv2

    with connect(loop.console.server.ws_url) as ws:
        assert wait(lambda: (loop.image_pub.publish(msg), loop.console.images_sent > 0)[1])
        jpeg = recv(ws, "image")
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (320, 320)
    small = cv2.resize(photo, (320, 320), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert np.abs(img.astype(int) - small).mean() < 8  # the photo, not something else


def test_teleop_absent_is_reported_not_crashed():
    with ros_context() as ctx:
        console = ConsoleNode(context=ctx, parameter_overrides=[
            Parameter("port", value=free_port()), Parameter("enable_service",
                                                            value="/nobody/enable")])
        ex = make_executor(ctx, console)
        stop = []
        th = threading.Thread(target=lambda: [ex.spin_once(timeout_sec=0.02)
                                              for _ in iter(lambda: bool(stop), True)])
        th.start()
        try:
            with connect(console.server.ws_url) as ws:
                ws.send(json.dumps({"type": "heartbeat"}))
                ws.send(json.dumps({"type": "enable"}))
                a = recv(ws, "answer")
                assert not a["ok"] and "not available" in a["message"]
                assert recv(ws, "state")["teleop"] is False
        finally:
            stop.append(1)
            th.join(5.0)
            console.destroy_node()
