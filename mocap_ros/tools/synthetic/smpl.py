"""SMPL model files (.pkl in the original protocol-2 layout, .npz), the extra joint
regressor and SPIN's mean parameters, all from the synthetic body and a seed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mocap_ros.core.skeleton import NUM_JOINTS, PARENTS
from mocap_ros.tools.synthetic.body import GENDER_SCALE, ROOT_NO_PARENT, body_geometry
from mocap_ros.tools.synthetic.pickle2 import ChumpyCh, CscMatrix, Py2Pickler


def smpl_arrays(seed: int = 0, gender: str = "neutral") -> dict[str, Any]:
    """All arrays of a synthetic SMPL model (the original .pkl's keys, dense, float64)."""
    geo = body_geometry(gender)
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(GENDER_SCALE).index(gender)]))
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

    kintree = np.array([[ROOT_NO_PARENT, *PARENTS[1:]], list(range(NUM_JOINTS))], np.int64)
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
        Py2Pickler(fh).dump(obj)
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

