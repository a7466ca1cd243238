"""REP-155 (ROS4HRI) body conventions, ROS-free: the 2D skeleton, the normalised region of
interest, the ``body_<id>`` frame, the joint angles of the human kinematic model, and stable
body ids. ``mocap_ros.ros.hri_bridge`` turns these into hri_msgs / sensor_msgs messages.

Sources (checked, not copied):

* REP-155 (github.com/ros-infrastructure/rep, rep-0155.rst at 9650566): topics
  ``/humans/bodies/tracked`` (hri_msgs/IdsList) and ``/humans/bodies/<id>/{roi, cropped,
  skeleton2d, joint_states}``; the body frame ``body_<id>``: origin "at the mid point of the
  line connecting the hips", parent "the sensor frame", ``x`` "forward (ie, out of the
  body)", ``z`` "toward the head"; body links/joints "suffixed with the same ``_<bodyID>``";
  ids "valid indentifiers in mainstream programming languages (eg, start with a letter)".
* hri_msgs 2.0.0 (Skeleton2D.msg): 18 points in OpenPose-COCO order (NOSE=0, NECK=1, ...
  RIGHT_EAR=17), coordinates normalised to [0, 1] with (0, 0) the image's top-left corner,
  ``c`` a confidence in [0, 1]; NormalizedRegionOfInterest2D: xmin, ymin, xmax, ymax in [0, 1].
* hri_fullbody 2.1.0 (217e77a): ``jointstate.py`` HUMAN_JOINT_NAMES (the 20 joint names and
  their order, each suffixed ``_<body_id>`` in the JointState); ``fullbody_detector.py``:
  BlazePose -> Skeleton2D table, NECK = mid-shoulders with c = min of the two shoulders,
  ``/humans/bodies/<id>/position`` (PointStamped, camera frame) and ``velocity``
  (TwistStamped, frame ``body_<id>``).
* human_description 2.0.2 (9050b42) ``urdf/human-tpl.xacro``: the axes and limits of those
  joints (below, ``_CHAINS``), every link hanging along its parent's -z in the zero pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mocap_ros.core.skeleton import JOINT_INDEX as SMPL
from mocap_ros.estimation.landmarks.ik import LM

# hri_msgs/Skeleton2D constants (OpenPose COCO order)
SKELETON2D_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "left_eye", "right_eye", "left_ear", "right_ear")
NECK = 1

# hri_fullbody's jointstate.HUMAN_JOINT_NAMES, same order
HUMAN_JOINT_NAMES: tuple[str, ...] = (
    "waist", "r_head", "y_head", "p_head",
    "l_y_shoulder", "l_p_shoulder", "l_r_shoulder", "l_elbow",
    "r_y_shoulder", "r_p_shoulder", "r_r_shoulder", "r_elbow",
    "l_y_hip", "l_p_hip", "l_r_hip", "l_knee",
    "r_y_hip", "r_p_hip", "r_r_hip", "r_knee")

# (axis, lower, upper) per joint, human-tpl.xacro; reflect = +1 left, -1 right
_X, _Y, _Z = np.eye(3)


def _arm(reflect: int) -> list[tuple[np.ndarray, float, float]]:
    return [(_Z * -reflect, -1.1, 1.9), (_X * reflect, -0.4, 3.3), (_Z * reflect, -1.7, 1.5),
            (-_Y, 0.0, 2.5)]


def _leg(reflect: int) -> list[tuple[np.ndarray, float, float]]:
    return [(-_Z, -0.1, 0.6), (_X * reflect, -0.4, 3.3), (-_Y, -0.4, 0.7), (-_Y, -2.5, 0.0)]


# chain -> (joints, SMPL (proximal, middle, distal) joints whose segments it follows)
_CHAINS: dict[str, tuple[list, tuple[str, str, str]]] = {
    "l_arm": (_arm(1), ("left_shoulder", "left_elbow", "left_wrist")),
    "r_arm": (_arm(-1), ("right_shoulder", "right_elbow", "right_wrist")),
    "l_leg": (_leg(1), ("left_hip", "left_knee", "left_ankle")),
    "r_leg": (_leg(-1), ("right_hip", "right_knee", "right_ankle")),
}
_CHAIN_SLOTS = {"l_arm": 4, "r_arm": 8, "l_leg": 12, "r_leg": 16}


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about a unit axis (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def chain_directions(joints: list, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics of a 4-joint limb chain of the human model: the directions (in the
    chain's parent link frame) of the upper segment (after joints 0-2) and of the lower one
    (after joint 3); both hang along -z at q = 0."""
    r = np.eye(3)
    for (axis, _, _), a in zip(joints[:3], q[:3], strict=True):
        r = r @ _rot(axis, a)
    down = np.array([0.0, 0.0, -1.0])
    return r @ down, r @ _rot(joints[3][0], q[3]) @ down


def _violation(q: np.ndarray, joints: list) -> float:
    return float(sum(max(0.0, lo - a, a - hi) for a, (_, lo, hi) in zip(q, joints,
                                                                        strict=True)))


def _solve_arm(reflect: int, u: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Arm angles (y, p, r shoulder, elbow) for upper-arm direction u and forearm direction
    f (unit, torso frame). Chain Rz(-s q0) Rx(s q1) Rz(s q2), elbow Ry(-q3), s = reflect:
    u = Rz(psi) (0, sin phi, -cos phi) with psi = -s q0, phi = s q1. Of the two shoulder
    solutions (phi, psi) and (-phi, psi + pi) the one inside the URDF limits is kept."""
    s = reflect
    joints = _arm(s)
    elbow = float(np.arccos(np.clip(np.dot(u, f), -1.0, 1.0)))
    best = None
    for sign in (1.0, -1.0):
        phi = sign * float(np.arccos(np.clip(-u[2], -1.0, 1.0)))
        sp = np.sin(phi)
        psi = float(np.arctan2(-u[0] * sp, u[1] * sp)) if abs(sp) > 1e-6 else 0.0
        r1 = _rot(_Z, psi) @ _rot(_X, phi)
        fl = r1.T @ f  # = Rz(s q2) (sin q3, 0, -cos q3)
        twist = float(np.arctan2(fl[1], fl[0])) if np.sin(elbow) > 1e-6 else 0.0
        q = np.array([-s * psi, s * phi, s * twist, elbow])
        q[:3] = (q[:3] + np.pi) % (2 * np.pi) - np.pi
        if best is None or _violation(q, joints) < _violation(best, joints) - 1e-9:
            best = q
    return best


def _solve_leg(reflect: int, u: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Leg angles (y, p, r hip, knee) for thigh direction u and shin direction f (unit, body
    frame). Chain Rz(-q0) Rx(s q1) Ry(-q2), knee Ry(-q3): the knee bends about the thigh
    link's y axis, so a bent knee fixes the whole thigh rotation R = [y x z, y, z] (z = -u,
    y = u x f normalised) and R = Rz(a) Rx(p) Ry(b) decomposes as p = asin R21,
    b = atan2(-R20, R22), a = atan2(-R01, R11). A straight leg leaves the yaw free: 0."""
    s = reflect
    knee = -float(np.arccos(np.clip(np.dot(u, f), -1.0, 1.0)))
    y = _unit(np.cross(u, f)) if np.sin(-knee) > 1e-3 else None
    if y is None:
        b = float(np.arcsin(np.clip(-u[0], -1.0, 1.0)))  # u = (-sin b, sin p cos b, -cos p cos b)
        p = float(np.arctan2(u[1], -u[2]))
        return np.array([0.0, s * p, -b, knee])
    z = -u
    r = np.column_stack([np.cross(y, z), y, z])
    p = float(np.arcsin(np.clip(r[2, 1], -1.0, 1.0)))
    b = float(np.arctan2(-r[2, 0], r[2, 2]))
    a = float(np.arctan2(-r[0, 1], r[1, 1]))
    return np.array([-a, s * p, -b, knee])


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return None if not np.isfinite(n) or n < 1e-9 else v / n


def body_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """REP-155's ``body_<id>`` frame from SMPL-order 3D joints (sensor frame, metres):
    (origin = mid-hips, rotation whose columns are the body's x forward, y left, z toward the
    head, in the sensor frame), or None for a degenerate skeleton."""
    j = np.asarray(joints, np.float64)
    lh, rh, neck = j[SMPL["left_hip"]], j[SMPL["right_hip"]], j[SMPL["neck"]]
    origin = (lh + rh) / 2
    y = _unit(lh - rh)
    if y is None:
        return None
    z = _unit((neck - origin) - np.dot(neck - origin, y) * y)
    if z is None:
        return None
    x = np.cross(y, z)
    return origin, np.column_stack([x, y, z])


def human_joint_state(joints: np.ndarray) -> np.ndarray | None:
    """The 20 joint angles (radians, HUMAN_JOINT_NAMES order) of the human kinematic model
    that reproduce the limb directions of SMPL-order 3D joints (sensor frame), or None.

    The body frame's z already follows the trunk (hips -> neck), so ``waist`` is 0 and the
    torso frame equals the body frame. The head has only a direction here (neck -> head):
    ``r_head`` and ``p_head`` follow it, ``y_head`` (turning the head) is not estimated: 0.
    Closed form per limb, no iterative solve (2.4 ms a skeleton on a loaded 2-core EPYC,
    load 16). Angles are not clipped to the URDF's limits (robot_state_publisher does not
    enforce them, and a clipped angle would draw a limb where it is not)."""
    frame = body_frame(joints)
    if frame is None:
        return None
    _, rot = frame
    j = np.asarray(joints, np.float64)
    q = np.zeros(len(HUMAN_JOINT_NAMES))
    for name, (_, (a, b, c)) in _CHAINS.items():
        upper = _unit(rot.T @ (j[SMPL[b]] - j[SMPL[a]]))
        lower = _unit(rot.T @ (j[SMPL[c]] - j[SMPL[b]]))
        if upper is None or lower is None:
            return None
        k = _CHAIN_SLOTS[name]
        reflect = 1 if name.startswith("l_") else -1
        solve = _solve_arm if name.endswith("arm") else _solve_leg
        q[k:k + 4] = solve(reflect, upper, lower)
    head = _unit(rot.T @ (j[SMPL["head"]] - j[SMPL["neck"]]))
    if head is not None:
        # head chain r_head (x), y_head (z), p_head (-y), zero pose pointing up (+z): with
        # y_head = 0, Rx(r) Ry(-p) z = (-sin p, -sin r cos p, cos r cos p)
        p = float(np.arcsin(np.clip(-head[0], -1.0, 1.0)))
        r = float(np.arctan2(-head[1], head[2]))
        q[1], q[3] = np.clip(r, -1.0, 1.0), np.clip(p, -1.5, 1.5)
    return q


# ---------------------------------------------------------------- link frames
HUMAN_HEIGHT = 1.65  # human-tpl.xacro's default height (m), what hri_fullbody instantiates


def _link_table(height: float) -> list[tuple[str, str, str | None, tuple, np.ndarray | None]]:
    """(link, parent link, moving joint or None (fixed), joint origin xyz, axis) of
    human-tpl.xacro, its lengths from ``height`` (size_unit = height / 7.5) as the xacro."""
    su = height / 7.5
    head_r, neck, neck_sh = su / 2, su * 0.25, su * 0.8
    upperarm, forearm, torso, waist, thigh, tibia = (su * 1.6, su, su * 2.75, su * 1.2,
                                                     su * 1.5, su * 2)
    out = [("waist", "body", "waist", (0, 0, 0), _Y),
           ("torso", "waist", None, (0, 0, torso), None),
           ("r_head", "torso", "r_head", (0, 0, neck), _X),
           ("y_head", "r_head", "y_head", (0, 0, 0), _Z),
           ("p_head", "y_head", "p_head", (0, 0, 0), -_Y),
           ("head", "p_head", None, (head_r / 2, 0, head_r), None)]
    for s, r in (("l", 1), ("r", -1)):
        out += [(f"{s}_y_shoulder", "torso", f"{s}_y_shoulder", (0, r * neck_sh, 0), _Z * -r),
                (f"{s}_p_shoulder", f"{s}_y_shoulder", f"{s}_p_shoulder", (0, 0, 0), _X * r),
                (f"{s}_shoulder", f"{s}_p_shoulder", f"{s}_r_shoulder", (0, 0, 0), _Z * r),
                (f"{s}_elbow", f"{s}_shoulder", f"{s}_elbow", (0, 0, -upperarm), -_Y),
                (f"{s}_wrist", f"{s}_elbow", None, (0, 0, -forearm), None)]
    for s, r in (("l", 1), ("r", -1)):
        out += [(f"{s}_y_hip", "body", f"{s}_y_hip", (0, r * waist / 2, 0), -_Z),
                (f"{s}_p_hip", f"{s}_y_hip", f"{s}_p_hip", (0, 0, 0), _X * r),
                (f"{s}_hip", f"{s}_p_hip", f"{s}_r_hip", (0, 0, 0), -_Y),
                (f"{s}_knee", f"{s}_hip", f"{s}_knee", (0, 0, -thigh), -_Y),
                (f"{s}_ankle", f"{s}_knee", None, (0, 0, -tibia), None)]
    return out


def human_link_transforms(q: np.ndarray, height: float = HUMAN_HEIGHT
                          ) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """What robot_state_publisher would broadcast for human-tpl.xacro and these joint
    angles (HUMAN_JOINT_NAMES order): (parent link, child link, translation, rotation matrix)
    per link below ``body``. Names without the ``_<id>`` suffix."""
    angle = dict(zip(HUMAN_JOINT_NAMES, np.asarray(q, np.float64), strict=True))
    out = []
    for link, parent, joint, origin, axis in _link_table(height):
        rot = np.eye(3) if joint is None else _rot(axis, float(angle[joint]))
        out.append((parent, link, np.asarray(origin, np.float64), rot))
    return out


# ---------------------------------------------------------------- 2D
# Skeleton2D point -> BlazePose landmark (hri_fullbody's table); NECK is computed
_BLAZEPOSE = {i: LM[n] for i, n in enumerate(SKELETON2D_NAMES) if n in LM}
_SMPL = {i: SMPL[n] for i, n in enumerate(SKELETON2D_NAMES) if n in SMPL and n != "neck"}


def _normalise(xy: np.ndarray, c: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.zeros((len(xy), 3), np.float64)
    xy = np.asarray(xy, np.float64)
    finite = np.isfinite(xy).all(axis=1)
    n = np.where(finite[:, None], xy / [width, height], 0.0)
    # Skeleton2D's coordinates "must belong to [0., 1.]": a point outside the image is not
    # seen in it -- clamp it to the border and give it confidence 0
    inside = finite & (n >= 0).all(axis=1) & (n <= 1).all(axis=1)
    out[:, :2] = np.clip(n, 0.0, 1.0)
    out[:, 2] = np.where(inside, np.clip(np.nan_to_num(c), 0.0, 1.0), 0.0)
    return out


def _with_neck(src: dict[int, int], xy: np.ndarray, c: np.ndarray,
               width: int, height: int) -> np.ndarray:
    out = np.zeros((len(SKELETON2D_NAMES), 3))
    idx = list(src.items())
    out[[i for i, _ in idx]] = _normalise(xy[[k for _, k in idx]], c[[k for _, k in idx]],
                                          width, height)
    ls, rs = out[SKELETON2D_NAMES.index("left_shoulder")], \
        out[SKELETON2D_NAMES.index("right_shoulder")]
    # hri_fullbody: no neck landmark -> the shoulders' midpoint, confidence the lesser one
    out[NECK] = [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, min(ls[2], rs[2])]
    return out


def skeleton2d_from_blazepose(xy: np.ndarray, visibility: np.ndarray, width: int,
                              height: int) -> np.ndarray:
    """(18, 3) Skeleton2D points (x, y normalised, c) from BlazePose's 33 landmarks (pixels)."""
    return _with_neck(_BLAZEPOSE, np.asarray(xy), np.asarray(visibility),
                      width, height)


def skeleton2d_from_smpl(keypoints: np.ndarray, confidence: np.ndarray | None, width: int,
                         height: int) -> np.ndarray:
    """(18, 3) Skeleton2D points from SMPL's 24 2D joints (pixels). SMPL has no nose, eyes or
    ears: those points are (0, 0) with confidence 0 (not detected). Without per-joint
    confidence, each point present gets 1."""
    kp = np.asarray(keypoints, np.float64).reshape(-1, 2)
    c = np.ones(len(kp)) if confidence is None or len(confidence) != len(kp) \
        else np.asarray(confidence, np.float64)
    return _with_neck(_SMPL, kp, c, width, height)


def normalized_roi(box: np.ndarray, width: int, height: int
                   ) -> tuple[float, float, float, float] | None:
    """(xmin, ymin, xmax, ymax) in [0, 1] of an (x, y, w, h) pixel box, clipped to the image;
    None when nothing of it is inside the image."""
    x, y, w, h = (float(v) for v in box)
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0 or width <= 0 or height <= 0:
        return None
    x0, y0 = max(0.0, x / width), max(0.0, y / height)
    x1, y1 = min(1.0, (x + w) / width), min(1.0, (y + h) / height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, aw, ah = (float(v) for v in a)
    bx0, by0, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- ids
@dataclass
class BodyIds:
    """Stable REP-155 body ids for one camera, frame after frame.

    * The followed person (BodyPose): with a track id from the operator lock, the id is
      ``t<track_id>`` -- the lock's track ids map one-to-one onto body ids. Without one
      (track_id 0: no operator lock), one id ``b<k>`` per continuous run of valid frames.
    * Everyone else (People2D, lock on): ``p<k>``, kept while the person's box overlaps their
      box of the last frame they were seen in (IoU >= ``iou``) within ``max_missed`` frames.

    Ids start with a letter (REP-155's identifier syntax) and are never reused.
    """

    iou: float = 0.3
    max_missed: int = 5
    _next: int = 1
    _run_id: str | None = None
    _others: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)  # id -> box, age

    def _new(self, prefix: str) -> str:
        bid = f"{prefix}{self._next}"
        self._next += 1
        return bid

    def followed(self, valid: bool, track_id: int) -> str | None:
        if not valid:
            self._run_id = None
            return None
        if track_id > 0:
            self._run_id = None
            return f"t{track_id}"
        if self._run_id is None:
            self._run_id = self._new("b")
        return self._run_id

    def others(self, boxes: list[np.ndarray]) -> list[str]:
        """Ids for this frame's other people (one per box, same order)."""
        pairs = sorted(((box_iou(b, prev), i, bid) for i, b in enumerate(boxes)
                        for bid, (prev, _) in self._others.items()), reverse=True)
        ids: list[str | None] = [None] * len(boxes)
        used: set[str] = set()
        for score, i, bid in pairs:
            if score < self.iou:
                break
            if ids[i] is None and bid not in used:
                ids[i] = bid
                used.add(bid)
        for i in range(len(boxes)):
            if ids[i] is None:
                ids[i] = self._new("p")
        seen = dict(zip(ids, boxes, strict=True))
        self._others = {bid: (np.asarray(seen[bid], np.float64), 0) if bid in seen
                        else (box, age + 1)
                        for bid, (box, age) in self._others.items()
                        if bid in seen or age + 1 <= self.max_missed}
        for bid, box in seen.items():
            self._others.setdefault(bid, (np.asarray(box, np.float64), 0))
        return [str(i) for i in ids]
