"""Pure hand geometry on 21 keypoints: palm frame, finger curls, grip aperture.

No mediapipe, no camera: numpy only, so everything here is unit-tested on keypoint sets built
by hand. Keypoints are the 21-point hand layout shared by MediaPipe Hands, FreiHAND and
OneHand10K (``HAND_KEYPOINT_NAMES``): 0 wrist, then per finger 4 points from the palm out
(thumb CMC, MCP, IP, tip; each other finger MCP, PIP, DIP, tip).

Units: any consistent length unit; use 3D points (metres in the camera frame, REP-103
optical axes x right, y down, z forward) for curls and the palm frame -- 2D pixel points work
for the aperture of a hand seen flat, but foreshorten everything else.

Palm frame (:func:`palm_frame`)
-------------------------------
A right-handed rotation whose columns are the hand's axes expressed in the keypoints' frame,
chosen to equal the SMPL hand joint's rest axes (T-pose: the arm along the body's +x (left)
or -x (right), palm down, thumb forward), so the lead can use it directly as the SMPL hand /
wrist joint's global rotation in the camera frame:

* x: along the hand, wrist -> middle-finger MCP (keypoint 9), times +1 for the LEFT hand and
  -1 for the RIGHT hand (SMPL's left arm points along +x, its right arm along -x);
* y: the back of the hand (dorsal normal, away from the palm), made orthogonal to x;
* z = x cross y: towards the thumb side (radial) for either hand.

The palm normal comes from the index and pinky MCPs (5, 17): for a RIGHT hand
``(index_mcp - wrist) x (pinky_mcp - wrist)`` points out of the PALM (checked by hand: a
right hand held up, palm to the camera, thumb on the image's right -> the normal is -z,
towards the camera); for a LEFT hand it points out of the back. That is why the side is an
input and why a mirrored image (selfie view) needs the side swapped.

Finger curl (:func:`finger_curls`)
----------------------------------
Per finger, the sum of the bend angles between consecutive bones (unsigned, radians) over a
full-curl total, clipped to [0, 1]: 0 = straight, 1 = fully curled. Index..pinky: three
bends, MCP (the proximal phalanx against the palm's long axis wrist -> middle MCP, with its
sideways component across the palm removed so spreading is not curl), PIP, DIP; the thumb:
CMC->MCP, MCP->IP, IP->tip (two bends: MCP, IP; its CMC has no clear straight reference).
Full-curl totals (``FULL_CURL_RAD``): 250 deg for fingers (a fist bends roughly 90 + 100 +
60-80 deg), 120 deg for the thumb (MCP ~55 + IP ~80). Hyperextension counts as bend (angles
are unsigned); a hyperextended joint is rarely more than 20 deg.

Grip aperture (:func:`grip_aperture`)
-------------------------------------
``ratio = |thumb tip (4) - index tip (8)| / palm size``, palm size = ``|wrist (0) - middle
MCP (9)|`` (stable under finger motion; ~9-10 cm on an adult). Then a linear map clipped to
[0, 1]: ``aperture = clip((ratio - closed) / (open - closed), 0, 1)`` with ``closed = 0.25``
(tips touching in a pinch still leave ~1-2 cm between the keypoints, i.e. 0.1-0.2 palms) and
``open = 1.1`` (a relaxed open hand spreads thumb and index tips about 1-1.3 palms apart).
0 = pinched / closed, 1 = fully open. A degenerate palm (length ~0) gives NaN, never a
silent value: callers must treat it as invalid.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mocap_ros.core.skeleton import HAND_KEYPOINT_NAMES
from mocap_ros.geometry.rotations import matrix_to_quat

FloatArray = NDArray[np.float64]

NUM_HAND_KEYPOINTS = len(HAND_KEYPOINT_NAMES)
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
# Keypoint chains per finger (wrist first where the first bone starts at the wrist).
FINGER_CHAINS: dict[str, tuple[int, ...]] = {
    "thumb": (1, 2, 3, 4),
    "index": (0, 5, 6, 7, 8),
    "middle": (0, 9, 10, 11, 12),
    "ring": (0, 13, 14, 15, 16),
    "pinky": (0, 17, 18, 19, 20),
}
FULL_CURL_RAD: dict[str, float] = {
    "thumb": math.radians(120.0),
    "index": math.radians(250.0), "middle": math.radians(250.0),
    "ring": math.radians(250.0), "pinky": math.radians(250.0),
}
APERTURE_CLOSED_RATIO = 0.25
APERTURE_OPEN_RATIO = 1.1
SIDES = ("left", "right")
_EPS = 1e-9


def _check(kp: ArrayLike) -> FloatArray:
    k = np.asarray(kp, dtype=np.float64)
    if k.ndim < 2 or k.shape[-2] != NUM_HAND_KEYPOINTS or k.shape[-1] not in (2, 3):
        raise ValueError(f"hand keypoints must have shape (..., {NUM_HAND_KEYPOINTS}, 2 or 3), "
                         f"got {k.shape}")
    return k


def palm_size(kp: ArrayLike) -> FloatArray:
    """|wrist - middle MCP| (..., ): the hand's scale, in the keypoints' unit."""
    k = _check(kp)
    return np.linalg.norm(k[..., 9, :] - k[..., 0, :], axis=-1)


def thumb_index_ratio(kp: ArrayLike) -> FloatArray:
    """|thumb tip - index tip| / palm size (...,); NaN for a degenerate palm."""
    k = _check(kp)
    palm = palm_size(k)
    d = np.linalg.norm(k[..., 4, :] - k[..., 8, :], axis=-1)
    return np.where(palm > _EPS, d / np.where(palm > _EPS, palm, 1.0), np.nan)


def grip_aperture(kp: ArrayLike, closed_ratio: float = APERTURE_CLOSED_RATIO,
                  open_ratio: float = APERTURE_OPEN_RATIO) -> FloatArray:
    """Grip aperture in [0, 1] (...,): 0 = thumb and index tips together, 1 = open (module
    doc); NaN when the palm is degenerate."""
    if not open_ratio > closed_ratio:
        raise ValueError(f"open_ratio ({open_ratio}) must exceed closed_ratio ({closed_ratio})")
    r = thumb_index_ratio(kp)
    return np.clip((r - closed_ratio) / (open_ratio - closed_ratio), 0.0, 1.0)


def _unit(v: FloatArray) -> tuple[FloatArray, FloatArray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > _EPS, n, 1.0), n[..., 0]


def bend_angles(kp: ArrayLike, finger: str) -> FloatArray:
    """Unsigned bend angles (radians) of one finger's joints (..., n): thumb MCP and IP;
    other fingers MCP, PIP, DIP. The MCP flexion of index..pinky is measured against the
    palm's long axis (wrist -> middle MCP) after removing the phalanx's component across the
    palm (index MCP -> pinky MCP), so spreading the fingers is not counted as curl.
    NaN where a bone has zero length."""
    k = _check(kp)
    chain = FINGER_CHAINS[finger]
    bones = np.stack([k[..., b, :] - k[..., a, :] for a, b in itertools.pairwise(chain)],
                     axis=-2)
    u, n = _unit(bones)
    bad = np.any(n <= _EPS, axis=-1, keepdims=True)
    if finger != "thumb":
        along, n_al = _unit(k[..., 9, :] - k[..., 0, :])
        across, n_ac = _unit(k[..., 17, :] - k[..., 5, :])
        prox = u[..., 1, :] - np.sum(u[..., 1, :] * across, -1, keepdims=True) * across
        prox, n_pr = _unit(prox)
        u = np.concatenate((along[..., None, :], prox[..., None, :], u[..., 2:, :]), axis=-2)
        bad = bad | ((n_al <= _EPS) | (n_ac <= _EPS) | (n_pr <= _EPS))[..., None]
    cos = np.clip(np.sum(u[..., :-1, :] * u[..., 1:, :], axis=-1), -1.0, 1.0)
    return np.where(bad, np.nan, np.arccos(cos))


def finger_curls(kp: ArrayLike) -> FloatArray:
    """Curl per finger (..., 5) in [0, 1], order ``FINGER_NAMES`` (module doc); NaN where a
    bone has zero length."""
    k = _check(kp)
    out = [np.clip(np.sum(bend_angles(k, f), axis=-1) / FULL_CURL_RAD[f], 0.0, 1.0)
           for f in FINGER_NAMES]
    return np.stack(out, axis=-1)


def palm_normal(kp: ArrayLike, side: str) -> FloatArray:
    """Unit normal out of the PALM (...,3) for a 'left' or 'right' hand (3D keypoints)."""
    k = _check(kp)
    if k.shape[-1] != 3:
        raise ValueError("palm_normal needs 3D keypoints")
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    n = np.cross(k[..., 5, :] - k[..., 0, :], k[..., 17, :] - k[..., 0, :])
    if side == "left":
        n = -n
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return n / np.where(norm > _EPS, norm, np.nan)


def palm_frame(kp: ArrayLike, side: str) -> FloatArray:
    """Rotation (..., 3, 3) whose columns are the hand axes (module doc: x along the hand,
    signed per side as SMPL's arm; y out of the back of the hand; z to the thumb side), in the
    keypoints' frame. NaN when the palm is degenerate (collinear wrist/MCPs)."""
    k = _check(kp)
    normal = palm_normal(k, side)  # validates side and 3D
    sign = 1.0 if side == "left" else -1.0
    along = k[..., 9, :] - k[..., 0, :]
    n_al = np.linalg.norm(along, axis=-1, keepdims=True)
    x = sign * along / np.where(n_al > _EPS, n_al, np.nan)
    dorsal = -normal
    y = dorsal - np.sum(dorsal * x, axis=-1, keepdims=True) * x
    n_y = np.linalg.norm(y, axis=-1, keepdims=True)
    y = y / np.where(n_y > _EPS, n_y, np.nan)
    z = np.cross(x, y)
    return np.stack((x, y, z), axis=-1)


def rotmat_to_quat_xyzw(R: ArrayLike) -> FloatArray:
    """(..., 3, 3) rotations -> (..., 4) quaternions (x, y, z, w) with w >= 0; NaN in, NaN out."""
    m = np.asarray(R, dtype=np.float64)
    flat = m.reshape(-1, 3, 3)
    out = np.full((len(flat), 4), np.nan)
    for i, r in enumerate(flat):
        if np.isfinite(r).all():
            out[i] = matrix_to_quat(r)
    return out.reshape(*m.shape[:-2], 4)
