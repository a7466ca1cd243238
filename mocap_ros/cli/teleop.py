"""``mocap-ros teleop enable|disable|status [--watch]``: arm, stop and watch teleop_node from a
terminal (scripts, SSH) without the ROS 2 command-line tools: an rclpy client of
``~/enable`` (std_srvs/SetBool) and a listener of ``teleop/status``.

Exit codes: 0 done (enable/disable answered success; status received), 1 refused or no
teleop_node (the message says why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

DEFAULT_SERVICE = "/teleop_node/enable"
DEFAULT_STATUS = "/teleop/status"


def status_line(st: Any) -> str:
    """One line from a TeleopStatus message."""
    age = "no pose yet" if st.pose_age < 0 else f"pose age {st.pose_age:.2f} s"
    state = "ENABLED" if st.enabled else "disabled"
    reason = f" ({st.reason})" if st.reason and st.reason != st.mode else ""
    return (f"{st.robot or '?'}: {state}, mode {st.mode}{reason}, {age}, "
            f"{st.rate_hz:.0f} Hz")


def _call(node: Any, executor: Any, service: str, enabled: bool, timeout: float
          ) -> tuple[bool, str]:
    from std_srvs.srv import SetBool

    client = node.create_client(SetBool, service)
    deadline = time.monotonic() + timeout
    while not client.service_is_ready():
        if time.monotonic() > deadline:
            return False, f"no {service} within {timeout:g} s (is teleop_node running?)"
        executor.spin_once(timeout_sec=0.05)
    future = client.call_async(SetBool.Request(data=enabled))
    # the answer gets its own deadline: enabling may wait for the operator lock
    # (operator_lock_timeout) after the service was found
    answer_deadline = time.monotonic() + timeout
    while not future.done():
        if time.monotonic() > answer_deadline:
            if not enabled:
                return False, f"{service} did not answer within {timeout:g} s"
            # the request is out: teleop could still arm after we gave up. Disarm instead of
            # leaving an armed robot nobody asked for.
            client.call_async(SetBool.Request(data=False))
            executor.spin_once(timeout_sec=0.2)
            return False, (f"{service} did not answer within {timeout:g} s: a disable was "
                           "sent so that the late enable cannot arm teleop")
        executor.spin_once(timeout_sec=0.05)
    r = future.result()
    return bool(r.success), str(r.message)


def _status(node: Any, executor: Any, topic: str, watch: bool, timeout: float,
            out: TextIO) -> int:
    from mocap_ros.msg import TeleopStatus

    got: list[Any] = []
    node.create_subscription(TeleopStatus, topic, lambda m: got.append(m), 10)
    deadline = time.monotonic() + timeout
    while not got:
        if time.monotonic() > deadline:
            print(f"mocap-ros teleop: no {topic} within {timeout:g} s (is teleop_node "
                  "running?)", file=sys.stderr)
            return 1
        executor.spin_once(timeout_sec=0.05)
    if not watch:
        print(status_line(got[-1]), file=out)
        return 0
    width = 0
    last_rx = time.monotonic()
    try:
        while True:
            n = len(got)
            executor.spin_once(timeout_sec=0.1)
            now = time.monotonic()
            if len(got) > n:
                last_rx = now
            line = status_line(got[-1])
            if now - last_rx > 1.0:
                line = f"no {topic} for {now - last_rx:.0f} s; last: " + line
            out.write("\r" + line.ljust(width))
            out.flush()
            width = len(line)
            del got[:-1]
    except KeyboardInterrupt:
        out.write("\n")
        return 0


def cmd_teleop(args: argparse.Namespace) -> int:
    try:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
    except ImportError as exc:
        print(f"mocap-ros teleop: rclpy is not importable here ({exc}); run it with "
              "`bash scripts/in_env.sh mocap-ros teleop ...`", file=sys.stderr)
        return 1
    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("mocap_ros_teleop_cli", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        if args.action == "status":
            return _status(node, executor, args.status_topic, args.watch, args.timeout,
                           sys.stdout)
        ok, text = _call(node, executor, args.service, args.action == "enable", args.timeout)
        print(f"teleop {args.action}: {text}", file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 1
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teleop", help="enable | disable | status [--watch] of teleop_node "
                       "(no ros2 CLI needed)",
                       description="Arm (enable), stop (disable) or watch (status) "
                       "teleop_node: calls its ~/enable service (std_srvs/SetBool) and reads "
                       "teleop/status. Exit 0 on success, 1 when refused or not running.")
    p.add_argument("action", choices=("enable", "disable", "status"))
    p.add_argument("--watch", action="store_true",
                   help="status: keep one line updated until Ctrl-C")
    p.add_argument("--service", default=DEFAULT_SERVICE,
                   help=f"teleop_node's enable service (default {DEFAULT_SERVICE})")
    p.add_argument("--status-topic", default=DEFAULT_STATUS,
                   help=f"teleop status topic (default {DEFAULT_STATUS})")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SEC",
                   help="seconds to wait for teleop_node (default 5)")
    p.set_defaults(func=cmd_teleop)
