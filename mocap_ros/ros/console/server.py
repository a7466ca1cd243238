"""The console's web server: one self-contained page, and a WebSocket for state, the camera
image and the page's requests (heartbeat, enable, disable). Runs its own asyncio loop in a
thread; nothing here touches ROS (the node hands in ``set_enabled`` and pushes state).

Security: bound to loopback by default. On any other interface a token is required (the
URL printed at start carries it); a connection without it is refused (HTTP 403) before it
can send anything. On loopback the Host header must name a loopback host and a browser's
Origin must be this server: another web site open in the operator's browser cannot reach
the console (cross-site WebSocket hijacking, DNS rebinding).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from mocap_ros.ros.console.guard import ArmGuard, is_loopback, parse_request, token_matches
from mocap_ros.ros.console.page import page_html

LOG = logging.getLogger("mocap_ros.console")
# teleop_node answers ~/enable at once; longer means it is not spinning (or gone)
ENABLE_TIMEOUT_S = 3.0
CHECK_PERIOD_S = 0.05
MAX_MESSAGE_BYTES = 64 * 1024
MAX_BACKLOG_BYTES = 1024 * 1024

SetEnabled = Callable[[bool], "concurrent.futures.Future[tuple[bool, str]]"]


class ConsoleServer:
    def __init__(self, host: str, port: int, *, set_enabled: SetEnabled,
                 token: str | None = None, heartbeat_timeout: float = 1.0,
                 viewer_port: int | None = None, title: str = "mocap_ros console",
                 log: Callable[[str, str], None] | None = None) -> None:
        if not is_loopback(host) and not token:
            raise ValueError(f"console on {host}: serving beyond loopback needs a token")
        self.host, self.port = host, port
        self.viewer_port = viewer_port
        self.token = token or None
        self.guard = ArmGuard(token=self.token, heartbeat_timeout=heartbeat_timeout)
        self._set_enabled = set_enabled
        self._page = page_html(title=title, viewer_port=viewer_port).encode()
        self._log = log or (lambda level, text: getattr(LOG, level)(text))
        self._ids = itertools.count(1)
        self._clients: dict[int, ServerConnection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.cpu_s = 0.0
        self.refused = 0  # connections refused (token, host, origin)
        self.bad_requests = 0
        self.state: dict[str, Any] = {}
        self._sending: set[asyncio.Future] = set()

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        url = f"http://{host}:{self.port}/"
        return url + (f"?token={quote(self.token)}" if self.token else "")

    @property
    def ws_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"ws://{host}:{self.port}/ws" + (f"?token={quote(self.token)}"
                                                 if self.token else "")

    @property
    def pages(self) -> int:
        """Pages connected now."""
        return len(self._clients)

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="console-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("console server did not start")
        if self._error is not None:
            raise RuntimeError(f"console server on {self.host}:{self.port}: {self._error}") \
                from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, self.host, self.port,
                         process_request=self._process_request, max_size=MAX_MESSAGE_BYTES,
                         ping_interval=None, server_header=None):
            checker = asyncio.create_task(self._check_dead_man())
            self._started.set()
            await self._stop.wait()
            checker.cancel()

    # ------------------------------------------------------------------ pushes (any thread)
    def publish_state(self, state: dict[str, Any]) -> None:
        self.state = state
        enabled = bool(state.get("enabled"))
        self._call_soon(self._on_state, enabled, json.dumps({"type": "state", **state}))

    def publish_image(self, jpeg: bytes) -> None:
        self._call_soon(self._broadcast, jpeg)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(fn, *args)

    def _on_state(self, enabled: bool, text: str) -> None:
        self.guard.on_teleop_enabled(enabled)
        self._broadcast(text)

    def _broadcast(self, message: str | bytes) -> None:
        for ws in list(self._clients.values()):
            if self._backlog(ws) > MAX_BACKLOG_BYTES:
                continue  # a slow page drops updates instead of queueing them without bound
            task = asyncio.ensure_future(self._send(ws, message))
            self._sending.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._sending.discard)

    @staticmethod
    def _backlog(ws: ServerConnection) -> int:
        try:
            return int(ws.transport.get_write_buffer_size())
        except Exception:
            return 0

    @staticmethod
    async def _send(ws: ServerConnection, message: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(message)

    # ------------------------------------------------------------------ HTTP
    def _process_request(self, connection: ServerConnection, request: Request
                         ) -> Response | None:
        parts = urlsplit(request.path)
        peer = _peer(connection)
        if parts.path in ("/", "/index.html"):
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return self._text(http.HTTPStatus.NOT_FOUND, "the WebSocket is /ws")
            return _response(http.HTTPStatus.OK, self._page, "text/html; charset=utf-8")
        if parts.path != "/ws":
            return self._text(http.HTTPStatus.NOT_FOUND, "not found")
        why = self._refusal(request.headers, parse_qs(parts.query).get("token", [None])[0])
        if why:
            self.refused += 1
            self._log("warning", f"console: refused a connection from {peer}: {why}")
            return self._text(http.HTTPStatus.FORBIDDEN, why)
        return None

    def _refusal(self, headers: Headers, token: str | None) -> str:
        if self.token:
            return "" if token_matches(self.token, token) else "missing or wrong token"
        host = headers.get("Host", "")
        hostname = urlsplit(f"//{host}").hostname or ""
        if not is_loopback(hostname):
            return f"Host {host[:60]!r} is not a loopback address"
        origin = headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            return f"Origin {origin[:60]!r} is not this console"
        return ""

    @staticmethod
    def _text(status: http.HTTPStatus, text: str) -> Response:
        return _response(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    # ------------------------------------------------------------------ WebSocket
    async def _handler(self, ws: ServerConnection) -> None:
        client = next(self._ids)
        token = parse_qs(urlsplit(ws.request.path).query).get("token", [None])[0] \
            if ws.request is not None else None
        if not self.guard.connect(client, token):  # checked in _process_request already
            await ws.close(1008, "token")
            return
        self._clients[client] = ws
        peer = _peer(ws)
        self._log("info", f"console: page {client} connected from {peer}")
        try:
            if self.state:
                await ws.send(json.dumps({"type": "state", **self.state}))
            async for message in ws:
                try:
                    await self._on_message(client, ws, message)
                except ConnectionClosed:
                    raise
                except Exception as exc:
                    self.bad_requests += 1
                    self._log("error", f"console: request from page {client} failed: {exc!r}")
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(client, None)
            self.guard.disconnect(client)
            self._log("info", f"console: page {client} disconnected")

    async def _on_message(self, client: int, ws: ServerConnection, message: str | bytes
                          ) -> None:
        kind, why = parse_request(message)
        now = time.monotonic()
        if not kind:
            self.bad_requests += 1
            self._log("warning", f"console: refused a request from page {client}: {why}")
            await self._send(ws, json.dumps({"type": "refused", "message": why}))
            return
        if kind == "heartbeat":
            self.guard.heartbeat(client, now)
            return
        # not awaited here: this page's heartbeats keep being read while teleop answers
        task = asyncio.ensure_future(self._request(client, ws, kind, now))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _request(self, client: int, ws: ServerConnection, kind: str, now: float
                       ) -> None:
        if kind == "enable":
            why = self.guard.may_arm(client, now)
            if why:
                self._log("warning", f"console: page {client} may not arm: {why}")
                await self._send(ws, json.dumps({"type": "answer", "request": kind,
                                                 "ok": False, "message": f"not sent: {why}"}))
                return
            self.guard.armed_by(client)  # the dead-man holds before teleop can arm
        ok, text, answered = await self._call_enable(kind == "enable")
        if kind == "disable":
            if ok:
                self.guard.disarmed()
        elif answered and not ok:
            self.guard.release(client)
        elif not answered:
            text += "; teleop may still arm: this page holds the dead-man"
        elif not self.guard.connected(client):
            # the page left while teleop was arming (the dead-man's disable went first)
            _, undo, _ = await self._call_enable(False)
            self._log("warning", f"console: page {client} left while teleop armed for it: "
                      f"disabling again -> {undo}")
        self._log("info", f"console: page {client} asked {kind}: {text}")
        await self._send(ws, json.dumps({"type": "answer", "request": kind, "ok": ok,
                                         "message": text}))

    async def _call_enable(self, enabled: bool) -> tuple[bool, str, bool]:
        """(success, teleop's message, whether teleop answered at all)."""
        try:
            future = self._set_enabled(enabled)
            ok, text = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                              ENABLE_TIMEOUT_S)
            return bool(ok), str(text), True
        except TimeoutError:
            return False, f"no answer from teleop within {ENABLE_TIMEOUT_S:g} s", False
        except Exception as exc:  # (the page gets the reason; we keep serving)
            return False, f"call failed: {exc}", False

    async def _check_dead_man(self) -> None:
        while True:
            await asyncio.sleep(CHECK_PERIOD_S)
            self.cpu_s = time.thread_time()  # this thread's CPU so far (bench_console)
            why = self.guard.due_disable(time.monotonic())
            if why is None:
                continue
            ok, text, _ = await self._call_enable(False)
            level = "warning" if ok else "error"
            self._log(level, f"console dead-man: {why}: disabling teleop -> {text}")
            for ws in list(self._clients.values()):
                await self._send(ws, json.dumps({"type": "notice", "message":
                                                 f"dead-man: {why}; teleop {text}"}))
            if not ok:  # teleop did not confirm: try again (a lost holder fires again)
                self.guard.armed_by(0)
                self.guard.disconnect(0)
                await asyncio.sleep(0.5)


def _peer(ws: ServerConnection) -> str:
    try:
        addr = ws.remote_address
        return f"{addr[0]}:{addr[1]}"
    except Exception:
        return "?"


def _response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")])
    return Response(status.value, status.phrase, headers, body)
