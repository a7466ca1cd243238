"""The procedural body of the synthetic SMPL files: 6890 vertices and 13776 faces on
``skeleton.REST_JOINTS_APPROX``, one closed capsule (head) plus thick-walled tubes around
the bones; every joint the centre of a symmetric vertex ring; smplx's landmark vertices
where those landmarks would be."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mocap_ros.core.skeleton import NUM_JOINTS, PARENTS, REST_JOINTS_APPROX

SMPL_NUM_VERTS = 6890
SMPL_NUM_FACES = 13776
# Where SMPL's template puts the pelvis (about (0, -0.22, 0.03) in the real files, from smplx
# outputs at zero pose; approximate): code that assumes a pelvis at the origin should fail here
# as it would on the real model.
PELVIS_OFFSET = np.array([0.0, -0.22, 0.02])
# SPIN's left/right joint permutation (constants.SMPL_JOINTS_FLIP_PERM).
FLIP_PERM = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
GENDER_SCALE = {"neutral": (1.0, 1.0), "male": (1.04, 1.06), "female": (0.95, 0.95)}
ROOT_NO_PARENT = 4294967295  # uint32 -1, as the original kintree_table stores the root
@dataclass
class _Part:
    """One closed surface around a polyline of knots (local vertex indices)."""

    name: str
    verts: np.ndarray
    faces: np.ndarray
    centers: np.ndarray  # ring centre of each vertex (its axis point)
    rings: list[np.ndarray]  # local vertex indices of each ring, in order
    ring_centers: np.ndarray
    joint_rings: dict[int, np.ndarray]
    owners: tuple[int, ...]  # joints whose bones may skin this part
    mirror: np.ndarray  # local index of each vertex's mirror image (self-symmetric parts)
    poles: dict[str, int] = field(default_factory=dict)


@dataclass
class _Knot:
    pos: np.ndarray
    ru: float
    rw: float
    joint: int | None = None


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(int)
    for i in np.argsort(raw - out)[::-1][: total - out.sum()]:
        out[i] += 1
    return out


def _sweep(
    name: str,
    knots: list[_Knot],
    n_seg: int,
    n_main: int,
    caps: tuple[float, float],
    kind: str,
    ref: Iterable[float],
    owners: tuple[int, ...],
    n_cap: int = 3,
) -> _Part:
    """Rings along the knots' polyline, rounded ends; 'capsule' (genus 0) or 'pipe' (torus).

    A pipe is a thick-walled tube: outer wall, rounded end, a thin inner wall back to the
    start. Outside it looks like a capsule with a pinhole at each tip; topologically it is a
    torus, so F = 2V and pipes do not change the global face budget F = 2V - 4.
    """
    P = np.array([k.pos for k in knots], float)
    seg_len = np.linalg.norm(np.diff(P, axis=0), axis=1)
    interior = _largest_remainder(n_main - len(knots), seg_len)
    centers, radii, joints = [], [], []
    for s in range(len(knots) - 1):
        a, b = knots[s], knots[s + 1]
        for j in range(interior[s] + 1):
            t = j / (interior[s] + 1)
            centers.append((1 - t) * a.pos + t * b.pos)
            radii.append(((1 - t) * a.ru + t * b.ru, (1 - t) * a.rw + t * b.rw))
            joints.append(a.joint if j == 0 else None)
    centers.append(knots[-1].pos)
    radii.append((knots[-1].ru, knots[-1].rw))
    joints.append(knots[-1].joint)
    C = np.array(centers)
    R = np.array(radii)
    T = np.gradient(C, axis=0)
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    # Parallel transport keeps the rings untwisted along the path.
    U = np.zeros_like(C)
    u = np.asarray(ref, float) - np.dot(ref, T[0]) * T[0]
    for i in range(len(C)):
        u = u - np.dot(u, T[i]) * T[i]
        u /= np.linalg.norm(u)
        U[i] = u
    W = np.cross(T, U)

    phis = np.pi / 2 * np.arange(1, n_cap + 1) / (n_cap + 1)
    ring_c, ring_r, ring_u, ring_w, ring_j = [], [], [], [], []
    for phi in phis[::-1]:  # start cap, tip first
        ring_c.append(C[0] - T[0] * caps[0] * np.sin(phi))
        ring_r.append(R[0] * np.cos(phi))
        ring_u.append(U[0])
        ring_w.append(W[0])
        ring_j.append(None)
    for i in range(len(C)):
        ring_c.append(C[i])
        ring_r.append(R[i])
        ring_u.append(U[i])
        ring_w.append(W[i])
        ring_j.append(joints[i])
    for phi in phis:  # end cap
        ring_c.append(C[-1] + T[-1] * caps[1] * np.sin(phi))
        ring_r.append(R[-1] * np.cos(phi))
        ring_u.append(U[-1])
        ring_w.append(W[-1])
        ring_j.append(None)
    if kind == "pipe":  # inner wall: from the end tip back to the start tip, thin
        for src, scale in ((-1, 0.2), (0, 0.2)):
            ring_c.append(ring_c[src])
            ring_r.append(ring_r[src] * scale)
            ring_u.append(ring_u[src])
            ring_w.append(ring_w[src])
            ring_j.append(None)

    theta = 2 * np.pi * np.arange(n_seg) / n_seg
    cos, sin = np.cos(theta), np.sin(theta)
    verts, centers_v, rings, joint_rings = [], [], [], {}
    for i, (c, r, uu, ww, jj) in enumerate(
        zip(ring_c, ring_r, ring_u, ring_w, ring_j, strict=True)
    ):
        pts = c + np.outer(r[0] * cos, uu) + np.outer(r[1] * sin, ww)
        idx = np.arange(i * n_seg, (i + 1) * n_seg)
        verts.append(pts)
        centers_v.append(np.repeat(c[None], n_seg, axis=0))
        rings.append(idx)
        if jj is not None:
            joint_rings[jj] = idx
    V = np.concatenate(verts)
    Cv = np.concatenate(centers_v)
    k = np.arange(n_seg)
    k1 = (k + 1) % n_seg

    def band(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # (a_k, a_k+1, b_k+1), (a_k, b_k+1, b_k): outward for (u, w, tangent) right-handed
        return np.concatenate([np.stack([a[k], a[k1], b[k1]], 1), np.stack([a[k], b[k1], b[k]], 1)])

    n_rings = len(rings)
    pairs = [(i, i + 1) for i in range(n_rings - 1)]
    if kind == "pipe":
        pairs.append((n_rings - 1, 0))
    faces = [band(rings[a], rings[b]) for a, b in pairs]
    poles: dict[str, int] = {}
    mirror = np.concatenate([r[(-k) % n_seg] for r in rings])  # theta -> -theta
    if kind == "capsule":
        n = len(V)
        p0 = ring_c[0] - T[0] * caps[0] * (1 - np.sin(phis[-1]))
        p1 = ring_c[-1] + T[-1] * caps[1] * (1 - np.sin(phis[-1]))
        V = np.concatenate([V, p0[None], p1[None]])
        Cv = np.concatenate([Cv, p0[None], p1[None]])
        first, last = rings[0], rings[-1]
        faces.append(np.stack([np.full(n_seg, n), first[k1], first[k]], 1))
        faces.append(np.stack([np.full(n_seg, n + 1), last[k], last[k1]], 1))
        poles = {"start": n, "end": n + 1}
        mirror = np.concatenate([mirror, [n, n + 1]])
    return _Part(
        name,
        V,
        np.concatenate(faces),
        Cv,
        rings,
        np.array(ring_c),
        joint_rings,
        owners,
        mirror,
        poles,
    )


def _mirror_part(part: _Part, name: str) -> _Part:
    """The body's other side: x -> -x, faces re-wound, joint ids swapped left/right."""
    flip = np.array([-1.0, 1.0, 1.0])
    return _Part(
        name,
        part.verts * flip,
        part.faces[:, ::-1].copy(),
        part.centers * flip,
        part.rings,
        part.ring_centers * flip,
        {FLIP_PERM[j]: r for j, r in part.joint_rings.items()},
        tuple(FLIP_PERM[j] for j in part.owners),
        np.arange(len(part.verts)),
        dict(part.poles),
    )


@dataclass
class BodyGeometry:
    """The procedural model before pickling (float64 arrays, final vertex order)."""

    joints: np.ndarray  # (24, 3) rest joints = J_regressor @ v_template
    v_template: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    j_regressor: np.ndarray  # dense (24, 6890)
    j_regressor_extra: np.ndarray  # (9, 6890)
    vert_sym_idxs: np.ndarray
    radial: np.ndarray  # vertex minus its ring centre
    landmarks: dict[str, int]


_LANDMARK_IDS = {  # smplx VERTEX_IDS['smplh']: the vertices smplx reads as extra joints
    "nose": 332,
    "reye": 6260,
    "leye": 2800,
    "rear": 4071,
    "lear": 583,
    "rthumb": 6191,
    "rindex": 5782,
    "rmiddle": 5905,
    "rring": 6016,
    "rpinky": 6133,
    "lthumb": 2746,
    "lindex": 2319,
    "lmiddle": 2445,
    "lring": 2556,
    "lpinky": 2673,
    "LBigToe": 3216,
    "LSmallToe": 3226,
    "LHeel": 3387,
    "RBigToe": 6617,
    "RSmallToe": 6624,
    "RHeel": 6787,
}


def _solve_budget(base: dict[str, int], per_ring: dict[str, int], target: int) -> dict[str, int]:
    """Add rings to head (24 vertices each) and torso (32 each) to hit the vertex budget."""
    counts = dict(base)
    deficit = target - sum(per_ring[k] * counts[k] for k in counts) - 2  # 2 head poles
    unit_a, unit_b = per_ring["head"], per_ring["torso"]
    for a in range(unit_b):
        if (deficit - a * unit_a) % unit_b == 0:
            counts["head"] += a
            counts["torso"] += (deficit - a * unit_a) // unit_b
            return counts
    raise ValueError("vertex budget cannot be met with these ring sizes")


@functools.lru_cache(maxsize=4)
def body_geometry(gender: str = "neutral") -> BodyGeometry:
    """The procedural body (cached; arrays are read-only)."""
    if gender not in GENDER_SCALE:
        raise ValueError(f"gender must be one of {sorted(GENDER_SCALE)}, got {gender!r}")
    s, rs = GENDER_SCALE[gender]
    J = REST_JOINTS_APPROX.astype(np.float64) * s + PELVIS_OFFSET
    y = np.array([0.0, 1.0, 0.0])
    z = np.array([0.0, 0.0, 1.0])

    def K(pos: np.ndarray, ru: float, rw: float, joint: int | None = None) -> _Knot:  # noqa: N802
        return _Knot(np.asarray(pos, float), ru * rs * s, rw * rs * s, joint)

    toe = J[10] + s * np.array([0.0, -0.005, 0.07])
    heel = J[7] + s * np.array([0.0, -0.035, -0.045])
    fingertip = J[22] + s * np.array([0.085, 0.0, 0.0])
    head_top = J[15] + s * np.array([0.0, 0.07, -0.01])
    specs = {
        # name: (knots, segments per ring, caps (start, end), kind, reference, skinning joints)
        "torso": (
            [
                K(J[0] - s * 0.10 * y, 0.10, 0.15),
                K(J[0], 0.105, 0.155, 0),
                K(J[3], 0.10, 0.14, 3),
                K(J[6], 0.105, 0.145, 6),
                K(J[9], 0.11, 0.155, 9),
                K(J[0] + s * 0.42 * y, 0.10, 0.17),
                K(J[12], 0.05, 0.055, 12),
            ],
            32,
            (0.06, 0.02),
            "pipe",
            z,
            (0, 1, 2, 3, 6, 9, 12, 13, 14),
        ),
        "head": (
            [
                K(J[12], 0.048, 0.05),
                K(J[12] + s * np.array([0, 0.04, 0.01]), 0.05, 0.05),
                K(J[15], 0.095, 0.08, 15),
                K(head_top, 0.09, 0.075),
            ],
            24,
            (0.015, 0.06),
            "capsule",
            z,
            (12, 15),
        ),
        "leg_l": (
            [
                K(J[1], 0.085, 0.085, 1),
                K((J[1] + J[4]) / 2, 0.07, 0.07),
                K(J[4], 0.055, 0.055, 4),
                K(J[4] + 0.35 * (J[7] - J[4]), 0.055, 0.055),
                K(J[7], 0.038, 0.038, 7),
            ],
            16,
            (0.05, 0.03),
            "pipe",
            z,
            (0, 1, 4, 7),
        ),
        "foot_l": (
            [K(heel, 0.03, 0.035), K(J[10], 0.025, 0.045, 10), K(toe, 0.015, 0.04)],
            12,
            (0.03, 0.025),
            "pipe",
            y,
            (4, 7, 10),
        ),
        "arm_l": (
            [
                K(J[13], 0.05, 0.05, 13),
                K(J[16], 0.055, 0.055, 16),
                K(J[18], 0.042, 0.042, 18),
                K(J[20], 0.03, 0.025, 20),
                K(J[22], 0.045, 0.014, 22),
                K(fingertip, 0.035, 0.01),
            ],
            16,
            (0.03, 0.02),
            "pipe",
            z,
            (9, 13, 16, 18, 20, 22),
        ),
    }
    # Ring counts: head/torso absorb the remainder so the total is exactly 6890 vertices.
    extra_rings = {"pipe": 2 * 3 + 2, "capsule": 2 * 3}
    per_ring = {k: v[1] * (2 if k.endswith("_l") else 1) for k, v in specs.items()}
    base_main = {"torso": 45, "head": 18, "leg_l": 50, "foot_l": 10, "arm_l": 60}
    base_rings = {k: base_main[k] + extra_rings[specs[k][3]] for k in specs}
    rings_total = _solve_budget(base_rings, per_ring, SMPL_NUM_VERTS)
    parts: list[_Part] = []
    for key, (knots, n_seg, caps, kind, ref, owners) in specs.items():
        n_main = rings_total[key] - extra_rings[kind]
        part = _sweep(key, knots, n_seg, n_main, caps, kind, ref, owners)
        parts.append(part)
        if key.endswith("_l"):
            parts.append(_mirror_part(part, key[:-2] + "_r"))

    # Assemble.
    offsets = np.cumsum([0] + [len(p.verts) for p in parts])[:-1]  # first index of each part
    V = np.concatenate([p.verts for p in parts])
    F = np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)])
    centers = np.concatenate([p.centers for p in parts])
    assert len(V) == SMPL_NUM_VERTS and len(F) == SMPL_NUM_FACES, (len(V), len(F))
    sym = np.empty(len(V), np.int64)
    by_name = {p.name: (p, o) for p, o in zip(parts, offsets, strict=True)}
    for p, o in zip(parts, offsets, strict=True):
        if p.name.endswith(("_l", "_r")):
            _, oo = by_name[p.name[:-1] + ("r" if p.name.endswith("_l") else "l")]
            sym[o : o + len(p.verts)] = oo + np.arange(len(p.verts))
        else:
            sym[o : o + len(p.verts)] = o + p.mirror

    # J_regressor: each joint is the mean of one ring centred on it (exact by symmetry).
    jreg = np.zeros((NUM_JOINTS, len(V)))
    for p, o in zip(parts, offsets, strict=True):
        for j, ring in p.joint_rings.items():
            if jreg[j].any():
                continue  # joint 12: the torso's neck ring is used, not the head's
            jreg[j, o + ring] = 1.0 / len(ring)
    assert np.all(np.isclose(jreg.sum(1), 1.0)), "every joint needs a ring"

    weights = _skinning_weights(V, parts, offsets, J, toe, fingertip, head_top)
    extra = _extra_regressor(V, J, by_name, head_top)

    # Put the landmark vertices at the indices smplx reads them from.
    landmarks = _landmark_targets(J, toe, heel, fingertip, s)
    order = np.arange(len(V))
    pos = np.arange(len(V))
    taken: set[int] = set()
    for lname, (target, part_name) in landmarks.items():
        p, o = by_name[part_name]
        local = np.arange(o, o + len(p.verts))
        d = np.linalg.norm(V[local] - target, axis=1)
        for cand in local[np.argsort(d)]:
            if int(cand) not in taken:
                break
        taken.add(int(cand))
        want = _LANDMARK_IDS[lname]
        i, jpos = want, pos[cand]
        order[i], order[jpos] = order[jpos], order[i]
        pos[order[i]], pos[order[jpos]] = i, jpos
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    geo = BodyGeometry(
        joints=jreg @ V,
        v_template=V[order],
        faces=inv[F].astype(np.uint32),
        weights=weights[order],
        j_regressor=jreg[:, order],
        j_regressor_extra=extra[:, order],
        vert_sym_idxs=inv[sym[order]],
        radial=(V - centers)[order],
        landmarks={k: _LANDMARK_IDS[k] for k in landmarks},
    )
    for a in (
        geo.joints,
        geo.v_template,
        geo.faces,
        geo.weights,
        geo.j_regressor,
        geo.j_regressor_extra,
        geo.vert_sym_idxs,
        geo.radial,
    ):
        a.setflags(write=False)
    return geo


def _mirror_x(p: np.ndarray) -> np.ndarray:
    """Mirror image about the body's mid-plane x = PELVIS_OFFSET[0]."""
    out = np.array(p, dtype=float)
    out[..., 0] = 2 * PELVIS_OFFSET[0] - out[..., 0]
    return out


def _point_segment_distance(P: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((P - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(P - (a + t[:, None] * ab), axis=1)


def _skinning_weights(
    V: np.ndarray,
    parts: list[_Part],
    offsets: np.ndarray,
    J: np.ndarray,
    toe: np.ndarray,
    fingertip: np.ndarray,
    head_top: np.ndarray,
) -> np.ndarray:
    """LBS weights: soft-min over distances to the bones each joint rotates, 4 per vertex.

    A bone parent->child moves with the parent's rotation, so it is the parent's influence;
    the leaves (feet, head, hands) get their own short bones.
    """
    bones: list[tuple[int, np.ndarray, np.ndarray]] = [
        (PARENTS[j], J[PARENTS[j]], J[j]) for j in range(1, NUM_JOINTS)
    ]
    bones += [
        (10, J[10], toe),
        (11, J[11], _mirror_x(toe)),
        (15, J[15], head_top),
        (22, J[22], fingertip),
        (23, J[23], _mirror_x(fingertip)),
        (0, J[0], J[0] - np.array([0.0, 0.1, 0.0])),
    ]
    dist = np.full((len(V), NUM_JOINTS), np.inf)
    for owner, a, b in bones:
        dist[:, owner] = np.minimum(dist[:, owner], _point_segment_distance(V, a, b))
    allowed = np.zeros_like(dist, dtype=bool)
    for p, o in zip(parts, offsets, strict=True):
        allowed[o : o + len(p.verts), list(p.owners)] = True
    dist = np.where(allowed, dist, np.inf)
    tau = 0.02  # metres: how wide the blend across a joint is
    score = np.exp(-(dist - dist.min(axis=1, keepdims=True)) / tau)
    weakest = np.argsort(score, axis=1)[:, :-4]  # keep the 4 strongest, as SMPL's do
    np.put_along_axis(score, weakest, 0.0, axis=1)
    score = np.where(score > 1e-3, score, 0.0)
    return score / score.sum(axis=1, keepdims=True)


def _extra_regressor(
    V: np.ndarray, J: np.ndarray, by_name: dict[str, tuple[_Part, int]], head_top: np.ndarray
) -> np.ndarray:
    """SPIN's 9 extra joints (J_regressor_extra.npy rows, constants.JOINT_MAP 45..53)."""

    def ring(part: str, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, o = by_name[part]
        i = int(np.argmin(np.linalg.norm(p.ring_centers - target, axis=1)))
        idx = o + p.rings[i]
        return idx, np.full(len(idx), 1.0 / len(idx))

    def nearest(part: str, target: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        p, o = by_name[part]
        idx = o + np.argsort(np.linalg.norm(p.verts - target, axis=1))[:n]
        return idx, np.full(n, 1.0 / n)

    hp, ho = by_name["head"]
    rows = [
        ring("leg_r", J[2] + np.array([-0.02, -0.06, 0.0])),  # Right Hip
        ring("leg_l", J[1] + np.array([0.02, -0.06, 0.0])),  # Left Hip
        ring("head", J[12] + np.array([0.0, 0.03, 0.0])),  # Neck (LSP)
        (np.array([ho + hp.poles["end"]]), np.array([1.0])),  # Top of Head (LSP)
        ring("torso", J[0] + np.array([0.0, -0.03, 0.0])),  # Pelvis (MPII)
        ring("torso", J[12] + np.array([0.0, -0.05, 0.0])),  # Thorax (MPII)
        ring("torso", (J[3] + J[6]) / 2),  # Spine (H36M)
        nearest("head", J[15] + np.array([0.0, -0.07, 0.07]), 4),  # Jaw (H36M)
        ring("head", J[15] + np.array([0.0, 0.06, 0.0])),  # Head (H36M)
    ]
    out = np.zeros((9, len(V)))
    for r, (idx, w) in enumerate(rows):
        out[r, idx] = w
    return out


def _landmark_targets(
    J: np.ndarray, toe: np.ndarray, heel: np.ndarray, fingertip: np.ndarray, s: float
) -> dict[str, tuple[np.ndarray, str]]:
    toe_tip = toe + s * np.array([0.0, 0.0, 0.02])
    heel_tip = heel - s * np.array([0.0, 0.0, 0.03])
    tip = fingertip + s * np.array([0.015, 0.0, 0.0])
    out: dict[str, tuple[np.ndarray, str]] = {
        "nose": (J[15] + s * np.array([0.0, -0.01, 0.11]), "head"),
        "leye": (J[15] + s * np.array([0.035, 0.025, 0.09]), "head"),
        "reye": (J[15] + s * np.array([-0.035, 0.025, 0.09]), "head"),
        "lear": (J[15] + s * np.array([0.085, 0.0, 0.0]), "head"),
        "rear": (J[15] + s * np.array([-0.085, 0.0, 0.0]), "head"),
    }
    left = {
        "BigToe": (toe_tip + s * np.array([-0.02, 0.0, 0.0]), "foot"),
        "SmallToe": (toe_tip + s * np.array([0.025, 0.0, -0.02]), "foot"),
        "Heel": (heel_tip, "foot"),
        "thumb": (J[22] + s * np.array([0.03, 0.0, 0.05]), "arm"),
        "index": (tip + s * np.array([0.0, 0.0, 0.03]), "arm"),
        "middle": (tip + s * np.array([0.0, 0.0, 0.01]), "arm"),
        "ring": (tip + s * np.array([0.0, 0.0, -0.01]), "arm"),
        "pinky": (tip + s * np.array([-0.01, 0.0, -0.03]), "arm"),
    }
    for key, (target, part) in left.items():
        lname, rname = ("L" + key, "R" + key) if key[0].isupper() else ("l" + key, "r" + key)
        out[lname] = (target, part + "_l")
        out[rname] = (_mirror_x(target), part + "_r")
    return out


# ======================================================================================
# SMPL model content.


