"""`mocap-ros demo --robot fr3|g1`: a synthetic operator drives the simulated robot.

camera_node (``source: synthetic:SCRIPT``: a rendered person with known arm motion,
docs/synthetic_operator.md) -> mocap_node -> teleop_node (enabled by the demo once a valid
pose and the robot's joint_states have come) -> sim_robot, in one process (``mocap-ros up``'s
machinery), over DDS. The figures are bench-loop's (:mod:`mocap_ros.tools.bench_loop`, one
implementation): the share of enabled control steps that track, the lag of the robot hand
behind the operator's wrist, direction fidelity at each hold, the hand's distance from home
3 s after the operator is back at rest, contacts. The demo exits 1 saying why when the robot
did not follow (:func:`verdict`).

The picture: a frame late in a hold (the robot has arrived) re-rendered from the truth's
script time, the estimated skeleton of that very frame drawn on the figure, beside the robot
in the joint state it had then. ``video``: the same for every pose.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.msg import BodyPose
from mocap_ros.offline.render import draw_skeleton_2d
from mocap_ros.robots.model import load_robot
from mocap_ros.robots.sim import SimRobot
from mocap_ros.tools.bench_loop import (
    MOVED_M,
    LoopRecord,
    RobotKinematics,
    analyse,
    make_recorder,
)
from mocap_ros.tools.loop_metrics import TRUTH_TOPIC, distance_after

PANEL_H = 480
# The demo fails when the robot did not follow. Tracking: the share of enabled control steps
# teleop spent following; on this 2-core machine the demo measured 95-100 % (docs), so under
# 80 % something is wrong (stale or invalid poses), not merely slow. Moved: the robot hand's
# largest displacement from home; the scripts move the wrist 0.4-0.8 m, which every shipped
# robot answers with > 100 mm, so < MOVED_M (20 mm) is a robot that did not move.
MIN_TRACKING = 0.8
# Back at rest: 3 s after the operator's arms are down again, the hand within this of where
# it stood while the operator stood at rest before the first move (issue 19's goal is 30 mm;
# the demo fails only on a robot that stayed away). Not bench-loop's "from home": teleop maps
# the operator's rest to its own pose, for the G1 ~0.2 m from the model's home.
MAX_HOME_MM = 60.0
# the clearest hold to picture: the right arm out sideways (both robots follow that arm)
PICTURE_PHASE = {"g1": "hold_side", "fr3": "hold_side"}
_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST,
                  reliability=ReliabilityPolicy.BEST_EFFORT)


def _s(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class FrameKeeper(Node):
    """The estimated 2D keypoints and the script time of every frame, by image stamp (the
    picture and video re-render a frame from its script time: no images are kept)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__("demo_frames", context=ctx)
        self.keypoints: dict[float, np.ndarray] = {}
        self.script_t: dict[float, float] = {}
        self.create_subscription(BodyPose, "/mocap/body_pose", self._on_pose, _QOS)
        self.create_subscription(BodyPose, TRUTH_TOPIC, self._on_truth, _QOS)

    def _on_pose(self, msg: BodyPose) -> None:
        if msg.valid and len(msg.keypoints_2d) >= 48:
            self.keypoints[_s(msg.header.stamp)] = np.asarray(msg.keypoints_2d,
                                                              np.float64).reshape(-1, 2)

    def _on_truth(self, msg: BodyPose) -> None:
        fields = dict(p.split("=", 1) for p in msg.reason.split() if "=" in p)
        if "t" in fields:
            self.script_t[_s(msg.header.stamp)] = float(fields["t"])


def back_to_rest_mm(record: LoopRecord, r: dict[str, Any]) -> float:
    """The hands' largest distance, 3 s after the operator's final rest began, from where
    they stood during the operator's first rest (after teleop was enabled and had 0.8 s to
    get there; else the last 0.3 s before the first move). NaN without both."""
    s = r["_series"]
    t_op, t_js, disp = s["t_op"], s["t_js"], s["robot_disp"]
    moving = [t for t, p in zip(t_op, record.truth_phase, strict=True) if p != "rest"]
    if not moving or s["t_rest"] is None:
        return float("nan")
    t_move = moving[0]
    t_from = (record.enabled_at or t_move) + 0.8
    if t_move - t_from < 0.3:
        t_from = t_move - 0.3
    w = (t_js >= t_from) & (t_js <= t_move)
    if not w.any():
        return float("nan")
    rest = disp - disp[w].mean(axis=0)
    n = s["n_arms"]
    return 1e3 * max(distance_after(t_js, rest[:, 3 * k:3 * k + 3], s["t_rest"], 3.0)
                     for k in range(n))


def verdict(r: dict[str, Any], min_tracking: float = MIN_TRACKING,
            max_home_mm: float = MAX_HOME_MM) -> list[str]:
    """Why the robot did not follow (empty: it did)."""
    why = []
    if r["enabled_steps"] == 0:
        why.append("teleop was never enabled" + (f" ({r['enable_error']})"
                                                 if r.get("enable_error") else ""))
    elif r["tracking_share"] < min_tracking:
        held = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items(),
                                                      key=lambda kv: -kv[1]))
        why.append(f"teleop tracked {r['tracking_share']:.0%} of enabled control steps "
                   f"(< {min_tracking:.0%}; held: {held or '-'})")
    if not r["moved_mm"] >= 1e3 * MOVED_M:
        why.append(f"the robot hand moved at most {r['moved_mm']:.0f} mm (< "
                   f"{1e3 * MOVED_M:.0f} mm) while the operator's wrist moved")
    if not r["back_to_rest_mm"] <= max_home_mm:
        why.append(f"the robot hand was {r['back_to_rest_mm']:.0f} mm from its rest pose 3 s "
                   f"after the operator's final rest (> {max_home_mm:.0f} mm)")
    return why


def _fmt(v: float, spec: str, unit: str = "") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else \
        f"{format(v, spec)}{unit}"


def summary(r: dict[str, Any], frames: int) -> list[str]:
    holds = ", ".join(f"{h['phase']} ({h['side']}) {_fmt(h['cosine'], '.2f')}"
                      for h in sorted(r["holds"], key=lambda h: h["start"]))
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items(),
                                                      key=lambda kv: -kv[1]))
    return [
        f"poses: {r['valid_poses']} valid of {frames} frames, {r['poses_per_s']:.1f}/s; "
        f"frame -> pose p50 {_fmt(r['latency_p50_ms'], '.0f', ' ms')}, p95 "
        f"{_fmt(r['latency_p95_ms'], '.0f', ' ms')}",
        f"tracking: {r['tracking_share']:.1%} of {r['enabled_steps']} enabled control steps"
        + (f" (held: {reasons})" if reasons else ""),
        f"lag robot hand vs operator wrist: {_fmt(r['lag_ms'], '.0f', ' ms')} (fit "
        f"{_fmt(r['lag_score'], '.2f')}); the hand moved up to {r['moved_mm']:.0f} mm",
        f"direction fidelity at the holds (cosine robot hand vs operator wrist): "
        f"{holds or 'n/a'}",
        f"back to rest: {_fmt(r['back_to_rest_mm'], '.0f', ' mm')} from the robot's pose at "
        f"the operator's first rest, 3 s after the final rest began (from the model's home: "
        f"{_fmt(r['back_home_mm'], '.0f', ' mm')})",
        f"contacts: {r['contacts']} ticks with contact"
        + (f" ({r['contact_pairs']})" if r.get("contact_pairs") else "")
        + f"; largest commanded acceleration / limit {_fmt(r['accel_ratio_max'], '.2f')}",
    ]


# ------------------------------------------------------------------------------ pictures
def _skeleton_on(rgb: np.ndarray, keypoints: np.ndarray | None) -> np.ndarray:
    img = np.ascontiguousarray(rgb[..., ::-1]).copy()  # BGR for cv2's colours
    if keypoints is not None:
        res = BodyPoseResult.invalid("")
        res.valid = True
        res.keypoints_2d = keypoints.astype(np.float32)
        draw_skeleton_2d(img, res, names=False)
    return img[..., ::-1]


def draw_robot_cv2(sim: SimRobot, size: tuple[int, int]) -> np.ndarray:
    """Body origins joined to their parents, seen from the front (y right-left, z up)."""
    w, h = size
    canvas = np.full((h, w, 3), 40, np.uint8)
    pos, parent = sim.geom_positions()
    pts = pos[1:, 1:]  # (y, z) of every body but the world
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = 0.8 * min(w, h) / max(float(np.max(hi - lo)), 1e-6)
    centre = 0.5 * (lo + hi)

    def px(p: np.ndarray) -> tuple[int, int]:
        return (int(w / 2 - scale * (p[1] - centre[0])), int(h / 2 - scale * (p[2] - centre[1])))

    for b in range(2, len(pos)):
        cv2.line(canvas, px(pos[parent[b]]), px(pos[b]), (200, 200, 200), 4)
    for b in range(1, len(pos)):
        cv2.circle(canvas, px(pos[b]), 5, (60, 140, 250), -1)
    return canvas


class Pictures:
    """Camera frame (re-rendered) + estimated skeleton | robot at a joint state."""

    def __init__(self, script: str, robot: str, size: tuple[int, int]) -> None:
        from mocap_ros.scene.operator import SyntheticOperator

        # without the sensor noise (grey +-2): the same scene, a PNG a fifth the size
        self.op = SyntheticOperator(script=script, width=size[0], height=size[1], noise=0.0)
        self.sim = SimRobot(load_robot(robot))
        self.use_gl = True

    def robot(self, names: list[str], positions: list[float]) -> np.ndarray:
        q = self.sim.home.copy()
        index = {n: i for i, n in enumerate(self.sim.joint_names)}
        for n, v in zip(names, positions, strict=False):
            if n in index:
                q[index[n]] = v
        self.sim.reset(q)
        size = (PANEL_H * 4 // 3, PANEL_H)
        if self.use_gl:
            try:
                return self.sim.render(*size)
            except RuntimeError as exc:
                print(f"no off-screen OpenGL ({exc}); drawing the robot with cv2 instead")
                self.use_gl = False
        return draw_robot_cv2(self.sim, size)

    def compose(self, script_t: float, keypoints: np.ndarray | None, names: list[str],
                positions: list[float], caption: str) -> np.ndarray:
        left = _skeleton_on(self.op.render(script_t), keypoints)
        scale = PANEL_H / left.shape[0]
        left = cv2.resize(left, (int(left.shape[1] * scale), PANEL_H))
        out = np.hstack([left, self.robot(names, positions)])
        (tw, th), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        cv2.rectangle(out, (4, PANEL_H - 18 - th), (16 + tw, PANEL_H - 4), (30, 30, 30), -1)
        cv2.putText(out, caption, (10, PANEL_H - 11), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (255, 255, 255), 1, cv2.LINE_AA)
        return out

    def close(self) -> None:
        self.op.close()
        self.sim.close()


def _joint_state_at(record: LoopRecord, t: float) -> tuple[list[str], list[float]]:
    i = int(np.argmin(np.abs(np.asarray(record.js_t) - t)))
    return record.js_names[i], record.js_pos[i]


def _picture_frame(record: LoopRecord, frames: FrameKeeper, phase: str) -> float | None:
    """The stamp of the last frame with an estimate inside the last ``phase`` hold (else
    inside any hold, else any frame with an estimate)."""
    stamps = [t for t in frames.keypoints if t in frames.script_t]
    if not stamps:
        return None
    by_phase = dict(zip(record.truth_t, record.truth_phase, strict=True))
    for want in (phase, "hold_"):
        cands = [t for t in stamps if by_phase.get(t, "").startswith(want)]
        if cands:
            return max(cands)
    return max(stamps)


def write_pictures(record: LoopRecord, frames: FrameKeeper, result: dict[str, Any],
                   script: str, robot: str, out: str, video: str | None,
                   size: tuple[int, int]) -> None:
    pics = Pictures(script, robot, size)
    try:
        t = _picture_frame(record, frames, PICTURE_PHASE.get(robot, "hold_side"))
        if t is None:
            print("picture: no frame with an estimate to draw")
        else:
            phase = dict(zip(record.truth_t, record.truth_phase, strict=True)).get(t, "")
            # the robot a lag later: the state it reached for this frame
            lag = result["lag_ms"] / 1e3 if np.isfinite(result["lag_ms"]) else 0.0
            pic = pics.compose(frames.script_t[t], frames.keypoints[t],
                               *_joint_state_at(record, t + lag),
                               f"{robot}: {phase}, tracking {result['tracking_share']:.0%}, "
                               f"lag {_fmt(result['lag_ms'], '.0f', ' ms')}")
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(out, pic[..., ::-1])
        if video:
            writer = None
            fps = max(1.0, float(result.get("frames_per_s") or 15.0))
            for ts in sorted(frames.script_t):
                img = pics.compose(frames.script_t[ts], frames.keypoints.get(ts),
                                   *_joint_state_at(record, ts), f"{robot} t={ts:.2f}")
                if writer is None:
                    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (img.shape[1], img.shape[0]))
                writer.write(img[..., ::-1])
            if writer is not None:
                writer.release()
    finally:
        pics.close()


# ------------------------------------------------------------------------------ the demo
def run_robot_demo(assets_dir: str, robot: str = "fr3", script: str = "default",
                   rate_hz: float = 15.0, out: str = "demo_robot.png", video: str | None = None,
                   overrides: dict | None = None, min_tracking: float = MIN_TRACKING,
                   max_home_mm: float = MAX_HOME_MM,
                   size: tuple[int, int] = (640, 480),
                   teleop_overrides: dict | None = None) -> int:
    """Run the loop for the script (to its end and its last pose), print the figures and
    the verdict, write the picture; 0 when the robot followed, 1 (saying why) when not.
    ``teleop_overrides``: teleop_node parameters besides the robot map (tests)."""
    from mocap_ros.ros.up import config_dir, robot_config_path, run_up
    from mocap_ros.scene.operator import SCRIPTS, SyntheticOperator

    if script not in SCRIPTS:
        raise ValueError(f"unknown script {script!r} (scripts: {', '.join(SCRIPTS)})")
    duration = SyntheticOperator(script=script).duration
    kin = RobotKinematics.from_config(robot, robot_config_path(robot, config_dir()))
    record = LoopRecord()
    keep: list[Any] = []

    def extra(ctx: Any) -> list[Any]:
        keep.extend([make_recorder(ctx, record), FrameKeeper(ctx)])
        return list(keep)

    mocap = {**({"assets_dir": assets_dir} if assets_dir else {}), **(overrides or {})}
    print(f"mocap_ros robot demo: synthetic operator ({script}, {duration:.1f} s) at "
          f"{rate_hz:g} fps -> mocap_node -> teleop_node ({robot}, enabled by the demo) -> "
          f"sim_robot, one process over DDS")
    domain = os.environ.get("ROS_DOMAIN_ID")
    run_up(f"synthetic:{script}", teleop=robot, sim=True, mocap_overrides=mocap,
           camera_overrides={"fps": float(rate_hz), "width": size[0], "height": size[1],
                             "loop": False, "realtime": True},
           # to the script's end and its last pose (start-up is not the operator's time);
           # the duration only bounds a stuck run
           exit_at_end=True, duration=duration + 60.0,
           domain_id=int(domain) if domain else None,
           teleop_overrides=teleop_overrides, extra_nodes=extra, out=lambda _line: None)
    frames: FrameKeeper = keep[1]
    try:
        result = analyse(record, kin, min_tracking=min_tracking)
    except ValueError as exc:
        print(f"the robot did NOT follow: {exc}")
        return 1
    result["back_to_rest_mm"] = back_to_rest_mm(record, result)
    for line in summary(result, len(record.truth_t)):
        print(line)
    write_pictures(record, frames, result, script, robot, out, video, size)
    print(f"picture: {out}" + (f"; video: {video}" if video else ""))
    why = verdict(result, min_tracking, max_home_mm)
    if why:
        print("the robot did NOT follow: " + "; ".join(why))
        return 1
    print(f"the robot followed: tracking {result['tracking_share']:.0%} (>= "
          f"{min_tracking:.0%}), hand moved {result['moved_mm']:.0f} mm, back within "
          f"{result['back_to_rest_mm']:.0f} mm of its rest pose")
    return 0
