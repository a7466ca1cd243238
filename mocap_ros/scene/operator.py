"""The synthetic operator: a human figure rendered off-screen with MuJoCo, performing scripted
arm motions whose SMPL joints are known exactly (docs/synthetic_operator.md).

The figure is built on :data:`mocap_ros.core.skeleton.REST_JOINTS_APPROX` (scaled per
:data:`FIGURES`): capsules and ellipsoids in skin, hair and clothing colours, a head with
eyes, brows, nose, mouth and ears (BlazePose's detector looks for a face and upper body). Each
body segment is a MuJoCo mocap body placed from the joints of the frame, so rendering a frame
is: joints (numpy) -> mocap poses -> ``mj_kinematics`` -> one off-screen render.

Frames. The world is the operator's body frame, REP-103 style: x forward (out of the chest,
toward the camera), y to the operator's left, z up; the ground at z = 0. ``joints_body`` is
relative to the pelvis. The camera stands on +x looking back along -x; ``joints_cam`` is in
its optical frame (x right, y down, z forward), so body +y (left) is image right. Pixels
follow MuJoCo's OpenGL raster: pixel (i, j) covers [i, i + 1) x [j, j + 1), i.e. the
principal point is (W / 2, H / 2) and the pixel holding a projection (u, v) is
(floor(u), floor(v)).

Scripts are keyframes of the two arms' directions (upper arm, forearm: unit vectors in the
body frame), reached along great circles with a minimum-jerk profile at a mean
:data:`ARM_SPEED_DEG_S` (peak 1.875 times that), held for a while at each target. The torso,
head and legs stand still: the loop's subject is the arms.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mocap_ros.core.skeleton import JOINT_INDEX, REST_JOINTS_APPROX
from mocap_ros.geometry.rotations import matrix_to_quat

# MuJoCo picks its OpenGL platform when it is first imported: off-screen EGL unless the user
# chose (as cli/main does); a process that imported mujoco earlier keeps its choice.
os.environ.setdefault("MUJOCO_GL", "egl")

ARM_SPEED_DEG_S = 60.0  # mean angular speed of a move (minimum jerk peaks at 1.875x: 112 deg/s)
MIN_MOVE_S = 0.6

J = JOINT_INDEX


# ---------------------------------------------------------------- figures
@dataclass(frozen=True)
class Figure:
    """A person's build (metres, ratios) and colours (RGB 0..1)."""

    height: float
    shoulder_scale: float  # shoulder width relative to the anthropometric 0.259 H
    girth: float  # torso / limb thickness factor
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shirt: tuple[float, float, float]
    sleeves: str  # "short" (forearms bare) | "long"
    trousers: tuple[float, float, float]
    shoes: tuple[float, float, float]
    description: str


FIGURE_SPECS: dict[str, Figure] = {
    "default": Figure(1.75, 1.0, 1.0, (0.87, 0.67, 0.53), (0.22, 0.14, 0.08),
                      (0.16, 0.36, 0.66), "short", (0.18, 0.20, 0.26), (0.10, 0.09, 0.08),
                      "1.75 m, average build, blue T-shirt, dark trousers, brown hair"),
    "tall": Figure(1.88, 1.08, 1.1, (0.55, 0.38, 0.27), (0.06, 0.05, 0.05),
                   (0.70, 0.18, 0.16), "long", (0.30, 0.27, 0.22), (0.85, 0.85, 0.82),
                   "1.88 m, broad, red long-sleeved shirt, khaki trousers, black hair"),
    "small": Figure(1.60, 0.93, 0.9, (0.95, 0.80, 0.70), (0.62, 0.44, 0.22),
                    (0.24, 0.56, 0.30), "short", (0.12, 0.16, 0.30), (0.60, 0.20, 0.20),
                    "1.60 m, slim, green T-shirt, navy trousers, fair hair"),
}
FIGURES: dict[str, str] = {k: v.description for k, v in FIGURE_SPECS.items()}


def _unit(v: Any) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def rest_joints_body(figure: Figure) -> np.ndarray:
    """(24, 3) rest joints of ``figure`` in its body frame (x forward, y left, z up), pelvis
    at the origin: the SMPL rest frame's (x left, y up, z forward) axes permuted, scaled to
    the figure's height, the shoulder girdle to its width."""
    smpl = REST_JOINTS_APPROX.astype(np.float64) * (figure.height / 1.75)
    body = smpl[:, [2, 0, 1]].copy()
    for name in ("left_collar", "right_collar", "left_shoulder", "right_shoulder"):
        body[J[name], 1] *= figure.shoulder_scale
    # SMPL's approximate skeleton puts both arms out sideways (T pose); the figure's arm
    # lengths come from it, the arm pose from the script.
    return body


# ---------------------------------------------------------------- scripts
# Arm directions (unit vectors, body frame). Right arm targets; the left arm mirrors y.
_REST_U, _REST_F = _unit([0.03, -0.17, -1.0]), _unit([0.10, -0.10, -1.0])
ARM_TARGETS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "rest": (_REST_U, _REST_F),
    "side": (_unit([0.0, -1.0, 0.0]), _unit([0.0, -1.0, 0.0])),
    "forward": (_unit([1.0, -0.12, 0.0]), _unit([1.0, -0.12, 0.0])),
    "up": (_unit([0.05, -0.25, 1.0]), _unit([0.05, -0.25, 1.0])),
    "side_low": (_unit([0.0, -1.0, -0.5]), _unit([0.0, -1.0, -0.5])),
    "flex": (_unit([0.12, -0.22, -1.0]), _unit([0.55, -0.05, 0.83])),
    "reach": (_unit([0.75, -0.55, -0.15]), _unit([0.8, -0.45, 0.05])),
    "wave": (_unit([0.05, -1.0, 0.25]), _unit([0.05, -0.05, 1.0])),
    "v": (_unit([0.05, -0.7, 0.7]), _unit([0.05, -0.7, 0.7])),
}


def _mirror(target: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    u, f = target
    m = np.array([1.0, -1.0, 1.0])
    return u * m, f * m


@dataclass(frozen=True)
class Key:
    """Move both arms to (right, left) targets (``ARM_TARGETS`` names) in a segment called
    ``name``, then hold them for ``hold`` seconds in a segment called ``hold_name``."""

    name: str
    right: str
    left: str
    hold: float
    hold_name: str = ""


# The final rest outlasts "3 s after the operator is back at rest" (bench-loop's back-home
# figure) by the loop's lag.
FINAL_REST_S = 4.0
_DEFAULT = (
    Key("raise_side", "side", "rest", 1.5, "hold_side"),
    Key("to_forward", "forward", "rest", 1.5, "hold_forward"),
    Key("raise_up", "up", "rest", 1.5, "hold_up"),
    Key("lower_side", "side_low", "rest", 0.0),
    Key("flex", "flex", "rest", 1.5, "hold_flex"),
    Key("reach", "reach", "rest", 1.5, "hold_reach"),
    Key("to_wave", "wave", "rest", 0.0),
    Key("wave", "wave", "rest", 0.0),  # expanded into oscillations below
    Key("both_arms", "v", "v", 1.5, "hold_both"),
    Key("lower", "rest", "rest", FINAL_REST_S, "rest"),
)
_SCRIPT_KEYS: dict[str, tuple[Key, ...]] = {
    "default": _DEFAULT,
    "raise": (Key("raise_side", "side", "rest", 1.5, "hold_side"),
              Key("lower", "rest", "rest", FINAL_REST_S, "rest")),
    "rest": (Key("stand", "rest", "rest", 6.0, "rest"),),
}
SCRIPTS: dict[str, str] = {
    "default": "rest 3 s; right arm sideways, forward, up (1.5 s holds); elbow flex; a reach "
               "forward-right; a wave (3 s); both arms raised in a V; back to rest (4 s)",
    "raise": "rest 3 s; right arm raised sideways, held 1.5 s; back to rest (4 s)",
    "rest": "standing still, arms at rest",
}
START_REST_S = 3.0  # the loop starts (first pose, teleop enabled) and settles at rest
WAVE_S, WAVE_HZ, WAVE_DEG = 3.0, 1.0, 20.0  # peak forearm speed 2 pi 1 Hz 20 deg = 126 deg/s


@dataclass(frozen=True)
class _Segment:
    name: str
    t0: float
    t1: float
    start: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # right u, f, left u, f
    end: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    holding: bool
    wave: bool = False


def _slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    d = float(np.clip(np.dot(a, b), -1.0, 1.0))
    ang = math.acos(d)
    if ang < 1e-6:
        return b.copy()
    return (math.sin((1 - s) * ang) * a + math.sin(s * ang) * b) / math.sin(ang)


def _min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10 - 15 * s + 6 * s * s)


def _pose(right: str, left: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ru, rf = ARM_TARGETS[right]
    lu, lf = _mirror(ARM_TARGETS[left])
    return ru, rf, lu, lf


def build_segments(keys: tuple[Key, ...]) -> list[_Segment]:
    cur = _pose("rest", "rest")
    segs = [_Segment("rest", 0.0, START_REST_S, cur, cur, True)]
    t = START_REST_S
    for k in keys:
        target = _pose(k.right, k.left)
        if k.name == "wave":
            segs.append(_Segment("wave", t, t + WAVE_S, cur, cur, False, wave=True))
            t += WAVE_S
            continue
        ang = max(math.degrees(math.acos(float(np.clip(np.dot(a, b), -1, 1))))
                  for a, b in zip(cur, target, strict=True))
        if ang > 150:
            raise ValueError(f"script move {k.name} turns an arm {ang:.0f} deg: add a waypoint")
        dur = max(MIN_MOVE_S, ang / ARM_SPEED_DEG_S)
        if ang > 1e-3:
            segs.append(_Segment(k.name, t, t + dur, cur, target, False))
            t += dur
        cur = target
        if k.hold > 0:
            segs.append(_Segment(k.hold_name or f"hold_{k.right}", t, t + k.hold, cur, cur,
                                 True))
            t += k.hold
    return segs


# ---------------------------------------------------------------- truth
@dataclass
class OperatorTruth:
    """The ground truth of one frame (module doc: frames and pixel convention)."""

    t: float
    phase: str
    holding: bool
    joints_cam: np.ndarray  # (24, 3) camera optical frame, metres
    keypoints_2d: np.ndarray  # (24, 2) pixels
    joints_body: np.ndarray  # (24, 3) body frame (x forward, y left, z up), pelvis origin


ARM_BONES = (("right", "shoulder", "elbow"), ("right", "elbow", "wrist"),
             ("left", "shoulder", "elbow"), ("left", "elbow", "wrist"))


def torso_axes(joints: np.ndarray) -> np.ndarray:
    """(3, 3) rows: the torso's forward, left and up axes in the frame of ``joints`` (24, 3):
    up from the pelvis to spine3, left from the right to the left shoulder (made orthogonal to
    up), forward = left x up. Built the same way from an estimate and from the truth, it
    compares arm directions without the camera's or the root's rotation in between."""
    j = np.asarray(joints, np.float64)
    z = _unit(j[J["spine3"]] - j[J["pelvis"]])
    y = j[J["left_shoulder"]] - j[J["right_shoulder"]]
    y = _unit(y - np.dot(y, z) * z)
    return np.stack([np.cross(y, z), y, z])


def arm_directions(joints: np.ndarray) -> np.ndarray:
    """(4, 3) unit directions of the right upper arm, right forearm, left upper arm and left
    forearm (:data:`ARM_BONES`) in the torso frame of :func:`torso_axes` (x forward, y left,
    z up). The cosine between an estimate's and the truth's rows is the direction fidelity."""
    j = np.asarray(joints, np.float64)
    R = torso_axes(j)
    return np.stack([R @ _unit(j[J[f"{s}_{b}"]] - j[J[f"{s}_{a}"]]) for s, a, b in ARM_BONES])


def _arm_joints(rest: np.ndarray, side: str, u: np.ndarray, f: np.ndarray) -> dict[int, Any]:
    s, e, w, h = (J[f"{side}_{n}"] for n in ("shoulder", "elbow", "wrist", "hand"))
    lu = np.linalg.norm(rest[e] - rest[s])
    lf = np.linalg.norm(rest[w] - rest[e])
    lh = np.linalg.norm(rest[h] - rest[w])
    elbow = rest[s] + lu * u
    wrist = elbow + lf * f
    return {e: elbow, w: wrist, h: wrist + lh * f}


class _Person:
    """One figure with its script: joints at time t, mocap bodies, MJCF."""

    def __init__(self, figure: str, script: str, prefix: str, origin: np.ndarray) -> None:
        if figure not in FIGURE_SPECS:
            raise ValueError(f"unknown figure {figure!r}; known: {sorted(FIGURE_SPECS)}")
        if script not in _SCRIPT_KEYS:
            raise ValueError(f"unknown script {script!r}; known: {sorted(_SCRIPT_KEYS)}")
        self.fig = FIGURE_SPECS[figure]
        self.prefix = prefix
        self.rest = rest_joints_body(self.fig)
        s = self.fig.height / 1.75
        self.pelvis_height = -float(self.rest[J["left_ankle"], 2]) + 0.085 * s
        self.origin = np.array([origin[0], origin[1], self.pelvis_height])
        self.segments = build_segments(_SCRIPT_KEYS[script])
        self.duration = self.segments[-1].t1

    def state(self, t: float) -> tuple[_Segment, tuple[np.ndarray, ...]]:
        t = min(max(t, 0.0), self.duration)
        seg = next((g for g in self.segments if t < g.t1), self.segments[-1])
        if seg.wave:
            ru, rf, lu, lf = seg.start
            tau = t - seg.t0
            # Fade the oscillation in and out over its first and last half second.
            env = min(1.0, tau / 0.5, (seg.t1 - t) / 0.5)
            a = math.radians(WAVE_DEG) * env * math.sin(2 * math.pi * WAVE_HZ * tau)
            # Swing the forearm in the frontal (y-z) plane around its wave direction.
            c, sn = math.cos(a), math.sin(a)
            rf = _unit([rf[0], c * rf[1] - sn * rf[2], sn * rf[1] + c * rf[2]])
            return seg, (ru, rf, lu, lf)
        s = _min_jerk((t - seg.t0) / max(seg.t1 - seg.t0, 1e-9))
        return seg, tuple(_slerp(a, b, s) for a, b in zip(seg.start, seg.end, strict=True))

    def joints(self, t: float) -> tuple[_Segment, np.ndarray]:
        """(segment, (24, 3) body-frame joints relative to the pelvis)."""
        seg, (ru, rf, lu, lf) = self.state(t)
        j = self.rest.copy()
        for side, u, f in (("right", ru, rf), ("left", lu, lf)):
            for i, p in _arm_joints(self.rest, side, u, f).items():
                j[i] = p
        return seg, j


# ---------------------------------------------------------------- MJCF
def _rgba(c: tuple[float, float, float]) -> str:
    return f"{c[0]:.3f} {c[1]:.3f} {c[2]:.3f} 1"


def _limb_geoms(fig: Figure) -> list[tuple[str, str, str, float, tuple[float, float, float]]]:
    """(body name, from joint, to joint, radius, colour) of each capsule limb."""
    g, sk = fig.girth, fig.skin
    fore = sk if fig.sleeves == "short" else fig.shirt
    out = []
    for side in ("left", "right"):
        out += [
            (f"{side}_upperarm", f"{side}_shoulder", f"{side}_elbow", 0.047 * g, fig.shirt),
            (f"{side}_forearm", f"{side}_elbow", f"{side}_wrist", 0.036 * g, fore),
            (f"{side}_thigh", f"{side}_hip", f"{side}_knee", 0.075 * g, fig.trousers),
            (f"{side}_shank", f"{side}_knee", f"{side}_ankle", 0.055 * g, fig.trousers),
        ]
    return out


def _person_mjcf(p: _Person) -> str:
    fig, r, pre = p.fig, p.rest, p.prefix
    g, s = fig.girth, fig.height / 1.75
    sk, hair = _rgba(fig.skin), _rgba(fig.hair)
    out = []
    for name, a, b, rad, col in _limb_geoms(fig):
        L = float(np.linalg.norm(r[J[b]] - r[J[a]]))
        out.append(f'<body name="{pre}{name}" mocap="true"><geom type="capsule" '
                   f'fromto="0 0 0 0 0 {L:.4f}" size="{rad:.4f}" rgba="{_rgba(col)}"/></body>')
    for side in ("left", "right"):
        L = float(np.linalg.norm(r[J[f"{side}_hand"]] - r[J[f"{side}_wrist"]]))
        # The hand: a flat palm along the forearm (local z), fingers a rounded tip.
        out.append(
            f'<body name="{pre}{side}_hand" mocap="true">'
            f'<geom type="ellipsoid" pos="0 0 {0.55 * L:.4f}" '
            f'size="{0.045 * g:.4f} {0.022 * g:.4f} {0.62 * L:.4f}" rgba="{sk}"/>'
            f'<geom type="capsule" fromto="0.03 0 0.02 0.045 0 {0.6 * L:.4f}" '
            f'size="{0.012 * g:.4f}" rgba="{sk}"/></body>')
    # Static parts (pelvis frame: the figure's torso, head and feet do not move).
    pel = r[J["pelvis"]]
    chest_c = 0.5 * (r[J["spine3"]] + r[J["neck"]]) - np.array([0, 0, 0.04 * s])
    sh_w = abs(r[J["left_shoulder"], 1] - r[J["right_shoulder"], 1])
    neck, head = r[J["neck"]], r[J["head"]]
    hc = head + np.array([0.0, 0.0, 0.05 * s])  # head centre (the SMPL head joint: skull base)
    hr = np.array([0.100, 0.078, 0.115]) * s
    fx = hc[0] + hr[0]  # front of the face
    parts = [
        # torso
        f'<geom type="ellipsoid" pos="{_v(chest_c)}" size="{0.11 * g * s:.4f} '
        f'{0.45 * sh_w * g:.4f} {0.17 * s:.4f}" rgba="{_rgba(fig.shirt)}"/>',
        f'<geom type="capsule" fromto="0 {r[J["right_shoulder"], 1]:.4f} '
        f'{r[J["right_shoulder"], 2] - 0.01:.4f} 0 {r[J["left_shoulder"], 1]:.4f} '
        f'{r[J["left_shoulder"], 2] - 0.01:.4f}" size="{0.055 * g * s:.4f}" '
        f'rgba="{_rgba(fig.shirt)}"/>',
        f'<geom type="ellipsoid" pos="{_v(0.5 * (pel + r[J["spine2"]]))}" size="'
        f'{0.10 * g * s:.4f} {0.15 * g * s:.4f} {0.17 * s:.4f}" rgba="{_rgba(fig.shirt)}"/>',
        f'<geom type="ellipsoid" pos="{_v(pel - np.array([0, 0, 0.05 * s]))}" size="'
        f'{0.105 * g * s:.4f} {0.165 * g * s:.4f} {0.10 * s:.4f}" '
        f'rgba="{_rgba(fig.trousers)}"/>',
        # neck and head
        f'<geom type="capsule" fromto="{_v(neck - [0, 0, 0.04])} {_v(hc)}" '
        f'size="{0.05 * s:.4f}" rgba="{sk}"/>',
        f'<geom type="ellipsoid" pos="{_v(hc)}" size="{_v(hr)}" rgba="{sk}"/>',
        f'<geom type="ellipsoid" pos="{_v(hc + np.array([-0.022, 0.0, 0.03]) * s)}" '
        f'size="{_v(hr * [1.0, 1.06, 0.93])}" rgba="{hair}"/>',
    ]
    for y in (-1, 1):
        ey = y * 0.033 * s
        ez = hc[2] + 0.012 * s
        ex = hc[0] + hr[0] * 0.86
        parts += [
            f'<geom type="ellipsoid" pos="{ex:.4f} {ey:.4f} {ez:.4f}" '
            f'size="0.012 {0.016 * s:.4f} 0.009" rgba="0.95 0.95 0.93 1"/>',
            f'<geom type="sphere" pos="{ex + 0.008:.4f} {ey:.4f} {ez:.4f}" size="0.0065" '
            f'rgba="0.10 0.07 0.05 1"/>',
            f'<geom type="capsule" fromto="{ex + 0.006:.4f} {ey - 0.017 * s:.4f} '
            f'{ez + 0.024 * s:.4f} {ex + 0.006:.4f} {ey + 0.017 * s:.4f} '
            f'{ez + 0.026 * s:.4f}" size="0.0045" rgba="{hair}"/>',
            # ears
            f'<geom type="ellipsoid" pos="{hc[0]:.4f} {y * hr[1] * 0.98:.4f} {ez:.4f}" '
            f'size="0.012 0.012 0.028" rgba="{sk}"/>',
        ]
    parts += [
        f'<geom type="ellipsoid" pos="{fx - 0.004:.4f} 0 {hc[2] - 0.018 * s:.4f}" '
        f'size="0.018 0.013 0.026" rgba="{_rgba(tuple(0.9 * c for c in fig.skin))}"/>',
        f'<geom type="capsule" fromto="{fx - 0.02:.4f} {-0.022 * s:.4f} {hc[2] - 0.058 * s:.4f}'
        f' {fx - 0.02:.4f} {0.022 * s:.4f} {hc[2] - 0.058 * s:.4f}" size="0.0065" '
        f'rgba="0.62 0.28 0.27 1"/>',
    ]
    for side in ("left", "right"):
        a, f = r[J[f"{side}_ankle"]], r[J[f"{side}_foot"]]
        parts.append(
            f'<geom type="ellipsoid" pos="{_v((a + f) / 2 + [0.02, 0, -0.035 * s])}" '
            f'size="{0.12 * s:.4f} {0.045 * g:.4f} {0.04 * s:.4f}" rgba="{_rgba(fig.shoes)}"/>')
    # A soft contact shadow under the feet (shadow mapping costs 3x the frame in software GL).
    parts.append(f'<geom type="ellipsoid" pos="0.02 0 {-p.pelvis_height + 0.001:.4f}" '
                 f'size="0.22 0.26 0.001" rgba="0.2 0.19 0.17 0.55" contype="0" '
                 f'conaffinity="0"/>')
    return (f'<body name="{pre}trunk" pos="{_v(p.origin)}">' + "".join(parts) + "</body>"
            + "".join(out))


def _v(v: Any) -> str:
    return " ".join(f"{float(x):.4f}" for x in np.asarray(v, np.float64).ravel())


def _quat_z_to(d: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """MuJoCo quaternion (w, x, y, z) of a frame whose z is ``d`` and whose x leans to
    ``ref``."""
    z = _unit(d)
    x = ref - np.dot(ref, z) * z
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, 0.0, 1.0]) - z[2] * z
    x = _unit(x)
    y = np.cross(z, x)
    q = matrix_to_quat(np.stack([x, y, z], axis=1))
    return np.array([q[3], q[0], q[1], q[2]])


# ---------------------------------------------------------------- the operator
class SyntheticOperator:
    """A scripted, rendered operator (module doc). ``frame(t)`` -> (RGB uint8 HxWx3, truth).

    ``second_person``: a FIGURES name placed behind the operator on its left (image right),
    standing at rest (``second_script``), so two different people share the scene; the truth
    is the operator's (``truth(t, person=1)`` gives the other's). ``seed``: the camera's
    sensor noise pattern. ``loop``: t past ``duration`` wraps instead of holding the final
    rest. Not thread-safe: one caller at a time (the renderer's GL context).
    """

    def __init__(self, script: str = "default", figure: str = "default", width: int = 640,
                 height: int = 480, fps: float = 15.0, seed: int = 0, loop: bool = False,
                 second_person: str | None = None, second_script: str = "rest",
                 camera_distance: float = 3.2, camera_height: float = 1.25,
                 fovy_deg: float = 50.0, noise: float = 2.0) -> None:
        if width < 32 or height < 32:
            raise ValueError(f"image too small: {width}x{height}")
        self.script, self.figure = script, figure
        self.width, self.height, self.fps, self.loop = int(width), int(height), float(fps), loop
        self.people = [_Person(figure, script, "p0_", np.zeros(2))]
        if second_person:
            self.people.append(_Person(second_person, second_script, "p1_",
                                       np.array([-0.9, 1.15])))
        self.duration = self.people[0].duration
        self.cam_pos = np.array([camera_distance, 0.0, camera_height])
        self.fovy_deg = fovy_deg
        f = (self.height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
        self.intrinsics = np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0],
                                    [0.0, 0.0, 1.0]])
        rng = np.random.default_rng(seed)
        # four patterns, as (positive, negative) uint8 parts: cv2's saturating add/subtract
        # costs a tenth of an int16 round trip
        self._noise: list[tuple[np.ndarray, np.ndarray]] | None = None
        if noise > 0:
            n = np.repeat(rng.normal(0.0, noise, (4, self.height, self.width, 1)).round(), 3,
                          axis=3).clip(-255, 255)
            self._noise = [(np.maximum(k, 0).astype(np.uint8), np.maximum(-k, 0).astype(
                np.uint8)) for k in n]
        self._model: Any = None
        self._data: Any = None
        self._renderer: Any = None
        self._mocap: list[dict[str, int]] = []

    # -- truth
    def _wrap(self, t: float) -> float:
        if t < 0:
            raise ValueError(f"t must be >= 0, got {t}")
        return t % self.duration if self.loop else t

    def to_camera(self, p_world: np.ndarray) -> np.ndarray:
        """World (= operator body axes) points -> camera optical frame."""
        d = np.asarray(p_world, np.float64) - self.cam_pos
        return np.stack([d[..., 1], -d[..., 2], -d[..., 0]], axis=-1)

    def project(self, p_cam: np.ndarray) -> np.ndarray:
        K = self.intrinsics
        z = p_cam[..., 2:3]
        return np.concatenate([K[0, 0] * p_cam[..., :1] / z + K[0, 2],
                               K[1, 1] * p_cam[..., 1:2] / z + K[1, 2]], axis=-1)

    def truth(self, t: float, person: int = 0) -> OperatorTruth:
        t = self._wrap(t)
        p = self.people[person]
        seg, jb = p.joints(t)
        cam = self.to_camera(jb + p.origin)
        return OperatorTruth(t=t, phase=seg.name, holding=seg.holding,
                             joints_cam=cam.astype(np.float32),
                             keypoints_2d=self.project(cam).astype(np.float32),
                             joints_body=jb.astype(np.float32))

    # -- rendering
    def _xml(self) -> str:
        c = self.cam_pos
        people = "".join(_person_mjcf(p) for p in self.people)
        return f"""
<mujoco model="synthetic_operator">
  <visual>
    <global offwidth="{self.width}" offheight="{self.height}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
    <quality shadowsize="0" offsamples="0"/>
  </visual>
  <asset>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.55 0.52 0.48"
             rgb2="0.50 0.47 0.43" width="256" height="256"/>
    <material name="floor" texture="floor" texrepeat="6 6" reflectance="0"/>
  </asset>
  <worldbody>
    <light pos="{c[0] + 0.5} 1.5 3.5" dir="-0.6 -0.3 -1" diffuse="0.55 0.55 0.55"
           specular="0.1 0.1 0.1" castshadow="false"/>
    <geom type="plane" size="6 6 0.1" material="floor"/>
    <geom type="box" pos="-2.2 0 2" size="0.05 6 2" rgba="0.80 0.78 0.72 1"/>
    <geom type="box" pos="-2.1 -2.3 0.45" size="0.1 0.6 0.45" rgba="0.45 0.33 0.25 1"/>
    <camera name="cam" pos="{_v(c)}" xyaxes="0 1 0 0 0 1" fovy="{self.fovy_deg}"/>
    {people}
  </worldbody>
</mujoco>"""

    def _ensure_renderer(self) -> None:
        if self._renderer is not None:
            return
        import mujoco

        self._model = mujoco.MjModel.from_xml_string(self._xml())
        self._data = mujoco.MjData(self._model)
        self._mocap = []
        for p in self.people:
            ids = {}
            for b in range(self._model.nbody):
                name = mujoco.mj_id2name(self._model, mujoco.mjtObj.mjOBJ_BODY, b) or ""
                if name.startswith(p.prefix) and self._model.body_mocapid[b] >= 0:
                    ids[name[len(p.prefix):]] = int(self._model.body_mocapid[b])
            self._mocap.append(ids)
        try:
            self._renderer = mujoco.Renderer(self._model, self.height, self.width)
        except Exception as exc:
            raise RuntimeError(
                f"off-screen rendering failed ({type(exc).__name__}: {exc}); set MUJOCO_GL to "
                "egl (GPU/Mesa EGL) or osmesa (software Mesa) before the process starts"
            ) from exc

    def _place(self, person: _Person, ids: dict[str, int], jb: np.ndarray) -> None:
        w = jb + person.origin
        d = self._data
        fwd = np.array([1.0, 0.0, 0.0])
        for name, a, b, _, _ in _limb_geoms(person.fig):
            m = ids[name]
            d.mocap_pos[m] = w[J[a]]
            d.mocap_quat[m] = _quat_z_to(w[J[b]] - w[J[a]], fwd)
        for side in ("left", "right"):
            m = ids[f"{side}_hand"]
            d.mocap_pos[m] = w[J[f"{side}_wrist"]]
            # Palm faces the body's side at rest (local x: the back of the hand, outward).
            out = np.array([0.0, 1.0 if side == "left" else -1.0, 0.0])
            d.mocap_quat[m] = _quat_z_to(w[J[f"{side}_hand"]] - w[J[f"{side}_wrist"]],
                                         out + 0.3 * fwd)

    def render(self, t: float) -> np.ndarray:
        """The RGB frame at ``t`` (uint8, H x W x 3)."""
        import mujoco

        self._ensure_renderer()
        t = self._wrap(t)
        for p, ids in zip(self.people, self._mocap, strict=True):
            self._place(p, ids, p.joints(t)[1])
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_camlight(self._model, self._data)  # camera and light poses (static here)
        self._renderer.update_scene(self._data, camera="cam")
        rgb = self._renderer.render()
        if self._noise is not None:
            pos, neg = self._noise[round(t * self.fps) % len(self._noise)]
            rgb = cv2.subtract(cv2.add(rgb, pos), neg)
        return rgb

    def frame(self, t: float) -> tuple[np.ndarray, OperatorTruth]:
        return self.render(t), self.truth(t)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> SyntheticOperator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["FIGURES", "SCRIPTS", "OperatorTruth", "SyntheticOperator", "arm_directions"]
