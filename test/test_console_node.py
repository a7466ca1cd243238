"""The console node against a real teleop_node and sim_robot over DDS, driven through its
WebSocket as the page does (the same in a real browser: test_console_browser.py)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
websockets = pytest.importorskip("websockets")
pytest.importorskip("viser")
from console_helpers import Loop, free_port, wait  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from mocap_ros.ros.console_node import ConsoleNode  # noqa: E402

from ros_helpers import make_executor, ros_context  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]


@pytest.fixture
def loop():
    with ros_context() as ctx:
        lp = Loop(ctx)
        yield lp
        lp.close()


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
        # the commanded pose is drawn as a ghost: it starts where the robot is
        scene = loop.console.scene
        assert wait(lambda: scene.command.visible)
        robot = {g: h.position for g, h in scene.measured.handles}
        for g, h in scene.command.handles:
            assert np.allclose(h.position, robot[g], atol=0.02)
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
        assert wait(lambda: not loop.console.scene.command.visible)  # no command, no ghost
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


def test_network_bind_makes_and_requires_a_token():
    """host 0.0.0.0 without a token parameter: one is generated, printed in the URL, and a
    page without it is refused before it can arm."""
    with ros_context() as ctx:
        console = ConsoleNode(context=ctx, parameter_overrides=[
            Parameter("port", value=free_port()), Parameter("host", value="0.0.0.0")])
        try:
            token = console.server.token
            assert token and len(token) >= 16 and f"?token={token}" in console.url
            bare = console.server.ws_url.split("?")[0]
            with pytest.raises(websockets.exceptions.InvalidStatus) as e:
                connect(bare, open_timeout=5)
            assert e.value.response.status_code == 403
            with connect(console.server.ws_url) as ws:
                ws.send(json.dumps({"type": "heartbeat"}))
                ws.send(json.dumps({"type": "enable"}))
                a = recv(ws, "answer")  # reaches teleop (absent here): the token let it in
                assert "not available" in a["message"]
        finally:
            console.destroy_node()
