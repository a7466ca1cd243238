"""One operator over DDS (issue 15): mocap_node (landmarks backend, operator_lock) + teleop_node
(operator_lock_service) + a probe node publishing a frame stream that cuts from one real person
to a different real person and back.

The people are two real photos of the shared pack (MPII 052475643, operator A, and 051423444,
B), each pasted on a plain canvas in the SAME place and at the same size: box continuity
cannot tell them apart, only body proportions and clothing colour can. Real MediaPipe, real
rclpy nodes over DDS, all three in one executor (the "one process" case: the lock request
is asynchronous, so it cannot deadlock there). Frames are published one at a time and each
pose is waited for, so no frame is dropped and the frame counts are exact.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from test_operator_lock import _frame, _place  # noqa: E402

from mocap_ros.io.images import rgb_to_raw  # noqa: E402
from mocap_ros.msg import BodyPose, TeleopStatus  # noqa: E402
from mocap_ros.srv import LockOperator  # noqa: E402

from real_images_pack import SKIP_REASON, load_people, pack_root  # noqa: E402
from ros_helpers import make_executor, ros_context, wait_for  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]

A_NAME, B_NAME = "052475643#0", "051423444#0"
N_LOST = 3
# seconds: each frame here takes longer (published only once the previous pose arrived), so
# the first frame without the operator is already lost (the uncertain stage in between is
# checked with exact frame times in test_operator_lock)
LOST_AFTER = 0.05
N_REACQUIRE = 3
CONFIG = __import__("pathlib").Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(scope="module")
def pair():
    root = pack_root()
    if root is None:
        pytest.skip(SKIP_REASON)
    from mocap_ros.estimation.detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe not installed (pip install --no-deps -r "
                    "requirements-mediapipe.txt)")
    people = {p.name: p for p in load_people(root)}
    return people[A_NAME], people[B_NAME]


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Rig:
    """mocap_node + teleop_node + a probe (frames out; poses, status, commands in)."""

    def __init__(self, ctx, mocap: dict, teleop: dict) -> None:
        from mocap_ros.ros.mocap_node import MocapNode
        from mocap_ros.ros.teleop_node import TeleopNode

        mocap = {"backend": "landmarks", "operator_lock": True, "operator_lost_after": LOST_AFTER,
                 "operator_n_reacquire": N_REACQUIRE, "operator_max_people": 2,
                 "publish_tf": False, "publish_markers": False, **mocap}
        # pose_timeout: a frame takes ~0.2 s through MediaPipe on 2 shared cores; stamps are
        # the capture time, so the default 0.25 s would hold for "stale" instead
        teleop = {"robot_config": str(CONFIG / "teleop_generic.yaml"),
                  "allow_enable_without_joint_states": True, "pose_timeout": 2.0,
                  "operator_lock_service": "/mocap_node/lock", **teleop}
        self.mocap = MocapNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in mocap.items()])
        self.teleop = TeleopNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in teleop.items()])
        self.node = rclpy.create_node("operator_probe", context=ctx)
        self.pub = self.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.poses: list[BodyPose] = []
        self.status: list[TeleopStatus] = []
        self.commands: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(BodyPose, "mocap/body_pose", self.poses.append, 100)
        self.node.create_subscription(TeleopStatus, "teleop/status", self.status.append, 100)
        self.node.create_subscription(
            JointState, "joint_commands",
            lambda m: self.commands.append((time.monotonic(), np.array(m.position))), 100)
        self.enable_client = self.node.create_client(SetBool, "/teleop_node/enable")
        self.ex = make_executor(ctx, self.mocap, self.teleop, self.node)

    def close(self) -> None:
        for n in (self.node, self.teleop, self.mocap):
            n.destroy_node()

    def _image(self, rgb: np.ndarray) -> Image:
        data, step = rgb_to_raw(rgb, "rgb8")
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=step,
                    data=data)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "cam"
        return msg

    def send(self, rgb: np.ndarray, timeout: float = 15.0) -> BodyPose:
        """Publish one frame; the pose for it, once teleop_node has taken it in too."""
        msg = self._image(rgb)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        got = self.teleop.poses_received
        self.pub.publish(msg)

        def mine() -> BodyPose | None:
            return next((p for p in reversed(self.poses)
                         if (p.header.stamp.sec, p.header.stamp.nanosec) == key), None)

        assert wait_for(lambda: mine() is not None and self.teleop.poses_received > got,
                        self.ex, timeout=timeout), "no pose for a published frame"
        wait_for(lambda: False, self.ex, timeout=0.05)  # a control step or two
        return mine()

    def discover(self, rgb: np.ndarray) -> None:
        """Publish until mocap_node and teleop_node answer (DDS discovery)."""
        assert wait_for(lambda: self.poses and self.teleop.poses_received, self.ex,
                        timeout=30.0, on_tick=lambda: self.pub.publish(self._image(rgb)),
                        tick_period=1.0)
        assert wait_for(self.enable_client.service_is_ready, self.ex, timeout=10.0)
        assert wait_for(self.teleop._lock_client.service_is_ready, self.ex, timeout=10.0)
        wait_for(lambda: False, self.ex, timeout=1.0)  # let the in-flight frames land

    def enable(self) -> SetBool.Response:
        fut = self.enable_client.call_async(SetBool.Request(data=True))
        assert wait_for(fut.done, self.ex, timeout=10.0)
        return fut.result()

    def statuses_since(self, n: int) -> list[TeleopStatus]:
        return self.status[n:]


def _stream(pair, rng):
    a, b = pair

    def frame(who: str, k: int) -> np.ndarray:
        canvas = _frame()
        # the same place and size for both people, a pixel or two of sway
        _place(a if who == "a" else b, canvas, 200 + (k % 3), 100, 320, rng)
        return canvas

    return frame


def _arm_and_track(rig: Rig, frame) -> tuple[int, np.ndarray]:
    """Unlocked poses of A, ~/enable, then A followed under the lock's track id.
    Returns (track id, the controller's target after the last A pose)."""
    rig.discover(frame("a", 0))
    for k in range(3):
        p = rig.send(frame("a", k))
        assert p.valid and p.operator_state == "unlocked" and p.track_id > 0, p.reason
    res = rig.enable()
    assert res.success, res.message
    # ~/enable answered after mocap_node's lock did: the operator is known already
    track = rig.teleop._operator_track
    assert track is not None and f"track_id {track}" in res.message, res.message
    n0 = len(rig.status)
    for k in range(8):
        p = rig.send(frame("a", k))
        assert p.valid and p.operator_state == "tracking" and p.track_id == track, \
            (p.reason, p.operator_state, p.track_id, track)
        assert p.operator_match >= 0.6
    wait_for(lambda: False, rig.ex, timeout=0.2)
    assert any(s.tracking for s in rig.statuses_since(n0)), \
        {s.reason for s in rig.statuses_since(n0)}
    target = rig.teleop.controller.target
    assert target is not None
    return track, target


def _cut_to_b(rig: Rig, frame, n_frames: int, target: np.ndarray, track: int) -> None:
    """B in A's place for n_frames: operator_lost within N_LOST frames, teleop holds with
    reason operator_lost, and nothing of B ever reaches the controller."""
    reasons = []
    for k in range(n_frames):
        p = rig.send(frame("b", k))
        if k == 0:
            # from the control step after teleop took in B's first pose: nothing tracks
            t_cut = rig.teleop.last_pose_rx_s
            c0 = len(rig.commands)
        reasons.append(p.reason)
        assert not p.valid, f"frame {k} of B published as valid (operator_match " \
            f"{p.operator_match:.2f})"
        assert p.track_id == track  # whose loss it is
        # the target only ever comes from accepted poses: unchanged = B never accepted
        np.testing.assert_array_equal(rig.teleop.controller.target, target)
    lost_at = reasons.index("operator_lost")
    assert lost_at <= N_LOST - 1, reasons
    assert all(r == "operator_uncertain" for r in reasons[:lost_at]), reasons
    assert all(r == "operator_lost" for r in reasons[lost_at:]), reasons
    wait_for(lambda: False, rig.ex, timeout=0.3)
    after = [s for s in rig.status
             if s.header.stamp.sec + s.header.stamp.nanosec * 1e-9 > t_cut]
    assert after and not any(s.tracking for s in after)
    assert after[-1].reason == "operator_lost" and after[-1].enabled
    # a sustained switch: B in view for longer than the jump window (after which a plain
    # jump would have been followed) and still no motion toward B
    stamps = [p.header.stamp.sec + p.header.stamp.nanosec * 1e-9 for p in rig.poses
              if p.reason in ("operator_uncertain", "operator_lost")]
    assert stamps[-1] - stamps[0] > rig.teleop.settings.jump_window
    cmds = [c for _, c in rig.commands[c0:]]
    assert len(cmds) >= 5
    # braking only: the last commands repeat (at rest), and never head for a new target
    np.testing.assert_allclose(cmds[-1], cmds[-5], atol=1e-9)


def test_cut_to_another_person_holds_until_a_new_enable(ctx, pair):
    """operator_resume enable (the default): the operator coming back is re-identified by
    mocap_node (same track id, tracking) but teleop still holds with operator_lost; a new
    ~/enable locks on afresh (a new track id) and teleop follows again."""
    rig = Rig(ctx, {"operator_resume_same_operator": True}, {})
    try:
        frame = _stream(pair, np.random.default_rng(1))
        track, target = _arm_and_track(rig, frame)
        assert rig.status[-1].operator_resume == "enable"
        _cut_to_b(rig, frame, 10, target, track)
        # A returns: mocap_node re-acquires after N_REACQUIRE matching frames ...
        n0 = len(rig.status)
        states = []
        for k in range(N_REACQUIRE + 5):
            p = rig.send(frame("a", k))
            states.append((p.operator_state, p.track_id, p.valid))
            np.testing.assert_array_equal(rig.teleop.controller.target, target)
        assert states[N_REACQUIRE - 1:] == [("tracking", track, True)] * 6, states
        assert all(not v for _, _, v in states[:N_REACQUIRE - 1]), states
        # ... but teleop does not resume by itself
        after = rig.statuses_since(n0)
        assert not any(s.tracking for s in after)
        assert after[-1].reason == "operator_lost" and after[-1].operator_resume == "enable"
        # a new ~/enable: locks on to the person in view now, a new track id
        res = rig.enable()
        assert res.success and "re-armed" in res.message, res.message
        assert rig.teleop._operator_track not in (None, track)
        n0 = len(rig.status)
        for k in range(5):
            p = rig.send(frame("a", k))
            assert p.valid and p.track_id == rig.teleop._operator_track
        wait_for(lambda: False, rig.ex, timeout=0.2)
        assert any(s.tracking for s in rig.statuses_since(n0))
    finally:
        rig.close()


def test_cut_to_another_person_resumes_only_on_the_same_operator(ctx, pair):
    """operator_resume same_operator: B is never followed however long they stay; A coming
    back is followed again only after mocap_node re-identified A (N_REACQUIRE frames) and
    teleop saw operator_resume_poses tracked poses of the armed track id."""
    n_resume = 2
    rig = Rig(ctx, {"operator_resume_same_operator": True},
              {"operator_resume": "same_operator", "operator_resume_poses": n_resume})
    try:
        frame = _stream(pair, np.random.default_rng(2))
        track, target = _arm_and_track(rig, frame)
        assert rig.status[-1].operator_resume == "same_operator"
        _cut_to_b(rig, frame, 8, target, track)
        tracked = 0
        resumed_after = None
        for k in range(N_REACQUIRE + n_resume + 3):
            n0 = len(rig.status)
            p = rig.send(frame("a", k))
            tracked += p.operator_state == "tracking" and p.track_id == track and p.valid
            if resumed_after is None and rig.teleop.controller.target is not None and \
                    not np.array_equal(rig.teleop.controller.target, target):
                resumed_after = tracked
            if resumed_after is None:
                assert not any(s.tracking for s in rig.statuses_since(n0))
        # the first pose accepted is the n_resume-th tracked pose of the same track
        assert resumed_after == n_resume, (resumed_after, tracked)
        wait_for(lambda: False, rig.ex, timeout=0.2)
        assert rig.status[-1].tracking and rig.status[-1].reason == ""
    finally:
        rig.close()


def test_hmr_backend_policy_published_then_lock_and_lost(ctx, pair, synthetic_assets_root):
    """The hmr backend (synthetic model files: the poses are meaningless, the person boxes
    and the lock are real) with operator_lock: unlocked, the 'largest' person is followed and
    the track id changes when the larger person changes; ~/lock locks on to the person
    followed; with only the other person left, BodyPose says operator_lost for the locked
    track id. No teleop_node here: the service is called directly."""
    from mocap_ros.ros.mocap_node import MocapNode

    a, b = pair
    rng = np.random.default_rng(3)
    node = MocapNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in {
        "assets_dir": str(synthetic_assets_root), "backend": "hmr", "bbox_mode": "detector",
        "body_model": "skeleton", "operator_lock": True, "operator_lost_after": LOST_AFTER,
        "operator_max_people": 2, "publish_tf": False, "publish_markers": False}.items()])
    probe = rclpy.create_node("hmr_probe", context=ctx)
    pub = probe.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    poses: list[BodyPose] = []
    probe.create_subscription(BodyPose, "mocap/body_pose", poses.append, 100)
    lock = probe.create_client(LockOperator, "/mocap_node/lock")
    ex = make_executor(ctx, node, probe)

    def frame(a_h: float, b_h: float | None) -> np.ndarray:
        canvas = _frame()
        if a_h:
            _place(a, canvas, 20, 470 - a_h, a_h, rng)
        if b_h:
            _place(b, canvas, 340, 470 - b_h, b_h, rng)
        return canvas

    def right(p: BodyPose) -> bool:
        """B (placed at x >= 340) rather than A (x < 260): the crop's centre (HMR squares
        and pads the person box)."""
        return p.bbox[0] + p.bbox[2] / 2 > 320

    def send(rgb: np.ndarray) -> BodyPose:
        data, step = rgb_to_raw(rgb, "rgb8")
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=step,
                    data=data)
        msg.header.stamp = probe.get_clock().now().to_msg()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        pub.publish(msg)
        assert wait_for(lambda: any((p.header.stamp.sec, p.header.stamp.nanosec) == key
                                    for p in poses), ex, timeout=15.0)
        return next(p for p in poses if (p.header.stamp.sec, p.header.stamp.nanosec) == key)

    try:
        first = frame(320, 220)
        assert wait_for(lambda: poses, ex, timeout=30.0, tick_period=1.0,
                        on_tick=lambda: pub.publish(Image(
                            height=480, width=640, encoding="rgb8", step=640 * 3,
                            data=first.tobytes())))
        assert wait_for(lock.service_is_ready, ex, timeout=10.0)
        wait_for(lambda: False, ex, timeout=1.0)
        p = [send(frame(320, 220)) for _ in range(2)][-1]
        assert p.valid and p.operator_state == "unlocked" and p.track_id > 0
        assert not right(p)  # A, the larger one
        tid_a = p.track_id
        p = [send(frame(220, 360)) for _ in range(2)][-1]  # now B is larger
        assert p.valid and p.operator_state == "unlocked" and right(p)
        assert p.track_id != tid_a
        fut = lock.call_async(LockOperator.Request(lock=True))
        assert wait_for(fut.done, ex, timeout=10.0) and fut.result().success
        tid = fut.result().track_id
        assert tid > 0 and tid != tid_a
        p = send(frame(220, 360))
        assert p.valid and p.operator_state == "tracking" and p.track_id == tid
        assert right(p)
        # A grows larger than B: the lock stays on B
        p = send(frame(400, 300))
        assert p.valid and p.track_id == tid and right(p), (p.reason, p.bbox)
        # B leaves: A alone is not the operator
        reasons = [send(frame(320, None)) for _ in range(3)]
        assert [(q.valid, q.reason, q.track_id) for q in reasons] == [
            (False, "operator_lost", tid)] * 3
        assert reasons[-1].operator_state == "operator_lost"
        fut = lock.call_async(LockOperator.Request(lock=False))
        assert wait_for(fut.done, ex, timeout=10.0) and fut.result().success
        p = send(frame(320, None))
        assert p.valid and p.operator_state == "unlocked"
    finally:
        probe.destroy_node()
        node.destroy_node()
