"""Load SMPL / SMPL-H / SMPL-X model files without chumpy, scipy or unrestricted pickle.

Users point us at the model files they downloaded, unchanged:

* ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl`` (SMPLify's neutral model, FrankMocap's
  default), ``basicModel_f_lbs_10_207_0_v1.0.0.pkl`` / ``basicmodel_m_lbs_10_207_0_v1.0.0.pkl``
  (SMPL 1.0.0), the 300-PC 1.1.0 files, renamed copies such as ``SMPL_NEUTRAL.pkl``;
* SMPL-X ``SMPLX_NEUTRAL.pkl`` / ``.npz`` and smplx-style ``.npz`` conversions.

What the original SMPL ``.pkl`` is (read from SMPL's own ``smpl_webuser/serialization.py``
``save_model`` and from dumps of the files by their users): a Python 2 ``cPickle`` protocol-2
stream (``pickle.dump(trainer_dict, f, -1)``) of a dict. ``v_template``, ``J``, ``weights``,
``posedirs`` were passed through ``np.asarray``; ``shapedirs`` was stored as it was, a
``chumpy.ch.Ch``; ``J_regressor`` (and ``J_regressor_prior``) are ``scipy.sparse.csc_matrix``;
``f``, ``kintree_table``, ``weights_prior``, ``vert_sym_idxs`` are arrays; ``bs_type`` /
``bs_style`` are strings and ``pose_training_info`` a dict. In the stream that means:

* ``GLOBAL 'chumpy.ch Ch'``, ``EMPTY_TUPLE``, ``NEWOBJ``, then ``BUILD`` with the dict that
  chumpy's ``Ch.__getstate__`` returns (its ``__dict__`` minus ``_parents``/``_cache``): the
  array sits under ``'x'``; ``'_dirty_vars'`` is a ``set`` (``GLOBAL '__builtin__ set'`` +
  ``REDUCE``). MANO's files additionally hold a ``chumpy.reordering.Select`` (state ``a``,
  ``idxs``, ``preferred_shape``), so we evaluate that one too.
* ``GLOBAL 'scipy.sparse.csc csc_matrix'``, ``NEWOBJ``, ``BUILD`` with ``{'_shape', 'data',
  'indices', 'indptr', 'maxprint', 'format', ...}``. Newer SciPy writes ``scipy.sparse._csc``.
* numpy arrays: ``GLOBAL 'numpy.core.multiarray _reconstruct'`` with ``'numpy ndarray'`` and
  ``BUILD`` of ``(1, shape, dtype, is_fortran, rawdata)``; dtypes via ``'numpy dtype'``.
  Python 2 ``str`` payloads are why ``encoding='latin1'`` is needed (numpy accepts the
  decoded text as raw bytes). NumPy >= 2 writes ``numpy._core.multiarray``.
* ``copy_reg._reconstructor`` only appears in protocol 0/1 pickles of new-style objects.

Security boundary
-----------------
``pickle`` executes whatever callables a file names, so an unrestricted ``pickle.load`` of a
model file found on disk is arbitrary code execution. ``_RestrictedUnpickler.find_class`` is
the only way a pickle can reach a Python object by name (GLOBAL, STACK_GLOBAL, INST, OBJ and
the EXT opcodes all go through it; persistent IDs are refused). It returns only:

* inert local stand-ins for the chumpy classes and for scipy's CSC/CSR matrices: they store
  the pickled state and nothing else; we then read plain arrays out of that state;
* checked versions of numpy's array/dtype/scalar reconstructors (``safe_arrays``): arrays
  are rebuilt only the way numpy pickles them, from owned, contiguous bytes of exactly the
  size their shape needs, with a plain dtype; ``numpy.ndarray`` itself is a token that
  refuses to be called (it would build a view of any shape and strides);
* ``set``, ``object``, a ``_reconstructor`` that only accepts our stand-ins with base
  ``object``, and an ``_codecs.encode`` that only does latin-1 (protocol-2 ``bytes``).

Anything else raises ``UnsafeModelFileError`` naming ``module.name`` and the file before a
single byte of it is executed.

Memory: before unpickling, every length-prefixed opcode is checked against the bytes left in
the file (CPython allocates what BINBYTES8/BYTEARRAY8 claim before reading). Every array
element the file produces (pickled arrays, nested lists turned into arrays, densified sparse
matrices, ``.npz`` members) is charged to a budget of ``file size + 2**20`` elements
(``.npz``: 8x the file size, for compression) before it is allocated; ``.npz`` members'
``.npy`` headers are checked against the member size before any data is read. A refused file
raises ``ModelFileError`` with "refusing to load".
"""

from __future__ import annotations

import codecs
import os
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mocap_ros.io.safe_arrays import (
    NDARRAY_TOKEN,
    NPZ_FACTOR,
    HostileArrayError,
    array_budget,
    as_array,
    checked_dtype,
    checked_frombuffer,
    checked_reconstruct,
    checked_scalar,
    current_budget,
    element_budget,
    read_npz,
)

SMPL_HELP = (
    "SMPL model files are licensed downloads: register at https://smpl.is.tue.mpg.de "
    "(SMPL_python_v.1.0.0: basicModel_f/basicmodel_m_lbs_10_207_0_v1.0.0.pkl); FrankMocap's "
    "neutral basicModel_neutral_lbs_10_207_0_v1.0.0.pkl ships with SMPLify "
    "(https://smplify.is.tue.mpg.de). FrankMocap's layout puts them in extra_data/smpl/; "
    "SMPL-X files (SMPLX_NEUTRAL.pkl) come from https://smpl-x.is.tue.mpg.de."
)

# Body-model families by joint count: (name, vertices). smplx selects extra joints by fixed
# vertex indices, so the vertex count of a family is not negotiable.
MODEL_FAMILIES: dict[int, tuple[str, int]] = {
    24: ("smpl", 6890),
    52: ("smplh", 6890),
    55: ("smplx", 10475),
}
REQUIRED_KEYS: tuple[str, ...] = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
)
# smplx.SMPLX reads these in addition (hand PCA and face landmarks).
SMPLX_REQUIRED_KEYS: tuple[str, ...] = (
    "hands_componentsl",
    "hands_componentsr",
    "hands_meanl",
    "hands_meanr",
    "lmk_faces_idx",
    "lmk_bary_coords",
)

# A .npz is a zip archive; anything else is read as a pickle. Sniffing the content rather
# than the extension lets renamed copies (SMPL_NEUTRAL.pkl that is really an .npz) work.
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_MATERIALISE_DEPTH = 8


class ModelFileError(ValueError):
    """A body-model file is unreadable (truncated, corrupt, wrong content or shapes)."""


class UnsafeModelFileError(ModelFileError):
    """A pickle names a global outside the allow-list; nothing from it was executed."""


# --------------------------------------------------------------------------------------
# Stand-ins: what the restricted unpickler hands out instead of chumpy/scipy classes.


class _StateHolder:
    """Base of the stand-ins: keeps the pickled state, runs no code of the original class."""

    source = "?"

    def __new__(cls, *args: object, **kwargs: object) -> _StateHolder:
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __setstate__(self, state: object) -> None:
        self.state = state


class _ChStandIn(_StateHolder):
    source = "chumpy.ch.Ch"


class _SelectStandIn(_StateHolder):
    source = "chumpy.reordering.Select"


class _CscStandIn(_StateHolder):
    source = "scipy.sparse csc_matrix"


class _CsrStandIn(_StateHolder):
    source = "scipy.sparse csr_matrix"


_STAND_INS: tuple[type[_StateHolder], ...] = (_ChStandIn, _SelectStandIn, _CscStandIn, _CsrStandIn)


def _safe_reconstructor(cls: object, base: object, state: object) -> object:
    """copy_reg._reconstructor restricted to our stand-ins on ``object`` (protocol 0/1)."""
    if cls not in _STAND_INS or base is not object:
        raise UnsafeModelFileError(
            f"copy_reg._reconstructor called with class {cls!r} and base {base!r}; only chumpy/"
            "scipy model classes on base object are accepted"
        )
    return cls.__new__(cls)  # type: ignore[union-attr]


def _latin1_encode(text: object, encoding: str = "latin1") -> bytes:
    """_codecs.encode as Python 3 uses it for bytes in protocol-2 pickles, latin-1 only."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise UnsafeModelFileError(f"_codecs.encode with {type(text).__name__}/{encoding!r}")
    return codecs.encode(text, encoding)


def _sealed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` behind an instance that has no attributes at all.

    A pickle's BUILD opcode sets attributes on whatever object is on its stack (the
    ``(state, slotstate)`` form calls setattr). Handing out Python functions would let a file
    rewrite, say, numpy's ``_frombuffer.__defaults__`` for the whole process. Builtin types
    and builtin functions refuse setattr by themselves; Python functions get this wrapper.
    """

    class Sealed:
        __slots__ = ()

        def __call__(self, *args: Any) -> Any:
            return fn(*args)

        def __repr__(self) -> str:
            return f"<sealed {fn.__module__}.{fn.__qualname__}>"

    return Sealed()


def _numpy_globals() -> dict[tuple[str, str], object]:
    # NumPy >= 2 writes numpy._core; old pickles name numpy.core. The checked versions build
    # arrays only as numpy pickles them, within the load's element budget (safe_arrays).
    out: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): NDARRAY_TOKEN,  # _reconstruct's argument; refuses to be called
        ("numpy", "dtype"): _sealed(checked_dtype),
    }
    for mod in ("numpy.core", "numpy._core"):
        out[(f"{mod}.multiarray", "_reconstruct")] = _sealed(checked_reconstruct)
        # numpy scalars (e.g. in Python-3-written SMPL-X pickles): builds a number from bytes.
        out[(f"{mod}.multiarray", "scalar")] = _sealed(checked_scalar)
        # protocol-5 pickles of arrays
        out[(f"{mod}.numeric", "_frombuffer")] = _sealed(checked_frombuffer)
    return out


_SPARSE_MODULES = (
    "scipy.sparse.csc",
    "scipy.sparse._csc",
    "scipy.sparse.csr",
    "scipy.sparse._csr",
    "scipy.sparse",
)
_ALLOWED: dict[tuple[str, str], object] = {
    **_numpy_globals(),
    ("chumpy.ch", "Ch"): _ChStandIn,
    ("chumpy.reordering", "Select"): _SelectStandIn,
    **{(m, n): _CscStandIn for m in _SPARSE_MODULES for n in ("csc_matrix", "csc_array")},
    **{(m, n): _CsrStandIn for m in _SPARSE_MODULES for n in ("csr_matrix", "csr_array")},
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("copy_reg", "_reconstructor"): _sealed(_safe_reconstructor),
    ("copyreg", "_reconstructor"): _sealed(_safe_reconstructor),
    ("_codecs", "encode"): _sealed(_latin1_encode),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose find_class is the allow-list above (see module docstring)."""

    def __init__(self, stream: BinaryIO, label: str) -> None:
        super().__init__(stream, encoding="latin1")  # latin1: Python 2 str payloads
        self._label = label

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            pass
        what = f"{module}.{name}"
        if module.split(".")[0] == "chumpy":
            reason = (
                "a chumpy expression class we do not evaluate (only Ch and Select occur "
                "in SMPL/MANO files)"
            )
        else:
            reason = "not part of an SMPL/SMPL-X model file"
        raise UnsafeModelFileError(
            f"{self._label}: refusing to load: the pickle names {what}, {reason}. Nothing from "
            "the file was executed. Use the original model file from the SMPL/SMPL-X website."
        )

    def persistent_load(self, pid: object) -> Any:
        raise UnsafeModelFileError(f"{self._label}: refusing to load: pickle persistent id")


# --------------------------------------------------------------------------------------
# Turning stand-ins into arrays.


def _state_dict(obj: _StateHolder, label: str) -> dict[str, Any]:
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]  # (dict, slotstate) form
    if not isinstance(state, dict):
        raise ModelFileError(f"{label}: {obj.source} object without a state dict")
    return state


def _densify_sparse(obj: _StateHolder, label: str) -> np.ndarray:
    """Dense array from a CSC/CSR state (data/indices/indptr/_shape) without scipy."""
    st = _state_dict(obj, label)
    shape = st.get("_shape", st.get("shape"))
    missing = [k for k in ("data", "indices", "indptr") if k not in st]
    if shape is None or missing:
        raise ModelFileError(f"{label}: sparse matrix state lacks {missing or ['_shape']}")
    try:
        shape = tuple(int(s) for s in shape)
        data = as_array(st["data"], f"{label}: sparse data")
        indices = as_array(st["indices"], f"{label}: sparse indices").astype(np.int64)
        indptr = as_array(st["indptr"], f"{label}: sparse indptr").astype(np.int64)
    except HostileArrayError:
        raise
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{label}: malformed sparse matrix ({exc})") from exc
    csc = isinstance(obj, _CscStandIn)
    if len(shape) != 2:
        raise ModelFileError(f"{label}: sparse matrix shape {shape} is not 2-D")
    n_major, n_minor = (shape[1], shape[0]) if csc else shape
    bad = (
        data.ndim != 1
        or indices.shape != data.shape
        or indptr.shape != (n_major + 1,)
        or (indptr.size and (indptr[0] != 0 or indptr[-1] != data.size))
        or np.any(np.diff(indptr) < 0)
        or (indices.size and (indices.min() < 0 or indices.max() >= n_minor))
        or data.dtype.kind not in "biuf"
    )
    if bad:
        raise ModelFileError(f"{label}: inconsistent sparse matrix (data/indices/indptr/shape)")
    # the dense size comes from the file's _shape, not from its data: charge it first
    current_budget().take(n_major * n_minor, f"{label}: sparse matrix of shape {shape}")
    dense = np.zeros(shape, dtype=np.result_type(data.dtype, np.float64))
    major = np.repeat(np.arange(n_major), np.diff(indptr))
    # add.at: duplicate entries sum, as scipy's toarray() does.
    np.add.at(dense, (indices, major) if csc else (major, indices), data)
    return dense


def _materialise(value: Any, label: str, depth: int = 0) -> Any:
    """Replace stand-ins by plain numpy arrays (recursively for Ch-inside-Select)."""
    if depth > _MAX_MATERIALISE_DEPTH:
        raise ModelFileError(f"{label}: chumpy objects nested too deeply")
    if isinstance(value, (_CscStandIn, _CsrStandIn)):
        return _densify_sparse(value, label)
    if isinstance(value, _ChStandIn):
        st = _state_dict(value, label)
        if "x" not in st:
            raise ModelFileError(f"{label}: chumpy Ch object without its array 'x'")
        return as_array(_materialise(st["x"], label, depth + 1), f"{label}: chumpy Ch 'x'")
    if isinstance(value, _SelectStandIn):
        # chumpy's Select.compute_r: a.r.ravel()[idxs].reshape(preferred_shape)
        st = _state_dict(value, label)
        base = as_array(_materialise(st.get("a"), label, depth + 1), f"{label}: Select 'a'")
        idxs = as_array(st.get("idxs"), f"{label}: Select 'idxs'").astype(np.int64).ravel()
        if idxs.size and (idxs.min() < -base.size or idxs.max() >= base.size):
            raise ModelFileError(f"{label}: chumpy Select index out of range")
        out = base.ravel()[idxs]
        shape = st.get("preferred_shape")
        return out.reshape(tuple(int(s) for s in shape)) if shape is not None else out
    return value


def _clean_value(value: Any, label: str) -> np.ndarray | str | None:
    """Keep arrays (no object dtype) and strings; drop other metadata (dicts, numbers)."""
    value = _materialise(value, label)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, np.ndarray):
        value = value.view(np.ndarray)  # drop the CheckedArray subclass
        if value.dtype.kind in "US" and value.ndim == 0:
            return str(value.item())
        if value.dtype.kind == "O":
            return None
        return value
    return None


# --------------------------------------------------------------------------------------
# Public API.


def _missing_file_error(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"SMPL/SMPL-X model file not found: {path}. {SMPL_HELP}")


class _LengthCheckedReader:
    """A read-only view of the stream for the opcode pre-scan: a read of more bytes than are
    left is an error, not an allocation of the claimed size."""

    def __init__(self, stream: BinaryIO, size: int, label: str) -> None:
        self._stream, self._size, self._label = stream, size, label

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._stream.tell()
        if n > left:
            raise ModelFileError(
                f"{self._label}: not a readable SMPL/SMPL-X pickle (truncated or corrupt?): "
                f"an opcode at byte {self._stream.tell()} claims {n} bytes, {left} are left"
            )
        return self._stream.read(n)

    def readline(self) -> bytes:
        return self._stream.readline()


def _prescan_pickle(stream: BinaryIO, size: int, label: str) -> None:
    """Walk the opcodes once, checking every length prefix against the file size.

    CPython's unpickler allocates what BINBYTES8/BYTEARRAY8/BINUNICODE8 claim before it
    reads (a 13-byte file can ask for any size); pickletools reads through the checked
    reader instead. Costs one extra read of the file.
    """
    try:
        for _ in pickletools.genops(_LengthCheckedReader(stream, size, label)):
            pass
    except ModelFileError:
        raise
    except (ValueError, EOFError, struct.error, UnicodeError) as exc:
        raise ModelFileError(
            f"{label}: not a readable SMPL/SMPL-X pickle (truncated or corrupt?): {exc}"
        ) from exc
    stream.seek(0)


def _load_pickle(stream: BinaryIO, label: str) -> dict[str, Any]:
    try:
        obj = _RestrictedUnpickler(stream, label).load()
    except ModelFileError:
        raise
    except HostileArrayError as exc:
        raise ModelFileError(f"{label}: refusing to load: {exc}") from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        struct.error,
        OverflowError,
        UnicodeError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise ModelFileError(
            f"{label}: not a readable SMPL/SMPL-X pickle (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, dict):
        raise ModelFileError(
            f"{label}: expected a dict of model arrays, found {type(obj).__name__}"
        )
    return obj


def _load_npz(stream: BinaryIO, label: str) -> dict[str, Any]:
    try:
        # Object arrays (e.g. SMPL-X's joint2num) are pickles: skipped. Headers are checked
        # against member sizes and the budget before any data is read.
        return dict(read_npz(stream))
    except HostileArrayError as exc:
        raise ModelFileError(f"{label}: refusing to load: {exc}") from exc
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(
            f"{label}: not a readable .npz model file (truncated or corrupt?): {exc}"
        ) from exc


def load_smpl_file(
    path: str | os.PathLike[str], *, validate: bool = True
) -> dict[str, np.ndarray | str]:
    """Read an SMPL/SMPL-H/SMPL-X ``.pkl`` (chumpy or plain) or ``.npz`` into numpy arrays.

    chumpy objects and sparse matrices come back as dense numpy arrays with the file's dtypes
    (float64 in the originals); strings stay strings; other metadata (dicts) is dropped. The
    format is sniffed from the content, so a renamed file works. With ``validate`` the arrays
    are checked (keys, shapes, finiteness) and every problem is reported in one
    ``ModelFileError``.
    """
    p = Path(path)
    if not p.exists():
        raise _missing_file_error(p)
    if p.is_dir():
        raise ModelFileError(f"{p} is a directory; pass the model file itself. {SMPL_HELP}")
    label = str(p)
    size = p.stat().st_size
    data: dict[str, np.ndarray | str] = {}
    # Streamed from the file: SMPL-X pickles are hundreds of MB, no need to hold them twice.
    with p.open("rb") as fh:
        magic = fh.read(len(_ZIP_MAGIC))
        if not magic:
            raise ModelFileError(f"{label}: file is empty (truncated download?)")
        fh.seek(0)
        is_npz = magic == _ZIP_MAGIC
        with array_budget(label, element_budget(size, NPZ_FACTOR if is_npz else 1)):
            if is_npz:
                loaded = _load_npz(fh, label)
            else:
                _prescan_pickle(fh, size, label)
                loaded = _load_pickle(fh, label)
            for key, value in loaded.items():
                try:
                    clean = _clean_value(value, f"{label}[{key!r}]")
                except HostileArrayError as exc:
                    raise ModelFileError(f"{label}: refusing to load: {exc}") from exc
                if clean is not None:
                    data[str(key)] = clean
    if validate:
        problems = smpl_problems(data)
        if problems:
            raise ModelFileError(
                f"{label}: not a usable body model:\n  - " + "\n  - ".join(problems)
            )
    return data


def model_family(data: dict[str, Any]) -> str:
    """'smpl', 'smplh', 'smplx' from the joint count (kintree_table), or 'unknown'."""
    kt = data.get("kintree_table")
    if isinstance(kt, np.ndarray) and kt.ndim == 2:
        return MODEL_FAMILIES.get(kt.shape[1], ("unknown", 0))[0]
    return "unknown"


def smpl_problems(data: dict[str, Any]) -> list[str]:
    """Every problem with a loaded model dict (empty list: smplx can build the model)."""
    problems: list[str] = []
    family = model_family(data)
    required = REQUIRED_KEYS + (SMPLX_REQUIRED_KEYS if family == "smplx" else ())
    missing = [k for k in required if k not in data]
    if missing:
        problems.append(
            f"missing required keys: {', '.join(missing)} "
            f"(present: {', '.join(sorted(data)) or 'none'})"
        )

    def arr(key: str) -> np.ndarray | None:
        v = data.get(key)
        if v is None:
            return None
        if not isinstance(v, np.ndarray):
            problems.append(f"{key} is a {type(v).__name__}, expected an array")
            return None
        return v

    def want(key: str, shape: tuple[int | None, ...], kinds: str = "f") -> np.ndarray | None:
        a = arr(key)
        if a is None:
            return None
        ok = a.ndim == len(shape) and all(
            s is None or s == d for s, d in zip(shape, a.shape, strict=True)
        )
        if not ok:
            spec = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            problems.append(f"{key} has shape {a.shape}, expected {spec}")
            return None
        if a.dtype.kind not in kinds:
            problems.append(
                f"{key} has dtype {a.dtype}, expected {'float' if kinds == 'f' else 'int'}"
            )
            return None
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            problems.append(f"{key} contains NaN or Inf")
        return a

    kt = want("kintree_table", (2, None), "iu")
    weights_arr = arr("weights")
    n_joints = (
        kt.shape[1]
        if kt is not None
        else (weights_arr.shape[1] if weights_arr is not None and weights_arr.ndim == 2 else None)
    )
    v = want("v_template", (None, 3))
    n_verts = v.shape[0] if v is not None else None
    if n_joints is not None and n_joints in MODEL_FAMILIES and n_verts is not None:
        name, expected_verts = MODEL_FAMILIES[n_joints]
        if n_verts != expected_verts:
            problems.append(
                f"v_template has {n_verts} vertices; {name} with {n_joints} joints "
                f"has {expected_verts} (smplx picks extra joints by vertex index)"
            )
    elif n_joints is not None and n_joints not in MODEL_FAMILIES:
        problems.append(f"kintree_table has {n_joints} joints; SMPL has 24, SMPL-H 52, SMPL-X 55")
    want("shapedirs", (n_verts, 3, None))
    want("posedirs", (n_verts, 3, None if n_joints is None else (n_joints - 1) * 9))
    jr = want("J_regressor", (n_joints, n_verts))
    w = want("weights", (n_verts, n_joints))
    f = want("f", (None, 3), "iu")
    if f is not None and n_verts is not None and f.size and (f.min() < 0 or f.max() >= n_verts):
        problems.append(f"f indexes vertices outside [0, {n_verts})")
    if w is not None and not np.allclose(w.sum(axis=1), 1.0, atol=1e-3):
        problems.append("weights rows do not sum to 1")
    if jr is not None and not np.allclose(jr.sum(axis=1), 1.0, atol=1e-3):
        problems.append("J_regressor rows do not sum to 1")
    if kt is not None and kt.shape[1] > 1:
        parents = kt[0, 1:].astype(np.int64)
        if np.any(parents < 0) or np.any(parents >= np.arange(1, kt.shape[1])):
            problems.append("kintree_table parents are not a tree ordered parent-before-child")
    return problems


def smpl_data_struct(path: str | os.PathLike[str]) -> Any:
    """An object usable as smplx's ``data_struct`` (``smplx.utils.Struct``), loaded safely.

    ``smplx.SMPL(model_path=str(path), data_struct=smpl_data_struct(path))`` then builds the
    model without smplx's own ``pickle.load`` (which would need chumpy and trust the file).
    """
    data = load_smpl_file(path, validate=True)
    struct_type: Callable[..., Any]
    try:
        from smplx.utils import Struct as struct_type  # noqa: N813
    except ImportError:  # pragma: no cover - smplx is a dependency; same attribute semantics
        from types import SimpleNamespace as struct_type  # noqa: N813
    return struct_type(**data)


def build_smplx_layer(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``smplx.SMPLX`` from an SMPL-X ``.pkl``/``.npz``, read through this module's loader.

    smplx 0.1.28's ``SMPLX`` takes no ``data_struct`` (passing one raises TypeError: it
    forwards its own) and reads ``model_path`` itself with ``pickle.load`` / ``np.load(...,
    allow_pickle=True)``. So the validated arrays are written to a private temporary ``.npz``
    of plain numbers, which smplx reads (and fully copies) before it is deleted.
    """
    import tempfile

    import smplx

    data = load_smpl_file(path, validate=True)
    if model_family(data) != "smplx":
        raise ModelFileError(f"{path}: not an SMPL-X model ({model_family(data)} joint count)")
    with tempfile.TemporaryDirectory(prefix="mocap_ros_smplx_") as tmp:
        npz = Path(tmp) / "SMPLX_MODEL.npz"
        with npz.open("wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in data.items()})
        return smplx.SMPLX(model_path=str(npz), ext="npz", **kwargs)
