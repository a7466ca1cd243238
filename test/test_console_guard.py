"""The console's arming rules (mocap_ros.ros.console.guard): token, heartbeat dead-man, bad
requests. Pure logic on an explicit clock; the same rules over a real WebSocket are in
test_console_server.py, and in a real browser in test_console_browser.py."""

from __future__ import annotations

import json

import pytest

from mocap_ros.ros.console.guard import (
    MAX_REQUEST_BYTES,
    ArmGuard,
    is_loopback,
    parse_request,
    token_matches,
)


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("127.0.1.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert not is_loopback("::") and not is_loopback("example.org")


def test_token_required_when_set():
    assert token_matches(None, None) and token_matches("", "anything")
    assert not token_matches("s3cret", None) and not token_matches("s3cret", "")
    assert not token_matches("s3cret", "s3cre") and not token_matches("s3cret", "S3cret")
    assert token_matches("s3cret", "s3cret")
    g = ArmGuard(token="s3cret")
    assert not g.connect(1, None) and not g.connect(2, "wrong")
    assert g.may_arm(1, 0.0) == "not connected"  # a refused page can never arm
    assert g.connect(3, "s3cret")


def test_arming_needs_a_live_heartbeat():
    g = ArmGuard(heartbeat_timeout=1.0)
    assert g.connect(1, None)
    assert "no heartbeat" in g.may_arm(1, 10.0)  # connected but never beat: hidden page
    g.heartbeat(1, 10.0)
    assert g.may_arm(1, 10.5) == ""
    assert "no heartbeat" in g.may_arm(1, 11.2)


def test_dead_man_fires_on_disconnect_once():
    g = ArmGuard(heartbeat_timeout=1.0)
    g.connect(1, None)
    g.heartbeat(1, 0.0)
    g.armed_by(1)
    assert g.due_disable(0.5) is None
    g.disconnect(1)
    why = g.due_disable(0.6)
    assert why is not None and "disconnected" in why
    assert g.due_disable(0.7) is None  # once per event
    assert not g.holders


def test_dead_man_fires_on_stale_heartbeat_only_past_the_timeout():
    g = ArmGuard(heartbeat_timeout=1.0)
    g.connect(1, None)
    for t in (0.0, 0.25, 0.5):
        g.heartbeat(1, t)
    g.armed_by(1)
    assert g.due_disable(1.4) is None  # 0.9 s since the last beat
    why = g.due_disable(1.6)  # 1.1 s
    assert why is not None and "heartbeat" in why


def test_watchers_hold_nothing():
    """A page that only watches (teleop armed elsewhere) disarms nothing when it closes."""
    g = ArmGuard()
    g.connect(1, None)
    g.heartbeat(1, 0.0)
    g.on_teleop_enabled(True)  # armed from a terminal
    g.disconnect(1)
    assert g.due_disable(5.0) is None


def test_disable_by_anyone_releases_the_holder():
    g = ArmGuard()
    g.connect(1, None)
    g.heartbeat(1, 0.0)
    g.armed_by(1)
    g.on_teleop_enabled(True)
    g.on_teleop_enabled(False)  # STOP from another page or the terminal
    g.disconnect(1)
    assert g.due_disable(5.0) is None


def test_two_holders_one_goes_stale():
    g = ArmGuard()
    for c in (1, 2):
        g.connect(c, None)
        g.heartbeat(c, 0.0)
        g.armed_by(c)
    g.heartbeat(1, 1.0)
    assert "page 2" in (g.due_disable(1.5) or "")


@pytest.mark.parametrize("text, why", [
    (b"\x00\x01", "binary"), ("{", "not JSON"), ("[1, 2]", "not a JSON object"),
    ('{"type": "fire"}', "unknown type"), ('{"kind": "enable"}', "unknown type"),
    (json.dumps({"type": "enable", "pad": "x" * MAX_REQUEST_BYTES}), "bytes"),
])
def test_bad_requests_are_refused_with_a_reason(text, why):
    kind, reason = parse_request(text)
    assert kind == "" and why in reason


def test_good_requests():
    for t in ("heartbeat", "enable", "disable"):
        assert parse_request(json.dumps({"type": t})) == (t, "")


def test_timeout_must_be_positive():
    with pytest.raises(ValueError):
        ArmGuard(heartbeat_timeout=0.0)


def test_a_refused_arm_releases_the_page():
    g = ArmGuard()
    g.connect(1, None)
    g.heartbeat(1, 0.0)
    g.armed_by(1)  # held from the request on
    g.release(1)  # teleop said no
    g.disconnect(1)
    assert g.due_disable(0.1) is None and not g.connected(1)
