"""teleop_node's side of the operator lock (issue 21 item 7), over real DDS, fast.

mocap_node's ``~/lock`` is played by a scripted LockOperator service (answers after a delay,
refuses, or never answers), and the poses by a probe publishing BodyPose with the track id,
operator state and reason mocap_node would set. So each handshake rule is checked alone:
``~/enable`` answers only after the lock did, with its typed track id; a refusal or no
answer leaves teleop disabled with a status reason; a failed re-lock after operator_lost
disables an armed teleop; without a lock service a different track id latches operator_lost;
operator_uncertain is its own status reason. The end-to-end runs with the real mocap_node
and real photos are in test_operator_teleop.py.
"""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.task import Future  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from test_teleop_node import ARM, Operator, make_teleop  # noqa: E402

from mocap_ros.msg import TeleopStatus  # noqa: E402
from mocap_ros.srv import LockOperator  # noqa: E402

from ros_helpers import make_executor, ros_context, wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]
LOCK = "/mocap_node/lock"


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class ScriptedLock:
    """A LockOperator service at /mocap_node/lock. ``answer``: (success, track_id, reason),
    or None to never answer; ``delay``: seconds before answering (without blocking the
    executor it shares with teleop_node)."""

    def __init__(self, ctx, answer: tuple[bool, int, str] | None, delay: float = 0.0) -> None:
        self.node = rclpy.create_node("mocap_node", context=ctx)
        self.answer, self.delay = answer, delay
        self.requests: list[bool] = []
        self.answered_at: float | None = None
        # its own group: the coroutine holds it while it waits (see teleop_node ~/enable)
        self.node.create_service(LockOperator, "~/lock", self._on_lock,
                                 callback_group=ReentrantCallbackGroup())

    async def _on_lock(self, request, response):
        self.requests.append(bool(request.lock))
        if not request.lock:
            response.success, response.reason = True, "unlocked"
            return response
        answer = self.answer
        if answer is None:
            await Future()  # never done: the caller's timeout must decide
        if self.delay:
            later = Future()
            timer = self.node.create_timer(self.delay, lambda: later.done()
                                           or later.set_result(True))
            await later
            timer.cancel()
        response.success, response.track_id, response.reason = answer
        self.answered_at = time.monotonic()
        return response


class Probe(Operator):
    """Operator (test_teleop_node) whose poses carry ``fields`` (track_id, operator_state,
    reason, ...) as mocap_node with operator_lock sets them."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.fields: dict[str, object] = {}
        pub = self.pub

        class _Tagged:
            def publish(_self, msg) -> None:  # noqa: N805
                for k, v in self.fields.items():
                    setattr(msg, k, v)
                pub.publish(msg)

        self.pub = _Tagged()

    def call_enable(self, ex, on: bool = True, timeout: float = 10.0) -> SetBool.Response:
        assert self.enable_client.wait_for_service(timeout_sec=10.0)
        fut = self.enable_client.call_async(SetBool.Request(data=on))
        assert wait_for(fut.done, ex, timeout=timeout), "~/enable never answered"
        return fut.result()

    def last_status(self, ex, pred, timeout: float = 5.0) -> TeleopStatus:
        """Spin (publishing poses) until the newest status satisfies ``pred``."""
        n = len(self.status)

        def ok() -> bool:
            return len(self.status) > n and pred(self.status[-1])

        assert wait_for(ok, ex, timeout=timeout, on_tick=lambda: self.pose(angles=ARM),
                        tick_period=1 / 30), \
            [(s.enabled, s.mode, s.reason, s.operator_lock) for s in self.status[-3:]]
        return self.status[-1]


def _rig(ctx, lock: ScriptedLock | None, **teleop):
    params = {"operator_lock_service": LOCK} if lock is not None else {}
    node = make_teleop(ctx, **params, **teleop)
    probe = Probe(ctx)
    nodes = [node, probe.node] + ([lock.node] if lock is not None else [])
    ex = make_executor(ctx, *nodes)
    if lock is not None:
        assert wait_for(node._lock_client.service_is_ready, ex, timeout=10.0)
    return node, probe, ex, nodes


def _close(ex, nodes) -> None:
    ex.shutdown()
    for n in nodes:
        n.destroy_node()


def test_enable_answers_after_the_lock_with_its_typed_track_id(ctx):
    """~/enable's answer comes after the lock's (0.5 s late here), and carries the track id
    of the typed response; poses of that track id are followed, another track id (tracked)
    latches operator_lost, and mocap_node's operator_uncertain is reported as itself."""
    lock = ScriptedLock(ctx, (True, 7, "locked on track_id 7"), delay=0.5)
    node, probe, ex, nodes = _rig(ctx, lock)
    try:
        probe.fields = {"track_id": 7, "operator_state": "tracking"}
        t0 = time.monotonic()
        res = probe.call_enable(ex)
        assert res.success, res.message
        assert lock.answered_at is not None and lock.answered_at - t0 >= 0.45, res.message
        assert "track_id 7" in res.message
        assert node.controller.enabled and node._operator_track == 7
        st = probe.last_status(ex, lambda s: s.tracking)
        assert st.operator_track_id == 7 and st.operator_lock == "locked on track_id 7"
        # mocap_node unsure: held, and the status says why (not "invalid")
        probe.fields = {"track_id": 7, "operator_state": "uncertain", "valid": False,
                        "reason": "operator_uncertain"}
        st = probe.last_status(ex, lambda s: not s.tracking)
        assert st.reason == "operator_uncertain", st.reason
        probe.fields = {"track_id": 7, "operator_state": "tracking"}
        probe.last_status(ex, lambda s: s.tracking)
        # someone else followed under another track id: operator_lost, latched
        probe.fields = {"track_id": 8, "operator_state": "tracking"}
        probe.last_status(ex, lambda s: s.reason == "operator_lost")
        probe.fields = {"track_id": 7, "operator_state": "tracking"}
        st = probe.last_status(ex, lambda s: True)
        wait_for(lambda: False, ex, timeout=0.3, on_tick=lambda: probe.pose(angles=ARM),
                 tick_period=1 / 30)
        assert probe.status[-1].reason == "operator_lost" and not probe.status[-1].tracking
    finally:
        _close(ex, nodes)


def test_lock_refusal_keeps_teleop_disabled_and_says_why(ctx):
    """Nobody in view: ~/enable fails with the lock's reason, teleop stays disabled, and
    teleop/status says operator_lock_failed (not only a log line)."""
    lock = ScriptedLock(ctx, (False, 0, "nobody in view to lock on to"))
    node, probe, ex, nodes = _rig(ctx, lock)
    try:
        res = probe.call_enable(ex)
        assert not res.success and "nobody in view" in res.message, res.message
        assert not node.controller.enabled
        st = probe.last_status(ex, lambda s: s.reason == "operator_lock_failed")
        assert not st.enabled and st.operator_lock == "failed: nobody in view to lock on to"
        assert st.operator_track_id == 0
        probe.stream(ex, 0.3, angles=ARM)
        assert probe.commands == []
        # a plain disable clears the failure
        assert probe.call_enable(ex, on=False).success
        probe.last_status(ex, lambda s: s.reason == "disabled")
    finally:
        _close(ex, nodes)


def test_no_lock_answer_times_out_disabled_without_blocking(ctx):
    """The lock never answers: ~/enable answers after operator_lock_timeout, not enabled,
    with the reason; the control loop kept running meanwhile (the wait blocks nothing);
    mocap_node is told to unlock (a late lock would follow someone teleop never armed)."""
    lock = ScriptedLock(ctx, None)
    node, probe, ex, nodes = _rig(ctx, lock, operator_lock_timeout=1.0)
    try:
        n0 = len(probe.status)
        t0 = time.monotonic()
        res = probe.call_enable(ex)
        waited = time.monotonic() - t0
        assert not res.success and "no answer" in res.message, res.message
        assert 0.9 <= waited < 5.0, waited
        assert not node.controller.enabled
        # ~50 Hz control steps during the wait: at least a few per second under any load
        assert len(probe.status) - n0 >= 5
        st = probe.last_status(ex, lambda s: s.reason == "operator_lock_failed")
        assert st.operator_lock.startswith("failed: no answer from /mocap_node/lock")
        assert wait_for(lambda: False in lock.requests, ex, timeout=5.0), lock.requests
        probe.stream(ex, 0.3, angles=ARM)
        assert probe.commands == []
    finally:
        _close(ex, nodes)


def test_failed_relock_after_operator_lost_disables(ctx):
    """Armed and following track 3; mocap_node loses the operator; a new ~/enable (lock on
    afresh) finds nobody: teleop is DISABLED (it brakes to rest), status operator_lock_failed."""
    lock = ScriptedLock(ctx, (True, 3, "locked on track_id 3"))
    node, probe, ex, nodes = _rig(ctx, lock)
    try:
        probe.fields = {"track_id": 3, "operator_state": "tracking"}
        assert probe.call_enable(ex).success
        probe.last_status(ex, lambda s: s.tracking)
        probe.fields = {"track_id": 3, "operator_state": "operator_lost", "valid": False,
                        "reason": "operator_lost"}
        probe.last_status(ex, lambda s: s.reason == "operator_lost" and s.enabled)
        lock.answer = (False, 0, "nobody in view to lock on to")
        res = probe.call_enable(ex)
        assert not res.success and "nobody in view" in res.message, res.message
        assert not node.controller.enabled
        st = probe.last_status(ex, lambda s: s.mode == "disabled", timeout=10.0)
        assert st.reason == "operator_lock_failed" and not st.enabled
        n = len(probe.commands)
        probe.fields = {"track_id": 4, "operator_state": "tracking"}
        probe.stream(ex, 0.3, angles=ARM)
        assert len(probe.commands) == n  # silent: nobody is followed
    finally:
        _close(ex, nodes)


def test_relock_after_operator_lost_follows_the_new_track(ctx):
    """The re-lock succeeds: teleop, still armed, follows the NEW track id only."""
    lock = ScriptedLock(ctx, (True, 3, "locked on track_id 3"))
    _node, probe, ex, nodes = _rig(ctx, lock)
    try:
        probe.fields = {"track_id": 3, "operator_state": "tracking"}
        assert probe.call_enable(ex).success
        probe.last_status(ex, lambda s: s.tracking)
        probe.fields = {"track_id": 3, "operator_state": "operator_lost", "valid": False,
                        "reason": "operator_lost"}
        probe.last_status(ex, lambda s: s.reason == "operator_lost")
        lock.answer = (True, 9, "locked on track_id 9")
        res = probe.call_enable(ex)
        assert res.success and "re-armed" in res.message and "9" in res.message, res.message
        probe.fields = {"track_id": 9, "operator_state": "tracking"}
        st = probe.last_status(ex, lambda s: s.tracking)
        assert st.operator_track_id == 9
    finally:
        _close(ex, nodes)


def test_without_lock_service_a_different_track_id_latches_operator_lost(ctx):
    """No lock service: the first track id followed after ~/enable is the operator; a
    different one (mocap_node's unlocked choice switched person) holds with operator_lost,
    and stays held when the first comes back, until a new ~/enable."""
    _node, probe, ex, nodes = _rig(ctx, None)
    try:
        probe.fields = {"track_id": 4, "operator_state": "unlocked"}
        assert probe.call_enable(ex).success
        st = probe.last_status(ex, lambda s: s.tracking)
        assert st.operator_track_id == 4
        probe.fields = {"track_id": 5, "operator_state": "unlocked"}
        probe.last_status(ex, lambda s: s.reason == "operator_lost")
        probe.fields = {"track_id": 4, "operator_state": "unlocked"}
        wait_for(lambda: False, ex, timeout=0.5, on_tick=lambda: probe.pose(angles=ARM),
                 tick_period=1 / 30)
        assert probe.status[-1].reason == "operator_lost", probe.status[-1].reason
        res = probe.call_enable(ex)
        assert res.success and "re-armed" in res.message
        probe.last_status(ex, lambda s: s.tracking)
    finally:
        _close(ex, nodes)
