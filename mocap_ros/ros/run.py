"""Entry-point plumbing shared by the nodes: init, clear start-up errors, spin, shutdown."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from mocap_ros.core.native_logs import quiet_native_logs, verbose_from_env

N = TypeVar("N", bound=Node)


def publish_unless_shut_down(node: Node, publisher: object, msg: object) -> bool:
    """Publish; False (nothing raised) when the node's context went away between the caller's
    check and the publish, as it can during Ctrl-C (RCLError: publisher's context is invalid).
    Any other failure is raised."""
    try:
        publisher.publish(msg)  # type: ignore[attr-defined]
    except Exception:
        if node.context.ok():
            raise
        return False
    return True


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None, *,
             quiet_native: bool = False) -> int:
    """Exit code 1 with the reason on stderr when the node cannot start (bad parameter,
    missing model files); 0 after Ctrl-C / SIGTERM or an external shutdown, also when the
    signal comes again during the shutdown (a terminal's Ctrl-C reaches the whole process
    group and ``ros2 launch`` sends its own SIGINT on top). ``quiet_native``: see
    ``run_node_until_signal``."""
    return run_node_until_signal(factory, name, args, quiet_native=quiet_native)


class SignalCount:
    """SIGINT/SIGTERM counted, never raised. Python's default handler raises
    KeyboardInterrupt wherever the main thread is: inside rclpy's message conversion, or
    between the rate limiter and the collision guard of a control step; counted, a signal
    only ends the caller's loop at its next check. ``give_up()`` is true from the second one
    (leave at once: stop braking). Off the main thread ``install`` changes nothing and
    returns False (signals cannot be handled there)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.count = 0
        self._previous: dict[int, object] = {}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count >= 2 and self.name:
            print(f"{self.name}: {signal.Signals(signum).name} again: leaving without waiting "
                  "further", file=sys.stderr, flush=True)

    def install(self) -> bool:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return False
        with contextlib.suppress(Exception):  # rclpy's own, where they are installed
            from rclpy.signals import uninstall_signal_handlers

            uninstall_signal_handlers()
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, self._on_signal)
        return True

    def give_up(self) -> bool:
        return self.count >= 2

    def release(self, exiting: bool) -> None:
        """``exiting``: SIG_IGN from here on, not the previous handlers: the interpreter's
        finalization (DDS and MediaPipe teardown take a while) resets Python-level handlers,
        and a late Ctrl-C would still end the process with -2."""
        for s, handler in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(s, signal.SIG_IGN if exiting else handler)  # type: ignore[arg-type]
        self._previous.clear()


def run_node_until_signal(factory: Callable[[], N], name: str, args: list[str] | None = None,
                          on_stop: Callable[[N, Executor, Callable[[], bool]], bool | None]
                          | None = None, *, quiet_native: bool = False) -> int:
    """Like ``run_node``, but with our own SIGINT/SIGTERM handling: a signal only ends the spin
    loop, so ``on_stop(node, executor, give_up)`` can still step the node (e.g. brake a robot to
    rest) before the context goes down; ``give_up()`` turns true at a second signal. rclpy's
    handlers would shut the context down at once, mid-motion and sometimes mid-publish
    (RCLError). Exit code 1 with the reason on stderr when the node cannot start, and 1 when
    ``on_stop`` returns False (it did not finish: a robot left moving); 0 after a signal or an
    external shutdown.

    ``quiet_native``: filter MediaPipe's native start-up chatter off stderr (unless
    MOCAP_ROS_VERBOSE). Only for processes that load MediaPipe: the filter routes fd 2
    through a thread, and a node that moves a robot keeps its stderr direct, so its last
    words before a crash are never left in a pipe."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    if quiet_native and not verbose_from_env():
        quiet_native_logs()  # before the factory: MediaPipe prints while models load
    try:
        node = factory()
    except Exception as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    signals = SignalCount()
    signals.install()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        while rclpy.ok() and not signals.count:
            executor.spin_once(timeout_sec=0.05)
        if on_stop is not None and signals.count and rclpy.ok() and \
                on_stop(node, executor, signals.give_up) is False:
            code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # our handlers only count signals, so a second one cannot interrupt the teardown
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
        signals.release(exiting=True)
    return code
