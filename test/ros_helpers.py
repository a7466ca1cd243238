"""Shared helpers for tests that talk ROS 2 over real DDS (rclpy + Fast DDS).

Use from a test module in test/ (pytest puts test/ on sys.path, no conftest needed)::

    import pytest

    rclpy = pytest.importorskip("rclpy")  # skip outside `bash scripts/in_env.sh`
    from ros_helpers import ros_context, wait_for

    pytestmark = [pytest.mark.ros, pytest.mark.timeout(60)]

    @pytest.fixture
    def ctx():
        with ros_context() as context:  # rclpy.init on this test's own Context
            yield context                # ... and shutdown afterwards

    def test_x(ctx):
        node = rclpy.create_node("x", context=ctx)
        executor = make_executor(ctx, node)
        ...
        assert wait_for(lambda: got, executor, timeout=10.0)

Isolation: every context joins the DDS domain ``DOMAIN_ID``, fixed per test process
(``MOCAP_ROS_TEST_DOMAIN_ID`` if set, else ``ROS_DOMAIN_ID`` if set -- whoever set it
chose the domain, e.g. a CI job isolating its runs -- else from the pid, 10..99), so
concurrent test runs on one machine, or other ROS traffic on the default domain 0, do not
cross-talk; and discovery is kept on this host
(``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` unless the environment sets it). Several
contexts in one test share the domain and so see each other: that is how a publisher and a
subscriber in separate contexts meet over DDS.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

# Domain ids 0..101 keep Fast DDS's ports (7400 + 250 * id + ...) below Linux's ephemeral range.
DOMAIN_ID = int(
    os.environ.get("MOCAP_ROS_TEST_DOMAIN_ID")
    or os.environ.get("ROS_DOMAIN_ID")
    or 10 + os.getpid() % 90
)


@contextlib.contextmanager
def ros_context(domain_id: int = DOMAIN_ID) -> Iterator[object]:
    """An initialised ``rclpy.context.Context`` on ``domain_id``; shut down on exit."""
    import rclpy
    from rclpy.context import Context

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


def make_executor(context: object, *nodes: object) -> object:
    """A SingleThreadedExecutor on ``context`` with ``nodes`` added."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    return executor


def wait_for(
    predicate: Callable[[], bool],
    *executors: object,
    timeout: float = 10.0,
    on_tick: Callable[[], None] | None = None,
    tick_period: float = 0.1,
) -> bool:
    """Spin ``executors`` until ``predicate()`` is true or ``timeout`` seconds pass.

    ``on_tick`` (e.g. ``lambda: pub.publish(msg)``) runs first and then every
    ``tick_period`` seconds: publishing until received rides out DDS discovery. Returns the
    predicate's last value, so ``assert wait_for(...)`` reads well.
    """
    deadline = time.monotonic() + timeout
    next_tick = 0.0
    while True:
        if predicate():
            return True
        now = time.monotonic()
        if now >= deadline:
            return bool(predicate())
        if on_tick is not None and now >= next_tick:
            on_tick()
            next_tick = now + tick_period
        if executors:
            for executor in executors:
                executor.spin_once(timeout_sec=0.01)
        else:
            time.sleep(0.01)


def collect(msg_type: type, topic: str, n: int, timeout: float) -> list:
    """Messages on ``topic`` from a fresh listener node (its own context), until ``n`` have
    arrived or ``timeout`` seconds pass: what a process under test published."""
    import rclpy

    with ros_context() as ctx:
        node = rclpy.create_node("test_listener", context=ctx)
        got: list = []
        node.create_subscription(msg_type, topic, got.append, 10)
        ex = make_executor(ctx, node)
        wait_for(lambda: len(got) >= n, ex, timeout=timeout)
        ex.shutdown()
        node.destroy_node()
    return got
