"""The ``landmarks`` backend: MediaPipe BlazePose's 33 landmarks -> SMPL's 24 local rotations.

No licensed files: the BlazePose models ship inside the ``mediapipe==0.10.14`` wheel
(``requirements-mediapipe.txt``). Two parts:

* :func:`landmarks_to_local_rotations` -- a pure, vectorised numpy inverse kinematics from
  BlazePose's metric *world* landmarks to SMPL local rotations on the same 24-joint tree
  (``mocap_ros.core.skeleton``). It needs no mediapipe and is what the tests check in depth.
* :class:`LandmarksBackend` -- MediaPipe pose (video mode) + that IK + forward kinematics +
  a least-squares root translation, giving the same :class:`~mocap_ros.core.result.BodyPoseResult`
  as the HMR backend (``backend="landmarks"``), so BodyPose, TF and teleop work unchanged.

MediaPipe's world frame
-----------------------
``pose_world_landmarks`` are metres with the origin at the centre between the hips and the
axes of the IMAGE: +x to the image's right, +y DOWN, +z away from the camera (depth; the
nose of a person facing the camera has z < 0). Checked on skimage's astronaut: the nose has
y = -0.61 (above the hips) and z = -0.27 (nearer the camera than the hips), the person's left
shoulder (landmark 11) has x = +0.20 and lies on the image's right. These are the axes of the
camera's optical frame (REP-103: x right, y down, z forward), so the IK's root orientation is
directly SMPL's joint 0 "in the camera frame", the same convention as HMR: a person standing
upright and facing the camera gets a root rotation of 180 deg about x.

BlazePose's "left" is the PERSON's left (landmark 11 is the left shoulder, on the image's
right for a person facing the camera), the same as SMPL's ``left_*`` joints.

Landmark -> SMPL joint mapping (indices: BlazePose landmarks, SMPL joints)
-------------------------------------------------------------------------
=====================  =====================================================================
SMPL joint             where its position / orientation comes from
=====================  =====================================================================
0 pelvis               frame: x (body left) = left hip 23 - right hip 24; y (up) = hip
                       centre -> shoulder centre, made orthogonal to x; z = x cross y
                       (forward). Position: the hip centre raised along y by the rest
                       skeleton's pelvis-hip height (scaled).
1/2 left/right hip     landmarks 23 / 24 (exact)
3/6/9 spine1/2/3       not observed: the chest frame (x from shoulders 11-12, y from the
                       torso as above) relative to the pelvis frame, split into three equal
                       rotations (so spine twist and side bend are seen; forward flexion is
                       not separable from the pelvis' tilt and goes to the root)
12 neck                FK from spine3; rotation: swing towards the head joint
13/14 collars          FK from spine3; rotation: swing towards the shoulder landmark
15 head                orientation: ears 7 (left) / 8 (right) and nose 0; position: from the
                       ear midpoint by the head model (``HEAD_LANDMARK_OFFSETS``)
16/17 shoulders        landmarks 11 / 12 (exact)
18/19 elbows           landmarks 13 / 14 (exact)
20/21 wrists           landmarks 15 / 16 (exact)
22/23 hands            midpoint of index 19 / 20 and pinky 17 / 18 (the knuckles; exact)
4/5 knees              landmarks 25 / 26 (exact)
7/8 ankles             landmarks 27 / 28 (exact)
10/11 feet             foot index 31 / 32 (exact); heels 29 / 30 give the foot's roll
=====================  =====================================================================

IK method
---------
Joints are solved root first, in tree order. A joint's global rotation G_j is the rotation
that carries its rest bone (the rest direction of its child, from ``REST_JOINTS_APPROX``) onto
the observed bone:

* **swing**: the shortest-arc rotation S taking ``G_parent @ rest_dir`` to the observed
  direction, G_j = S @ G_parent (so the local rotation is the minimal swing in the parent's
  frame);
* **twist** about the observed bone, where something observes it, blended in with a weight
  in [0, 1] (bend and visibility, below): the upper arm from the elbow's bend plane (the
  forearm bends towards the upper arm's +z, as SMPL's elbow does), the thigh from the knee's
  bend plane (the shank bends towards -z), the wrist (forearm pronation) from the hand's
  index - pinky direction (+z in the rest T-pose: palm down, thumb forward), the ankle from
  the heel (the foot's sagittal plane), the head's full orientation from ears and nose.
  The weight is 0 for a straight elbow/knee (the bend plane is undefined), ramps to 1 between
  5 and 20 deg of bend, and is scaled by the landmarks' visibility (full at >= 0.5).

Bone lengths are the observed ones: the returned rest skeleton is ``REST_JOINTS_APPROX`` with
every observed bone re-scaled to its measured length (unobserved ones -- spine, neck base,
collars' bases -- scaled by the torso length), so forward kinematics of the returned local
rotations on the returned rest joints puts every mapped joint exactly on its landmark.
The collars absorb what the spine model misses, so shoulders land exactly.

Root translation (camera frame)
-------------------------------
FK gives the joints X_i in camera axes relative to the pelvis; the root translation T places
them: the pinhole projection of X_i + T should hit MediaPipe's 2D landmark (u_i, v_i):

    u_i = fx (X_i + Tx) / (Z_i + Tz) + cx   <=>   fx Tx - (u_i - cx) Tz = (u_i - cx) Z_i - fx X_i
    v_i = fy (Y_i + Ty) / (Z_i + Tz) + cy   <=>   fy Ty - (v_i - cy) Tz = (v_i - cy) Z_i - fy Y_i

linear in T: weighted linear least squares over the mapped joints (weights: visibility).
The algebraic residual is (Z_i + Tz) times the pixel residual, so two more solves divide
each row by the previous (Z_i + Tz): the result minimises the (weighted) reprojection error.
(The backend fits T on the mapped world landmarks themselves -- FK reproduces them exactly --
so it places MediaPipe's hip-centred world frame.)

MediaPipe's world landmarks and its 2D landmarks come from two heads of its network and do
not agree exactly: on skimage's astronaut no rigid placement of the world skeleton brings
the right wrist within 15 px of its 2D landmark, at any focal length (13-16 px near
orthographic, 52 px at a 60 deg field of view). So by default (``lift=True``) the backend
then solves the IK once more on *image-consistent* points (:func:`lift_landmarks`): every 2D
landmark back-projected at its placed world depth T_z + z_i. The pose keeps the world
landmarks' depth and metric scale and the image's 2D positions; the projected joints land
on MediaPipe's 2D landmarks. ``lift=False`` keeps the pure world-landmark skeleton.

Hanging arms: the world landmarks bend an arm ~30 deg in depth where the image shows it
straight (the network's prior; docs/landmarks_rest_bias.md), so the backend then moves each
such elbow's depth to the shoulder-wrist line (:func:`straighten_elbow_depth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mocap_ros.core.skeleton import NUM_JOINTS, PARENTS, REST_JOINTS_APPROX, bone_offsets
from mocap_ros.geometry.camera import solve_root_translation  # noqa: F401 (re-exported)
from mocap_ros.geometry.kinematics import forward_kinematics_np
from mocap_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_quat

if TYPE_CHECKING:
    from mocap_ros.geometry.camera import Intrinsics

LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
LM: dict[str, int] = {n: i for i, n in enumerate(LANDMARK_NAMES)}

# Landmarks the IK reads (the confidence is their mean visibility).
USED_LANDMARKS: tuple[int, ...] = (0, 7, 8, *range(11, 33))

# SMPL joints whose FK position equals a landmark (or the midpoint of two): the pairs the
# root translation is fitted on. Joint -> landmark indices (averaged).
JOINT_LANDMARKS: dict[int, tuple[int, ...]] = {
    1: (23,), 2: (24,), 4: (25,), 5: (26,), 7: (27,), 8: (28,), 10: (31,), 11: (32,),
    16: (11,), 17: (12,), 18: (13,), 19: (14,), 20: (15,), 21: (16,),
    22: (17, 19), 23: (18, 20),
}

# ---------------------------------------------------------------- the landmark body model
# Offsets (metres, SMPL rest axes: +x body left, +y up, +z forward) of landmarks from the
# SMPL joint that carries them, for a nominal body. The IK uses them to invert; tests and
# fakes use :func:`synthesize_world_landmarks` to go forwards.
_EAR_HALF = 0.075
HEAD_LANDMARK_OFFSETS: dict[int, tuple[float, float, float]] = {  # from the head joint (15)
    0: (0.0, 0.015, 0.10),  # nose
    1: (0.017, 0.05, 0.085), 2: (0.032, 0.05, 0.08), 3: (0.047, 0.05, 0.072),  # left eye
    4: (-0.017, 0.05, 0.085), 5: (-0.032, 0.05, 0.08), 6: (-0.047, 0.05, 0.072),
    7: (_EAR_HALF, 0.04, -0.02), 8: (-_EAR_HALF, 0.04, -0.02),  # ears
    9: (0.025, -0.02, 0.085), 10: (-0.025, -0.02, 0.085),  # mouth
}
_KNUCKLE_HALF = 0.035  # index / pinky knuckles: hand joint +- this along +z (thumb side)
_THUMB = (0.0, -0.01, 0.045)  # thumb tip from the hand joint (forward, slightly palm-side)
_HEEL = (0.0, -0.05, -0.06)  # heel from the ankle (both sides)

_REST = REST_JOINTS_APPROX.astype(np.float64)
_OFF = bone_offsets(_REST)
_REST_TORSO = float(np.linalg.norm(
    (_REST[16] + _REST[17]) / 2 - (_REST[1] + _REST[2]) / 2))  # hip centre -> shoulder centre
_EPS = 1e-9
_X, _Y, _Z = np.eye(3)
# Unit rest bone directions (0 for the root), computed once rather than per frame.
_OFF_LEN = np.linalg.norm(_OFF, axis=-1, keepdims=True)
_OFF_DIR = _OFF / np.where(_OFF_LEN > _EPS, _OFF_LEN, 1.0)


# ---------------------------------------------------------------- numpy rotation helpers
# Speed (issue 13): the IK runs once per frame on one skeleton, so numpy's per-call overhead,
# not arithmetic, is its cost. np.cross (two moveaxis per call) and np.linalg.norm were
# most of it; the helpers below compute the same quantities with fewer, cheaper calls
# (components written out, einsum dot products, branches taken only when some element needs
# them). Results agree with the generic forms to ~1e-15.
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b over the last axis (..., 3), broadcasting like np.cross."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), axis=-1)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products over the last axis (...,)."""
    return np.einsum("...i,...i->...", a, b)


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def _unit(v: np.ndarray, fallback: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and norms; zero/non-finite-length vectors become ``fallback`` (or stay 0)."""
    n = _norm(v)[..., None]
    ok = n > _EPS
    if ok.all():
        return v / n, n[..., 0]
    u = v / np.where(ok, n, 1.0)
    if fallback is not None:
        u = np.where(ok, u, np.broadcast_to(fallback, u.shape))
    return u, n[..., 0]


def _arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking unit vectors a to b (..., 3) (pi about a normal if opposite).

    c I + [v]x + v v^T / (1 + c) with v = a x b, c = a . b: Rodrigues' I + [v]x + [v]x^2 / (1 + c)
    with [v]x^2 = v v^T - |v|^2 I and |v|^2 = 1 - c^2."""
    v = _cross(a, b)
    c = _dot(a, b)
    ok = c > -1.0 + 1e-9
    denom = np.where(ok, 1.0 + c, 1.0)[..., None, None]
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    K = np.stack((zero, -z, y, z, zero, -x, -y, x, zero), axis=-1).reshape(*v.shape, 3)
    R = c[..., None, None] * np.eye(3) + K + v[..., :, None] * v[..., None, :] / denom
    if ok.all():
        return R
    # Opposite vectors: pi about any axis normal to a.
    u = _normal_to(a)
    flip = 2.0 * u[..., :, None] * u[..., None, :] - np.eye(3)
    return np.where(ok[..., None, None], R, flip)


def _normal_to(p: np.ndarray) -> np.ndarray:
    """Some unit vector orthogonal to each unit vector p (..., 3)."""
    helper = np.where(np.abs(p[..., :1]) < 0.9, _X, _Y)
    return _unit(_cross(p, helper))[0]


def _frame(p: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Right-handed frame with columns (unit p, s made orthogonal to p, p x s); a rotation
    even when s is parallel to p (then the second axis is an arbitrary normal of p)."""
    p = _unit(p, _X)[0]
    s = s - _dot(s, p)[..., None] * p
    n = _norm(s)[..., None]
    s_perp = s / n if (n > _EPS).all() else _unit(s, _normal_to(p))[0]
    return np.stack((p, s_perp, _cross(p, s_perp)), axis=-1)


def _rot_power(R: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """R^t: the same axis, t times the angle (angle in [0, pi])."""
    q = matrix_to_quat(R)
    axis, sin_half = _unit(q[..., :3], _X)
    angle = 2.0 * np.arctan2(sin_half, q[..., 3])
    return axis_angle_to_matrix(axis, np.asarray(t) * angle)


def _mv(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched matrix @ vector: (..., 3, 3) @ (..., 3)."""
    return (R @ v[..., None])[..., 0]


def _twisted(G: np.ndarray, axis: np.ndarray, s_rest: np.ndarray, s_obs: np.ndarray,
             weight: np.ndarray) -> np.ndarray:
    """G turned about the unit ``axis`` by ``weight`` times the signed angle that carries
    ``G @ s_rest`` onto ``s_obs`` (both taken orthogonal to the axis)."""
    cur = _mv(G, np.broadcast_to(s_rest, axis.shape))
    cur = cur - _dot(cur, axis)[..., None] * axis
    obs = s_obs - _dot(s_obs, axis)[..., None] * axis
    cur, n1 = _unit(cur)
    obs, n2 = _unit(obs)
    ang = np.arctan2(_dot(axis, _cross(cur, obs)), _dot(cur, obs))
    ang = np.where((n1 > 1e-6) & (n2 > 1e-6), ang, 0.0)
    return axis_angle_to_matrix(axis, weight * ang) @ G


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


_SIN_LO, _SIN_HI = math.sin(math.radians(5.0)), math.sin(math.radians(20.0))


def _bend_weight(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """0 when unit vectors a and b are (anti)parallel (no plane), 1 from 20 deg apart."""
    s = _norm(_cross(a, b))
    return _smoothstep((s - _SIN_LO) / (_SIN_HI - _SIN_LO))


def _vis_weight(v: np.ndarray) -> np.ndarray:
    """Visibility -> twist weight: 0 below 0.1, full from 0.5."""
    return np.clip((v - 0.1) / 0.4, 0.0, 1.0)


# ---------------------------------------------------------------- the IK
@dataclass
class LandmarkIK:
    """Everything the IK solved, batched over the input's leading dimensions."""

    local_rotmats: np.ndarray  # (..., 24, 3, 3) SMPL local rotations; joint 0 = root (camera)
    global_rotmats: np.ndarray  # (..., 24, 3, 3)
    rest_joints: np.ndarray  # (..., 24, 3) rest skeleton used (observed bone lengths), pelvis 0
    joints: np.ndarray  # (..., 24, 3) FK joints, camera axes, relative to the PELVIS
    pelvis_world: np.ndarray  # (..., 3) pelvis in MediaPipe's world frame (hip-centred)
    twist_weights: dict[str, np.ndarray]  # (...,) per observed twist, in [0, 1]


def _check_landmarks(world: np.ndarray, visibility: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(world, dtype=np.float64)
    if P.ndim < 2 or P.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"world landmarks must have shape (..., {NUM_LANDMARKS}, 3), "
                         f"got {P.shape}")
    vis = (np.ones(P.shape[:-1]) if visibility is None
           else np.broadcast_to(np.asarray(visibility, np.float64), P.shape[:-1]))
    return P, vis


def solve_landmark_ik(world: np.ndarray, visibility: np.ndarray | None = None) -> LandmarkIK:
    """BlazePose world landmarks (..., 33, 3) -> :class:`LandmarkIK` (see the module doc)."""
    P, vis = _check_landmarks(world, visibility)
    if P.ndim == 2 and np.isfinite(P).all() and np.isfinite(vis).all():
        return _solve_single(P, vis)  # one frame: the float path (section at the end)
    batch = P.shape[:-2]
    G = np.zeros((*batch, NUM_JOINTS, 3, 3))
    off = np.zeros((*batch, NUM_JOINTS, 3))
    pos = np.zeros((*batch, NUM_JOINTS, 3))
    tw: dict[str, np.ndarray] = {}

    def lm(i: int) -> np.ndarray:
        return P[..., i, :]

    def place(j: int) -> None:
        p = PARENTS[j]
        pos[..., j, :] = pos[..., p, :] + _mv(G[..., p, :, :], off[..., j, :])

    def swing(j: int, child: int, target_vec: np.ndarray) -> np.ndarray:
        """G_j by the minimal swing of the child's rest bone onto target_vec; sets off[child]."""
        p = PARENTS[j]
        rest_dir = _OFF_DIR[child]
        Gp = G[..., p, :, :] if p >= 0 else np.eye(3)
        cur = _mv(Gp, np.broadcast_to(rest_dir, target_vec.shape))
        d, length = _unit(target_vec, cur)
        off[..., child, :] = rest_dir * length[..., None]
        return _arc(cur, d) @ Gp

    # --- root: pelvis frame from hips and torso
    hip_c = (lm(23) + lm(24)) / 2.0
    sho_c = (lm(11) + lm(12)) / 2.0
    up = sho_c - hip_c
    torso = _norm(up)
    k = np.where(torso > _EPS, torso / _REST_TORSO, 1.0)[..., None]  # unobserved bones' scale
    x_p, hip_w = _unit(lm(23) - lm(24), _X)
    up_u, _ = _unit(up, _Y)
    G[..., 0, :, :] = _frame(x_p, np.where(
        _norm(_cross(x_p, up_u))[..., None] > 1e-6, up_u, _Z))
    for j, sign in ((1, 1.0), (2, -1.0)):
        o = _OFF[j] * k
        o[..., 0] = sign * hip_w / 2.0
        off[..., j, :] = o
    pos[..., 0, :] = hip_c - _mv(G[..., 0, :, :], (off[..., 1, :] + off[..., 2, :]) / 2.0)
    place(1)
    place(2)

    # --- spine: chest frame from shoulders and torso, split in three equal rotations
    x_c, _ = _unit(lm(11) - lm(12), _X)
    chest = _frame(x_c, np.where(
        _norm(_cross(x_c, up_u))[..., None] > 1e-6, up_u, _Z))
    third = _rot_power(np.swapaxes(G[..., 0, :, :], -1, -2) @ chest, 1.0 / 3.0)
    for j in (3, 6, 9):
        off[..., j, :] = _OFF[j] * k
        place(j)
        G[..., j, :, :] = G[..., PARENTS[j], :, :] @ third
    for j in (12, 13, 14):
        off[..., j, :] = _OFF[j] * k
        place(j)

    # --- head: orientation from ears and nose; neck swings towards the head joint
    ear_mid = (lm(7) + lm(8)) / 2.0
    x_h, ear_w = _unit(lm(7) - lm(8), _X)
    nose_rest = np.asarray(HEAD_LANDMARK_OFFSETS[0])
    earmid_rest = (np.asarray(HEAD_LANDMARK_OFFSETS[7]) + HEAD_LANDMARK_OFFSETS[8]) / 2.0
    f_rest = _frame(_X, nose_rest - earmid_rest)
    G_head_obs = _frame(x_h, lm(0) - ear_mid) @ f_rest.T
    kh = np.where(ear_w > _EPS, ear_w / (2 * _EAR_HALF), k[..., 0])[..., None]
    head_pos = ear_mid - _mv(G_head_obs, earmid_rest * kh)
    G[..., 12, :, :] = swing(12, 15, head_pos - pos[..., 12, :])
    place(15)
    w_head = _vis_weight(np.min(vis[..., [0, 7, 8]], axis=-1))
    G12 = G[..., 12, :, :]
    G[..., 15, :, :] = G12 @ _rot_power(np.swapaxes(G12, -1, -2) @ G_head_obs, w_head)
    tw["head"] = w_head

    # --- arms
    for side, (col, sho, elb, wri, hand, l_sho, l_elb, l_wri, l_pinky, l_index) in (
        ("left", (13, 16, 18, 20, 22, 11, 13, 15, 17, 19)),
        ("right", (14, 17, 19, 21, 23, 12, 14, 16, 18, 20)),
    ):
        G[..., col, :, :] = swing(col, sho, lm(l_sho) - pos[..., col, :])
        place(sho)
        upper = lm(l_elb) - lm(l_sho)
        fore = lm(l_wri) - lm(l_elb)
        Gs = swing(sho, elb, upper)
        a, _ = _unit(upper, _mv(Gs, _OFF_DIR[elb]))
        f, _ = _unit(fore, a)
        w = _bend_weight(a, f) * _vis_weight(np.minimum(vis[..., l_elb], vis[..., l_wri]))
        G[..., sho, :, :] = _twisted(Gs, a, _Z, fore, w)
        tw[f"{side}_upper_arm"] = w
        place(elb)
        G[..., elb, :, :] = swing(elb, wri, fore)
        place(wri)
        knuckles = (lm(l_index) + lm(l_pinky)) / 2.0
        hand_vec = knuckles - lm(l_wri)
        Gw = swing(wri, hand, hand_vec)
        h, _ = _unit(hand_vec, _mv(Gw, _OFF_DIR[hand]))
        across, _ = _unit(lm(l_index) - lm(l_pinky), _Z)
        w = _bend_weight(h, across) * _vis_weight(
            np.min(vis[..., [l_wri, l_index, l_pinky]], axis=-1))
        G[..., wri, :, :] = _twisted(Gw, h, _Z, across, w)
        tw[f"{side}_forearm"] = w
        place(hand)
        G[..., hand, :, :] = G[..., wri, :, :]

    # --- legs
    heel_rest = np.asarray(_HEEL)
    for side, (hip, knee, ank, foot, l_hip, l_knee, l_ank, l_heel, l_toe) in (
        ("left", (1, 4, 7, 10, 23, 25, 27, 29, 31)),
        ("right", (2, 5, 8, 11, 24, 26, 28, 30, 32)),
    ):
        thigh = lm(l_knee) - lm(l_hip)
        shank = lm(l_ank) - lm(l_knee)
        Gh = swing(hip, knee, thigh)
        t, _ = _unit(thigh, _mv(Gh, _OFF_DIR[knee]))
        s, _ = _unit(shank, t)
        w = _bend_weight(t, s) * _vis_weight(np.minimum(vis[..., l_knee], vis[..., l_ank]))
        G[..., hip, :, :] = _twisted(Gh, t, -_Z, shank, w)
        tw[f"{side}_thigh"] = w
        place(knee)
        G[..., knee, :, :] = swing(knee, ank, shank)
        place(ank)
        toe_vec = lm(l_toe) - lm(l_ank)
        Ga = swing(ank, foot, toe_vec)
        u, _ = _unit(toe_vec, _mv(Ga, _OFF_DIR[foot]))
        heel_vec = lm(l_heel) - lm(l_ank)
        n_rest = _cross(heel_rest, _OFF[foot])
        n_obs = _cross(heel_vec, toe_vec)
        hv, _ = _unit(heel_vec, u)
        w = _bend_weight(u, hv) * _vis_weight(np.min(vis[..., [l_ank, l_heel, l_toe]], axis=-1))
        G[..., ank, :, :] = _twisted(Ga, u, _unit(n_rest)[0], n_obs, w)
        tw[f"{side}_foot"] = w
        place(foot)
        G[..., foot, :, :] = G[..., ank, :, :]

    # --- local rotations and the rest skeleton that FK needs to reproduce pos
    par = np.array([max(p, 0) for p in PARENTS])
    local = np.swapaxes(G[..., par, :, :], -1, -2) @ G
    local[..., 0, :, :] = G[..., 0, :, :]
    rest = np.zeros_like(off)
    for j in range(1, NUM_JOINTS):
        rest[..., j, :] = rest[..., PARENTS[j], :] + off[..., j, :]
    return LandmarkIK(local, G, rest, pos - pos[..., :1, :], pos[..., 0, :], tw)


def landmarks_to_local_rotations(world: np.ndarray, visibility: np.ndarray | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose metric world landmarks (..., 33, 3) [MediaPipe world frame: hip-centred,
    metres, x right, y DOWN, z away from the camera] and visibilities (..., 33) (None: all
    visible) -> (SMPL local rotation matrices (..., 24, 3, 3) with joint 0 = the root
    orientation in the camera frame, the rest joints (..., 24, 3) they are meant for).

    ``forward_kinematics(local, rest)`` reproduces the mapped landmarks relative to the
    pelvis exactly (see the module doc for the mapping and the method).
    """
    ik = solve_landmark_ik(world, visibility)
    return ik.local_rotmats, ik.rest_joints


def synthesize_world_landmarks(local_rotmats: np.ndarray,
                               rest_joints: np.ndarray | None = None) -> np.ndarray:
    """The forward model the IK inverts: SMPL local rotations (..., 24, 3, 3) on rest joints
    (default ``REST_JOINTS_APPROX``) -> 33 BlazePose-like world landmarks (..., 33, 3)
    (camera axes, origin at the hip centre). For tests and fakes; real landmarks come from
    MediaPipe."""
    rest = _REST if rest_joints is None else np.asarray(rest_joints, np.float64)
    G, J = forward_kinematics_np(local_rotmats, np.broadcast_to(rest, (*np.shape(
        local_rotmats)[:-2], 3)))
    out = np.zeros((*J.shape[:-2], NUM_LANDMARKS, 3))
    for joint, lms in JOINT_LANDMARKS.items():
        if len(lms) == 1:
            out[..., lms[0], :] = J[..., joint, :]
    for hand, wrist, pinky, index, thumb in ((22, 20, 17, 19, 21), (23, 21, 18, 20, 22)):
        across = _mv(G[..., wrist, :, :], np.array([0.0, 0.0, _KNUCKLE_HALF]))
        out[..., index, :] = J[..., hand, :] + across
        out[..., pinky, :] = J[..., hand, :] - across
        out[..., thumb, :] = J[..., hand, :] + _mv(G[..., wrist, :, :], np.asarray(_THUMB))
    for i, o in HEAD_LANDMARK_OFFSETS.items():
        out[..., i, :] = J[..., 15, :] + _mv(G[..., 15, :, :], np.asarray(o))
    for ank, heel in ((7, 29), (8, 30)):
        out[..., heel, :] = J[..., ank, :] + _mv(G[..., ank, :, :], np.asarray(_HEEL))
    return out - (out[..., 23:24, :] + out[..., 24:25, :]) / 2.0


# ---------------------------------------------------------------- root translation
def lift_landmarks(image_xy: np.ndarray, world: np.ndarray, T: np.ndarray, K: Intrinsics,
                   min_depth: float = 0.05) -> np.ndarray | None:
    """Image-consistent 3D landmarks (33, 3) in the camera frame: each 2D landmark (pixels)
    back-projected at the depth the placed world landmark has (``T``: the camera-frame
    position of the world frame's origin, from :func:`solve_root_translation`):
    ``Z_i = T_z + world_i,z``, ``X_i = (u_i - c_x) Z_i / f_x``, ``Y_i = (v_i - c_y) Z_i / f_y``.
    None when a landmark would lie closer than ``min_depth``.

    Why: MediaPipe's world landmarks and its 2D landmarks are two network heads and do not
    agree exactly (on skimage's astronaut no rigid placement of the world skeleton brings the
    wrists within 15 px of the 2D landmarks, whatever the focal length). IK on these points
    keeps the world landmarks' depth and metric scale (through T) and the 2D landmarks'
    image positions, so the projected joints land on the image landmarks.
    """
    depth = T[2] + np.asarray(world, np.float64)[:, 2]
    if not (np.isfinite(depth).all() and (depth > min_depth).all()):
        return None
    uv = np.asarray(image_xy, np.float64)
    return np.stack(((uv[:, 0] - K.cx) * depth / K.fx, (uv[:, 1] - K.cy) * depth / K.fy,
                     depth), axis=-1)



# Where the image shows an arm straight, BlazePose's world head still bends it in depth: with
# arms hanging it puts the elbow 5-6 cm behind the shoulder and the wrist 7 cm in front of
# the elbow, an elbow flexion of ~30 deg, on the synthetic operator (truth 5.6 deg, its 2D
# landmarks within 2 deg of the truth's 2D angle) and on real people whose annotated arms
# are straight in the image (26-36 deg; bench/RESULTS.md "rest bias"). The image cannot see
# such a kink (it lies along the viewing rays), so it is the network's prior, not a
# measurement; teleop maps it to a hand 13-24 cm from home with the operator at rest.
_STRAIGHT_2D_DEG = (10.0, 25.0)  # 2D elbow bend: the prior fully on below, off above
_IN_PLANE = (0.6, 0.8)  # image length / world length of each arm bone: off below, on above


def straighten_elbow_depth(cam: np.ndarray, world: np.ndarray, image_xy: np.ndarray,
                           visibility: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Lifted landmarks (33, 3) (:func:`lift_landmarks`) with each elbow's depth moved towards
    the shoulder-wrist line where the image shows that arm straight and nearly in the image
    plane; the elbow stays on its 2D landmark's ray (only its depth changes), everything else
    is returned as it was.

    Weight (product, each a smoothstep): the 2D elbow bend (1 below 10 deg, 0 above 25 deg:
    an arm bent in the image keeps the network's depth); how much of each arm bone the image
    shows (its 2D length at the landmark's depth over its world 3D length: 0 below 0.6, 1
    above 0.8, so an arm pointing at the camera, where depth is the only evidence, keeps it);
    the elbow's and wrist's visibility (:func:`_vis_weight`). The target depth interpolates
    shoulder and wrist by the 2D length fraction of the upper arm: the shoulder-wrist
    direction (the arm's overall lean towards or away from the camera) is the network's."""
    out = np.array(cam, np.float64, copy=True)
    # plain floats: a dozen 2- and 3-vectors per frame, where numpy's per-call overhead
    # would cost more than the arithmetic (issue 13's per-frame budget)
    P = out[[11, 12, 13, 14, 15, 16]].tolist()
    UV = np.asarray(image_xy, np.float64)[[11, 12, 13, 14, 15, 16]].tolist()
    W = np.asarray(world, np.float64)[[11, 12, 13, 14, 15, 16]].tolist()
    f = (K.fx + K.fy) / 2.0
    lo, hi = (math.cos(math.radians(x)) for x in _STRAIGHT_2D_DEG)
    for s, e, w in ((0, 2, 4), (1, 3, 5)):  # left, right: shoulder, elbow, wrist rows
        ax, ay = UV[e][0] - UV[s][0], UV[e][1] - UV[s][1]
        bx, by = UV[w][0] - UV[e][0], UV[w][1] - UV[e][1]
        la, lb = math.hypot(ax, ay), math.hypot(bx, by)
        wa, wb = math.dist(W[e], W[s]), math.dist(W[w], W[e])
        zs, ze, zw = P[s][2], P[e][2], P[w][2]
        if not (min(la, lb, wa, wb) > _EPS and math.isfinite(zs + ze + zw)):
            continue
        straight = _s_smooth(((ax * bx + ay * by) / (la * lb) - hi) / (lo - hi))
        shown = min(la * (zs + ze) / (2 * f * wa), lb * (ze + zw) / (2 * f * wb))
        in_plane = _s_smooth((shown - _IN_PLANE[0]) / (_IN_PLANE[1] - _IN_PLANE[0]))
        weight = straight * in_plane * _s_clip01(
            (min(float(visibility[11 + e]), float(visibility[11 + w])) - 0.1) / 0.4)
        if not weight > 0.0:
            continue
        t = la / (la + lb)
        z = (1.0 - weight) * ze + weight * (zs + t * (zw - zs))
        out[11 + e] = ((UV[e][0] - K.cx) * z / K.fx, (UV[e][1] - K.cy) * z / K.fy, z)
    return out


# ---------------------------------------------------------------- single-frame fast path
# Speed (issue 13): the backend solves ONE skeleton per frame. The batched numpy IK above
# spends ~1000 numpy calls on 3-vectors per frame (each a few microseconds of overhead for
# nanoseconds of arithmetic), so a single finite frame takes this transcription of the same
# steps in plain Python floats instead (3-vectors as tuples, 3x3 matrices as row-major
# 9-tuples): same formulas, same branches, same order, results equal to the batched path to
# float rounding (test_landmarks_fast.py checks <= 1e-9 on real frames and random poses).
# The batched path stays the reference and serves batches and non-finite input.
_V3 = tuple[float, float, float]
_M3 = tuple[float, float, float, float, float, float, float, float, float]
_I3: _M3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
_XS: _V3 = (1.0, 0.0, 0.0)
_YS: _V3 = (0.0, 1.0, 0.0)
_ZS: _V3 = (0.0, 0.0, 1.0)
_MZS: _V3 = (-0.0, -0.0, -1.0)  # -_Z, as numpy negates it


def _s_sub(a: _V3, b: _V3) -> _V3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _s_mid(a: _V3, b: _V3) -> _V3:
    return ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0, (a[2] + b[2]) / 2.0)


def _s_dot(a: _V3, b: _V3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _s_cross(a: _V3, b: _V3) -> _V3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _s_norm(v: _V3) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def _s_unit(v: _V3, fallback: _V3 | None = None) -> tuple[_V3, float]:
    """:func:`_unit` for one vector (a NaN norm fails ``n > _EPS`` in both)."""
    n = _s_norm(v)
    if n > _EPS:
        return (v[0] / n, v[1] / n, v[2] / n), n
    return (v if fallback is None else fallback), n


def _s_mv(R: _M3, v: _V3) -> _V3:
    return (R[0] * v[0] + R[1] * v[1] + R[2] * v[2],
            R[3] * v[0] + R[4] * v[1] + R[5] * v[2],
            R[6] * v[0] + R[7] * v[1] + R[8] * v[2])


def _s_mm(A: _M3, B: _M3) -> _M3:
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = A
    b0, b1, b2, b3, b4, b5, b6, b7, b8 = B
    return (a0 * b0 + a1 * b3 + a2 * b6, a0 * b1 + a1 * b4 + a2 * b7, a0 * b2 + a1 * b5 + a2 * b8,
            a3 * b0 + a4 * b3 + a5 * b6, a3 * b1 + a4 * b4 + a5 * b7, a3 * b2 + a4 * b5 + a5 * b8,
            a6 * b0 + a7 * b3 + a8 * b6, a6 * b1 + a7 * b4 + a8 * b7, a6 * b2 + a7 * b5 + a8 * b8)


def _s_tm(A: _M3, B: _M3) -> _M3:
    """A^T @ B."""
    return _s_mm((A[0], A[3], A[6], A[1], A[4], A[7], A[2], A[5], A[8]), B)


def _s_outer_flip(u: _V3) -> _M3:
    """2 u u^T - I (pi about u)."""
    x, y, z = u
    return (2.0 * x * x - 1.0, 2.0 * x * y, 2.0 * x * z,
            2.0 * y * x, 2.0 * y * y - 1.0, 2.0 * y * z,
            2.0 * z * x, 2.0 * z * y, 2.0 * z * z - 1.0)


def _s_normal_to(p: _V3) -> _V3:
    return _s_unit(_s_cross(p, _XS if abs(p[0]) < 0.9 else _YS))[0]


def _s_arc(a: _V3, b: _V3) -> _M3:
    """:func:`_arc` for one pair."""
    x, y, z = _s_cross(a, b)
    c = _s_dot(a, b)
    if not c > -1.0 + 1e-9:
        return _s_outer_flip(_s_normal_to(a))
    d = 1.0 + c
    return (c + x * x / d, -z + x * y / d, y + x * z / d,
            z + y * x / d, c + y * y / d, -x + y * z / d,
            -y + z * x / d, x + z * y / d, c + z * z / d)


def _s_frame(p: _V3, s: _V3) -> _M3:
    """:func:`_frame` for one pair: columns (p, s_perp, p x s_perp)."""
    p = _s_unit(p, _XS)[0]
    ds = _s_dot(s, p)
    s = (s[0] - ds * p[0], s[1] - ds * p[1], s[2] - ds * p[2])
    n = _s_norm(s)
    q = (s[0] / n, s[1] / n, s[2] / n) if n > _EPS else _s_normal_to(p)
    r = _s_cross(p, q)
    return (p[0], q[0], r[0], p[1], q[1], r[1], p[2], q[2], r[2])


def _s_axis_angle(axis: _V3, angle: float) -> _M3:
    """:func:`~mocap_ros.geometry.rotations.axis_angle_to_matrix`: I + s K + (1 - c) K K
    with K K = a a^T - |a|^2 I written out."""
    x, y, z = axis
    s, c1 = math.sin(angle), 1.0 - math.cos(angle)
    xx, yy, zz, xy, xz, yz = x * x, y * y, z * z, x * y, x * z, y * z
    return (1.0 + c1 * (-yy - zz), -s * z + c1 * xy, s * y + c1 * xz,
            s * z + c1 * xy, 1.0 + c1 * (-xx - zz), -s * x + c1 * yz,
            -s * y + c1 * xz, s * x + c1 * yz, 1.0 + c1 * (-xx - yy))


def _s_quat(R: _M3) -> tuple[float, float, float, float]:
    """:func:`~mocap_ros.geometry.rotations.matrix_to_quat` for one matrix (x, y, z, w), w >= 0
    (the same branch: the first largest candidate, as np.argmax picks)."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = R
    cands = (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
             1 - m00 - m11 + m22)
    best = 0
    for i in (1, 2, 3):
        if cands[i] > cands[best]:
            best = i
    s = 2.0 * math.sqrt(max(cands[best], 1e-12))
    a, b, c = m21 - m12, m02 - m20, m10 - m01
    d, e, f = m01 + m10, m02 + m20, m12 + m21
    q4 = s * s / 4.0
    q = ((a, b, c, q4), (q4, d, e, a), (d, q4, f, b), (e, f, q4, c))[best]
    q = (q[0] / s, q[1] / s, q[2] / s, q[3] / s)
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    q = (q[0] / n, q[1] / n, q[2] / n, q[3] / n)
    return (-q[0], -q[1], -q[2], -q[3]) if q[3] < 0 else q


def _s_rot_power(R: _M3, t: float) -> _M3:
    q = _s_quat(R)
    axis, sin_half = _s_unit((q[0], q[1], q[2]), _XS)
    return _s_axis_angle(axis, t * (2.0 * math.atan2(sin_half, q[3])))


def _s_twisted(G: _M3, axis: _V3, s_rest: _V3, s_obs: _V3, weight: float) -> _M3:
    cur = _s_mv(G, s_rest)
    dc, do = _s_dot(cur, axis), _s_dot(s_obs, axis)
    cur = (cur[0] - dc * axis[0], cur[1] - dc * axis[1], cur[2] - dc * axis[2])
    obs = (s_obs[0] - do * axis[0], s_obs[1] - do * axis[1], s_obs[2] - do * axis[2])
    cur, n1 = _s_unit(cur)
    obs, n2 = _s_unit(obs)
    ang = 0.0
    if n1 > 1e-6 and n2 > 1e-6:
        ang = math.atan2(_s_dot(axis, _s_cross(cur, obs)), _s_dot(cur, obs))
    return _s_mm(_s_axis_angle(axis, weight * ang), G)


def _s_clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def _s_smooth(x: float) -> float:
    """:func:`_smoothstep` for one float."""
    x = _s_clip01(x)
    return x * x * (3.0 - 2.0 * x)


def _s_bend_weight(a: _V3, b: _V3) -> float:
    x = _s_clip01((_s_norm(_s_cross(a, b)) - _SIN_LO) / (_SIN_HI - _SIN_LO))
    return x * x * (3.0 - 2.0 * x)


def _s_vis_weight(v: float) -> float:
    return _s_clip01((v - 0.1) / 0.4)


# Per-frame constants of the single-frame path, as tuples.
_S_OFF: list[_V3] = [tuple(map(float, o)) for o in _OFF]  # type: ignore[misc]
_S_OFF_DIR: list[_V3] = [tuple(map(float, o)) for o in _OFF_DIR]  # type: ignore[misc]
_S_EARMID_REST: _V3 = tuple(  # type: ignore[assignment]
    float(v) for v in (np.asarray(HEAD_LANDMARK_OFFSETS[7]) + HEAD_LANDMARK_OFFSETS[8]) / 2.0)
_S_F_REST_T: _M3 = tuple(  # type: ignore[assignment]  # the head's rest frame, transposed
    float(v) for v in _frame(_X, np.asarray(HEAD_LANDMARK_OFFSETS[0])
                             - np.asarray(_S_EARMID_REST)).T.reshape(-1))
_S_HEEL_N: _V3 = tuple(  # type: ignore[assignment]  # unit normal of the rest foot plane
    float(v) for v in _unit(_cross(np.asarray(_HEEL), _OFF[10]))[0])
_S_HEEL_N_R: _V3 = tuple(  # type: ignore[assignment]
    float(v) for v in _unit(_cross(np.asarray(_HEEL), _OFF[11]))[0])
_S_PAR = np.array([max(p, 0) for p in PARENTS])


def _solve_single(world: np.ndarray, visibility: np.ndarray) -> LandmarkIK:
    """:func:`solve_landmark_ik` for ONE finite frame (33, 3) / (33,) (section comment)."""
    P: list[_V3] = [tuple(p) for p in world.tolist()]  # type: ignore[misc]
    vis: list[float] = visibility.tolist()
    G: list[_M3] = [_I3] * NUM_JOINTS
    off: list[_V3] = [(0.0, 0.0, 0.0)] * NUM_JOINTS
    pos: list[_V3] = [(0.0, 0.0, 0.0)] * NUM_JOINTS
    tw: dict[str, float] = {}

    def place(j: int) -> None:
        p = pos[PARENTS[j]]
        d = _s_mv(G[PARENTS[j]], off[j])
        pos[j] = (p[0] + d[0], p[1] + d[1], p[2] + d[2])

    def swing(j: int, child: int, target: _V3) -> _M3:
        p = PARENTS[j]
        rest_dir = _S_OFF_DIR[child]
        Gp = G[p] if p >= 0 else _I3
        cur = _s_mv(Gp, rest_dir)
        d, length = _s_unit(target, cur)
        off[child] = (rest_dir[0] * length, rest_dir[1] * length, rest_dir[2] * length)
        return _s_mm(_s_arc(cur, d), Gp)

    def scaled(j: int, k: float) -> _V3:
        o = _S_OFF[j]
        return (o[0] * k, o[1] * k, o[2] * k)

    # --- root
    hip_c = _s_mid(P[23], P[24])
    up = _s_sub(_s_mid(P[11], P[12]), hip_c)
    torso = _s_norm(up)
    k = torso / _REST_TORSO if torso > _EPS else 1.0
    x_p, hip_w = _s_unit(_s_sub(P[23], P[24]), _XS)
    up_u, _ = _s_unit(up, _YS)
    G[0] = _s_frame(x_p, up_u if _s_norm(_s_cross(x_p, up_u)) > 1e-6 else _ZS)
    for j, sign in ((1, 1.0), (2, -1.0)):
        o = scaled(j, k)
        off[j] = (sign * hip_w / 2.0, o[1], o[2])
    d = _s_mv(G[0], ((off[1][0] + off[2][0]) / 2.0, (off[1][1] + off[2][1]) / 2.0,
                     (off[1][2] + off[2][2]) / 2.0))
    pos[0] = _s_sub(hip_c, d)
    place(1)
    place(2)

    # --- spine
    x_c, _ = _s_unit(_s_sub(P[11], P[12]), _XS)
    chest = _s_frame(x_c, up_u if _s_norm(_s_cross(x_c, up_u)) > 1e-6 else _ZS)
    third = _s_rot_power(_s_tm(G[0], chest), 1.0 / 3.0)
    for j in (3, 6, 9):
        off[j] = scaled(j, k)
        place(j)
        G[j] = _s_mm(G[PARENTS[j]], third)
    for j in (12, 13, 14):
        off[j] = scaled(j, k)
        place(j)

    # --- head
    ear_mid = _s_mid(P[7], P[8])
    x_h, ear_w = _s_unit(_s_sub(P[7], P[8]), _XS)
    G_head_obs = _s_mm(_s_frame(x_h, _s_sub(P[0], ear_mid)), _S_F_REST_T)
    kh = ear_w / (2 * _EAR_HALF) if ear_w > _EPS else k
    e = _S_EARMID_REST
    head_pos = _s_sub(ear_mid, _s_mv(G_head_obs, (e[0] * kh, e[1] * kh, e[2] * kh)))
    G[12] = swing(12, 15, _s_sub(head_pos, pos[12]))
    place(15)
    w_head = _s_vis_weight(min(vis[0], vis[7], vis[8]))
    G[15] = _s_mm(G[12], _s_rot_power(_s_tm(G[12], G_head_obs), w_head))
    tw["head"] = w_head

    # --- arms
    for side, (col, sho, elb, wri, hand, l_sho, l_elb, l_wri, l_pinky, l_index) in (
        ("left", (13, 16, 18, 20, 22, 11, 13, 15, 17, 19)),
        ("right", (14, 17, 19, 21, 23, 12, 14, 16, 18, 20)),
    ):
        G[col] = swing(col, sho, _s_sub(P[l_sho], pos[col]))
        place(sho)
        upper = _s_sub(P[l_elb], P[l_sho])
        fore = _s_sub(P[l_wri], P[l_elb])
        Gs = swing(sho, elb, upper)
        a, _ = _s_unit(upper, _s_mv(Gs, _S_OFF_DIR[elb]))
        f, _ = _s_unit(fore, a)
        w = _s_bend_weight(a, f) * _s_vis_weight(min(vis[l_elb], vis[l_wri]))
        G[sho] = _s_twisted(Gs, a, _ZS, fore, w)
        tw[f"{side}_upper_arm"] = w
        place(elb)
        G[elb] = swing(elb, wri, fore)
        place(wri)
        hand_vec = _s_sub(_s_mid(P[l_index], P[l_pinky]), P[l_wri])
        Gw = swing(wri, hand, hand_vec)
        h, _ = _s_unit(hand_vec, _s_mv(Gw, _S_OFF_DIR[hand]))
        across, _ = _s_unit(_s_sub(P[l_index], P[l_pinky]), _ZS)
        w = _s_bend_weight(h, across) * _s_vis_weight(min(vis[l_wri], vis[l_index],
                                                          vis[l_pinky]))
        G[wri] = _s_twisted(Gw, h, _ZS, across, w)
        tw[f"{side}_forearm"] = w
        place(hand)
        G[hand] = G[wri]

    # --- legs
    for side, (hip, knee, ank, foot, l_hip, l_knee, l_ank, l_heel, l_toe, n_rest) in (
        ("left", (1, 4, 7, 10, 23, 25, 27, 29, 31, _S_HEEL_N)),
        ("right", (2, 5, 8, 11, 24, 26, 28, 30, 32, _S_HEEL_N_R)),
    ):
        thigh = _s_sub(P[l_knee], P[l_hip])
        shank = _s_sub(P[l_ank], P[l_knee])
        Gh = swing(hip, knee, thigh)
        t, _ = _s_unit(thigh, _s_mv(Gh, _S_OFF_DIR[knee]))
        s, _ = _s_unit(shank, t)
        w = _s_bend_weight(t, s) * _s_vis_weight(min(vis[l_knee], vis[l_ank]))
        G[hip] = _s_twisted(Gh, t, _MZS, shank, w)
        tw[f"{side}_thigh"] = w
        place(knee)
        G[knee] = swing(knee, ank, shank)
        place(ank)
        toe_vec = _s_sub(P[l_toe], P[l_ank])
        Ga = swing(ank, foot, toe_vec)
        u, _ = _s_unit(toe_vec, _s_mv(Ga, _S_OFF_DIR[foot]))
        heel_vec = _s_sub(P[l_heel], P[l_ank])
        hv, _ = _s_unit(heel_vec, u)
        w = _s_bend_weight(u, hv) * _s_vis_weight(min(vis[l_ank], vis[l_heel], vis[l_toe]))
        G[ank] = _s_twisted(Ga, u, n_rest, _s_cross(heel_vec, toe_vec), w)
        tw[f"{side}_foot"] = w
        place(foot)
        G[foot] = G[ank]

    # --- local rotations (one batched matmul) and the rest skeleton
    Gn = np.array(G).reshape(NUM_JOINTS, 3, 3)
    local = np.swapaxes(Gn[_S_PAR], -1, -2) @ Gn
    local[0] = Gn[0]
    rest = [(0.0, 0.0, 0.0)] * NUM_JOINTS
    for j in range(1, NUM_JOINTS):
        r, o = rest[PARENTS[j]], off[j]
        rest[j] = (r[0] + o[0], r[1] + o[1], r[2] + o[2])
    pos_n = np.array(pos)
    return LandmarkIK(local, Gn, np.array(rest), pos_n - pos_n[0], pos_n[0].copy(),
                      {n: np.float64(v) for n, v in tw.items()})
