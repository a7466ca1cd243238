"""Entry-point plumbing shared by the nodes: init, clear start-up errors, spin, shutdown."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Exit code 1 with the reason on stderr when the node cannot start (bad parameter,
    missing model files); 0 after Ctrl-C or an external shutdown."""
    rclpy.init(args=args)
    try:
        node = factory()
    except Exception as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
