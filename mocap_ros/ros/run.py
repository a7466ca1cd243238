"""Entry-point plumbing shared by the nodes: init, clear start-up errors, spin, shutdown."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from mocap_ros.core.native_logs import quiet_native_logs, verbose_from_env

N = TypeVar("N", bound=Node)


@contextlib.contextmanager
def quiet_shutdown(name: str, restore: bool = True) -> Iterator[None]:
    """While the nodes are being destroyed, a further SIGINT/SIGTERM only says so.

    A terminal's Ctrl-C reaches every process of the group and ``ros2 launch`` then sends its
    own SIGINT, so a node commonly gets a second one while ``destroy_node`` joins its worker
    threads; Python's default handler would raise KeyboardInterrupt there, leaving a traceback,
    exit code -2 and threads not joined. rclpy's own handlers are taken off first (they chain
    to Python's default one). ``restore=False`` keeps this for the rest of the process: an
    entry point about to exit, where a Ctrl-C during the interpreter's teardown would
    otherwise still end it with -2.
    """
    def note(signum: int, _frame: object) -> None:
        print(f"{name}: {signal.Signals(signum).name} again: already stopping, please wait",
              file=sys.stderr, flush=True)

    with contextlib.suppress(Exception):  # rclpy without installed handlers
        from rclpy.signals import uninstall_signal_handlers

        uninstall_signal_handlers()
    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                # Not restoring: SIG_IGN, not the Python handler, because the interpreter's
                # finalization (DDS and MediaPipe teardown take a while) resets Python-level
                # handlers to SIG_DFL, and a Ctrl-C then would still end the process with -2.
                signal.signal(s, handler if restore else signal.SIG_IGN)


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


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Exit code 1 with the reason on stderr when the node cannot start (bad parameter,
    missing model files); 0 after Ctrl-C / SIGTERM or an external shutdown, also when the
    signal comes again during the shutdown (a terminal's Ctrl-C reaches the whole process
    group and ``ros2 launch`` sends its own SIGINT on top)."""
    return run_node_until_signal(factory, name, args)


def run_node_until_signal(factory: Callable[[], N], name: str, args: list[str] | None = None,
                          on_stop: Callable[[N, Executor, Callable[[], bool]], None] | None
                          = None) -> int:
    """Like ``run_node``, but with our own SIGINT/SIGTERM handling: a signal only ends the spin
    loop, so ``on_stop(node, executor, give_up)`` can still step the node (e.g. brake a robot to
    rest) before the context goes down; ``give_up()`` turns true at a second signal. rclpy's
    handlers would shut the context down at once, mid-motion and sometimes mid-publish
    (RCLError). Exit code 1 with the reason on stderr when the node cannot start; 0 after a
    signal or an external shutdown."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    if not verbose_from_env():
        quiet_native_logs()  # before the factory: MediaPipe prints while models load
    try:
        node = factory()
    except Exception as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    signals: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not signals:
            executor.spin_once(timeout_sec=0.05)
        if on_stop is not None and signals and rclpy.ok():
            on_stop(node, executor, lambda: len(signals) >= 2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # our handlers only count signals, so a second one cannot interrupt the teardown
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown()
        # the interpreter's finalization (DDS and MediaPipe teardown take a while) resets
        # Python-level handlers: ignore from here on, or a late Ctrl-C still exits with -2
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
    return 0
