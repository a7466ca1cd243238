"""Synthetic FrankMocap assets in the real file formats. NOT real weights, NOT a real body model.

The licensed SMPL files and FrankMocap's checkpoint never exist on test machines, yet the
loaders must be exercised on the real formats. Everything here is deterministic from a seed:

* ``write_smpl_pkl``: the original SMPL ``.pkl`` format, byte-level like the Python 2
  ``cPickle`` protocol-2 files SMPL's ``save_model`` wrote: py2 ``str`` opcodes (so loading
  needs ``encoding='latin1'``), ``shapedirs`` as a ``chumpy.ch.Ch`` (GLOBAL ``chumpy.ch Ch`` +
  NEWOBJ + BUILD of its ``__dict__``), ``J_regressor``/``J_regressor_prior`` as
  ``scipy.sparse.csc csc_matrix``, numpy arrays as numpy 1.x ``numpy.core.multiarray
  _reconstruct``. Written by a small opcode writer below: nothing needs chumpy or scipy and no
  module is injected into ``sys.modules``.
* The model content is a procedural body on ``skeleton.REST_JOINTS_APPROX``: exactly 6890
  vertices and 13776 faces (smplx picks extra joints by vertex index, and 13776 = 2 * 6890 - 4
  is what a closed genus-0 surface with 6890 vertices has). It is one closed capsule (head)
  plus thick-walled tubes (topological tori, F = 2V) around the bones, so every edge has two
  faces. Every joint is the centre of a symmetric vertex ring, so ``J_regressor @ v_template``
  equals the rest joints to rounding. The 21 vertices smplx reads as nose/eyes/ears/toes/heels/
  fingertips sit where those landmarks would be.
* ``write_hmr_checkpoint``: ``mocap_ros.hmr.HMR`` with seeded weights in the SPIN/EFT saver's
  layout, written by ``torch.save`` in the pre-1.6 (non-zip) format with numpy 1.x global names,
  as a May 2020 file (torch < 1.6, numpy 1.x) is.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mocap_ros.assets import (
    CHECKPOINT_NAME,
    J_REGRESSOR_EXTRA_NAME,
    MEAN_PARAMS_NAME,
    PRETRAINED_DIR,
    SMPL_CANDIDATES,
    SMPL_DIR,
    SPIN_DATA_DIR,
    SYNTHETIC_MARKER,
    AssetPaths,
)
from mocap_ros.skeleton import NUM_JOINTS, PARENTS, REST_JOINTS_APPROX

SMPL_NUM_VERTS = 6890
SMPL_NUM_FACES = 13776
# Where SMPL's template puts the pelvis (about (0, -0.22, 0.03) in the real files, from smplx
# outputs at zero pose; approximate): code that assumes a pelvis at the origin should fail here
# as it would on the real model.
PELVIS_OFFSET = np.array([0.0, -0.22, 0.02])
# SPIN's left/right joint permutation (constants.SMPL_JOINTS_FLIP_PERM).
FLIP_PERM = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
_GENDER_SCALE = {"neutral": (1.0, 1.0), "male": (1.04, 1.06), "female": (0.95, 0.95)}
_ROOT_NO_PARENT = 4294967295  # uint32 -1, as the original kintree_table stores the root


# ======================================================================================
# A Python-2-style pickle writer (protocol 2), for the few types an SMPL file holds.


@dataclass
class ChumpyCh:
    """Written as a ``chumpy.ch.Ch`` whose array is ``x``."""

    x: np.ndarray


@dataclass
class CscMatrix:
    """Written as a scipy ``csc_matrix`` (old module path ``scipy.sparse.csc``)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> CscMatrix:
        cols, rows = np.nonzero(dense.T)  # column-major order, as CSC stores it
        counts = np.bincount(cols, minlength=dense.shape[1])
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
        return cls(
            dense[rows, cols].astype(np.float64),
            rows.astype(np.int32),
            indptr,
            (int(dense.shape[0]), int(dense.shape[1])),
        )


@dataclass
class PickledObject:
    """Written as an instance of ``module.name`` (NEWOBJ) whose BUILD state is ``state``.

    For tests that need other class paths (``scipy.sparse._csr csr_matrix``, a foreign class)
    without importing them.
    """

    module: str
    name: str
    state: dict[str, Any]


class _Py2Pickler:
    """Emits the opcodes Python 2's cPickle (protocol 2) would for our value types.

    Python 2 ``str`` -> SHORT_BINSTRING/BINSTRING (Python 3 decodes them with ``encoding``);
    ints -> BININT1/BININT2/BININT or text INT; globals are memoised (BINPUT/BINGET) as cPickle
    does; numpy arrays as numpy 1.x reduces them; new-style objects via NEWOBJ + BUILD.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._w = out.write
        self._memo: dict[tuple[str, str], int] = {}

    def dump(self, obj: Any) -> None:
        self._w(b"\x80\x02")
        self._save(obj)
        self._w(b".")

    def _put(self) -> int:
        idx = len(self._memo)
        self._w(b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx))
        return idx

    def _global(self, module: str, name: str) -> None:
        idx = self._memo.get((module, name))
        if idx is not None:
            self._w(b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx))
            return
        self._w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")
        self._memo[(module, name)] = self._put()

    def _str(self, raw: bytes) -> None:
        if len(raw) < 256:
            self._w(b"U" + bytes([len(raw)]) + raw)
        else:
            self._w(b"T" + struct.pack("<i", len(raw)))
            self._w(raw)

    def _int(self, v: int) -> None:
        if 0 <= v < 256:
            self._w(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            self._w(b"M" + struct.pack("<H", v))
        elif -(2**31) <= v < 2**31:
            self._w(b"J" + struct.pack("<i", v))
        else:
            self._w(b"I" + str(v).encode() + b"\n")

    def _tuple(self, items: tuple[Any, ...]) -> None:
        if not items:
            self._w(b")")
            return
        if len(items) > 3:
            self._w(b"(")
        for it in items:
            self._save(it)
        self._w({1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(items), b"t"))

    def _dtype(self, dt: np.dtype) -> None:
        # numpy 1.x: dtype(descr, 0, 1) + BUILD (3, endian, None, None, None, -1, -1, 0)
        self._global("numpy", "dtype")
        self._str(dt.str[1:].encode())
        self._w(b"K\x00K\x01\x87R(K\x03")
        self._str(dt.str[0].encode())
        self._w(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")

    def _ndarray(self, a: np.ndarray) -> None:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"cannot write dtype {a.dtype}")
        self._global("numpy.core.multiarray", "_reconstruct")
        self._global("numpy", "ndarray")
        self._w(b"K\x00\x85")
        self._str(b"b")
        self._w(b"\x87R(K\x01")
        self._tuple(tuple(int(s) for s in a.shape))
        self._dtype(a.dtype)
        self._w(b"\x89")  # is_fortran = False: data written C-ordered
        self._str(np.ascontiguousarray(a).tobytes())
        self._w(b"tb")

    def _object(self, module: str, name: str, state: dict[str, Any]) -> None:
        self._global(module, name)
        self._w(b")\x81")  # protocol 2: cls, empty args, NEWOBJ (copy_reg.__newobj__)
        self._save(state)
        self._w(b"b")

    def _save(self, obj: Any) -> None:
        if obj is None:
            self._w(b"N")
        elif obj is True or obj is False:
            self._w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, (int, np.integer)):
            self._int(int(obj))
        elif isinstance(obj, float):
            self._w(b"G" + struct.pack(">d", obj))
        elif isinstance(obj, str):
            self._str(obj.encode("latin1"))
        elif isinstance(obj, bytes):
            self._str(obj)
        elif isinstance(obj, tuple):
            self._tuple(obj)
        elif isinstance(obj, list):
            self._w(b"]")
            if obj:
                self._w(b"(")
                for it in obj:
                    self._save(it)
                self._w(b"e")
        elif isinstance(obj, (set, frozenset)):
            self._global("__builtin__", "set")
            self._save((sorted(obj),))
            self._w(b"R")
        elif isinstance(obj, dict):
            self._w(b"}")
            if obj:
                self._w(b"(")
                for k, v in obj.items():
                    self._save(k)
                    self._save(v)
                self._w(b"u")
        elif isinstance(obj, np.ndarray):
            self._ndarray(obj)
        elif isinstance(obj, ChumpyCh):
            # chumpy's Ch.__getstate__: __dict__ minus _parents/_cache.
            self._object(
                "chumpy.ch",
                "Ch",
                {
                    "x": np.asarray(obj.x, np.float64),
                    "_dirty_vars": {"x"},
                    "_itr": None,
                    "_depends_on_deps": {},
                },
            )
        elif isinstance(obj, PickledObject):
            self._object(obj.module, obj.name, obj.state)
        elif isinstance(obj, CscMatrix):
            self._object(
                "scipy.sparse.csc",
                "csc_matrix",
                {
                    "_shape": obj.shape,
                    "maxprint": 50,
                    "format": "csc",
                    "indices": obj.indices,
                    "indptr": obj.indptr,
                    "data": obj.data,
                },
            )
        else:
            raise TypeError(f"cannot write {type(obj).__name__}")


def py2_pickle_dumps(obj: Any) -> bytes:
    """Bytes of ``obj`` as Python 2's cPickle.dump(obj, f, -1) would write them."""
    buf = io.BytesIO()
    _Py2Pickler(buf).dump(obj)
    return buf.getvalue()


# ======================================================================================
# Procedural body mesh.


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
    if gender not in _GENDER_SCALE:
        raise ValueError(f"gender must be one of {sorted(_GENDER_SCALE)}, got {gender!r}")
    s, rs = _GENDER_SCALE[gender]
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


def smpl_arrays(seed: int = 0, gender: str = "neutral") -> dict[str, Any]:
    """All arrays of a synthetic SMPL model (the original .pkl's keys, dense, float64)."""
    geo = body_geometry(gender)
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(_GENDER_SCALE).index(gender)]))
    V = geo.v_template
    nv = len(V)
    radial = geo.radial
    rnorm = np.linalg.norm(radial, axis=1, keepdims=True)
    rdir = np.divide(radial, rnorm, out=np.zeros_like(radial), where=rnorm > 1e-9)
    pelvis = geo.joints[0]

    def smoothstep(t: np.ndarray) -> np.ndarray:
        t = np.clip(t, 0.0, 1.0)
        return t * t * (3 - 2 * t)

    up = V[:, 1] - pelvis[1]
    shapedirs = np.zeros((nv, 3, 10))
    shapedirs[:, :, 0] = 0.04 * (V - pelvis)  # stature: scale about the pelvis
    shapedirs[:, :, 1] = 0.12 * radial  # girth: away from the bone axes
    shapedirs[:, 1, 2] = 0.05 * np.maximum(up, 0.0)  # torso length
    shapedirs[:, 0, 3] = 0.06 * (V[:, 0] - pelvis[0]) * smoothstep((up - 0.25) / 0.2)  # shoulders
    shapedirs[:, 0, 4] = 0.08 * (V[:, 0] - pelvis[0]) * (1 - smoothstep((up + 0.2) / 0.3))  # hips
    shapedirs[:, 1, 5] = 0.05 * np.minimum(up, 0.0)  # leg length
    for b in range(6, 10):  # smooth random fields, ~6 mm per unit beta
        k = rng.normal(size=3)
        k *= rng.uniform(2.0, 6.0) / np.linalg.norm(k)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        shapedirs[:, :, b] = 0.006 * np.sin(V @ k + rng.uniform(0, 2 * np.pi))[:, None] * direction

    # Pose blend shapes: a joint's (R - I) entries bulge the vertices it skins, radially.
    coef = rng.normal(0.0, 0.01, size=(NUM_JOINTS - 1, 9))
    posedirs = np.zeros((nv, 3, (NUM_JOINTS - 1) * 9))
    for j in range(1, NUM_JOINTS):
        posedirs[:, :, 9 * (j - 1) : 9 * j] = (geo.weights[:, j : j + 1] * rdir)[:, :, None] * coef[
            j - 1
        ][None, None, :]

    kintree = np.array([[_ROOT_NO_PARENT, *PARENTS[1:]], list(range(NUM_JOINTS))], np.int64)
    jreg = CscMatrix.from_dense(np.asarray(geo.j_regressor))
    return {
        "J_regressor_prior": jreg,
        "f": np.array(geo.faces),
        "J_regressor": jreg,
        "kintree_table": kintree,
        "J": np.array(geo.joints),
        "weights_prior": np.array(geo.weights),
        "weights": np.array(geo.weights),
        "vert_sym_idxs": np.array(geo.vert_sym_idxs),
        "posedirs": posedirs,
        "pose_training_info": {
            "expid": "synthetic",
            "J_regressor_prior_wt": 10.0,
            "restpose_type": "t",
            "bs_style": "lbs",
            "gender": gender,
            "bs_type": "lrotmin",
        },
        "bs_style": "lbs",
        "v_template": np.array(geo.v_template),
        "shapedirs": shapedirs,
        "bs_type": "lrotmin",
    }


def write_smpl_pkl(
    path: str | os.PathLike[str],
    seed: int = 0,
    gender: str = "neutral",
    chumpy_keys: Iterable[str] = ("shapedirs",),
) -> Path:
    """An SMPL model file in the original format (see module docstring).

    ``chumpy_keys``: which arrays are stored as ``chumpy.ch.Ch``. SMPL's ``save_model`` keeps
    only ``shapedirs`` as chumpy (it ``np.asarray``s v_template, J, weights, posedirs), which is
    what dumps of the released files show; other keys can be added to test the loader.
    """
    arrays = smpl_arrays(seed, gender)
    ch = set(chumpy_keys)
    unknown = ch - set(arrays)
    if unknown:
        raise ValueError(f"no such keys to store as chumpy: {sorted(unknown)}")
    obj = {k: ChumpyCh(v) if k in ch else v for k, v in arrays.items()}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:
        _Py2Pickler(fh).dump(obj)
    return p


def write_smpl_npz(path: str | os.PathLike[str], seed: int = 0, gender: str = "neutral") -> Path:
    """The same model as smplx-style ``.npz`` (dense J_regressor, strings as 0-d arrays)."""
    arrays = smpl_arrays(seed, gender)
    out: dict[str, np.ndarray] = {}
    for k, v in arrays.items():
        if isinstance(v, CscMatrix):
            dense = np.zeros(v.shape)
            cols = np.repeat(np.arange(v.shape[1]), np.diff(v.indptr))
            dense[v.indices, cols] = v.data
            out[k] = dense
        elif isinstance(v, (np.ndarray, str)):
            out[k] = np.asarray(v)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:  # a file object: np.savez would append .npz to other names
        np.savez(fh, **out)
    return p


def write_j_regressor_extra(path: str | os.PathLike[str], gender: str = "neutral") -> Path:
    """SPIN's ``J_regressor_extra.npy``: (9, 6890) float64, rows summing to 1."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:
        np.save(fh, np.array(body_geometry(gender).j_regressor_extra))
    return p


# ======================================================================================
# Mean parameters and HMR checkpoint.


def mean_params_arrays() -> dict[str, np.ndarray]:
    """pose: 6D of identity for every joint but the root, which is turned 180 deg about x.

    HMR regresses in camera coordinates (y down, z away), so its mean body is SMPL's upright
    body rotated by pi about x. dtypes follow SPIN's ``hmr.py``, which casts only ``shape`` with
    ``.astype('float32')`` and concatenates ``pose``/``cam`` with float32 features as they are:
    pose/cam float32, shape float64 (inferred from that code; the file itself is not here).
    """
    six = np.tile(np.array([1, 0, 0, 1, 0, 0], np.float32), NUM_JOINTS)
    six[:6] = [1, 0, 0, -1, 0, 0]  # Rx(pi) = diag(1, -1, -1): first two columns, row-major
    shape = np.array([0.2, 0.3, -0.3, 0.35, 0.4, 0.03, 0.3, 0.24, 0.2, 0.3], np.float64) * 0.1
    return {"pose": six, "shape": shape, "cam": np.array([0.9, 0.0, 0.0], np.float32)}


def write_mean_params(path: str | os.PathLike[str]) -> Path:
    """SPIN's ``smpl_mean_params.npz`` (keys pose (144,), shape (10,), cam (3,))."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:
        np.savez(fh, **mean_params_arrays())
    return p


class _Numpy1NamesPickler(pickle._Pickler):
    """Pure-Python pickler that names numpy's array reconstructor as numpy 1.x did.

    Only used to make test checkpoints look like 2020 files (``numpy.core.multiarray``);
    NumPy >= 2 would write ``numpy._core.multiarray``. Everything else pickles as usual.
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # pragma: no cover - NumPy 1.x already writes the old name
            _reconstruct = None
        if _reconstruct is not None and obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


_NUMPY1_PICKLE_MODULE = types.SimpleNamespace(
    __name__="mocap_ros.synthetic.numpy1_pickle", Pickler=_Numpy1NamesPickler, dump=pickle.dump
)


def _init_hmr_weights(model: Any, gen: Any) -> None:
    """SPIN's init, drawn from ``gen``: convs N(0, sqrt(2/n)), heads xavier with gain 0.01."""
    import math

    import torch
    from torch import nn

    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.normal_(0.0, math.sqrt(2.0 / n), generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                # trained-looking affine parameters instead of exactly 1/0. The last BN of a
                # residual branch gets a small scale: with unit-scale branches the residual
                # sums grow block after block (features ~50 instead of ~1).
                scale = 0.2 if name.endswith("bn3") else 1.0
                m.weight.copy_(scale * (1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen)))
                m.bias.copy_(0.05 * scale * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)  # torch's default Linear init
                if name in ("decpose", "decshape", "deccam"):
                    xb = 0.01 * math.sqrt(6.0 / (m.in_features + m.out_features))
                    m.weight.uniform_(-xb, xb, generator=gen)
                    # small: the regressor should stay near the mean pose it starts from
                    m.bias.uniform_(-0.1 * bound, 0.1 * bound, generator=gen)
                else:
                    m.weight.uniform_(-bound, bound, generator=gen)
                    m.bias.uniform_(-bound, bound, generator=gen)


def _calibrate_batchnorm(model: Any, gen: Any, batch: int = 2) -> None:
    """Set BN running statistics from a forward pass over seeded smooth-noise images.

    With statistics that match the activations, every BN output has unit scale in eval mode,
    so the 50 layers neither explode nor vanish (N(0,1) initial statistics would).
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    coarse = torch.randn(batch, 3, 14, 14, generator=gen)
    img = F.interpolate(coarse, size=(224, 224), mode="bilinear", align_corners=False)
    img = img + 0.3 * torch.randn(batch, 3, 224, 224, generator=gen)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model.features(img)
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def build_synthetic_hmr(seed: int = 0, mean_params: dict[str, np.ndarray] | None = None) -> Any:
    """``mocap_ros.hmr.HMR`` with deterministic synthetic weights (global RNG untouched)."""
    import torch

    from mocap_ros.hmr import HMR

    mp = mean_params if mean_params is not None else mean_params_arrays()
    with torch.random.fork_rng(devices=[]):  # nn layers' default init draws from the global RNG
        model = HMR(mp["pose"], mp["shape"], mp["cam"])
    gen = torch.Generator().manual_seed(seed)
    _init_hmr_weights(model, gen)
    _calibrate_batchnorm(model, gen)
    return model


def write_hmr_checkpoint(
    path: str | os.PathLike[str],
    seed: int = 0,
    mean_params_path: str | os.PathLike[str] | None = None,
    *,
    legacy_format: bool = True,
    numpy1_names: bool = True,
    dataset_size: int = 10_000,
) -> Path:
    """A checkpoint in the SPIN/EFT ``CheckpointSaver`` layout, with synthetic HMR weights.

    ``{'model', 'optimizer', 'epoch', 'batch_idx', 'batch_size', 'dataset_perm' (numpy int64),
    'total_step_count'}``. The optimizer entry is a fresh Adam ``state_dict()`` (empty
    ``state``, SPIN's lr 5e-5): a trained one holds two moment tensors per parameter, tripling
    the file for data inference never reads. ``legacy_format``: torch's pre-1.6 non-zip format
    (the May 2020 file predates torch 1.6); ``numpy1_names``: name numpy's reconstructor as
    numpy 1.x did. The model weights are full fp32 (~100 MB, like the real file's model part).
    """
    import torch

    from mocap_ros.checkpoint import load_mean_params

    mp = load_mean_params(mean_params_path) if mean_params_path else mean_params_arrays()
    model = build_synthetic_hmr(seed, mp)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5, weight_decay=0)
    ckpt = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": 51,
        "batch_idx": 0,
        "batch_size": 64,
        "dataset_perm": np.random.default_rng(seed).permutation(dataset_size).astype(np.int64),
        "total_step_count": 46582 + seed,
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        ckpt,
        p,
        pickle_module=_NUMPY1_PICKLE_MODULE if numpy1_names else pickle,
        _use_new_zipfile_serialization=not legacy_format,
    )
    return p


# ======================================================================================
# The whole extra_data/ tree.

_MARKER_TEXT = """\
SYNTHETIC ASSETS - NOT REAL WEIGHTS, NOT A REAL BODY MODEL.

Generated by mocap_ros.synthetic (seed {seed}) in FrankMocap's extra_data/ layout and in the
real file formats, so that the loaders and the pipeline can be tested without the licensed
SMPL files or FrankMocap's checkpoint. The network weights are random: its output is a body
near the mean pose whatever the image shows. The SMPL files hold a procedural body.
Replace this folder with the real assets (`mocap-ros assets fetch`, SMPL from
https://smpl.is.tue.mpg.de) for real use.
"""


def write_synthetic_assets(
    root: str | os.PathLike[str],
    seed: int = 0,
    genders: Iterable[str] = ("neutral", "male", "female"),
) -> AssetPaths:
    """Write FrankMocap's ``extra_data/`` under ``root`` with synthetic files; their paths.

    ``root`` plays FrankMocap's repo root: files go to ``root/extra_data/...``; a
    ``SYNTHETIC.txt`` marker goes into both ``root`` and ``root/extra_data``.
    """
    extra = Path(root) / "extra_data"
    spin = extra / SPIN_DATA_DIR
    mean = write_mean_params(spin / MEAN_PARAMS_NAME)
    jre = write_j_regressor_extra(spin / J_REGRESSOR_EXTRA_NAME)
    ckpt = write_hmr_checkpoint(extra / PRETRAINED_DIR / CHECKPOINT_NAME, seed, mean)
    smpl_paths = {
        g: write_smpl_pkl(extra / SMPL_DIR / SMPL_CANDIDATES[g][0], seed, g) for g in genders
    }
    # marker in extra_data/ and in the root that plays FrankMocap's repo (both are looked at)
    for folder in (extra, Path(root)):
        (folder / SYNTHETIC_MARKER).write_text(_MARKER_TEXT.format(seed=seed))
    neutral = smpl_paths.get("neutral") or next(iter(smpl_paths.values()))
    return AssetPaths(
        checkpoint=ckpt, mean_params=mean, smpl_model=neutral, j_regressor_extra=jre, root=extra
    )
