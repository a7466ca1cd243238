"""Who may arm teleop from the console, and when the console must disarm it (pure logic).

The dead-man: a page that armed teleop holds it only while it is connected and its heartbeat
(sent every 250 ms while the page is visible) is fresh. When a holder disconnects or falls
silent for longer than ``heartbeat_timeout`` while armed, :meth:`ArmGuard.due_disable` says so,
once, and the console calls ``~/enable false``. A page that did not arm (watching only, or
teleop armed from a terminal) holds nothing: closing it disarms nothing.

The token: when the console serves on an interface other than loopback, every connection
must present it; one without it is refused before it can send anything (so it cannot arm).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass

REQUEST_TYPES = ("heartbeat", "enable", "disable")
MAX_REQUEST_BYTES = 1024


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost`` are loopback; anything else (0.0.0.0 included) is
    reachable from the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(expected: str | None, given: str | None) -> bool:
    """No token expected: anything passes. Else a constant-time comparison."""
    if not expected:
        return True
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def parse_request(text: str | bytes) -> tuple[str, str]:
    """One message from a page -> (type, "") or ("", why it is refused)."""
    if isinstance(text, bytes):
        return "", "binary message"
    if len(text) > MAX_REQUEST_BYTES:
        return "", f"message of {len(text)} bytes (max {MAX_REQUEST_BYTES})"
    try:
        msg = json.loads(text)
    except ValueError:
        return "", "not JSON"
    if not isinstance(msg, dict):
        return "", "not a JSON object"
    kind = msg.get("type")
    if kind not in REQUEST_TYPES:
        return "", f"unknown type {str(kind)[:40]!r}"
    return kind, ""


@dataclass
class _Client:
    last_heartbeat: float | None = None
    connected: bool = True


class ArmGuard:
    """Connections, heartbeats and the pages that armed teleop. Times are seconds on one
    monotonic clock, passed in (testable without sleeping)."""

    def __init__(self, token: str | None = None, heartbeat_timeout: float = 1.0) -> None:
        if heartbeat_timeout <= 0.0:
            raise ValueError(f"heartbeat_timeout must be > 0, got {heartbeat_timeout}")
        self.token = token or None
        self.heartbeat_timeout = heartbeat_timeout
        self._clients: dict[int, _Client] = {}
        self._holders: set[int] = set()
        self._teleop_enabled = False

    def connect(self, client: int, token: str | None) -> bool:
        """False: a wrong or missing token; the connection must be closed."""
        if not token_matches(self.token, token):
            return False
        self._clients[client] = _Client()
        return True

    def heartbeat(self, client: int, now: float) -> None:
        c = self._clients.get(client)
        if c is not None and c.connected:
            c.last_heartbeat = now

    def disconnect(self, client: int) -> None:
        c = self._clients.get(client)
        if c is not None:
            c.connected = False
        if client not in self._holders:
            self._clients.pop(client, None)

    def _alive(self, client: int, now: float) -> bool:
        c = self._clients.get(client)
        return c is not None and c.connected and c.last_heartbeat is not None \
            and now - c.last_heartbeat <= self.heartbeat_timeout

    def may_arm(self, client: int, now: float) -> str:
        """"" when this page may arm; else why not (no live heartbeat: a hidden or frozen
        page cannot hold the dead-man)."""
        if client not in self._clients or not self._clients[client].connected:
            return "not connected"
        if not self._alive(client, now):
            return f"no heartbeat in the last {self.heartbeat_timeout:g} s (is the page visible?)"
        return ""

    def armed_by(self, client: int) -> None:
        """This page asked teleop to arm: it holds the dead-man from the request on (an
        answer may come late, or after the page left), until a disable or a refusal."""
        self._holders.add(client)

    def release(self, client: int) -> None:
        """teleop refused this page's enable: it holds nothing."""
        self._holders.discard(client)
        c = self._clients.get(client)
        if c is not None and not c.connected:
            self._clients.pop(client, None)

    def connected(self, client: int) -> bool:
        c = self._clients.get(client)
        return c is not None and c.connected

    def disarmed(self) -> None:
        """A disable went through (any page's): nobody holds the dead-man any more."""
        for h in self._holders:
            if not self._clients.get(h, _Client(connected=False)).connected:
                self._clients.pop(h, None)
        self._holders.clear()

    def on_teleop_enabled(self, enabled: bool) -> None:
        """teleop/status: teleop going from enabled to disabled (by anyone) releases holders."""
        if self._teleop_enabled and not enabled:
            self.disarmed()
        self._teleop_enabled = enabled

    @property
    def holders(self) -> frozenset[int]:
        return frozenset(self._holders)

    def due_disable(self, now: float) -> str | None:
        """Why teleop must be disabled now (a holder gone or stale), else None. Once per
        event: the holders are released when it fires."""
        for h in sorted(self._holders):
            c = self._clients.get(h)
            if c is None or not c.connected:
                why = f"console page {h} disconnected while armed"
            elif not self._alive(h, now):
                why = (f"console page {h}: no heartbeat for more than "
                       f"{self.heartbeat_timeout:g} s while armed")
            else:
                continue
            self.disarmed()
            return why
        return None
