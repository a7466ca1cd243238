"""mocap_node: camera images in, BodyPose + TF + markers + diagnostics out.

Threading: the subscription callback only parks the message in a one-item mailbox; a worker
thread decodes and runs the pipeline on the newest frame and publishes. Frames that arrive
meanwhile replace the parked one and are counted as dropped, so latency never grows.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from mocap_ros.core.config import MocapConfig, NodeSettings
from mocap_ros.core.result import PERSON_CONFIRMED, PERSON_NOT_FOUND, BodyPoseResult
from mocap_ros.core.skeleton import HAND_PARENTS, PARENTS
from mocap_ros.estimation.detector import mediapipe_available
from mocap_ros.estimation.factory import make_estimator, resolve_backend
from mocap_ros.estimation.person_box import make_box_source, uses_detector
from mocap_ros.geometry.camera import Intrinsics
from mocap_ros.io.images import ImageDecodeError, compressed_to_rgb, raw_to_rgb, rgb_to_raw
from mocap_ros.msg import BodyPose, People2D
from mocap_ros.ros.convert import (
    to_body_pose,
    to_hand_transforms,
    to_markers,
    to_people2d,
    to_transforms,
)
from mocap_ros.ros.latest import LatestSlot
from mocap_ros.ros.node_health import LOSS_WARN_FRACTION, ArrivalMonitor, EventWindow
from mocap_ros.ros.params import declare_dataclass
from mocap_ros.ros.run import run_node
from mocap_ros.srv import LockOperator


@dataclass
class _Frame:
    msg: Image | CompressedImage
    arrival: float  # time.monotonic() when the callback saw it


class _TfPublisher:
    """tf2_ros's broadcaster where it exists; else TFMessage on /tf directly (same wire)."""

    def __init__(self, node: Node) -> None:
        try:
            from tf2_ros import TransformBroadcaster

            self._bc = TransformBroadcaster(node)
            self._pub = None
        except ImportError:
            from tf2_msgs.msg import TFMessage

            self._bc = None
            self._msg = TFMessage
            self._pub = node.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))

    def send(self, transforms: list) -> None:
        if self._bc is not None:
            self._bc.sendTransform(transforms)
        else:
            self._pub.publish(self._msg(transforms=transforms))


class MocapNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("mocap_node", **kwargs)
        self.settings: NodeSettings = declare_dataclass(self, NodeSettings)
        self.config: MocapConfig = declare_dataclass(self, MocapConfig)
        self.operator = self._make_operator()  # None unless operator_lock
        self.estimator = make_estimator(self.config, detector=self.operator)
        self.box_source = self._make_box_source()
        # HMR regresses a body from any crop: where a detector is in use (detector, and
        # track with its detector), no box means nobody is there.
        self._needs_person_box = (resolve_backend(self.config) == "hmr"
                                  and uses_detector(self.box_source))
        if resolve_backend(self.config) == "hmr" and self.config.bbox_mode in ("full_frame",
                                                                                "roi"):
            self.get_logger().warning(
                f"backend hmr with bbox_mode {self.config.bbox_mode}: HMR reports a body even "
                "when nobody is in view; for teleoperation use bbox_mode detector (or the "
                "landmarks backend), which reports no_person")
        log = self.get_logger()
        backend = self.estimator.name
        what = (f"hmr on {self.estimator.device} ({self.estimator.precision}, n_iter="
                f"{self.config.n_iter}), body model {self.config.body_model}"
                if backend == "hmr" else "landmarks (MediaPipe BlazePose + IK, skeleton body)")
        log.info(f"{what}, person box {self.config.bbox_mode}"
                 + (", hands on" if self.config.hands else ""))

        self.stats: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=300)
        self._processed_times: deque[float] = deque(maxlen=300)
        self._last_arrival: float | None = None
        # (K, (width, height)) as one tuple: the worker reads both in one step
        self._camera_info: tuple[Intrinsics, tuple[int, int]] | None = None
        self._slot: LatestSlot[_Frame] = LatestSlot()

        # diagnostics: problems judged over a window, frames lost before the callback
        self._health_lock = threading.Lock()
        self._arrivals = ArrivalMonitor(self.settings.diagnostics_window)
        self._problems = EventWindow(self.settings.diagnostics_window)
        self._problems_seen = 0

        sensor_qos = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                                durability=qos_profile_sensor_data.durability,
                                history=qos_profile_sensor_data.history)
        # reliable: a best-effort subscription also matches reliable publishers, but then DDS
        # drops what does not arrive in one go (most 900 KB frames under load); depth 1 keeps
        # newest-wins either way.
        image_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE
                               if self.settings.image_reliability == "reliable"
                               else qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability,
                               history=qos_profile_sensor_data.history)
        if self.settings.image_transport == "compressed":
            self.create_subscription(CompressedImage, "image_raw/compressed", self._on_image,
                                     image_qos)
        else:
            self.create_subscription(Image, "image_raw", self._on_image, image_qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, sensor_qos)

        self.pose_pub = self.create_publisher(BodyPose, "mocap/body_pose", 10)
        # every person the operator detector finds (the REP-155 bridge makes each a body)
        self.people_pub = self.create_publisher(People2D, "mocap/people", 10) \
            if self.operator is not None else None
        self.marker_pub = self.create_publisher(MarkerArray, "mocap/markers", 10) \
            if self.settings.publish_markers else None
        self.debug_pub = self.create_publisher(Image, "mocap/debug_image", sensor_qos) \
            if self.settings.publish_debug_image else None
        self.tf = _TfPublisher(self) if self.settings.publish_tf else None
        if self.operator is not None:
            # Armed by teleop_node (its operator_lock_service parameter) on ~/enable, released
            # on disable. A service, not a topic: arming is an event that must be answered
            # (LockOperator: success, the armed track id, or why not) -- and a re-enable while
            # already enabled (after operator_lost) must re-lock, which an `enabled` level on
            # teleop/status cannot express. teleop calls it asynchronously, so both nodes can
            # share one single-threaded executor.
            self.create_service(LockOperator, "~/lock", self._on_lock)
            cfg = self.operator.lock.config
            log.info(f"operator lock on: unlocked, following the {cfg.policy} person; "
                     f"~/lock locks on (threshold {cfg.threshold}, lost after "
                     f"{cfg.lost_after:g} s, "
                     + (f"re-acquired after {cfg.n_reacquire} matching frames)"
                        if cfg.reacquire else "resumed only by a new lock)"))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics)

        self._close_lock = threading.Lock()  # who closes the estimators: see destroy_node
        self._close_on_exit = False
        self._worker_done = False
        self._worker = threading.Thread(target=self._run, name="mocap_worker", daemon=True)
        self._worker.start()

    def _make_operator(self) -> object | None:
        s = self.settings
        if not s.operator_lock:
            return None
        from mocap_ros.estimation.operator import OperatorLock, OperatorLockConfig
        from mocap_ros.estimation.people import OperatorDetector

        cfg = OperatorLockConfig(
            threshold=s.operator_threshold, lost_after=s.operator_lost_after,
            n_reacquire=s.operator_n_reacquire, reacquire=s.operator_resume_same_operator,
            policy=s.operator_policy,
            region=tuple(s.operator_region) if s.operator_policy == "region" else None)
        return OperatorDetector(OperatorLock(cfg), max_people=s.operator_max_people)

    def _make_box_source(self) -> object:
        mode = self.config.bbox_mode
        if self.operator is not None:
            from mocap_ros.estimation.person_box import DetectorBox

            if resolve_backend(self.config) == "landmarks":
                # the backend asks the operator detector itself; a box (other than a fixed
                # roi) would hide the other people from the lock
                return make_box_source(self.config.replace(
                    bbox_mode="roi" if mode == "roi" else "full_frame"))
            # hmr: the lock decides on EVERY frame, inline: a box held from an older frame
            # (background thread, detector_every_n) could frame whoever stepped in since
            return DetectorBox(self.operator, every_n=1, background=False)
        if resolve_backend(self.config) == "landmarks" and mode == "detector":
            # MediaPipe already finds the person: a second detector would run it twice.
            return make_box_source(self.config.replace(bbox_mode="full_frame"))
        detector = None
        if mode == "detector" or (mode == "track" and mediapipe_available()):
            from mocap_ros.estimation.detector import PersonDetector

            detector = PersonDetector()
        return make_box_source(self.config, detector)

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats["received"] += 1
        self._last_arrival = time.monotonic()
        with self._health_lock:
            self._arrivals.image(self._last_arrival, _stamp_s(msg))
        if (self.stats["received"] - 1) % self.settings.process_every_n:
            self.stats["skipped"] += 1
            return
        if self._slot.put(_Frame(msg, self._last_arrival)):
            self.stats["dropped_overload"] += 1

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._health_lock:  # every info, valid or not: its stamp says a frame was taken
            self._arrivals.camera_info(time.monotonic(), _stamp_s(msg))
        try:
            K = Intrinsics.from_k(list(msg.k))
        except ValueError:
            self.stats["camera_info_invalid"] += 1  # uncalibrated cameras publish zeros
            return
        self._camera_info = (K, (int(msg.width), int(msg.height)))

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while not self._slot.closed:
            frame = self._slot.take(timeout=0.1)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception as exc:  # never let one frame kill the node
                self.stats["errors"] += 1
                self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=2.0)
        with self._close_lock:
            self._worker_done = True
            if self._close_on_exit:  # destroy_node gave up waiting: closing is ours
                self._close_parts()

    def _decode(self, msg: Image | CompressedImage) -> np.ndarray:
        limit = self.settings.max_image_pixels
        if isinstance(msg, CompressedImage):
            return compressed_to_rgb(bytes(msg.data), msg.format, max_pixels=limit)
        return raw_to_rgb(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                          msg.is_bigendian, max_pixels=limit)

    def _intrinsics(self, width: int, height: int) -> Intrinsics | None:
        info = self._camera_info
        if info is None:
            return None
        K, size = info
        if size not in ((0, 0), (width, height)):
            self.get_logger().warning(
                f"camera_info is for {size} but images are {(width, height)}; "
                "using the focal-length fallback", throttle_duration_sec=10.0)
            return None
        return K

    def _process(self, frame: _Frame) -> None:
        msg = frame.msg
        try:
            rgb = self._decode(msg)
        except ImageDecodeError as exc:
            self.stats["bad_frames"] += 1
            self.stats[f"bad_frames_{exc.kind}"] += 1
            self.get_logger().warning(f"dropped a malformed image: {exc}",
                                      throttle_duration_sec=2.0)
            return
        header = msg.header
        if not header.frame_id:
            # tf2 refuses a transform whose parent frame is ""
            header = type(header)(stamp=header.stamp, frame_id=self.settings.camera_frame)
        h, w = rgb.shape[:2]
        box = self.box_source.next_box(rgb.shape, rgb)
        if box is None and self._needs_person_box:
            # HMR regresses a body from any crop, person or not: with a detector, no box
            # means nobody is there, and that must never become a valid pose.
            result = BodyPoseResult.invalid("no_person", precision=self.estimator.precision,
                                            n_iter=self.config.n_iter,
                                            device=str(self.estimator.device),
                                            person_check=PERSON_NOT_FOUND)
        else:
            result = self.estimator.process(rgb, box, self._intrinsics(w, h))
        if self.estimator.name == "hmr":
            # the landmarks backend finds the person itself and says so in its result
            result.person_check = self.box_source.person_check
            result.person_score = 1.0 if result.person_check == PERSON_CONFIRMED else 0.0
        if self.operator is not None:
            self._annotate_operator(result)
        self.box_source.update(result)
        self._publish(result, header, rgb)
        if self.people_pub is not None and self.operator.last is not None:
            self.people_pub.publish(to_people2d(self.operator.last_found, self.operator.last.index,
                                                result.track_id, header, w, h))
        now = time.monotonic()
        self._latency_ms.append((now - frame.arrival) * 1e3)
        self._processed_times.append(now)
        self.stats["processed"] += 1
        self.stats["valid" if result.valid else "invalid"] += 1
        if self.config.hands:
            self.stats["hands_valid"] += sum(bool(h is not None and h.valid)
                                             for h in (result.left_hand, result.right_hand))

    def _annotate_operator(self, result: BodyPoseResult) -> None:
        """The lock's decision for this frame (the operator detector ran on it inline) in
        the result: who (track id), how well it matches, the state, and -- when nobody was
        followed -- why (operator_lost, operator_uncertain, outside_region, no_person)."""
        upd = self.operator.last
        if upd is None:
            return
        # locked: the armed track id even while lost (whose loss it is); unlocked and
        # nobody chosen: 0 (none)
        chosen = upd.index is not None or upd.state != "unlocked"
        result.track_id = int(upd.track_id) if chosen else 0
        result.operator_match = float(np.clip(upd.score, 0.0, 1.0))
        result.operator_state = upd.state
        if upd.index is None:
            if result.valid:  # cannot happen: no person chosen means no landmarks / box
                result.valid = False
            result.reason = upd.reason or result.reason
            self.stats[f"operator_{upd.reason or 'none'}"] += 1

    def _on_lock(self, request: LockOperator.Request, response: LockOperator.Response
                 ) -> LockOperator.Response:
        """lock true: lock on to the person followed in the latest frame (track_id: the
        locked operator's BodyPose track_id); false: unlock (back to operator_policy)."""
        if not request.lock:
            self.operator.disarm()
            response.success, response.track_id, response.reason = True, 0, "unlocked"
            self.get_logger().info("operator lock: unlocked")
            return response
        tid = self.operator.arm()
        if tid is None:
            response.success, response.track_id = False, 0
            response.reason = "nobody in view to lock on to"
        else:
            response.success, response.track_id = True, int(tid)
            response.reason = f"locked on track_id {tid}"
        self.get_logger().info(f"operator lock: {response.reason}")
        return response

    def _publish(self, result: BodyPoseResult, header: object, rgb: np.ndarray) -> None:
        self.pose_pub.publish(to_body_pose(result, header))
        if not result.valid:
            return
        if self.tf is not None:
            tfs = to_transforms(result, header, self.settings.frame_prefix)
            if self.settings.publish_hand_tf:
                tfs += to_hand_transforms(result, header, self.settings.frame_prefix)
            self.tf.send(tfs)
        if self.marker_pub is not None:
            self.marker_pub.publish(to_markers(result, header))
        if self.debug_pub is not None:
            self.debug_pub.publish(self._debug_image(result, header, rgb))

    def _debug_image(self, result: BodyPoseResult, header: object, rgb: np.ndarray) -> Image:
        import cv2

        canvas = np.ascontiguousarray(rgb).copy()
        limit = 4 * max(canvas.shape)  # cv2 wants int32 coordinates: keep lines drawable
        kp = np.round(np.clip(result.keypoints_2d, -limit, limit)).astype(int)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                cv2.line(canvas, tuple(kp[p]), tuple(kp[j]), (40, 220, 60), 2)
        for hand, color in ((result.left_hand, (60, 150, 255)),
                            (result.right_hand, (255, 100, 200))):
            if hand is None or not hand.valid:
                continue
            hk = np.round(np.clip(hand.keypoints_2d, -limit, limit)).astype(int)
            for j, p in enumerate(HAND_PARENTS):
                if p >= 0:
                    cv2.line(canvas, tuple(hk[p]), tuple(hk[j]), color, 1)
            for pt in hk:
                cv2.circle(canvas, tuple(pt), 2, color, -1)
        x, y, bw, bh = (int(v) for v in result.bbox)
        cv2.rectangle(canvas, (x, y), (x + bw, y + bh), (250, 200, 0), 1)
        data, step = rgb_to_raw(canvas, "rgb8")
        return Image(header=header, height=canvas.shape[0], width=canvas.shape[1],
                     encoding="rgb8", is_bigendian=0, step=step, data=data)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        times = list(self._processed_times)
        recent = [t for t in times if now - t <= 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and \
            recent[-1] > recent[0] else 0.0
        lat = sorted(self._latency_ms)
        status = DiagnosticStatus(name="mocap_node: pose estimation",
                                  hardware_id=str(self.estimator.device))
        status.level, status.message = DiagnosticStatus.OK, "ok"
        stalled = self._last_arrival is None or now - self._last_arrival > \
            self.settings.camera_timeout
        if stalled:
            status.level = DiagnosticStatus.WARN
            status.message = "no camera frames" if self._last_arrival is None else \
                f"camera stalled: no frame for {now - self._last_arrival:.1f} s"
        # problems are judged over the recent window; the counters stay lifetime totals
        problems = self.stats["bad_frames"] + self.stats["errors"]
        with self._health_lock:
            if problems > self._problems_seen:
                self._problems.add(now, problems - self._problems_seen)
                self._problems_seen = problems
            recent_problems = self._problems.recent(now)
            arrival = self._arrivals.report(now)
        window = self.settings.diagnostics_window
        if not stalled and recent_problems:
            status.level = DiagnosticStatus.WARN
            status.message = f"dropping bad frames: {recent_problems} in the last {window:g} s"
        elif not stalled and arrival.expected >= 10 and \
                arrival.lost_fraction > LOSS_WARN_FRACTION:
            status.level = DiagnosticStatus.WARN
            status.message = (
                f"{100 * arrival.lost_fraction:.0f}% of camera frames lost before the callback "
                f"(by {arrival.source}): use compressed transport or image_reliability reliable")
        values = {
            "fps": f"{fps:.2f}",
            "latency_median_ms": f"{lat[len(lat) // 2]:.2f}" if lat else "nan",
            "latency_max_ms": f"{lat[-1]:.2f}" if lat else "nan",
            "device": str(self.estimator.device),
            "precision": self.estimator.precision,
            "n_iter": str(self.config.n_iter),
            **{k: str(v) for k, v in sorted(self.stats.items())},
            "diagnostics_window_s": f"{window:g}",
            "problems_window": str(recent_problems),
            "image_reliability": self.settings.image_reliability,
            "image_rate_hz": f"{arrival.rate_hz:.2f}",
            "image_expected_rate_hz": f"{arrival.expected_rate_hz:.2f}",
            "frames_expected_window": str(arrival.expected),
            "frames_lost_window": str(arrival.lost),
            "frames_lost_total": str(arrival.lost_total),
            "frames_lost_source": arrival.source,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self, join_timeout: float = 10.0) -> None:
        self._slot.close()
        self._worker.join(timeout=join_timeout)
        with self._close_lock:
            if not self._worker_done:
                # closing MediaPipe under a frame still being estimated is a use-after-free:
                # the worker closes the estimators when that frame is done
                self._close_on_exit = True
                self.get_logger().warning(f"a frame is still being estimated after "
                                          f"{join_timeout:g} s: the estimators are closed "
                                          "when it is done")
            else:
                self._close_parts()
        super().destroy_node()

    def _close_parts(self) -> None:
        for part in (self.box_source, self.estimator, self.operator):
            close = getattr(part, "close", None)
            if close is not None:
                close()


def _stamp_s(msg: object) -> float:
    stamp = msg.header.stamp  # type: ignore[attr-defined]
    return stamp.sec + stamp.nanosec * 1e-9


def main(args: list[str] | None = None) -> int:
    return run_node(MocapNode, "mocap_node", args, quiet_native=True)

if __name__ == "__main__":
    sys.exit(main())
