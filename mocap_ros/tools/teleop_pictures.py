"""Regenerate the README's teleop pictures: operator pose beside the robot configuration.

``MUJOCO_GL=egl python -m mocap_ros.tools.teleop_pictures [--out docs]`` writes
``teleop_task_fr3.png`` (FR3, retarget: task) and ``teleop_joint_g1.png`` (G1, retarget:
joint). Each row: the operator (a stick figure of the SMPL skeleton posed with
`angles_to_local_rotations`, seen from the robot camera's direction) and the robot as the
TeleopController leaves it after 3 s of that pose at 25 Hz (shipped YAML, collision guard
on), rendered offscreen by MuJoCo (EGL, else OSMesa). Needs an OpenGL context: on a machine
without one it says so and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# (title, operator angles) per row
POSES: dict[str, list[tuple[str, dict[str, float]]]] = {
    "fr3": [
        ("rest", {}),
        ("arm forward", {"right_shoulder_flexion": 1.2}),
        ("arm sideways", {"right_shoulder_abduction": 1.1}),
        ("elbow bent", {"right_shoulder_flexion": 0.5, "right_elbow_flexion": 1.4}),
    ],
    "g1": [
        ("rest", {}),
        ("arms forward", {"left_shoulder_flexion": 1.3, "right_shoulder_flexion": 1.3}),
        ("arms sideways", {"left_shoulder_abduction": 1.2, "right_shoulder_abduction": 1.2}),
        ("elbows bent", {"left_elbow_flexion": 1.5, "right_elbow_flexion": 1.5,
                         "left_shoulder_flexion": 0.3, "right_shoulder_flexion": 0.3}),
    ],
}
MODES = {"fr3": "task", "g1": "joint"}
AZIMUTH, ELEVATION = 145.0, -15.0  # MuJoCo free camera, degrees
CELL = 240


def settle(name: str, angles: dict[str, float]) -> tuple[np.ndarray, object]:
    from mocap_ros.teleop.angles import angles_to_local_rotations
    from mocap_ros.teleop.controller import TeleopController
    from mocap_ros.teleop.robot_setup import TeleopRobot

    config = Path(__file__).resolve().parents[2] / "config" / f"teleop_{name}.yaml"
    jm, robot = TeleopRobot.from_yaml(config, retarget=MODES[name])
    assert robot is not None
    ctl = TeleopController(jm, rate_hz=25.0, robot=robot)
    ctl.enable(0.0, jm.safe_pose)
    quats = angles_to_local_rotations(angles)
    out = None
    for k in range(1, 76):
        ctl.on_pose(k / 25.0, k / 25.0, True, 1.0, quats)
        out = ctl.step(k / 25.0)
    assert out is not None
    return robot.to_model(out.positions), robot


_VIEW: dict[str, np.ndarray] = {}  # the renderer's camera axes (right, up), world frame


def _view_axes() -> tuple[np.ndarray, np.ndarray]:
    """The robot camera's image right and up, as MuJoCo set them up (the operator is drawn
    from the same direction, so "arm forward" points the same way in both halves)."""
    return _VIEW["right"], _VIEW["up"]


def operator_image(angles: dict[str, float], title: str) -> np.ndarray:
    import cv2

    from mocap_ros.core.skeleton import PARENTS, REST_JOINTS_APPROX
    from mocap_ros.geometry.kinematics import forward_kinematics_np
    from mocap_ros.geometry.rotations import quat_to_matrix
    from mocap_ros.teleop.angles import angles_to_local_rotations

    rot = quat_to_matrix(angles_to_local_rotations(angles))
    _, j = forward_kinematics_np(rot, REST_JOINTS_APPROX)
    body = np.stack([j[:, 2], j[:, 0], j[:, 1]], axis=1)  # SMPL (left, up, fwd) -> fwd, left, up
    right, up = _view_axes()
    uv = np.stack([body @ right, body @ up], axis=1)
    img = np.full((CELL, CELL, 3), 255, np.uint8)
    scale = CELL / 2.2
    px = (CELL / 2 + uv[:, 0] * scale).astype(int)
    py = (CELL * 0.42 - uv[:, 1] * scale).astype(int)
    for k, p in enumerate(PARENTS):
        if p < 0:
            continue
        colour = (40, 40, 40)
        if k in (17, 19, 21, 23):  # right arm
            colour = (200, 60, 30)
        elif k in (16, 18, 20, 22):  # left arm
            colour = (30, 120, 200)
        cv2.line(img, (px[p], py[p]), (px[k], py[k]), colour, 4, cv2.LINE_AA)
    cv2.circle(img, (px[15], py[15] - 10), 14, (40, 40, 40), 2, cv2.LINE_AA)
    cv2.putText(img, f"operator: {title}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    return img


def robot_image(q: np.ndarray, robot: object, label: str) -> np.ndarray:
    import cv2
    import mujoco

    m = robot.robot.model  # type: ignore[attr-defined]
    # The shipped models carry no lights: a bright headlight makes the primitives readable.
    m.vis.headlight.ambient[:] = 0.45
    m.vis.headlight.diffuse[:] = 0.6
    m.vis.headlight.active = 1
    d = mujoco.MjData(m)
    d.qpos[:] = q
    mujoco.mj_forward(m, d)
    cam = mujoco.MjvCamera()
    cam.azimuth, cam.elevation = AZIMUTH, ELEVATION
    cam.lookat[:] = [0.2, 0.0, 0.45] if robot.robot.name == "fr3" else [0.1, 0.0, 0.75]  # type: ignore[attr-defined]
    cam.distance = 2.0 if robot.robot.name == "fr3" else 1.9  # type: ignore[attr-defined]
    with mujoco.Renderer(m, CELL, CELL) as r:
        opt = mujoco.MjvOption()
        opt.geomgroup[:] = 1  # the collision primitives live in group 3 (hidden by default)
        opt.sitegroup[:] = 0
        r.update_scene(d, cam, scene_option=opt)
        glcam = r.scene.camera[0]
        fwd, up = np.array(glcam.forward, float), np.array(glcam.up, float)
        _VIEW["right"], _VIEW["up"] = np.cross(fwd, up), up
        img = r.render()[:, :, ::-1].copy()  # RGB -> BGR for cv2
    cv2.putText(img, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return img


def picture(name: str) -> np.ndarray:
    rows = []
    for title, angles in POSES[name]:
        q, robot = settle(name, angles)
        robot_img = robot_image(q, robot, f"{name} ({MODES[name]} mode)")
        rows.append(np.hstack([operator_image(angles, title), robot_img]))
    # two poses per row pair: a 2x(operator|robot) grid
    grid = [np.hstack(rows[i:i + 2]) for i in range(0, len(rows), 2)]
    return np.vstack(grid)


def main(argv: list[str] | None = None) -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs", help="output folder (default docs)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for name in ("fr3", "g1"):
            path = out / f"teleop_{MODES[name]}_{name}.png"
            cv2.imwrite(str(path), picture(name), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    except Exception as exc:  # no OpenGL context: say so instead of a traceback
        if "GL" in type(exc).__name__ or "gl" in str(exc).lower():
            print(f"teleop_pictures: no offscreen OpenGL ({exc}); try MUJOCO_GL=egl or "
                  "MUJOCO_GL=osmesa", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
