"""console: the operator console, a web page that shows the loop and arms/stops teleop.

Reads ROS topics only (so it works with a real robot's joint_states too): the camera image
(``image_raw``, sensor-data QoS), ``mocap/body_pose``, ``joint_states``, ``teleop/status`` and
``/diagnostics``; calls teleop_node's ``~/enable`` (std_srvs/SetBool) for the page's Enable,
Disable and STOP. The page (mocap_ros.ros.console.server) embeds a viser 3D view of the robot
model teleop uses, posed from joint_states, with the commanded pose as a ghost.

Safety: loopback only unless ``host`` says otherwise, and then a token; the dead-man
disables teleop when the page that armed it closes, hides or goes silent for
``heartbeat_timeout`` (see mocap_ros.ros.console.guard). What the console sends the page is
capped (image width, rate, quality; scene and state rates), and the image is converted in a
timer, not in the subscription: a 30 Hz camera costs the console nothing between updates.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool

from mocap_ros.core.config import ConsoleSettings
from mocap_ros.io.images import raw_to_rgb
from mocap_ros.msg import BodyPose, TeleopStatus
from mocap_ros.ros.console.guard import is_loopback
from mocap_ros.ros.console.image import camera_jpeg
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import run_node_until_signal

LATEST = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.BEST_EFFORT)
STATUS_FRESH_S = 1.0  # teleop/status older than this: "no teleop"


def _robot_model(path: Path) -> Any:
    """The teleop YAML's model (its ``model: source:``), or None when it names none."""
    from mocap_ros.robots.model import load_robot

    data = yaml.safe_load(path.read_text()) or {}
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not model.get("source"):
        return None
    source = str(model["source"])
    if source not in ("fr3", "g1") and not Path(source).is_absolute():
        source = str((path.parent / source).resolve())
    return load_robot(source)


class ConsoleNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("console", **kwargs)
        s: ConsoleSettings = declare_dataclass(self, ConsoleSettings)
        self.settings = s
        token = s.token or (None if is_loopback(s.host) else secrets.token_urlsafe(16))
        viewer_port = s.viewer_port or s.port + 1
        import viser

        from mocap_ros.ros.console.scene import ConsoleScene
        from mocap_ros.ros.console.server import ConsoleServer
        from mocap_ros.ros.teleop_node import default_robot_config

        path = Path(s.robot_config) if s.robot_config else default_robot_config()
        try:
            robot = _robot_model(path)
        except Exception as exc:  # a console without the robot beats no console
            self.get_logger().warning(f"robot model from {path}: {exc}; not drawn")
            robot = None
        # viser prints its own banner with the 3D view's URL: the console's URL is the one
        # to open (logged below), so that banner is kept out of the way
        with contextlib.redirect_stdout(io.StringIO()):
            self.viewer = viser.ViserServer(host=s.host, port=viewer_port, verbose=False)
        viewer_port = self.viewer.get_port()  # viser takes the next free port if it is taken
        self.viewer.gui.configure_theme(show_logo=False, show_share_button=False)
        self.viewer.gui.main_panel.minimize()  # the view is for looking, not for settings
        self.scene = ConsoleScene(self.viewer, robot)
        self.server = ConsoleServer(s.host, s.port, set_enabled=self._set_enabled, token=token,
                                    heartbeat_timeout=s.heartbeat_timeout,
                                    viewer_port=viewer_port, log=self._log)
        self._enable = self.create_client(SetBool, s.enable_service)
        self._image: Image | None = None
        self._image_new = False
        self._pose: BodyPose | None = None
        self._pose_new = False
        self._joints: dict[str, float] = {}
        self._joints_new = False
        self._status: TeleopStatus | None = None
        self._status_rx = 0.0
        self._command_new = False
        self._diag: dict[str, dict[str, str]] = {}
        self.images_sent = 0
        self.bad_images = 0
        self.create_subscription(Image, "image_raw", self._on_image, qos_profile_sensor_data)
        self.create_subscription(BodyPose, "mocap/body_pose", self._on_pose, LATEST)
        self.create_subscription(JointState, "joint_states", self._on_joints, 50)
        self.create_subscription(TeleopStatus, "teleop/status", self._on_status, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.cpu_s = 0.0  # CPU time of the console's work in the executor (bench_console)
        if s.image_rate_hz > 0.0:
            self.create_timer(1.0 / s.image_rate_hz, self._timed(self._send_image))
        self.create_timer(1.0 / s.scene_rate_hz, self._timed(self._update_scene))
        self.create_timer(1.0 / s.state_rate_hz, self._timed(self._send_state))
        try:
            self.server.start()
        except RuntimeError as exc:
            self.viewer.stop()
            raise ValueError(f"the console cannot serve: {exc}") from exc
        self.url = self.server.url
        self.get_logger().info(
            f"console at {self.url} (3D view on port {viewer_port}); arms {s.enable_service}"
            + ("" if token is None else "; the token in this URL is needed to connect"))

    def _timed(self, fn: Any) -> Any:
        def run() -> None:
            t = time.thread_time()
            try:
                fn()
            finally:
                self.cpu_s += time.thread_time() - t
        return run

    # ------------------------------------------------------------------ the page's requests
    def _log(self, level: str, text: str) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes
        log = self.get_logger()
        if level == "info":
            log.info(text)
        elif level == "warning":
            log.warning(text)
        else:
            log.error(text)

    def _set_enabled(self, enabled: bool) -> concurrent.futures.Future:
        """Called from the server's thread; the answer arrives through our executor."""
        out: concurrent.futures.Future = concurrent.futures.Future()
        if not self._enable.service_is_ready():
            out.set_result((False, f"{self.settings.enable_service} is not available "
                                   "(is teleop_node running?)"))
            return out

        def done(f: Any) -> None:
            try:
                r = f.result()
                out.set_result((bool(r.success), str(r.message)))
            except Exception as exc:
                out.set_result((False, f"call failed: {exc}"))

        self._enable.call_async(SetBool.Request(data=enabled)).add_done_callback(done)
        return out

    # ------------------------------------------------------------------ topics
    def _on_image(self, msg: Image) -> None:
        self._image, self._image_new = msg, True  # converted in _send_image, at its rate

    def _on_pose(self, msg: BodyPose) -> None:
        self._pose, self._pose_new = msg, True

    def _on_joints(self, msg: JointState) -> None:
        for name, position in zip(msg.name, msg.position, strict=False):
            self._joints[name] = float(position)
        self._joints_new = True

    def _on_status(self, msg: TeleopStatus) -> None:
        self._status, self._status_rx = msg, time.monotonic()
        self._command_new = True

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            if st.name.startswith(("mocap_node", "teleop_node")):
                self._diag[st.name.split(":")[0]] = {kv.key: kv.value for kv in st.values}

    # ------------------------------------------------------------------ outputs
    def _send_image(self) -> None:
        msg = self._image
        if msg is None or not self._image_new:
            return
        self._image_new = False
        try:
            rgb = raw_to_rgb(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                             msg.is_bigendian)
            pose = self._pose
            kp = pose.keypoints_2d if pose is not None and pose.valid else None
            hands = tuple(h.keypoints_2d if h.valid else None
                          for h in (pose.left_hand, pose.right_hand)) if pose else ()
            jpeg = camera_jpeg(rgb, self.settings.image_width, kp, hands,
                               quality=self.settings.image_quality)
        except (ValueError, TypeError) as exc:
            self.bad_images += 1
            self.get_logger().warning(f"console: image not shown: {exc}",
                                      throttle_duration_sec=5.0)
            return
        self.server.publish_image(jpeg)
        self.images_sent += 1

    def _update_scene(self) -> None:
        if self._joints_new:
            self._joints_new = False
            names = list(self._joints)
            self.scene.set_measured(names, [self._joints[n] for n in names])
        st = self._status
        if self._command_new and st is not None:
            self._command_new = False
            self.scene.set_command(list(st.joint_names), list(st.command) or None)
        if self._pose_new and self._pose is not None:
            self._pose_new = False
            p = self._pose
            joints = np.array([[q.x, q.y, q.z] for q in p.joints], np.float64) \
                if p.valid and p.joints else None
            self.scene.set_operator(joints)

    def state(self) -> dict[str, Any]:
        st = self._status
        fresh = st is not None and time.monotonic() - self._status_rx <= STATUS_FRESH_S
        mocap = self._diag.get("mocap_node", {})
        teleop = self._diag.get("teleop_node", {})
        out: dict[str, Any] = {"teleop": fresh, "enabled": bool(fresh and st.enabled),
                               "pages": self.server.pages}
        if st is not None:
            out.update(mode=st.mode, reason=st.reason, pose_age=st.pose_age,
                       rate_hz=st.rate_hz, robot=st.robot, tracking=st.tracking)
        out["latency_ms"] = _number(mocap.get("latency_median_ms"))
        out["fps"] = _number(mocap.get("fps"))
        p = self._pose
        if p is not None:
            out.update(pose_valid=bool(p.valid), pose_reason=p.reason,
                       confidence=float(p.confidence), track_id=int(p.track_id),
                       operator_state=p.operator_state,
                       operator_match=float(p.operator_match),
                       hands=", ".join(f"{side} {'ok' if h.valid else h.reason or '-'}"
                                       for side, h in (("left", p.left_hand),
                                                       ("right", p.right_hand))))
        grippers = {k.removeprefix("gripper_"): v for k, v in teleop.items()
                    if k.startswith("gripper_") and not k.startswith("gripper_goals")}
        out["grippers"] = "; ".join(f"{k}: {v}" for k, v in grippers.items()) or "none"
        return out

    def _send_state(self) -> None:
        self.server.publish_state(self.state())

    def destroy_node(self) -> None:
        self.server.stop()
        self.viewer.stop()
        super().destroy_node()


def _number(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is not None and np.isfinite(v) else None


def disarm_on_stop(node: ConsoleNode, executor: Any, give_up: Any = lambda: False) -> None:
    """The console is stopping while a page of it holds teleop armed: its dead-man stops
    with it, so disable teleop first (bounded wait for the answer)."""
    if not node.server.guard.holders:
        return
    future = node._set_enabled(False)
    deadline = time.monotonic() + 2.0
    while not future.done() and not give_up() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    _, text = future.result() if future.done() else (False, "no answer")
    node.get_logger().warning(f"console stopping while armed: teleop {text}")


def main(args: list[str] | None = None) -> int:
    """Exit code 1 with the reason on stderr when the console cannot start (port taken,
    bad parameter); 0 after SIGINT/SIGTERM (having disabled teleop if a page armed it)."""
    return run_node_until_signal(ConsoleNode, "console", args, on_stop=disarm_on_stop)


if __name__ == "__main__":
    sys.exit(main())
