"""Entry-point plumbing shared by the nodes: init, clear start-up errors, spin, shutdown."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


@contextlib.contextmanager
def quiet_shutdown(name: str) -> Iterator[None]:
    """While the nodes are being destroyed, a further SIGINT/SIGTERM only says so.

    A terminal's Ctrl-C reaches every process of the group and ``ros2 launch`` then sends its
    own SIGINT, so a node commonly gets a second one while ``destroy_node`` joins its worker
    threads; Python's default handler would raise KeyboardInterrupt there, leaving a traceback,
    exit code -2 and threads not joined. rclpy's own handlers are taken off first (they chain
    to Python's default one).
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
                signal.signal(s, handler)


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Exit code 1 with the reason on stderr when the node cannot start (bad parameter,
    missing model files); 0 after Ctrl-C or an external shutdown (also when Ctrl-C comes again
    during the shutdown)."""
    rclpy.init(args=args)
    try:
        node = factory()
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    except Exception as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with quiet_shutdown(name):
            node.destroy_node()
            rclpy.try_shutdown()
    return 0
