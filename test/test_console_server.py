"""The console's web server over a real WebSocket (mocap_ros.ros.console.server): the token
on a non-loopback bind, the Host/Origin checks, the dead-man, bad requests. ``~/enable`` is a
recording callable here; test_console_node.py runs the same against a real teleop_node."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

websockets = pytest.importorskip("websockets")
from websockets.sync.client import connect  # noqa: E402

from mocap_ros.ros.console.server import ConsoleServer  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Teleop:
    """Stands in for teleop_node's ~/enable: records the calls, answers like it."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, enabled: bool) -> concurrent.futures.Future:
        self.calls.append(enabled)
        f: concurrent.futures.Future = concurrent.futures.Future()
        f.set_result((True, "enabled from joint_states" if enabled else "disabled"))
        return f


@pytest.fixture
def serve():
    servers = []

    def start(host: str = "127.0.0.1", token: str | None = None, timeout: float = 1.0):
        teleop = Teleop()
        srv = ConsoleServer(host, free_port(), set_enabled=teleop, token=token,
                            heartbeat_timeout=timeout)
        srv.start()
        servers.append(srv)
        return srv, teleop

    yield start
    for s in servers:
        s.stop()


def answer(ws, kind: str = "answer", timeout: float = 5.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = ws.recv(timeout=end - time.monotonic())
        if isinstance(msg, str) and json.loads(msg).get("type") == kind:
            return json.loads(msg)
    raise AssertionError(f"no {kind} message")


def wait(pred, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_page_is_served_and_self_contained(serve):
    srv, _ = serve()
    html = urllib.request.urlopen(srv.url, timeout=5).read().decode()
    assert "STOP" in html and "heartbeat" in html
    # nothing from a CDN: the page links nothing outside this server
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(srv.url.split("?")[0] + "nope", timeout=5)
    assert e.value.code == 404


def test_enable_needs_a_heartbeat_then_arms(serve):
    srv, teleop = serve()
    with connect(srv.ws_url) as ws:
        ws.send(json.dumps({"type": "enable"}))
        a = answer(ws)
        assert not a["ok"] and "heartbeat" in a["message"] and teleop.calls == []
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        a = answer(ws)
        assert a["ok"] and a["message"] == "enabled from joint_states" and teleop.calls == [True]
        ws.send(json.dumps({"type": "disable"}))
        assert answer(ws)["ok"] and teleop.calls == [True, False]


def test_dead_man_disconnect_disables(serve):
    srv, teleop = serve()
    with connect(srv.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        assert answer(ws)["ok"]
    t0 = time.monotonic()
    assert wait(lambda: teleop.calls == [True, False], 3.0), teleop.calls
    assert time.monotonic() - t0 < 1.5


def test_dead_man_stale_heartbeat_disables(serve):
    srv, teleop = serve(timeout=0.5)
    with connect(srv.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        assert answer(ws)["ok"]
        t0 = time.monotonic()
        # the page stops beating (hidden tab, frozen browser) but stays connected
        assert wait(lambda: teleop.calls == [True, False], 3.0), teleop.calls
        assert 0.4 < time.monotonic() - t0 < 1.5
        notice = answer(ws, "notice")
        assert "heartbeat" in notice["message"]


def test_watcher_closing_disarms_nothing(serve):
    srv, teleop = serve()
    with connect(srv.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        time.sleep(0.3)
    time.sleep(0.5)
    assert teleop.calls == []


def test_remote_bind_needs_the_token(serve):
    srv, teleop = serve(host="0.0.0.0", token="tok-123")
    assert "token=tok-123" in srv.url
    bare = srv.ws_url.split("?")[0]
    for url in (bare, bare + "?token=wrong"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            connect(url, open_timeout=5)
        assert e.value.response.status_code == 403
    assert srv.refused >= 2 and teleop.calls == []
    with connect(srv.ws_url) as ws:
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        assert answer(ws)["ok"] and teleop.calls == [True]


def test_remote_bind_without_token_is_refused():
    with pytest.raises(ValueError, match="token"):
        ConsoleServer("0.0.0.0", free_port(), set_enabled=Teleop(), token=None)


def test_foreign_origin_cannot_connect(serve):
    """Another web site open in the operator's browser must not reach a loopback console
    (cross-site WebSocket hijacking, DNS rebinding)."""
    srv, teleop = serve()
    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        connect(srv.ws_url, additional_headers={"Origin": "http://evil.example"},
                open_timeout=5)
    assert e.value.response.status_code == 403
    # a rebound name: the browser sends the attacker's host name
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: evil.example:80\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 403")
    assert srv.refused == 2 and teleop.calls == []


def test_bad_requests_are_refused_logged_and_survived(serve):
    srv, teleop = serve()
    with connect(srv.ws_url) as ws:
        for bad in ("{", "[]", json.dumps({"type": "launch"}), b"\x00" * 10,
                    json.dumps({"type": "enable", "x": "y" * 5000})):
            ws.send(bad)
        a = answer(ws, "refused")
        assert "not JSON" in a["message"]
        ws.send(json.dumps({"type": "heartbeat"}))
        ws.send(json.dumps({"type": "enable"}))
        assert answer(ws)["ok"]
    assert srv.bad_requests >= 4 and teleop.calls[0] is True


class SlowTeleop(Teleop):
    """~/enable answering late (teleop waiting for the operator lock): the answer comes when
    the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[bool, concurrent.futures.Future]] = []

    def __call__(self, enabled: bool) -> concurrent.futures.Future:
        self.calls.append(enabled)
        f: concurrent.futures.Future = concurrent.futures.Future()
        if enabled:
            self.pending.append((enabled, f))
        else:
            f.set_result((True, "disabled"))
        return f


def test_page_gone_while_its_enable_is_pending_disables():
    """The dead-man holds from the moment a page asks to arm: if it leaves before teleop
    answers (or after the console stopped waiting), the late enable is undone."""
    teleop = SlowTeleop()
    srv = ConsoleServer("127.0.0.1", free_port(), set_enabled=teleop)
    srv.start()
    try:
        with connect(srv.ws_url) as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            ws.send(json.dumps({"type": "enable"}))
            assert wait(lambda: teleop.pending, 3.0)
        # the page is gone; teleop answers "enabled" only now
        teleop.pending[0][1].set_result((True, "enabled from joint_states"))
        assert wait(lambda: teleop.calls == [True, False], 3.0), teleop.calls
    finally:
        srv.stop()


def test_a_refused_enable_holds_nothing():
    srv = ConsoleServer("127.0.0.1", free_port(), set_enabled=lambda e: _answer(False, "no"))
    srv.start()
    try:
        with connect(srv.ws_url) as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            ws.send(json.dumps({"type": "enable"}))
            assert answer(ws)["ok"] is False
            assert not srv.guard.holders
    finally:
        srv.stop()


def _answer(ok: bool, text: str) -> concurrent.futures.Future:
    f: concurrent.futures.Future = concurrent.futures.Future()
    f.set_result((ok, text))
    return f


def test_enable_answered_after_the_console_stopped_waiting_still_holds(monkeypatch):
    import mocap_ros.ros.console.server as server_mod

    monkeypatch.setattr(server_mod, "ENABLE_TIMEOUT_S", 0.3)
    teleop = SlowTeleop()
    srv = ConsoleServer("127.0.0.1", free_port(), set_enabled=teleop)
    srv.start()
    try:
        with connect(srv.ws_url) as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            ws.send(json.dumps({"type": "enable"}))
            a = answer(ws)
            assert not a["ok"] and "no answer" in a["message"]
            teleop.pending[0][1].set_result((True, "enabled from joint_states"))
            time.sleep(0.2)
        # teleop did arm, late: the page that asked holds the dead-man all the same
        assert wait(lambda: teleop.calls == [True, False], 3.0), teleop.calls
    finally:
        srv.stop()


def test_heartbeats_are_read_while_an_enable_is_pending():
    """A slow ~/enable (teleop waiting for the operator lock) must not starve the page's own
    heartbeats into a dead-man stop."""
    teleop = SlowTeleop()
    srv = ConsoleServer("127.0.0.1", free_port(), set_enabled=teleop, heartbeat_timeout=0.5)
    srv.start()
    try:
        with connect(srv.ws_url) as ws:
            ws.send(json.dumps({"type": "heartbeat"}))
            ws.send(json.dumps({"type": "enable"}))
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                ws.send(json.dumps({"type": "heartbeat"}))
                time.sleep(0.1)
            assert teleop.calls == [True]  # no dead-man stop while the page was alive
            teleop.pending[0][1].set_result((True, "enabled after the operator lock"))
            assert answer(ws)["ok"]
            assert srv.guard.holders
    finally:
        srv.stop()
