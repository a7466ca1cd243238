"""bench-loop's listener node: records the loop's topics into a `bench_loop.LoopRecord` and
arms teleop once it can follow (a valid pose and the robot's joint_states have come)."""

from __future__ import annotations

import json
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.tools.loop_metrics import TRUTH_TOPIC, parse_phase

# best effort receives from reliable and best-effort publishers alike; deep enough that a
# busy executor loses nothing the figures need
_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST,
                  reliability=ReliabilityPolicy.BEST_EFFORT)


def _s(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class LoopRecorder(Node):
    def __init__(self, ctx: Any, record: Any, *, enable: bool = True,
                 js_min_dt: float = 0.015) -> None:
        super().__init__("bench_loop", context=ctx)
        self._parse_phase = parse_phase
        self.record = record
        self.js_min_dt = js_min_dt
        self._want_enable = enable
        self._enable_future: Any = None
        self._next_try = 0.0
        self.create_subscription(BodyPose, TRUTH_TOPIC, self._on_truth, _QOS)
        self.create_subscription(BodyPose, "/mocap/body_pose", self._on_pose, _QOS)
        self.create_subscription(TeleopStatus, "/teleop/status", self._on_status, _QOS)
        self.create_subscription(JointState, "/joint_states", self._on_js, _QOS)
        self.create_subscription(JointState, "/joint_commands", self._on_cmd, _QOS)
        self.create_subscription(String, "/sim/contacts", self._on_contacts, 10)
        self.create_subscription(String, "/sim/limit_violations", self._on_limits, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.enable_client = self.create_client(SetBool, "/teleop_node/enable")
        self.create_timer(0.1, self._maybe_enable)

    def _on_truth(self, msg: BodyPose) -> None:
        import numpy as np

        if not msg.joints:
            return
        r = self.record
        phase, holding = self._parse_phase(msg.reason)
        r.truth_t.append(_s(msg.header.stamp))
        r.truth_joints.append(np.array([[p.x, p.y, p.z] for p in msg.joints]))
        r.truth_phase.append(phase)
        r.truth_holding.append(holding)

    def _on_pose(self, msg: BodyPose) -> None:
        r = self.record
        r.pose_arrival.append(time.time())
        r.pose_stamp.append(_s(msg.header.stamp))
        r.pose_valid.append(bool(msg.valid))

    def _on_status(self, msg: TeleopStatus) -> None:
        r = self.record
        r.status_t.append(_s(msg.header.stamp))
        r.status_enabled.append(bool(msg.enabled))
        r.status_tracking.append(bool(msg.tracking))
        r.status_reason.append(msg.reason)
        r.status_timeout.append(float(getattr(msg, "pose_timeout", float("nan"))))
        r.status_note.append(str(getattr(msg, "pose_timeout_note", "")))

    def _on_js(self, msg: JointState) -> None:
        r = self.record
        t = _s(msg.header.stamp)
        if r.js_t and t - r.js_t[-1] < self.js_min_dt:
            return
        r.js_t.append(t)
        r.js_names.append(list(msg.name))
        r.js_pos.append(list(msg.position))

    def _on_cmd(self, msg: JointState) -> None:
        r = self.record
        if not msg.velocity:
            return
        r.cmd_t.append(_s(msg.header.stamp))
        r.cmd_names = list(msg.name)
        r.cmd_vel.append(list(msg.velocity))

    def _on_contacts(self, msg: String) -> None:
        self.record.contacts = json.loads(msg.data)

    def _on_limits(self, msg: String) -> None:
        self.record.limit_violations = json.loads(msg.data)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            for prefix in ("mocap_node", "camera_node"):
                if st.name.startswith(prefix):
                    self.record.diagnostics[prefix] = {kv.key: kv.value for kv in st.values}

    def _maybe_enable(self) -> None:
        r = self.record
        if not self._want_enable or r.enabled_at is not None:
            return
        f = self._enable_future
        if f is not None:
            if not f.done():
                return
            res = f.result()
            self._enable_future = None
            if res is not None and res.success:
                r.enabled_at = time.time()
                r.enable_error = ""
                return
            r.enable_error = res.message if res is not None else "no answer"
            self._next_try = time.monotonic() + 0.5
        if time.monotonic() < self._next_try or not any(r.pose_valid) or not r.js_t:
            return
        if self.enable_client.service_is_ready():
            self._enable_future = self.enable_client.call_async(SetBool.Request(data=True))
