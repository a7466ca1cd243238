"""DDS replay of a bag (``replay_bag``, ``mocap-ros replay``).

``replay_bag`` publishes a bag's messages over DDS with their original timing scaled by
``rate`` (the serialized CDR bytes, nothing deserialized) and ``/clock`` with the bag time,
so nodes with ``use_sim_time`` follow it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mocap_ros.io.bags.reader import iter_messages, open_reader, topic_list
from mocap_ros.io.bags.types import TF_TOPIC, BagError, qos_of

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


# =========================================================================== replay
@dataclass
class ReplaySummary:
    """What :func:`replay_bag` published."""

    published: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    loops: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0  # bag time covered by one pass
    skipped_topics: list[str] = field(default_factory=list)
    interrupted: bool = False
    truncated: str | None = None  # why only part of the bag could be read

    def text(self) -> str:
        total = sum(self.published.values())
        lines = [f"replayed {total} messages on {len(self.published)} topics in "
                 f"{self.wall_s:.2f} s ({self.loops} pass(es) of {self.bag_s:.2f} s of bag time)"
                 + (f", /clock x{self.clock_messages}" if self.clock_messages else "")
                 + (" [interrupted]" if self.interrupted else "")]
        lines += [f"  {t}: {n}" for t, n in sorted(self.published.items())]
        if self.skipped_topics:
            lines.append("  skipped (type not importable here): "
                         + ", ".join(self.skipped_topics))
        if self.truncated:
            lines.append(f"  WARNING: {self.truncated}")
        return "\n".join(lines)


def message_class(msgtype: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (or ``pkg/Name``), imported by name."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise ImportError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    return getattr(module, parts[2])


def _replay_qos(conn: Any) -> Any:
    """Reliable/volatile keep-last 10 (matches reliable and best-effort subscribers), /tf 100,
    /tf_static transient-local; a reliability/durability recorded in the bag wins."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    depth = 100 if conn.topic == TF_TOPIC else 10
    qos = QoSProfile(depth=depth)
    if conn.topic == "/tf_static":
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    for recorded in qos_of(conn)[:1]:
        rel = getattr(getattr(recorded, "reliability", None), "name", "")
        dur = getattr(getattr(recorded, "durability", None), "name", "")
        if rel == "BEST_EFFORT":
            qos.reliability = ReliabilityPolicy.BEST_EFFORT
        if dur == "TRANSIENT_LOCAL":
            qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
    return qos


def replay_bag(
    path: str | os.PathLike[str],
    rate: float = 1.0,
    loop: bool = False,
    clock: bool = True,
    topics: Sequence[str] | None = None,
    context: Any = None,
    on_published: Callable[[str, int, float], None] | None = None,
    stop_event: threading.Event | None = None,
    *,
    clock_hz: float = 40.0,
    wait_for_subscribers: float = 0.0,
    wait_topics: Sequence[str] | None = None,
    node_name: str = "mocap_bag_replay",
) -> ReplaySummary:
    """Publish the bag's messages over DDS at their bag times scaled by ``1 / rate``.

    The serialized CDR bytes are published as they are (nothing is deserialized); each
    topic's rclpy message class is imported by its type name, and topics whose type is not
    importable are skipped (listed in the summary). With ``clock`` ``/clock``
    (rosgraph_msgs/Clock) carries the bag time: before every message and ``clock_hz`` times
    a (wall) second in between, so nodes with ``use_sim_time`` follow the bag; a ``/clock``
    recorded in the bag is then not replayed. ``loop`` starts over at the end (bag time and
    /clock jump back, as with ``ros2 bag play --loop``) until ``stop_event`` is set.
    ``on_published(topic, bag_time_ns, time.monotonic())`` is called after each publish.
    ``wait_for_subscribers``: wait up to that many seconds before starting until every topic
    in ``wait_topics`` (default: any replayed topic) has a subscriber. ``context``: an
    initialised rclpy Context (else one is made and shut down here).
    """
    import rclpy
    from rclpy.context import Context

    if not (rate > 0 and math.isfinite(rate)):
        raise BagError(f"rate must be a positive number, got {rate!r}")
    reader = open_reader(path)
    own_context = context is None
    node = None
    summary = ReplaySummary()
    t_start = time.monotonic()
    stop_event = stop_event or threading.Event()
    try:
        conns = list(reader.connections)
        if topics:
            missing = [t for t in topics if t not in {c.topic for c in conns}]
            if missing:
                raise BagError(f"topics {missing} are not in {path}; its topics: "
                               f"{topic_list(conns)}")
            conns = [c for c in conns if c.topic in set(topics)]
        if clock:
            conns = [c for c in conns if c.topic != "/clock"]
        if own_context:
            context = Context()
            rclpy.init(context=context)
        node = rclpy.create_node(node_name, context=context,
                                 start_parameter_services=False)
        pubs: dict[int, Any] = {}
        by_topic: dict[str, Any] = {}
        for c in conns:
            if c.topic in by_topic:
                if by_topic[c.topic][0] == c.msgtype:
                    pubs[c.id] = by_topic[c.topic][1]
                continue
            try:
                cls = message_class(c.msgtype)
            except (ImportError, AttributeError):
                summary.skipped_topics.append(f"{c.topic} ({c.msgtype})")
                continue
            pub = node.create_publisher(cls, c.topic, _replay_qos(c))
            by_topic[c.topic] = (c.msgtype, pub)
            pubs[c.id] = pub
        if not pubs:
            raise BagError(f"nothing to replay from {path}: no topic with an importable type "
                           f"(skipped: {', '.join(summary.skipped_topics) or 'none'})")
        clock_pub = None
        Clock = None
        if clock:
            from rclpy.qos import QoSProfile
            from rosgraph_msgs.msg import Clock

            clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))

        def alive() -> bool:
            return not stop_event.is_set() and context.ok()

        if wait_for_subscribers > 0:
            deadline = time.monotonic() + wait_for_subscribers
            want = [p for _, p in by_topic.values()
                    if wait_topics is None or p.topic_name in set(wait_topics)]

            def ready() -> bool:
                counts = [p.get_subscription_count() for p in want]
                if wait_topics is None:
                    return any(counts)
                return bool(counts) and all(counts)

            while alive() and not ready() and time.monotonic() < deadline:
                stop_event.wait(0.02)
            if ready():
                stop_event.wait(0.3)  # let the subscribers' side of discovery settle too

        def publish_clock(ns: int) -> None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = int(ns // 10**9), int(ns % 10**9)
            clock_pub.publish(msg)
            summary.clock_messages += 1

        first_ns, last_ns = reader.start_time, reader.end_time
        summary.bag_s = max(0, last_ns - first_ns) / 1e9
        clock_period = 1.0 / clock_hz if clock_hz > 0 else float("inf")
        t_start = time.monotonic()  # playing starts (after the wait for subscribers)
        wanted = [c for c in conns if c.id in pubs]
        while alive():
            wall0 = time.monotonic()
            bag0 = None
            last_clock_ns = None
            for conn, bag_time, data in iter_messages(reader, wanted):
                if bag0 is None:
                    bag0 = bag_time
                target = wall0 + (bag_time - bag0) / 1e9 / rate
                while alive():
                    now = time.monotonic()
                    remaining = target - now
                    if remaining <= 0:
                        break
                    if clock_pub is not None and clock_period < float("inf"):
                        # never below the last message's bag time: the float product
                        # can round 1 ns under it, and /clock must not step back
                        publish_clock(max(bag0 + int((now - wall0) * rate * 1e9),
                                          last_clock_ns if last_clock_ns is not None else bag0))
                        stop_event.wait(min(remaining, clock_period))
                    else:
                        stop_event.wait(remaining)
                if not alive():
                    break
                if clock_pub is not None and bag_time != last_clock_ns:
                    publish_clock(bag_time)
                    last_clock_ns = bag_time
                pubs[conn.id].publish(data if isinstance(data, bytes) else bytes(data))
                summary.published[conn.topic] = summary.published.get(conn.topic, 0) + 1
                if on_published is not None:
                    on_published(conn.topic, bag_time, time.monotonic())
            else:
                summary.loops += 1
                if loop:
                    continue
                break
            break
        summary.interrupted = stop_event.is_set() or not context.ok()
        summary.truncated = reader.truncated
        return summary
    except KeyboardInterrupt:
        summary.interrupted = True
        return summary
    finally:
        summary.wall_s = time.monotonic() - t_start
        if node is not None:
            with contextlib.suppress(Exception):  # the context may be shut down (Ctrl-C)
                node.destroy_node()
        if own_context and context is not None and context.ok():
            rclpy.shutdown(context=context)
        reader.close()
