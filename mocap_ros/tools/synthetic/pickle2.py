"""A Python-2-style pickle writer (protocol 2) for the few types an SMPL file holds: py2
``str`` opcodes, ``chumpy.ch.Ch`` and ``scipy.sparse.csc_matrix`` stand-ins, numpy 1.x
array reconstruction. Nothing needs chumpy or scipy."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

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


class Py2Pickler:
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
    Py2Pickler(buf).dump(obj)
    return buf.getvalue()


# ======================================================================================
# Procedural body mesh.


