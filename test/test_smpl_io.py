"""SMPL/SMPL-X loading without chumpy: real formats, restricted unpickling, clear errors."""

from __future__ import annotations

import os
import pickle
import pickletools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mocap_ros.core.skeleton import REST_JOINTS_APPROX
from mocap_ros.io import smpl_file as smpl_io
from mocap_ros.io.smpl_file import ModelFileError, UnsafeModelFileError, load_smpl_file
from mocap_ros.tools.synthetic.body import PELVIS_OFFSET
from mocap_ros.tools.synthetic.pickle2 import CscMatrix, PickledObject, py2_pickle_dumps
from mocap_ros.tools.synthetic.smpl import smpl_arrays, write_smpl_npz, write_smpl_pkl


@pytest.fixture(scope="module")
def neutral_data(synthetic_assets) -> dict:
    return load_smpl_file(synthetic_assets.smpl_model)


def _globals_in(raw: bytes) -> set[str]:
    return {str(arg) for op, arg, _ in pickletools.genops(raw) if op.name in ("GLOBAL", "INST")}


def test_pkl_stream_is_a_python2_chumpy_scipy_pickle(synthetic_assets) -> None:
    raw = Path(synthetic_assets.smpl_model).read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, as cPickle.dump(..., -1) in Python 2
    assert _globals_in(raw) == {
        "chumpy.ch Ch",
        "scipy.sparse.csc csc_matrix",
        "numpy.core.multiarray _reconstruct",
        "numpy ndarray",
        "numpy dtype",
        "__builtin__ set",
    }
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    # Python 2 str opcodes (why encoding='latin1' is needed), objects via NEWOBJ + BUILD
    assert {"SHORT_BINSTRING", "BINSTRING", "NEWOBJ", "BUILD"} <= ops
    assert not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "STACK_GLOBAL"}
    assert b"cchumpy.ch\nCh\n" in raw and b"cscipy.sparse.csc\ncsc_matrix\n" in raw


def test_loads_every_key_as_dense_numpy(neutral_data) -> None:
    d = neutral_data
    ref = smpl_arrays(0, "neutral")
    assert set(d) == {k for k in ref if k != "pose_training_info"}
    assert d["bs_type"] == "lrotmin" and d["bs_style"] == "lbs"
    assert d["v_template"].shape == (6890, 3) and d["f"].shape == (13776, 3)
    assert d["f"].dtype == np.uint32 and d["kintree_table"][0, 0] == 4294967295
    np.testing.assert_array_equal(d["shapedirs"], ref["shapedirs"])  # was a chumpy Ch
    assert d["shapedirs"].shape == (6890, 3, 10) and d["shapedirs"].dtype == np.float64
    assert d["J_regressor"].shape == (24, 6890)  # was a csc_matrix
    np.testing.assert_allclose(d["J_regressor"].sum(1), 1.0)
    np.testing.assert_array_equal(d["J_regressor"], d["J_regressor_prior"])
    for v in d.values():
        assert isinstance(v, str) or v.dtype.kind in "uif"


def test_joint_regressor_reproduces_rest_joints(neutral_data) -> None:
    rest = REST_JOINTS_APPROX.astype(np.float64) + PELVIS_OFFSET
    np.testing.assert_allclose(
        neutral_data["J_regressor"] @ neutral_data["v_template"], rest, atol=1e-12
    )
    np.testing.assert_allclose(neutral_data["J"], rest, atol=1e-12)


def test_smplx_builds_from_data_struct_and_fk_at_zero_pose_gives_rest_joints(
    synthetic_assets, neutral_data
) -> None:
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    struct = smpl_io.smpl_data_struct(synthetic_assets.smpl_model)
    model = smplx.SMPL(
        model_path=str(synthetic_assets.smpl_model), data_struct=struct, create_transl=False
    )
    with torch.no_grad():
        out = model()
    joints = out.joints[0].numpy()
    assert joints.shape == (45, 3)
    np.testing.assert_allclose(joints[:24], neutral_data["J"], atol=1e-5)
    np.testing.assert_allclose(out.vertices[0].numpy(), neutral_data["v_template"], atol=1e-6)
    # smplx's extra joints are vertices by index: nose 332 is in front of the head joint
    np.testing.assert_allclose(joints[24], neutral_data["v_template"][332], atol=1e-6)
    assert joints[24, 2] > neutral_data["J"][15, 2] + 0.05
    with torch.no_grad():  # a bent left shoulder lowers the left elbow
        pose = torch.zeros(1, 69)
        pose[0, 15 * 3 + 2] = -1.0
        bent = model(body_pose=pose).joints[0].numpy()
    assert bent[18, 1] < joints[18, 1] - 0.1
    np.testing.assert_allclose(bent[:18], joints[:18], atol=1e-5)


def test_npz_equals_pkl(tmp_path: Path, neutral_data) -> None:
    npz = load_smpl_file(write_smpl_npz(tmp_path / "SMPL_NEUTRAL.npz", seed=0))
    assert set(npz) == set(neutral_data)
    for k, v in neutral_data.items():
        if isinstance(v, str):
            assert npz[k] == v
        else:
            np.testing.assert_array_equal(npz[k], v, err_msg=k)


def test_more_chumpy_keys_and_renamed_file(tmp_path: Path, neutral_data) -> None:
    path = write_smpl_pkl(
        tmp_path / "SMPL_NEUTRAL.pkl",
        seed=0,
        chumpy_keys=("shapedirs", "v_template", "posedirs", "weights", "J"),
    )
    assert _globals_in(path.read_bytes()) >= {"chumpy.ch Ch"}
    d = load_smpl_file(path)
    for k in ("v_template", "posedirs", "weights", "J", "shapedirs"):
        np.testing.assert_array_equal(d[k], neutral_data[k])


def test_select_csr_new_scipy_paths_and_protocol0(tmp_path: Path) -> None:
    base = np.arange(24.0).reshape(2, 3, 4)
    idxs = np.array([5, 0, 7, 3, 3, 11])
    dense = np.array([[0.0, 2.0, 0.0], [1.5, 0.0, 3.0]])
    csr_state = {
        "_shape": (2, 3),
        "data": np.array([2.0, 1.5, 3.0]),
        "indices": np.array([1, 0, 2], np.int32),
        "indptr": np.array([0, 1, 3], np.int32),
    }
    obj = {
        "sel": PickledObject(
            "chumpy.reordering",
            "Select",
            {
                "a": PickledObject("chumpy.ch", "Ch", {"x": base}),
                "idxs": idxs,
                "preferred_shape": (2, 3),
                "_dirty_vars": set(),
                "_itr": None,
                "_depends_on_deps": {},
            },
        ),
        "csr": PickledObject("scipy.sparse._csr", "csr_matrix", csr_state),
        "csc_new": PickledObject(
            "scipy.sparse._csc",
            "csc_matrix",
            {**vars(CscMatrix.from_dense(dense)), "_shape": (2, 3)},
        ),
    }
    p = tmp_path / "odd.pkl"
    p.write_bytes(py2_pickle_dumps(obj))
    d = load_smpl_file(p, validate=False)
    np.testing.assert_array_equal(d["sel"], base.ravel()[idxs].reshape(2, 3))
    np.testing.assert_array_equal(d["csr"], dense)
    np.testing.assert_array_equal(d["csc_new"], dense)
    # protocol 0: copy_reg._reconstructor(Ch, object, None) + BUILD, x as a list
    p0 = tmp_path / "p0.pkl"
    p0.write_bytes(
        b"(dp0\nS'shapedirs'\np1\nccopy_reg\n_reconstructor\np2\n(cchumpy.ch\nCh\n"
        b"p3\nc__builtin__\nobject\np4\nNtp5\nRp6\n(dp7\nS'x'\np8\n(lp9\nF1.5\n"
        b"aF2.5\nasbs."
    )
    np.testing.assert_array_equal(load_smpl_file(p0, validate=False)["shapedirs"], [1.5, 2.5])


def test_real_scipy_pickles_load_without_scipy(tmp_path: Path) -> None:
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    for fmt in ("csc", "csr"):
        m = sparse.random(24, 50, density=0.1, format=fmt, random_state=1)
        p = tmp_path / f"{fmt}.pkl"
        for proto in (2, 5):
            p.write_bytes(pickle.dumps({"J_regressor": m, "v": rng.normal(size=3)}, protocol=proto))
            d = load_smpl_file(p, validate=False)
            np.testing.assert_array_equal(d["J_regressor"], m.toarray())


class _Evil:
    def __init__(self, func: object, args: tuple) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


@pytest.mark.parametrize(
    "kind", ["os.system", "subprocess.Popen", "py2_name_commands.Popen", "nested_in_chumpy_state"]
)
def test_refuses_code_execution_and_runs_nothing(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    fix_imports = False
    if kind == "subprocess.Popen":
        evil, name = _Evil(subprocess.Popen, (["touch", str(marker)],)), "subprocess.Popen"
    elif kind == "py2_name_commands.Popen":
        # Python 3's protocol-2 pickler writes subprocess under its Python 2 name
        evil, name = _Evil(subprocess.Popen, (["touch", str(marker)],)), "commands.Popen"
        fix_imports = True
    else:
        evil, name = _Evil(os.system, (f"touch {marker}",)), f"{os.system.__module__}.system"
    if kind == "nested_in_chumpy_state":
        # the payload sits where a Ch's array would: {'shapedirs': Ch(x=<payload>)}
        body = pickle.dumps(evil, protocol=2, fix_imports=False)[2:-1]  # no PROTO, STOP
        raw = b"\x80\x02}(U\x09shapedirscchumpy.ch\nCh\n)\x81}(U\x01x" + body + b"ubu."
    else:
        raw = pickle.dumps(
            {"v_template": np.zeros((3, 3)), "evil": evil}, protocol=2, fix_imports=fix_imports
        )
    p = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    p.write_bytes(raw)
    with pytest.raises(UnsafeModelFileError) as info:
        load_smpl_file(p)
    assert name in str(info.value) and str(p) in str(info.value)
    assert "Nothing from the file was executed" in str(info.value)
    assert not marker.exists()
    assert isinstance(info.value, ValueError)


def test_refuses_foreign_harmless_class_and_unknown_chumpy(tmp_path: Path) -> None:
    import collections

    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps({"v": collections.OrderedDict(a=1)}, protocol=2))
    with pytest.raises(UnsafeModelFileError, match=r"collections\.OrderedDict"):
        load_smpl_file(p)
    p.write_bytes(py2_pickle_dumps({"v": PickledObject("chumpy.ch_ops", "add", {})}))
    with pytest.raises(UnsafeModelFileError, match=r"chumpy\.ch_ops\.add.*chumpy expression"):
        load_smpl_file(p)
    # _reconstructor may only build our stand-ins
    p.write_bytes(b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\nc__builtin__\nobject\nNtR.")
    with pytest.raises(UnsafeModelFileError, match="_reconstructor"):
        load_smpl_file(p)


@pytest.mark.parametrize(
    "target",
    [
        b"cnumpy._core.numeric\n_frombuffer\n",
        b"ccopy_reg\n_reconstructor\n",
        b"cchumpy.ch\nCh\n",
        b"cnumpy\nndarray\n",
        b"c__builtin__\nset\n",
    ],
)
def test_build_cannot_set_attributes_on_allowed_objects(tmp_path: Path, target: bytes) -> None:
    """BUILD with (None, {attr: value}) calls setattr; it must not reach a shared object."""
    np_frombuffer = np._core.numeric._frombuffer
    before = np_frombuffer.__qualname__
    p = tmp_path / "m.pkl"
    p.write_bytes(b"\x80\x02" + target + b"N}U\x0c__qualname__U\x05pwneds\x86b.")
    with pytest.raises(ModelFileError):
        load_smpl_file(p, validate=False)
    assert np_frombuffer.__qualname__ == before == "_frombuffer"
    assert smpl_io._ChStandIn.__qualname__ == "_ChStandIn"
    # the sealed wrapper has no attributes at all: BUILD could not have set one on it
    assert not hasattr(smpl_io._ALLOWED[("copy_reg", "_reconstructor")], "__qualname__")
    assert smpl_io._ALLOWED[("copy_reg", "_reconstructor")].__class__.__slots__ == ()


def test_truncated_corrupt_and_empty_files(tmp_path: Path, synthetic_assets) -> None:
    raw = Path(synthetic_assets.smpl_model).read_bytes()
    p = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    for data in (raw[: len(raw) // 2], raw[:100], b"\x00garbage" * 10):
        p.write_bytes(data)
        with pytest.raises(ModelFileError, match="truncated or corrupt"):
            load_smpl_file(p)
    p.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_smpl_file(p)
    npz = write_smpl_npz(tmp_path / "m.npz")
    npz.write_bytes(npz.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_smpl_file(npz)


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "extra_data" / "smpl" / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    with pytest.raises(FileNotFoundError) as info:
        load_smpl_file(missing)
    msg = str(info.value)
    assert str(missing) in msg and "smpl.is.tue.mpg.de" in msg and "extra_data/smpl" in msg


def test_missing_keys_and_wrong_shapes_are_all_reported(tmp_path: Path) -> None:
    arrays = smpl_arrays(0)
    del arrays["weights"], arrays["f"]
    arrays["posedirs"] = arrays["posedirs"][:, :, :200]
    arrays["v_template"] = arrays["v_template"][:6889]
    p = tmp_path / "bad.pkl"
    p.write_bytes(py2_pickle_dumps(arrays))
    with pytest.raises(ModelFileError) as info:
        load_smpl_file(p)
    msg = str(info.value)
    assert "missing required keys: weights, f" in msg
    assert "v_template has 6889 vertices" in msg
    assert "posedirs has shape (6890, 3, 200)" in msg or "posedirs has shape" in msg
    assert load_smpl_file(p, validate=False)["v_template"].shape == (6889, 3)


def _smplx_like(rng: np.random.Generator) -> dict:
    nv, nj = 10475, 55
    w = np.zeros((nv, nj))
    w[np.arange(nv), np.arange(nv) % nj] = 1.0
    jreg = np.zeros((nj, nv))
    jreg[np.arange(nj), np.arange(nj)] = 1.0
    return {
        "v_template": rng.normal(size=(nv, 3)),
        "shapedirs": np.zeros((nv, 3, 20)),
        # float16 keeps the test file small; the loader does not care about the float width
        "posedirs": np.zeros((nv, 3, (nj - 1) * 9), np.float16),
        "J_regressor": jreg,
        "weights": w,
        "kintree_table": np.array([[-1, *range(nj - 1)], list(range(nj))]),
        "f": rng.integers(0, nv, size=(20908, 3)).astype(np.int32),
        "hands_componentsl": np.eye(45),
        "hands_componentsr": np.eye(45),
        "hands_meanl": np.zeros(45),
        "hands_meanr": np.zeros(45),
        "lmk_faces_idx": np.arange(51),
        "lmk_bary_coords": np.full((51, 3), 1 / 3),
        "joint2num": np.array({"a": 1}, dtype=object),
    }


def test_smplx_files_pickle_protocols_and_npz(tmp_path: Path) -> None:
    arrays = _smplx_like(np.random.default_rng(0))
    for proto in (2, 4, 5):
        p = tmp_path / f"SMPLX_NEUTRAL_{proto}.pkl"
        p.write_bytes(pickle.dumps(arrays, protocol=proto))
        d = load_smpl_file(p)
        assert smpl_io.model_family(d) == "smplx"
        np.testing.assert_array_equal(d["v_template"], arrays["v_template"])
        assert "joint2num" not in d  # object array: dropped
    npz = tmp_path / "SMPLX_NEUTRAL.npz"
    with npz.open("wb") as fh:
        np.savez(fh, **arrays)
    d = load_smpl_file(npz)  # allow_pickle=False: the object array is skipped, not unpickled
    assert "joint2num" not in d and d["hands_meanl"].shape == (45,)
    del arrays["lmk_faces_idx"]
    p.write_bytes(pickle.dumps(arrays, protocol=4))
    with pytest.raises(ModelFileError, match="lmk_faces_idx"):
        load_smpl_file(p)


def test_smplx_layer_builds_without_smplx_unpickling_the_user_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    arrays = _smplx_like(np.random.default_rng(1))
    p = tmp_path / "SMPLX_NEUTRAL.pkl"
    p.write_bytes(pickle.dumps(arrays, protocol=2))
    with pytest.raises(TypeError):  # why the helper exists: SMPLX forwards its own data_struct
        smplx.SMPLX(model_path=str(p), ext="pkl", data_struct=smpl_io.smpl_data_struct(p))
    layer = smpl_io.build_smplx_layer(p, use_pca=False, num_expression_coeffs=10)
    with torch.no_grad():
        out = layer()
    assert out.vertices.shape == (1, 10475, 3)
    np.testing.assert_allclose(out.vertices[0].numpy(), arrays["v_template"], atol=1e-5)
    with pytest.raises(ModelFileError, match="not an SMPL-X model"):
        smpl_io.build_smplx_layer(write_smpl_npz(tmp_path / "smpl.npz"))
