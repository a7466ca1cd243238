"""Rest-pose bias of the landmarks backend: with and without the elbow-depth prior, in one run.

``python -m mocap_ros.tools.bench_rest [--out bench/rest_bias.json]``

1. The synthetic operator's default script is rendered once and BlazePose (video mode) runs
   once per frame; its landmarks are then replayed through ``LandmarksBackend`` with
   ``straight_elbows`` off and on, so both variants see identical network output and the
   difference is the IK's alone. Per hold (its last second): arm segment direction errors in
   the torso frame (``scene.operator.arm_directions``), forearm errors in the camera frame,
   3D elbow flexion against the truth's, the teleop wrist offset error (``task_retarget``'s
   wrist displacement, in arm lengths) and the backend's postprocess ms (median).
2. Real photos (the shared pack, if present): arms the annotators drew straight and hanging;
   3D elbow flexion and the elbow / wrist reprojection error against the annotations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mocap_ros.core.skeleton import JOINT_INDEX as J
from mocap_ros.tools.machine import cpu_model

VARIANTS = {"before (no prior)": {"straight_elbows": False}, "after (elbow prior)": {}}
# Not shipped: what an upright-torso prior would do (the world landmarks above the hips moved
# in depth so that the shoulder centre has the hip centre's depth), measured for the record.
EXPERIMENT = "experiment: elbow prior + upright torso"


def _upright_torso(lms: Any) -> Any:
    """A copy of BlazePose's landmarks with the world landmarks 0-22 (head, shoulders, arms,
    hands) shifted in depth by the torso's lean: shoulder centre at the hip centre's depth."""
    import dataclasses

    w = np.array(lms.world, np.float64, copy=True)
    w[:23, 2] -= (w[11, 2] + w[12, 2]) / 2.0 - (w[23, 2] + w[24, 2]) / 2.0
    return dataclasses.replace(lms, world=w)
SIDES = ("right", "left")


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def _flexion(j: np.ndarray, side: str) -> float:
    s, e, w = (j[J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
    return _angle(e - s, w - e)


class _Replay:
    """A detector that returns recorded landmarks."""

    lms: Any = None

    def landmarks(self, rgb: np.ndarray) -> Any:
        return self.lms

    def close(self) -> None:
        pass


def _g1_hands() -> Any:
    """local rotations -> the G1's two hand sites' distances (mm) from their home, through
    the shipped joint map (config/teleop_g1.yaml, angles -> clamped joint commands) and the
    MuJoCo model: what bench-loop's "home" figure measures, without the loop."""
    from mocap_ros.teleop.angles import local_rotations_to_angles
    from mocap_ros.teleop.robot_setup import TeleopRobot
    from mocap_ros.tools.bench_loop import RobotKinematics

    yaml_path = Path(__file__).resolve().parents[2] / "config" / "teleop_g1.yaml"
    jmap, _ = TeleopRobot.from_yaml(yaml_path)
    kin = RobotKinematics.from_config("g1", yaml_path)
    home = kin.home_hands()
    names = list(jmap.names)

    def hands(local_rotations: np.ndarray) -> list[float]:
        cmd = jmap.command(local_rotations_to_angles(local_rotations))
        return (np.linalg.norm(kin.hands(names, list(cmd)) - home, axis=1) * 1e3).tolist()

    return hands


def synthetic(fps: float = 7.5) -> dict[str, Any]:
    from mocap_ros.estimation.detector import PersonDetector
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend
    from mocap_ros.scene.operator import SyntheticOperator, arm_directions
    from mocap_ros.teleop.task_retarget import arm_length, arm_vectors_body

    def wrist_disp(j: np.ndarray, side: str) -> np.ndarray:
        length = arm_length(j, side)
        return (arm_vectors_body(j, side)["wrist"] - [0.0, 0.0, -length]) / length

    def wrist_disp_level(j: np.ndarray, side: str) -> np.ndarray:
        """wrist_disp in a body frame whose up is the (level) camera's, not pelvis -> neck."""
        up = np.array([0.0, -1.0, 0.0])
        left = j[J["left_shoulder"]] - j[J["right_shoulder"]]
        left = left - (left @ up) * up
        left /= np.linalg.norm(left)
        R = np.column_stack([np.cross(left, up), left, up])
        length = arm_length(j, side)
        v = R.T @ (j[J[f"{side}_wrist"]] - j[J[f"{side}_shoulder"]])
        return (v - [0.0, 0.0, -length]) / length

    g1 = _g1_hands()
    op = SyntheticOperator(script="default")
    det = PersonDetector()
    frames = []
    for i in range(int(op.duration * fps)):
        t = i / fps
        rgb, tr = op.frame(t)
        seg = next(s for s in op.people[0].segments if s.t0 <= t < s.t1)
        frames.append((det.landmarks(rgb), tr, tr.holding and t >= seg.t1 - 1.0))
    det.close()
    op.close()
    shape = (op.height, op.width, 3)
    out: dict[str, Any] = {}
    # both variants on every frame, alternating which goes first (no warm-up / order bias)
    variants = {**VARIANTS, EXPERIMENT: {}}
    replays = {n: _Replay() for n in variants}
    backends = {n: LandmarksBackend(None, detector=replays[n], **kw) for n, kw in variants.items()}
    rows: dict[str, dict[str, list[list[float]]]] = {n: defaultdict(list) for n in variants}
    ms: dict[str, list[float]] = {n: [] for n in variants}
    disp: dict[str, dict[str, list[Any]]] = {n: defaultdict(list) for n in variants}
    for i, (lms, tr, settled) in enumerate(frames):
        if lms is None:
            continue
        for name in (list(variants) if i % 2 else list(variants)[::-1]):
            replays[name].lms = _upright_torso(lms) if name == EXPERIMENT else lms
            r = backends[name].process(np.zeros(shape, np.uint8), K=op.intrinsics)
            ms[name].append(r.timings_ms["postprocess"])
            if not (r.valid and settled):
                continue
            e, t = r.joints_cam.astype(np.float64), tr.joints_cam.astype(np.float64)
            seg_err = [_angle(a, b) for a, b in zip(arm_directions(e), arm_directions(t),
                                                     strict=True)]
            fore = [_angle(e[J[f"{s}_wrist"]] - e[J[f"{s}_elbow"]],
                           t[J[f"{s}_wrist"]] - t[J[f"{s}_elbow"]]) for s in SIDES]
            flex = [_flexion(e, s) for s in SIDES] + [_flexion(t, s) for s in SIDES]
            wrist = [float(np.linalg.norm(wrist_disp(e, s) - wrist_disp(t, s))) for s in SIDES]
            rows[name][tr.phase].append(seg_err + fore + flex + wrist + g1(r.local_rotations))
            disp[name][tr.phase].append([np.r_[wrist_disp(e, s), wrist_disp(t, s),
                                               wrist_disp_level(e, s)] for s in SIDES])
    for name in variants:
        keys = ("seg_err_deg R_upper R_fore L_upper L_fore", "fore_cam_err_deg R L",
                "flexion_deg est R L truth R L", "wrist_offset_err_armlen R L",
                "g1_hands_from_home_mm (joint map)")
        spans = ((0, 4), (4, 6), (6, 10), (10, 12), (12, 14))
        out[name] = {"postprocess_ms_median": float(np.median(ms[name])), "holds": {
            ph: {k: np.round(np.mean(v, 0)[a:b], 2).tolist() for k, (a, b) in
                 zip(keys, spans, strict=True)} | {"n": len(v)}
            for ph, v in rows[name].items()}}
        # Teleop options, measured: a rest calibration (the operator's measured rest wrist
        # offset subtracted, the truth's likewise) and a body frame that takes "up" from
        # the level camera instead of pelvis -> neck.
        d = {ph: np.mean(v, 0) for ph, v in disp[name].items()}
        rest = d["rest"]
        for ph, m in d.items():
            out[name]["holds"][ph]["wrist_offset_err_armlen_rest_calibrated R L"] = [
                round(float(np.linalg.norm((m[i, :3] - rest[i, :3])
                                           - (m[i, 3:6] - rest[i, 3:6]))), 2) for i in (0, 1)]
            out[name]["holds"][ph]["wrist_offset_err_armlen_camera_up R L"] = [
                round(float(np.linalg.norm(m[i, 6:9] - m[i, 3:6])), 2) for i in (0, 1)]
    return out


def real_photos() -> dict[str, Any] | None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test"))
    try:
        from real_images_pack import load_people, pack_root
    except ImportError:
        return None
    root = pack_root()
    if root is None:
        return None
    from mocap_ros.estimation.detector import PersonDetector
    from mocap_ros.estimation.landmarks.backend import LandmarksBackend

    res: dict[str, list[dict[str, Any]]] = {n: [] for n in VARIANTS}
    for name, kw in VARIANTS.items():
        with LandmarksBackend(None, detector=PersonDetector(static_image_mode=True),
                              **kw) as backend:
            for p in load_people(root, min_visibility=2):
                a = p.joints
                for side, (ks, ke, kw_) in (("left", (0, 2, 4)), ("right", (1, 3, 5))):
                    if not (np.isfinite(a[[ks, ke, kw_]]).all() and a[ke, 1] > a[ks, 1]
                            and a[kw_, 1] > a[ke, 1]):
                        continue
                    bend2d = _angle(a[ke] - a[ks], a[kw_] - a[ke])
                    if bend2d >= 12.0:
                        continue
                    r = backend.process(p.image, bbox=p.box)
                    if not r.valid:
                        continue
                    err = [float(np.linalg.norm(r.keypoints_2d[J[f"{side}_{n}"]] - a[k]))
                           for n, k in (("elbow", ke), ("wrist", kw_))]
                    if max(err) > 0.5 * float(np.linalg.norm(a[0] - a[1])):
                        continue  # another arm / person
                    res[name].append({"arm": f"{p.name} {side}", "annotated_2d_bend": bend2d,
                                      "flexion_3d": _flexion(r.joints_cam, side),
                                      "elbow_px": err[0], "wrist_px": err[1]})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/rest_bias.json")
    args = ap.parse_args(argv)
    syn = synthetic()
    real = real_photos()
    for name, v in syn.items():
        print(f"\n{name}: postprocess median {v['postprocess_ms_median']:.3f} ms")
        for ph, h in v["holds"].items():
            print(f"  {ph:13s} " + "  ".join(f"{k.split()[0]} {h[k]}" for k in h if k != "n"))
    if real:
        for name, rows in real.items():
            f = [r["flexion_3d"] for r in rows]
            print(f"\nreal straight arms, {name}: n={len(rows)} 3D flexion median "
                  f"{np.median(f):.1f} deg; elbow/wrist px median "
                  f"{np.median([r['elbow_px'] for r in rows]):.1f}/"
                  f"{np.median([r['wrist_px'] for r in rows]):.1f}")
    result = {"cpu": cpu_model(), "loadavg": os.getloadavg(), "synthetic": syn,
              "real_straight_arms": real}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}; cpu {result['cpu']}, load {result['loadavg']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
