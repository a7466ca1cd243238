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

