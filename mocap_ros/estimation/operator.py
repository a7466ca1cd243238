"""One operator: lock on to the person who armed teleop and follow only that person.

Pure numpy + OpenCV (no rclpy, no torch, no model files). Three pieces:

* :class:`PersonCandidate` -- one person found in a frame: box, 12 body joints in 2D (and
  optionally 3D) in the :data:`CANONICAL_JOINTS` order, and the frame itself (for colour).
  Builders: :func:`candidate_from_landmarks` (MediaPipe BlazePose, e.g.
  ``mocap_ros.estimation.people.detect_people``), :func:`candidate_from_result` (a
  ``BodyPoseResult``), :func:`candidate_from_keypoints` (any keypoint format + index map).
* a person *signature* (:class:`Observation`, :class:`Signature`) with four cues:

  - **box continuity**: centre and size of the box against the last matched box, with a
    tolerance that grows with the number of frames since (:func:`continuity_score`);
  - **body proportions**: scale-free bone-length ratios (upper arm, forearm, thigh, shin,
    shoulder and hip width, each over the torso length; left/right pooled), from 3D joints
    when the candidate has them, else 2D, as the per-ratio MEDIAN over the first
    ``n_signature`` frames of the lock (:func:`bone_ratios`, :func:`body_score`);
  - **appearance**: HSV colour histograms of the torso (the shoulder-hip quadrilateral,
    shrunk towards its centre), the thighs and the head and hair (a square above the
    shoulders, :func:`head_polygon`), averaged over the same first frames, compared with
    the Bhattacharyya coefficient (:func:`region_histograms`, :func:`appearance_score`);
  - **texture** (issue 21: dark clothes all fall in the same few dark bins of the colour
    histograms): gradient orientations and uniform LBP codes of the torso warped to a
    square, on grey levels stretched to their own range, so a pattern, seams, a zip or a
    logo count and colour and brightness do not (:func:`texture_histogram`).

  The identity score in [0, 1] is the weighted geometric mean of body, appearance and
  texture where available (a missing cue is left out, not counted as 0 or 1); the match
  score is identity x continuity ** 0.25, so position can only lower it: a different person
  standing exactly where the operator stood still scores low, and a jump across the image
  is suspicious.
  The signature is frozen after ``n_signature`` frames so it cannot drift onto a bystander.
* :class:`OperatorLock` -- the state machine (``unlocked`` -> ``tracking`` <-> ``uncertain``
  -> ``operator_lost`` -> ``tracking``) and, without a lock, the stated selection policy
  (:func:`select_person`: ``largest``, ``center`` or ``region``).

What it can and cannot tell apart (docs/operator_lock.md; bench/operator_separation.py
measures it on the shared photo pack): it separates people who differ in clothing colour,
clothing texture, hair or clearly in build; two people of similar build in plain clothes of
the same colour and texture (a team in uniform; 1 of 20 ordered pairs of dark-clothed people
in the pack still scores over the threshold) score like the same person, and the lock then
follows whichever of them keeps box continuity. It is a safety interlock against accidental
switches, not identification.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

Box = np.ndarray  # (4,) float64 x, y, w, h pixels

CANONICAL_JOINTS: tuple[str, ...] = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
_J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
_TORSO_JOINTS = tuple(_J[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))


def _points(joints_2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2D joints as floats and which of them are known (finite)."""
    j = np.asarray(joints_2d, np.float64)
    return j, np.isfinite(j).all(-1)


def _torso_quad(j: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
    """Shoulders -> hips quadrilateral shrunk by 20 % (the clothing, not its edges); without
    the hips a square below the shoulders; None without both shoulders."""
    ls, rs, lh, rh = _TORSO_JOINTS
    if not (ok[ls] and ok[rs]):
        return None
    if ok[lh] and ok[rh]:
        quad = np.stack([j[ls], j[rs], j[rh], j[lh]])
    else:
        down = np.linalg.norm(j[ls] - j[rs])
        quad = np.stack([j[ls], j[rs], j[rs] + (0, down), j[ls] + (0, down)])
    return _shrink(quad, 0.2)
# BlazePose-33 landmark index of each canonical joint (person's left = landmark 11, 13, ...)
BLAZEPOSE_INDEX: tuple[int, ...] = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
# SMPL-24 joint index of each canonical joint (mocap_ros.core.skeleton.JOINT_NAMES)
SMPL24_INDEX: tuple[int, ...] = (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)

# Ratio features: (name, bones), each bone a pair of canonical joints; left/right bones of a
# feature are pooled. Every feature is divided by the torso length (shoulder -> hip, pooled).
_TORSO = (("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"))
RATIO_FEATURES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("upper_arm", (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"))),
    ("forearm", (("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"))),
    ("thigh", (("left_hip", "left_knee"), ("right_hip", "right_knee"))),
    ("shin", (("left_knee", "left_ankle"), ("right_knee", "right_ankle"))),
    ("shoulder_width", (("left_shoulder", "right_shoulder"),)),
    ("hip_width", (("left_hip", "right_hip"),)),
)
# 2D widths change with the body's turn (a side view has no shoulder width): weigh them less.
_RATIO_WEIGHTS_2D = np.array([1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
_RATIO_WEIGHTS_3D = np.ones(len(RATIO_FEATURES))

# Colour histogram layout: chromatic pixels (S and V high enough for hue to mean something)
# go to HUE_BINS x SAT_BINS bins; the rest (black, grey, white clothing) to VAL_BINS bins by
# brightness, so dark and white clothes are told apart instead of getting random hues.
HUE_BINS, SAT_BINS, VAL_BINS = 12, 3, 5
MIN_SAT, MIN_VAL = 50, 50
HIST_SIZE = HUE_BINS * SAT_BINS + VAL_BINS
MIN_REGION_PIXELS = 40

STATES = ("unlocked", "tracking", "uncertain", "operator_lost")
POLICIES = ("largest", "center", "region")


# --------------------------------------------------------------------------- candidates


def _as_box(b: Any) -> Box:
    box = np.asarray(b, np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"a box must be 4 finite numbers x, y, w, h with w, h > 0; got {b!r}")
    return box


@dataclass
class PersonCandidate:
    """One person in one frame. Missing joints are NaN rows."""

    box: Box  # (4,) x, y, w, h pixels
    joints_2d: np.ndarray  # (12, 2) pixels, CANONICAL_JOINTS order, NaN = not seen
    image: np.ndarray | None = None  # the frame, HxWx3 uint8 RGB (shared by a frame's people)
    joints_3d: np.ndarray | None = None  # (12, 3) metres, any frame, NaN = not seen

    def __post_init__(self) -> None:
        self.box = _as_box(self.box)
        j2 = np.asarray(self.joints_2d, np.float64)
        if j2.shape != (len(CANONICAL_JOINTS), 2):
            raise ValueError(f"joints_2d must be ({len(CANONICAL_JOINTS)}, 2), got {j2.shape}")
        self.joints_2d = j2
        if self.joints_3d is not None:
            j3 = np.asarray(self.joints_3d, np.float64)
            if j3.shape != (len(CANONICAL_JOINTS), 3):
                raise ValueError(
                    f"joints_3d must be ({len(CANONICAL_JOINTS)}, 3), got {j3.shape}")
            self.joints_3d = j3
        if self.image is not None:
            im = self.image
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"image must be HxWx3 uint8 RGB, got {im.dtype} {im.shape}")


def candidate_from_keypoints(box: Any, xy: Any, index: Sequence[int | None],
                             visibility: Any = None, min_visibility: float = 0.3,
                             image: np.ndarray | None = None, xyz: Any = None
                             ) -> PersonCandidate:
    """A candidate from keypoints in any format: ``index[k]`` is the row of ``xy`` (and
    ``xyz``) holding canonical joint k, or None when the format lacks it. Joints with
    ``visibility`` < ``min_visibility`` or non-finite coordinates become NaN."""
    xy = np.asarray(xy, np.float64)
    vis = None if visibility is None else np.asarray(visibility, np.float64)
    j2 = np.full((len(CANONICAL_JOINTS), 2), np.nan)
    j3 = None if xyz is None else np.full((len(CANONICAL_JOINTS), 3), np.nan)
    xyz_a = None if xyz is None else np.asarray(xyz, np.float64)
    for k, row in enumerate(index):
        if row is None or (vis is not None and vis[row] < min_visibility):
            continue
        if np.isfinite(xy[row]).all():
            j2[k] = xy[row]
        if j3 is not None and xyz_a is not None and np.isfinite(xyz_a[row]).all():
            j3[k] = xyz_a[row]
    return PersonCandidate(box=box, joints_2d=j2, image=image, joints_3d=j3)


def candidate_from_landmarks(box: Any, landmarks: Any, image: np.ndarray | None = None,
                             min_visibility: float = 0.3, use_world: bool = True
                             ) -> PersonCandidate:
    """A candidate from MediaPipe's :class:`~mocap_ros.estimation.detector.PoseLandmarks` (e.g. a
    ``PersonFound`` of ``detect_people``: ``candidate_from_landmarks(p.box, p.landmarks,
    rgb)``). ``use_world``: also take the metric world landmarks as 3D joints."""
    return candidate_from_keypoints(
        box, landmarks.image_xy, BLAZEPOSE_INDEX, landmarks.visibility, min_visibility,
        image, landmarks.world if use_world else None)


def candidate_from_result(result: Any, image: np.ndarray | None = None,
                          use_3d: bool = True) -> PersonCandidate:
    """A candidate from a valid ``BodyPoseResult`` (its ``bbox``, ``keypoints_2d`` and, with
    ``use_3d``, ``joints_cam``)."""
    return candidate_from_keypoints(
        result.bbox, result.keypoints_2d, SMPL24_INDEX, image=image,
        xyz=result.joints_cam if use_3d else None)


# --------------------------------------------------------------------------- cues


def _bone(j: np.ndarray, a: str, b: str) -> float:
    d = j[_J[a]] - j[_J[b]]
    return float(np.linalg.norm(d)) if np.isfinite(d).all() else math.nan


def _pooled(lengths: list[float], is_3d: bool) -> float:
    vals = [v for v in lengths if math.isfinite(v) and v > 0]
    if not vals:
        return math.nan
    # 2D: foreshortening only ever shortens a bone, so the longer side is the better
    # estimate; 3D: both sides are estimates of the same length, average them.
    return float(np.mean(vals)) if is_3d else float(max(vals))


def bone_ratios(joints: np.ndarray) -> np.ndarray:
    """(6,) log bone-length ratios (RATIO_FEATURES over the torso length) of one frame's
    (12, 2) or (12, 3) canonical joints; NaN where a bone or the torso is not seen.
    Logs, so that differences are relative and symmetric."""
    j = np.asarray(joints, np.float64)
    is_3d = j.shape[1] == 3
    torso = _pooled([_bone(j, a, b) for a, b in _TORSO], is_3d)
    out = np.full(len(RATIO_FEATURES), np.nan)
    if not math.isfinite(torso) or torso <= 1e-9:
        return out
    for k, (_, bones) in enumerate(RATIO_FEATURES):
        length = _pooled([_bone(j, a, b) for a, b in bones], is_3d)
        if math.isfinite(length):
            out[k] = math.log(length / torso)
    return out


def _shrink(poly: np.ndarray, factor: float) -> np.ndarray:
    c = poly.mean(0)
    return c + (poly - c) * (1.0 - factor)


def region_polygons(joints_2d: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Image polygons (float pixels) of the colour regions that the joints allow.

    ``torso``: the shoulder-hip quadrilateral shrunk by 20 % towards its centre (its edges
    touch arms and background; with the hips unseen, a box below the shoulders as tall as
    the shoulder width), joined (convex hull) with a band 0.2 x the spine length either side
    of the shoulder-centre -> hip-centre line, so a side view still has a torso region.
    ``thighs``: a band around each hip -> knee segment, 0.15 x its length either side, its
    ends trimmed by 15 %.
    """
    j, ok = _points(joints_2d)
    out: dict[str, list[np.ndarray]] = {}
    quad = _torso_quad(j, ok)
    if quad is not None:
        # seen from the side the quadrilateral collapses to a sliver (shoulders and hips
        # overlap): add a band around the spine line, 0.2 x its length either side
        top, bottom = (quad[0] + quad[1]) / 2, (quad[2] + quad[3]) / 2
        spine = bottom - top
        length = float(np.linalg.norm(spine))
        if length >= 4.0:
            n = np.array([-spine[1], spine[0]]) / length * 0.2 * length
            band = np.stack([top + n, top - n, bottom - n, bottom + n])
            quad = cv2.convexHull(np.concatenate([quad, band]).astype(np.float32)
                                  ).reshape(-1, 2).astype(np.float64)
        out["torso"] = [quad]
    bands = []
    for hip, knee in (("left_hip", "left_knee"), ("right_hip", "right_knee")):
        a, b = j[_J[hip]], j[_J[knee]]
        if not (ok[_J[hip]] and ok[_J[knee]]):
            continue
        d = b - a
        length = float(np.linalg.norm(d))
        if length < 4.0:
            continue
        n = np.array([-d[1], d[0]]) / length * 0.15 * length
        a2, b2 = a + 0.15 * d, b - 0.15 * d
        bands.append(np.stack([a2 + n, b2 + n, b2 - n, a2 - n]))
    if bands:
        out["thighs"] = bands
    head = head_polygon(j)
    if head is not None:
        out["head"] = [head]
    return out


def head_polygon(joints_2d: np.ndarray) -> np.ndarray | None:
    """The head and hair region (float pixels) from the shoulders alone (every keypoint
    format has them; not all have head points): a square of side 0.45 x the torso length
    (shoulder width where the hips are unseen), its centre 0.45 x the torso length above
    the shoulder centre along the body's up direction (hip centre -> shoulder centre; image
    up without the hips). Adult proportions: the head is ~0.45 torso lengths tall, the chin
    ~0.2 above the shoulder line. None without both shoulders."""
    j, ok = _points(joints_2d)
    ls, rs, lh, rh = _TORSO_JOINTS
    if not (ok[ls] and ok[rs]):
        return None
    top = (j[ls] + j[rs]) / 2
    up = np.array([0.0, -1.0])
    length = float(np.linalg.norm(j[ls] - j[rs]))
    if ok[lh] and ok[rh]:
        spine = top - (j[lh] + j[rh]) / 2
        if float(np.linalg.norm(spine)) >= 4.0:
            length = float(np.linalg.norm(spine))
            up = spine / length
    if length < 4.0:
        return None
    side = np.array([-up[1], up[0]])
    c = top + up * 0.45 * length
    h = 0.225 * length
    return np.stack([c + (up + side) * h, c + (up - side) * h, c - (up + side) * h,
                     c - (up - side) * h])


def _histogram(hsv: np.ndarray) -> np.ndarray:
    """Normalised HIST_SIZE histogram of (N, 3) OpenCV HSV uint8 pixels (H in 0..179)."""
    h, s, v = (hsv[:, i].astype(np.int64) for i in range(3))
    chroma = (s >= MIN_SAT) & (v >= MIN_VAL)
    hb = np.minimum(h * HUE_BINS // 180, HUE_BINS - 1)
    sb = np.minimum((s - MIN_SAT) * SAT_BINS // (256 - MIN_SAT), SAT_BINS - 1)
    vb = np.minimum(v * VAL_BINS // 256, VAL_BINS - 1)
    idx = np.where(chroma, hb * SAT_BINS + np.maximum(sb, 0), HUE_BINS * SAT_BINS + vb)
    hist = np.bincount(idx, minlength=HIST_SIZE).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def region_histograms(image: np.ndarray, joints_2d: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """HSV colour histograms (HIST_SIZE, sum 1) of the regions of :func:`region_polygons`
    that hold at least MIN_REGION_PIXELS pixels inside the image."""
    height, width = image.shape[:2]
    out: dict[str, np.ndarray] = {}
    for name, polys in region_polygons(joints_2d).items():
        pts = np.concatenate(polys)
        x0 = int(max(0, math.floor(pts[:, 0].min())))
        y0 = int(max(0, math.floor(pts[:, 1].min())))
        x1 = int(min(width, math.ceil(pts[:, 0].max()) + 1))
        y1 = int(min(height, math.ceil(pts[:, 1].max()) + 1))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        # large regions: every 2nd/3rd pixel is plenty for a 41-bin histogram
        step = max(1, int(math.sqrt((x1 - x0) * (y1 - y0) / 20000.0)))
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for p in polys:
            cv2.fillConvexPoly(mask, np.round(p - (x0, y0)).astype(np.int32), 1)
        crop = np.ascontiguousarray(image[y0:y1:step, x0:x1:step])
        sel = mask[::step, ::step].astype(bool)
        if sel.sum() < MIN_REGION_PIXELS:
            continue
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[sel]
        out[name] = _histogram(hsv)
    return out


TEXTURE_SIDE = 48  # px: the torso is resampled to this square before its texture is taken
ORIENT_BINS = 8
LBP_BINS = 10  # uniform LBP-8 codes by their number of set bits (0-8) + one non-uniform bin
TEXTURE_SIZE = ORIENT_BINS + LBP_BINS
TEXTURE_FLOOR = 0.96  # texture_score's floor (see there)
MIN_TEXTURE_FRAMES = 3  # signature frames before texture counts (its stability is measured)


def texture_histogram(image: np.ndarray, joints_2d: np.ndarray) -> np.ndarray | None:
    """Pattern of the torso's clothing, independent of its colour and brightness: the torso
    quadrilateral (:func:`region_polygons`, without the side band) warped to a
    TEXTURE_SIDE square with the shoulders on top (so scale and the body's lean do not
    matter), then, on its grey levels equalised to their own range, (1) a histogram of
    gradient orientations weighted by gradient magnitude (ORIENT_BINS, unsigned) and (2)
    a histogram of uniform LBP-8 codes. Each part sums to 0.5. None without a torso or when
    it lies mostly outside the image."""
    quad = _torso_quad(*_points(joints_2d))
    if quad is None:
        return None
    height, width = image.shape[:2]
    inside = (quad[:, 0] >= 0) & (quad[:, 0] < width) & (quad[:, 1] >= 0) & \
        (quad[:, 1] < height)
    if inside.sum() < 3 or cv2.contourArea(quad.astype(np.float32)) < 64.0:
        return None
    n = TEXTURE_SIDE - 1
    # the person's left shoulder is on the image's right for a person facing the camera:
    # map it to the right of the square
    dst = np.array([[n, 0], [0, 0], [0, n], [n, n]], np.float32)
    warp = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    patch = cv2.warpPerspective(grey, warp, (TEXTURE_SIDE, TEXTURE_SIDE),
                                flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    patch = patch.astype(np.float32)
    lo, hi = np.percentile(patch, (2, 98))
    patch = np.clip((patch - lo) / max(float(hi - lo), 4.0), 0.0, 1.0).astype(np.float32)
    gx = cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)[1:-1, 1:-1].ravel()
    ang = (np.arctan2(gy, gx)[1:-1, 1:-1].ravel() % np.pi)
    ob = np.minimum((ang / np.pi * ORIENT_BINS).astype(np.int64), ORIENT_BINS - 1)
    orient = np.bincount(ob, weights=mag, minlength=ORIENT_BINS)
    orient = orient / orient.sum() if orient.sum() > 1e-9 else np.full(ORIENT_BINS,
                                                                         1 / ORIENT_BINS)
    c = patch[1:-1, 1:-1]
    bits = []
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)):
        nb = patch[1 + dy:TEXTURE_SIDE - 1 + dy, 1 + dx:TEXTURE_SIDE - 1 + dx]
        bits.append(nb >= c + 0.02)  # a small margin: flat cloth is not a pattern
    b = np.stack(bits).astype(np.int64)
    ones = b.sum(0)
    transitions = np.abs(np.diff(np.concatenate([b, b[:1]]), axis=0)).sum(0)
    code = np.where(transitions <= 2, ones, LBP_BINS - 1).ravel()
    lbp = np.bincount(code, minlength=LBP_BINS).astype(np.float64)
    lbp /= max(lbp.sum(), 1.0)
    return np.concatenate([orient, lbp]) * 0.5


def texture_score(a: np.ndarray | None, b: np.ndarray | None, floor: float = TEXTURE_FLOOR
                  ) -> float | None:
    """Similarity in [0, 1] of two :func:`texture_histogram` results: the Bhattacharyya
    coefficient rescaled so that ``floor`` maps to 0 (different people's torsos on the
    shared photo pack: median 0.95; the same person re-seen: 0.99-1.0). None when either
    is missing."""
    if a is None or b is None:
        return None
    return float(np.clip((bhattacharyya(a, b) - floor) / (1.0 - floor), 0.0, 1.0))


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when either is empty)."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def box_center_size(box: Box) -> tuple[np.ndarray, float]:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2]), math.sqrt(box[2] * box[3])


def continuity_score(last: Box, box: Box, frames: int = 1, sigma_center: float = 0.35,
                     sigma_log_size: float = 0.25) -> float:
    """How plausibly ``box`` is ``last`` moved on by ``frames`` frames, in [0, 1]: Gaussian in
    the centre shift over the last box's size (sqrt(w h)) and in the log size ratio, both
    tolerances growing with sqrt(frames) (a random-walk motion model)."""
    c0, s0 = box_center_size(last)
    c1, s1 = box_center_size(box)
    g = math.sqrt(max(1, frames))
    dc = float(np.linalg.norm(c1 - c0)) / max(s0, 1.0) / (sigma_center * g)
    ds = math.log(max(s1, 1e-6) / max(s0, 1e-6)) / (sigma_log_size * g)
    return float(math.exp(-0.5 * (dc * dc + ds * ds)))


def body_score(a: np.ndarray, b: np.ndarray, is_3d: bool, sigma_2d: float = 0.15,
               sigma_3d: float = 0.12, min_features: int = 3,
               min_ratio_2d: float = 0.3) -> float | None:
    """Similarity in [0, 1] of two log-ratio vectors: the weighted MEAN of per-ratio
    Gaussians of their difference (a mean, not a product, so one badly measured bone cannot
    veto a match). In 2D, ratios under ``min_ratio_2d`` in either vector are left out: such a
    bone is strongly foreshortened and a few pixels of joint noise change its log ratio a
    lot. None when fewer than ``min_features`` ratios are usable in both."""
    ok = np.isfinite(a) & np.isfinite(b)
    if not is_3d:
        ok &= (np.where(ok, a, 0.0) >= math.log(min_ratio_2d)) & \
            (np.where(ok, b, 0.0) >= math.log(min_ratio_2d))
    if ok.sum() < min_features:
        return None
    w = (_RATIO_WEIGHTS_3D if is_3d else _RATIO_WEIGHTS_2D)[ok]
    sigma = sigma_3d if is_3d else sigma_2d
    per = np.exp(-0.5 * ((a[ok] - b[ok]) / sigma) ** 2)
    return float(np.sum(w * per) / np.sum(w))


_REGION_WEIGHTS = {"torso": 0.45, "thighs": 0.3, "head": 0.25}


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.clip(np.sum(np.sqrt(p * q)), 0.0, 1.0))


def appearance_score(a: dict[str, np.ndarray], b: dict[str, np.ndarray],
                     floor: float = 0.4) -> float | None:
    """Similarity in [0, 1] of two region-histogram sets: the region-weighted Bhattacharyya
    coefficient, rescaled so that ``floor`` (what unrelated clothing typically reaches: many
    regions share skin, shadow and background bins) maps to 0. None without a common
    region."""
    common = [r for r in a if r in b]
    if not common:
        return None
    w = np.array([_REGION_WEIGHTS.get(r, 0.5) for r in common])
    bc = float(np.sum(w * [bhattacharyya(a[r], b[r]) for r in common]) / np.sum(w))
    return float(np.clip((bc - floor) / (1.0 - floor), 0.0, 1.0))


@dataclass
class Observation:
    """The cues of one candidate in one frame."""

    box: Box
    ratios_2d: np.ndarray  # (6,) log ratios, NaN = unseen
    ratios_3d: np.ndarray | None  # (6,) or None without 3D joints
    hists: dict[str, np.ndarray]  # region -> histogram (empty without an image)
    texture: np.ndarray | None = None  # torso texture_histogram (None: no image / torso)


def observe(c: PersonCandidate) -> Observation:
    return Observation(
        box=c.box.copy(), ratios_2d=bone_ratios(c.joints_2d),
        ratios_3d=None if c.joints_3d is None else bone_ratios(c.joints_3d),
        hists={} if c.image is None else region_histograms(c.image, c.joints_2d),
        texture=None if c.image is None else texture_histogram(c.image, c.joints_2d))


@dataclass
class Signature:
    """A person's accumulated cues: per-ratio medians and mean histograms of the first
    ``n_frames`` observations (then frozen)."""

    n_frames: int
    _r2: list[np.ndarray] = field(default_factory=list)
    _r3: list[np.ndarray] = field(default_factory=list)
    _h: dict[str, list[np.ndarray]] = field(default_factory=dict)
    count: int = 0
    ratios_2d: np.ndarray = field(default_factory=lambda: np.full(len(RATIO_FEATURES), np.nan))
    ratios_3d: np.ndarray | None = None
    hists: dict[str, np.ndarray] = field(default_factory=dict)
    _t: list[np.ndarray] = field(default_factory=list)
    texture: np.ndarray | None = None
    # the least Bhattacharyya coefficient of one of its own frames' textures with their
    # mean: how stable this person's texture measures (None under MIN_TEXTURE_FRAMES)
    texture_self: float | None = None

    @property
    def frozen(self) -> bool:
        return self.count >= self.n_frames

    def add(self, obs: Observation) -> None:
        if self.frozen:
            return
        self.count += 1
        self._r2.append(obs.ratios_2d)
        if obs.ratios_3d is not None:
            self._r3.append(obs.ratios_3d)
        for r, h in obs.hists.items():
            self._h.setdefault(r, []).append(h)
        if obs.texture is not None:
            self._t.append(obs.texture)
            self.texture = np.mean(self._t, axis=0)
            if len(self._t) >= MIN_TEXTURE_FRAMES:
                self.texture_self = min(bhattacharyya(t, self.texture) for t in self._t)
        self.ratios_2d = _nanmedian(self._r2)
        self.ratios_3d = _nanmedian(self._r3) if self._r3 else None
        self.hists = {r: np.mean(hs, axis=0) for r, hs in self._h.items()}


def _nanmedian(rows: list[np.ndarray]) -> np.ndarray:
    a = np.stack(rows)
    out = np.full(a.shape[1], np.nan)
    for k in range(a.shape[1]):
        col = a[:, k][np.isfinite(a[:, k])]
        if len(col):
            out[k] = float(np.median(col))
    return out


@dataclass(frozen=True)
class MatchWeights:
    """Exponents of the weighted geometric mean (only available cues take part)."""

    body: float = 0.35
    appearance: float = 0.65
    texture: float = 0.5  # 0: texture left out (the signature before issue 21)
    continuity: float = 0.25  # exponent of the continuity factor (identity x cont ** this)


def identity_score(sig: Signature, obs: Observation, weights: MatchWeights = MatchWeights(),
                   sigma_2d: float = 0.15, sigma_3d: float = 0.12,
                   appearance_floor: float = 0.4, texture_floor: float = TEXTURE_FLOOR
                   ) -> tuple[float | None, dict[str, float]]:
    """Body + appearance similarity of an observation to a signature in [0, 1] (None when
    neither cue is available) and the per-cue scores (for diagnostics)."""
    cues: dict[str, float] = {}
    if sig.ratios_3d is not None and obs.ratios_3d is not None:
        b = body_score(sig.ratios_3d, obs.ratios_3d, True, sigma_2d, sigma_3d)
    else:
        b = body_score(sig.ratios_2d, obs.ratios_2d, False, sigma_2d, sigma_3d)
    if b is not None:
        cues["body"] = b
    a = appearance_score(sig.hists, obs.hists, appearance_floor)
    if a is not None:
        cues["appearance"] = a
    t = None
    if weights.texture > 0 and sig.texture_self is not None:
        # the cue's reliability, measured: the floor sits well under the least similarity
        # of the operator's own signature frames (a strong edge in the torso makes some
        # people's texture jitter-sensitive; a few frames underestimate the spread, hence
        # 3 x 1 - self + 0.02 under it), so it cannot reject the operator for being themselves
        spread = 1.0 - sig.texture_self
        floor = min(texture_floor, sig.texture_self - 2.0 * spread - 0.02)
        t = texture_score(sig.texture, obs.texture, floor)
    if t is not None:
        cues["texture"] = t
    wts = {"body": weights.body, "appearance": weights.appearance, "texture": weights.texture}
    return _geo_mean(cues, wts), cues


def _geo_mean(cues: dict[str, float], weights: dict[str, float]) -> float | None:
    if not cues:
        return None
    wsum = sum(weights[k] for k in cues)
    if wsum <= 0:
        return None
    log = sum(weights[k] * math.log(max(v, 1e-6)) for k, v in cues.items()) / wsum
    return float(math.exp(log))


# --------------------------------------------------------------------------- selection


def select_person(candidates: Sequence[PersonCandidate], policy: str = "largest",
                  image_shape: tuple[int, ...] | None = None, region: Any = None
                  ) -> int | None:
    """Index of the person to follow without a lock, or None when there is nobody (or, for
    ``region``, nobody inside it).

    ``largest``: the largest box area. ``center``: the box centre nearest the image centre
    (``image_shape`` (H, W, ...) needed, or the candidates' images). ``region``: the largest
    share of its own box inside ``region`` (x, y, w, h); ties and shares within 5 % go to
    the larger box; a candidate less than 25 % inside is not chosen.
    """
    if policy not in POLICIES:
        raise ValueError(f"selection policy {policy!r} is not one of {POLICIES}")
    if not candidates:
        return None
    areas = np.array([c.box[2] * c.box[3] for c in candidates])
    if policy == "largest":
        return int(np.argmax(areas))
    if policy == "center":
        if image_shape is None:
            img = next((c.image for c in candidates if c.image is not None), None)
            if img is None:
                raise ValueError("policy 'center' needs image_shape (or candidate images)")
            image_shape = img.shape
        h, w = image_shape[:2]
        d = [np.linalg.norm(box_center_size(c.box)[0] - (w / 2, h / 2)) for c in candidates]
        return int(np.argmin(d))
    if region is None:
        raise ValueError("policy 'region' needs a region (x, y, w, h)")
    r = _as_box(region)
    inside = []
    for c in candidates:
        b = c.box
        iw = max(0.0, min(b[0] + b[2], r[0] + r[2]) - max(b[0], r[0]))
        ih = max(0.0, min(b[1] + b[3], r[1] + r[3]) - max(b[1], r[1]))
        inside.append(iw * ih / (b[2] * b[3]))
    share = np.array(inside)
    if share.max() < 0.25:
        return None
    near = share >= share.max() - 0.05
    return int(np.argmax(np.where(near, areas, -1.0)))


# --------------------------------------------------------------------------- the lock


@dataclass
class OperatorLockConfig:
    """Parameters of :class:`OperatorLock` (the node's ``operator.*`` parameters)."""

    threshold: float = 0.6  # match score a frame needs to count as the operator
    # seconds since the last confirmed match after which a frame under threshold makes it
    # operator_lost (seconds, not frames: frame rates vary several fold with load)
    lost_after: float = 0.5
    n_confirm: int = 2  # consecutive frames over threshold to leave 'uncertain'
    n_reacquire: int = 5  # consecutive frames over threshold (same box track) -> tracking
    n_signature: int = 10  # frames averaged into the signature after lock()
    reacquire: bool = True  # False: once lost, only a new lock() (~/enable) resumes
    policy: str = "largest"  # selection without a lock: largest | center | region
    region: tuple[float, float, float, float] | None = None  # for policy "region"
    sigma_2d: float = 0.15  # body-ratio tolerance (log units), 2D joints
    sigma_3d: float = 0.12  # body-ratio tolerance (log units), 3D joints
    appearance_floor: float = 0.4  # Bhattacharyya coefficient that maps to appearance 0
    texture_floor: float = TEXTURE_FLOOR  # ... and to texture 0
    weights: MatchWeights = field(default_factory=MatchWeights)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not (math.isfinite(self.lost_after) and self.lost_after > 0.0):
            raise ValueError(f"lost_after must be > 0 seconds, got {self.lost_after}")
        for name in ("n_reacquire", "n_signature", "n_confirm"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} is not one of {POLICIES}")
        if self.policy == "region" and self.region is None:
            raise ValueError("policy 'region' needs region (x, y, w, h)")


@dataclass
class LockUpdate:
    """What :meth:`OperatorLock.update` decided for one frame (also kept as ``.last``)."""

    index: int | None  # the candidate to follow, or None (publish valid=false)
    score: float  # match of the best candidate with the locked signature (0 without a lock)
    state: str  # one of STATES
    track_id: int  # 0: nobody followed yet
    scores: list[float]  # match score per candidate (empty without a lock)
    cues: dict[str, float]  # the best candidate's per-cue scores
    reason: str  # "" when index is not None, else operator_lost / operator_uncertain /
    #              no_person / outside_region


class OperatorLock:
    """Follow one person. Feed every frame's candidates (all people found) to :meth:`update`.

    Without a lock (state ``unlocked``) the person is chosen by ``config.policy`` and given a
    track id that stays the same while the chosen box overlaps the previous one (IoU >= 0.3)
    -- so a consumer sees when the unlocked choice switches person.

    :meth:`lock` (teleop enabled) fixes the person: a new track id and a signature built over
    the next ``n_signature`` frames the person is matched in. Then, per frame:

    * the best-matching candidate with score >= threshold is followed (``tracking``),
      whoever else is in view (larger, nearer, more central);
    * no candidate >= threshold: nobody is followed (index None), state ``uncertain``; from
      ``uncertain`` the best candidate is followed again only after ``n_confirm``
      consecutive frames >= threshold, and a frame under threshold ``lost_after`` seconds or
      more after the last confirmed match (misses consecutive or not: a bystander flickering
      around the threshold does not reset it) makes it ``operator_lost``;
    * from ``operator_lost``, a candidate must match (>= threshold, identity cues only: the
      operator may come back anywhere) in ``n_reacquire`` consecutive frames, as one box
      track (each frame's box continuous with the previous one's), before it is followed
      again under the SAME track id; with ``reacquire=False`` only a new :meth:`lock` does.
    """

    def __init__(self, config: OperatorLockConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: seconds, the time of a frame given to :meth:`update` without ``t``."""
        self.config = config or OperatorLockConfig()
        self.clock = clock
        self._next_id = 1
        self.track_id = 0
        self.state = "unlocked"
        self.signature: Signature | None = None
        self._last_box: Box | None = None
        self._frames_since = 0  # frames since the operator was last matched
        self._matched_t: float | None = None  # time of the last confirmed match (tracking)
        self._confirm = 0  # consecutive frames over threshold while uncertain
        self._pending_box: Box | None = None
        self._pending_count = 0
        self._free_box: Box | None = None  # unlocked mode: last chosen box
        self.last: LockUpdate | None = None

    @property
    def locked(self) -> bool:
        return self.signature is not None

    def _new_id(self) -> int:
        tid = self._next_id
        self._next_id += 1
        return tid

    def lock(self, candidate: PersonCandidate, t: float | None = None) -> int:
        """Lock on to ``candidate`` (a person in the current frame, taken at ``t`` seconds on
        :attr:`clock`; None: now); returns the track id."""
        self.signature = Signature(self.config.n_signature)
        self.signature.add(observe(candidate))
        self.track_id = self._new_id()
        self.state = "tracking"
        self._last_box = candidate.box.copy()
        self._frames_since = 0
        self._matched_t = self.clock() if t is None else float(t)
        self._confirm = 0
        self._pending_box, self._pending_count = None, 0
        return self.track_id

    def lock_selected(self, candidates: Sequence[PersonCandidate],
                      image_shape: tuple[int, ...] | None = None) -> int | None:
        """Lock on to the person the selection policy picks; the chosen index or None."""
        i = select_person(candidates, self.config.policy, image_shape, self.config.region)
        if i is not None:
            self.lock(candidates[i])
        return i

    def unlock(self) -> None:
        """Drop the lock (teleop disabled): back to the selection policy."""
        self.signature = None
        self.state = "unlocked"
        self._free_box = None
        self.track_id = 0

    def score(self, candidate: PersonCandidate, with_continuity: bool = True
              ) -> tuple[float, dict[str, float]]:
        """Match score in [0, 1] of one candidate against the lock, and its cues."""
        if self.signature is None:
            raise RuntimeError("score() needs a lock (call lock() first)")
        return self._score(observe(candidate), with_continuity)

    def _score(self, obs: Observation, with_continuity: bool) -> tuple[float, dict[str, float]]:
        assert self.signature is not None
        cfg = self.config
        ident, cues = identity_score(self.signature, obs, cfg.weights, cfg.sigma_2d,
                                     cfg.sigma_3d, cfg.appearance_floor, cfg.texture_floor)
        cont = None
        if with_continuity and self._last_box is not None:
            cont = continuity_score(self._last_box, obs.box, self._frames_since + 1)
            cues["continuity"] = cont
        if ident is None:
            return (0.0 if cont is None else cont), cues
        if cont is None:
            return ident, cues
        # continuity only ever LOWERS the identity score: a bystander standing exactly
        # where the operator stood must not pass on position alone
        return float(ident * max(cont, 1e-6) ** cfg.weights.continuity), cues

    def update(self, candidates: Sequence[PersonCandidate],
               image_shape: tuple[int, ...] | None = None, t: float | None = None
               ) -> tuple[int | None, float, str]:
        """One frame: all people found in it -> (index to follow or None, match score, state).
        ``t``: the frame's time in seconds (default: ``clock()``). Details (track id,
        per-candidate scores, reason) in ``self.last``."""
        if self.signature is None:
            return self._update_unlocked(candidates, image_shape)
        cfg = self.config
        now = self.clock() if t is None else float(t)
        if self._matched_t is None:
            self._matched_t = now
        obs = [observe(c) for c in candidates]
        lost = self.state == "operator_lost"
        scored = [self._score(o, with_continuity=not lost) for o in obs]
        scores = [s for s, _ in scored]
        best = int(np.argmax(scores)) if scores else None
        best_score = scores[best] if best is not None else 0.0
        cues = scored[best][1] if best is not None else {}
        hit = best is not None and best_score >= cfg.threshold
        index: int | None = None
        reason = ""
        if not lost:
            if hit and self.state == "uncertain":
                # after a miss, one good frame is not enough: a bystander scoring around
                # the threshold would otherwise be followed on every other frame
                self._confirm += 1
                if self._confirm >= cfg.n_confirm:
                    self.state = "tracking"
            elif not hit:
                self._confirm = 0
                self.state = "operator_lost" if now - self._matched_t >= cfg.lost_after \
                    else "uncertain"
                self._pending_box, self._pending_count = None, 0
            if hit and self.state == "tracking":
                assert best is not None
                index = best
                self._matched_t = now
                self._confirm = 0
            elif self.state != "tracking":
                reason = "operator_lost" if self.state == "operator_lost" else \
                    "operator_uncertain"
        else:
            reason = "operator_lost"
            if hit and cfg.reacquire:
                assert best is not None
                box = obs[best].box
                same_track = self._pending_box is not None and \
                    continuity_score(self._pending_box, box) >= 0.2
                self._pending_count = self._pending_count + 1 if same_track else 1
                self._pending_box = box
                if self._pending_count >= cfg.n_reacquire:
                    index, reason = best, ""
                    self.state = "tracking"
                    self._matched_t = now
                    self._pending_box, self._pending_count = None, 0
            else:
                self._pending_box, self._pending_count = None, 0
        if index is not None:
            self._last_box = obs[index].box
            self._frames_since = 0
            self.signature.add(obs[index])
        else:
            self._frames_since += 1
        self.last = LockUpdate(index, float(best_score), self.state, self.track_id, scores,
                               cues, reason)
        return index, float(best_score), self.state

    def _update_unlocked(self, candidates: Sequence[PersonCandidate],
                         image_shape: tuple[int, ...] | None) -> tuple[int | None, float, str]:
        cfg = self.config
        index = select_person(candidates, cfg.policy, image_shape, cfg.region)
        reason = ""
        if index is None:
            reason = "outside_region" if candidates else "no_person"
            self._free_box = None
        else:
            box = candidates[index].box
            if self._free_box is None or box_iou(self._free_box, box) < 0.3:
                self.track_id = self._new_id()
            self._free_box = box.copy()
        self.last = LockUpdate(index, 0.0, "unlocked", self.track_id, [], {}, reason)
        return index, 0.0, "unlocked"
