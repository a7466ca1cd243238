"""Hostile model files: a few hundred bytes must not make the loaders allocate hundreds of MB.

Every file here is written byte by byte (pickle opcodes, zip members with hand-made ``.npy``
headers) the way an attacker would, and each one asks for 64-500 MB. The loaders must refuse
it with their own error (ModelFileError / CheckpointError / MeanParamsError) and the peak of
traced memory during the call must stay under ``PEAK_BOUND``.

Why 16 MiB is a bound we can defend: every file is under 300 KB, and the loaders' element
budget is ``file size * factor + 2**20`` elements (``mocap_ros.io.safe_arrays``), which for
these files is at most a few million elements, and a claim over the budget is refused
*before* anything is allocated; what remains is the unpickler's own bookkeeping. numpy and
Python both report their buffers to tracemalloc (numpy's data allocations under its own
domain), so an unchecked allocation of the requested size shows up as 64-500 MB.
"""

from __future__ import annotations

import io
import pickle
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mocap_ros.io.smpl_file import ModelFileError, load_smpl_file

PEAK_BOUND = 16 * 2**20


def _frag(obj: object) -> bytes:
    """The opcodes that push ``obj`` (protocol 3, no framing, no PROTO/STOP)."""
    return pickle.dumps(obj, protocol=3)[2:-1]


def _peak_of(call: Callable[[], object]) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    err: BaseException | None = None
    try:
        call()
    except BaseException as exc:  # the test inspects it
        err = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return err, peak


def _smpl_dict(key: str, value_ops: bytes, proto: int = 3) -> bytes:
    return bytes([0x80, proto]) + b"}(" + _frag(key) + value_ops + b"u."


_NDARRAY_CALL = b"cnumpy\nndarray\n" + _frag(((20_000_000, 3), "f8", b"\0" * 8, 0, (0, 0))) + b"R"
_NESTED = [[[0.0] * 200] * 200] * 200  # 8e6 floats from ~2 KB of opcodes (memo references)


def _subarray_dtype_array() -> bytes:
    # dtype('f8') whose BUILD state adds a (1000, 1000) subarray but keeps itemsize 8: numpy
    # accepts the state, and an array of it reads 8 MB past an 8-byte buffer.
    dtype = (
        b"cnumpy\ndtype\n"
        + _frag(("f8", False, True))
        + b"R"
        + b"("
        + _frag(3)
        + _frag("<")
        + b"cnumpy\ndtype\n"
        + _frag(("f8", False, True))
        + b"R"
        + _frag((1000, 1000))
        + b"\x86"
        + _frag((None, None, 8, 8, 0))[:-1]
        + b"tb"
    )
    return (
        b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
        + _frag((0,))
        + _frag(b"b")
        + b"tR("
        + _frag(1)
        + _frag((1,))
        + dtype
        + _frag(False)
        + _frag(b"\0" * 8)
        + b"tb"
    )


SMPL_PICKLES: dict[str, bytes] = {
    # the reproduction: numpy.ndarray called with a zero-stride 8-byte buffer
    "ndarray_zero_stride": _smpl_dict("v_template", _NDARRAY_CALL),
    # np.ndarray((N,)) without a buffer: an uninitialised 256 MB allocation
    "ndarray_uninitialised": _smpl_dict(
        "v_template", b"cnumpy\nndarray\n" + _frag(((32_000_000,), "f8")) + b"R"
    ),
    # a Ch whose 'x' is a list of lists of the same list: np.asarray makes 64 MB of it
    "nested_list_bomb": _smpl_dict(
        "shapedirs", b"cchumpy.ch\nCh\n)\x81" + _frag({"x": _NESTED}) + b"b"
    ),
    # a CSC matrix that claims 4000 x 4000 with no entries: densified to 128 MB
    "sparse_shape": _smpl_dict(
        "J_regressor",
        b"cscipy.sparse.csc\ncsc_matrix\n)\x81"
        + _frag({"_shape": (4000, 4000), "data": [], "indices": [], "indptr": [0] * 4001})
        + b"b",
    ),
    # BINBYTES8 / BYTEARRAY8 claiming 256 MB in a 20-byte file
    "bytes8_claim": b"\x80\x04\x8e" + struct.pack("<Q", 256 * 2**20) + b"xx",
    "bytearray8_claim": b"\x80\x05\x96" + struct.pack("<Q", 256 * 2**20) + b"xx",
    "subarray_dtype": _smpl_dict("v_template", _subarray_dtype_array()),
}


@pytest.mark.parametrize("kind", list(SMPL_PICKLES))
def test_hostile_smpl_pickle_is_refused_with_bounded_memory(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    p.write_bytes(SMPL_PICKLES[kind])
    assert p.stat().st_size < 16384
    for validate in (True, False):
        err, peak = _peak_of(lambda v=validate: load_smpl_file(p, validate=v))
        assert isinstance(err, ModelFileError), (kind, validate, repr(err))
        assert str(p) in str(err)
        assert peak < PEAK_BOUND, f"{kind}: peak {peak / 2**20:.1f} MiB"


def _npy(shape: tuple[int, ...], descr: str = "<f8", data: bytes = b"\0" * 16) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + data


def _zip(members: dict[str, bytes], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", mode) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_bomb(n: int, name: str) -> bytes:
    """A valid, deflated ``.npy`` member of ``n`` zero float64s (compresses about 1000:1)."""
    buf = io.BytesIO()
    chunk = bytes(2**20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(name, "w", force_zip64=True) as fh,
    ):
        fh.write(_npy((n // 3, 3), data=b""))
        for _ in range(n * 8 // len(chunk)):
            fh.write(chunk)
    return buf.getvalue()


NPZ_FILES: dict[str, Callable[[str], bytes]] = {
    # the header claims 256 MB; np.load allocates it before it finds 16 bytes of data
    "header_claims_256MB": lambda name: _zip({name: _npy((32_000_000,))}),
    "header_claims_huge": lambda name: _zip({name: _npy((10**7, 10**7))}),
    "structured_dtype": lambda name: _zip({name: _npy((2,), descr="[('a', '<f8', (1000, 1000))]")}),
    "deflate_bomb_64MB": lambda name: _zip_bomb(8 * 2**20, name),
}


@pytest.mark.parametrize("kind", list(NPZ_FILES))
def test_hostile_npz_is_refused_with_bounded_memory(tmp_path: Path, kind: str) -> None:
    from mocap_ros.io.checkpoint import MeanParamsError, load_mean_params

    p = tmp_path / "SMPL_NEUTRAL.npz"
    p.write_bytes(NPZ_FILES[kind]("v_template.npy"))
    assert p.stat().st_size < 300_000
    err, peak = _peak_of(lambda: load_smpl_file(p, validate=False))
    assert isinstance(err, ModelFileError), (kind, repr(err))
    assert peak < PEAK_BOUND, f"{kind}: peak {peak / 2**20:.1f} MiB"
    # SPIN's mean parameters are an .npz too
    mp = tmp_path / "smpl_mean_params.npz"
    mp.write_bytes(NPZ_FILES[kind]("pose.npy"))
    err, peak = _peak_of(lambda: load_mean_params(mp))
    assert isinstance(err, MeanParamsError), (kind, repr(err))
    assert peak < PEAK_BOUND, f"{kind} (mean params): peak {peak / 2**20:.1f} MiB"


class _NdarrayCall:
    """Pickles as ``numpy.ndarray(*args)``: what a hostile checkpoint can say."""

    def __init__(self, *args: object) -> None:
        self.args = args

    def __reduce__(self) -> tuple:
        return np.ndarray, self.args


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(
    "perm",
    [
        _NdarrayCall((32_000_000,), "i8"),  # 256 MB uninitialised
        _NdarrayCall((10**12,), "i8", b"\0" * 8, 0, (0,)),  # zero-stride: "10^12 elements"
    ],
    ids=["uninitialised", "zero_stride"],
)
def test_checkpoint_numpy_allowlist_does_not_call_ndarray(
    tmp_path: Path, legacy: bool, perm: object
) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from mocap_ros.io.checkpoint import CheckpointError, load_hmr_checkpoint

    model = nn.Linear(1, 1)
    p = tmp_path / "evil.pt"
    torch.save(
        {"model": model.state_dict(), "dataset_perm": perm},
        p,
        _use_new_zipfile_serialization=not legacy,
    )
    err, peak = _peak_of(lambda: load_hmr_checkpoint(p, model))
    assert isinstance(err, CheckpointError), repr(err)
    assert "numpy.ndarray" in str(err)
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.1f} MiB"


def test_legit_dataset_perm_still_loads(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from mocap_ros.io.checkpoint import load_hmr_checkpoint

    model = nn.Linear(1, 1)
    for legacy in (False, True):
        p = tmp_path / "ok.pt"
        perm = np.random.default_rng(0).permutation(1000)
        torch.save(
            {"model": model.state_dict(), "dataset_perm": perm, "epoch": 1},
            p,
            _use_new_zipfile_serialization=not legacy,
        )
        meta = load_hmr_checkpoint(p, model)
        assert meta["dataset_perm_len"] == 1000 and meta["epoch"] == 1
