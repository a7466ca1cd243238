"""The synthetic assets: real formats, sane content, deterministic, fast."""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch

from mocap_ros.assets.files import CHECKPOINT_NAME, SYNTHETIC_MARKER
from mocap_ros.core.skeleton import PARENTS, REST_JOINTS_APPROX
from mocap_ros.geometry.torch_rotations import rot6d_to_rotmat
from mocap_ros.tools.synthetic import body, hmr, pickle2, smpl


@pytest.fixture(scope="module")
def geo() -> body.BodyGeometry:
    return body.body_geometry("neutral")


def test_mesh_is_a_closed_oriented_surface_with_smpl_counts(geo: body.BodyGeometry) -> None:
    V, F = geo.v_template, geo.faces.astype(np.int64)
    assert V.shape == (6890, 3) and F.shape == (13776, 3) and geo.faces.dtype == np.uint32
    assert F.min() == 0 and F.max() == 6889 and len(np.unique(F)) == 6890
    directed = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    codes = directed[:, 0] * 6890 + directed[:, 1]
    assert len(np.unique(codes)) == len(codes)  # consistent winding: no edge used twice one way
    undirected = np.sort(directed, axis=1)
    _, counts = np.unique(undirected[:, 0] * 6890 + undirected[:, 1], return_counts=True)
    assert set(counts) == {2}  # closed 2-manifold
    tri = V[F]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert 0.04 < volume < 0.1  # m^3, outward normals; an adult is ~0.07
    height = V[:, 1].max() - V[:, 1].min()
    assert 1.6 < height < 1.9


def test_regressor_weights_symmetry_and_landmarks(geo: body.BodyGeometry) -> None:
    rest = REST_JOINTS_APPROX.astype(np.float64) + body.PELVIS_OFFSET
    np.testing.assert_allclose(geo.j_regressor @ geo.v_template, rest, atol=1e-12)
    assert np.all(geo.j_regressor >= 0)
    w = geo.weights
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1.0) and (w > 0).sum(1).max() <= 4
    # a vertex far out on the left forearm moves with the left elbow (18)
    fore = np.argmin(np.linalg.norm(geo.v_template - (rest[18] + rest[20]) / 2, axis=1))
    assert np.argmax(w[fore]) == 18
    sym = geo.vert_sym_idxs
    np.testing.assert_array_equal(sym[sym], np.arange(6890))
    np.testing.assert_allclose(geo.v_template[sym] * [-1, 1, 1], geo.v_template, atol=1e-12)
    v = geo.v_template
    assert v[332, 2] > rest[15, 2] + 0.05  # nose in front of the head joint
    assert v[2800, 0] > 0 > v[6260, 0]  # left eye on +x (body-left)
    assert v[3387, 2] < rest[7, 2] < v[3216, 2]  # left heel behind, big toe in front
    for tip in (2746, 2319, 2445, 2556, 2673):  # left fingertips beyond the left hand joint
        assert v[tip, 0] > rest[22, 0]
    ex = geo.j_regressor_extra
    assert ex.shape == (9, 6890) and np.allclose(ex.sum(1), 1.0)
    top_of_head = ex[3] @ v
    assert top_of_head[1] > v[:, 1].max() - 0.005  # the head's top pole


def test_content_is_deterministic_and_seed_and_gender_matter() -> None:
    a, b = smpl.smpl_arrays(0), smpl.smpl_arrays(0)
    for k in ("shapedirs", "posedirs", "v_template"):
        np.testing.assert_array_equal(a[k], b[k])
    c = smpl.smpl_arrays(1)
    assert not np.array_equal(a["shapedirs"][..., 6:], c["shapedirs"][..., 6:])
    np.testing.assert_array_equal(a["v_template"], c["v_template"])
    male, female = smpl.smpl_arrays(0, "male"), smpl.smpl_arrays(0, "female")
    h = {k: np.ptp(d["v_template"][:, 1]) for k, d in (("m", male), ("f", female), ("n", a))}
    assert h["f"] < h["n"] < h["m"]
    kt = a["kintree_table"]
    assert kt[0, 0] == 4294967295 and tuple(kt[0, 1:]) == PARENTS[1:]
    assert np.abs(a["posedirs"]).max() < 0.05 and np.abs(a["shapedirs"]).max() < 0.1


def test_py2_pickler_round_trips_and_writes_py2_opcodes() -> None:
    obj = {
        "s": "lbs",
        "n": [1, 300, 70000, -5, 2**40, None, True, 1.5],
        "t": (1, 2, 3, 4),
        "a": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "e": np.zeros((0, 3)),
        "set": {"x"},
        "big": np.arange(100, dtype=np.float64),
    }
    raw = pickle2.py2_pickle_dumps(obj)
    out = pickle.loads(raw, encoding="latin1")
    assert out["s"] == "lbs" and out["n"] == obj["n"] and out["t"] == obj["t"]
    assert out["set"] == {"x"}
    for k in ("a", "e", "big"):
        np.testing.assert_array_equal(out[k], obj[k])
        assert out[k].dtype == obj[k].dtype
    names = [op.name for op, _, _ in pickletools.genops(raw)]
    assert "BINUNICODE" not in names and "SHORT_BINSTRING" in names and "BINSTRING" in names
    with pytest.raises(TypeError):
        pickle2.py2_pickle_dumps({"o": object()})


def test_mean_params_match_spin_layout(synthetic_assets) -> None:
    with np.load(synthetic_assets.mean_params) as npz:
        assert set(npz.files) == {"pose", "shape", "cam"}
        assert npz["pose"].dtype == np.float32 and npz["cam"].dtype == np.float32
        assert npz["shape"].dtype == np.float64  # SPIN casts only this one to float32
        pose = torch.from_numpy(npz["pose"]).reshape(24, 6)
    R = rot6d_to_rotmat(pose)
    torch.testing.assert_close(R[0], torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    torch.testing.assert_close(R[1:], torch.eye(3).expand(23, 3, 3))


def test_synthetic_hmr_stays_near_the_mean(synthetic_assets) -> None:
    from mocap_ros.estimation.hmr.network import HMR
    from mocap_ros.io.checkpoint import load_hmr_checkpoint

    model = HMR()
    load_hmr_checkpoint(synthetic_assets.checkpoint, model)
    model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        xf = model.features(x)
        rotmat, betas, cam = model.forward(x)
    assert torch.isfinite(xf).all() and 0.05 < xf.abs().mean() < 20  # neither vanished nor blew up
    root = rotmat[:, 0]
    rx_pi = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    cos = ((root @ rx_pi.T).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    assert torch.all(cos > np.cos(np.radians(25)))  # root within 25 deg of upright-in-camera
    assert torch.all((cam[:, 0] - 0.9).abs() < 0.2) and betas.abs().max() < 1.0
    assert not torch.allclose(rotmat[0], rotmat[1])  # the output depends on the image


def test_asset_tree_layout_marker_and_timing(
    synthetic_assets_root: Path, synthetic_assets, synthetic_generation_seconds: float
) -> None:
    extra = synthetic_assets_root / "extra_data"
    assert synthetic_assets.root == extra
    assert synthetic_assets.checkpoint == (
        extra / "body_module" / "pretrained_weights" / CHECKPOINT_NAME
    )
    for name in (
        "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
        "basicModel_m_lbs_10_207_0_v1.0.0.pkl",
        "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
    ):
        assert (extra / "smpl" / name).stat().st_size > 30e6  # ~39 MB, like the originals
    assert (extra / "body_module" / "data_from_spin" / "J_regressor_extra.npy").is_file()
    assert "NOT REAL WEIGHTS" in (extra / SYNTHETIC_MARKER).read_text()
    ckpt_mb = synthetic_assets.checkpoint.stat().st_size / 1e6
    assert 100 < ckpt_mb < 120  # fp32 ResNet-50 HMR: the real file's model part
    assert synthetic_generation_seconds < 30  # ~2-3 s on 2 cores; loose bound for busy CI


def test_checkpoint_writer_is_deterministic_and_keeps_global_rng(
    tmp_path: Path, synthetic_assets
) -> None:
    from mocap_ros.io.checkpoint import _read_checkpoint

    # legacy torch files key storages by memory address, so compare contents, not bytes;
    # the zip variant with current numpy names must hold the same content
    rng_state = torch.random.get_rng_state()
    p = hmr.write_hmr_checkpoint(tmp_path / "again.pt", 0, legacy_format=False, numpy1_names=False)
    assert torch.equal(rng_state, torch.random.get_rng_state())
    assert p.read_bytes()[:2] == b"PK" and b"numpy._core.multiarray" in p.read_bytes()
    # the loader's own read: weights_only with the checked numpy reconstructors
    a = _read_checkpoint(Path(synthetic_assets.checkpoint), "cpu")
    b = _read_checkpoint(p, "cpu")
    assert a.keys() == b.keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    np.testing.assert_array_equal(a["dataset_perm"], b["dataset_perm"])
    assert a["optimizer"] == b["optimizer"] and a["optimizer"]["state"] == {}


def test_writers_accept_any_filename(tmp_path: Path) -> None:
    smpl.write_mean_params(tmp_path / "mp.weird")
    assert (tmp_path / "mp.weird").is_file() and not (tmp_path / "mp.weird.npz").exists()
    smpl.write_smpl_npz(tmp_path / "model.bin")
    assert (tmp_path / "model.bin").is_file()
