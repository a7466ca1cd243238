"""numpy arrays from untrusted model files: only owned, contiguous data, within a budget.

The restricted unpicklers (``smpl_file``, ``checkpoint``) must let numpy arrays through,
because the model files hold them. Handing out numpy's own entry points is not enough:

* ``numpy.ndarray`` itself is a callable: ``ndarray((20000000, 3), 'f8', buf8, 0, (0, 0))``
  is a 128-byte pickle that yields a "60 million element" zero-stride view of 8 bytes, and
  every later check (``np.isfinite``) allocates for the claimed size; without a buffer it is
  an uninitialised allocation of the attacker's size.
* ``numpy.dtype``'s BUILD state can attach a subarray shape to a plain ``f8`` while keeping
  itemsize 8 (numpy accepts it), and an array of that dtype reads past its buffer.
* Sizes come from the file: a ``.npy`` header, a pickle length prefix, a sparse matrix's
  ``_shape`` or a list of lists of the same list (memo references) all claim memory that the
  file does not contain.

So the allow-lists hand out the functions below instead. Arrays are only rebuilt the way
numpy pickles them (``_reconstruct(ndarray, (0,), b'b')`` + BUILD with the raw bytes, or
protocol 5's ``_frombuffer``), with a plain dtype (bool/int/float/complex/str/bytes, or
object for lists the unpickler itself built), the exact byte count for the shape, and every
element charged against an :class:`ArrayBudget` *before* anything is allocated. The budget
is relative to the file's size: ``factor * file_size + FLOOR`` elements. An uncompressed
stream (a pickle) needs at least one byte per element, so factor 1 is exact for it; the
floor covers what a small file legitimately expands to (a dense SMPL-X J_regressor from a
sparse one is 576k elements). Compressed ``.npz`` members get a larger factor.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

FLOOR_ELEMENTS = 2**20
NPZ_FACTOR = 8  # deflate of real float data gains ~1.1x; 8x leaves room for zero-filled arrays
_MAX_NDIM = 32
_PLAIN_KINDS = "biufcSUO"


class HostileArrayError(ValueError):
    """An array in a model file is malformed or asks for more memory than the file justifies."""


@dataclass
class ArrayBudget:
    """How many array elements one file may still produce."""

    label: str
    limit: int
    used: int = 0

    def take(self, n: int, what: str) -> None:
        if n < 0 or n > self.limit - self.used:
            raise HostileArrayError(
                f"{what} claims {n} elements; the file ({self.label}) may produce at most "
                f"{self.limit} in total and {self.used} are used"
            )
        self.used += n


def element_budget(file_size: int, factor: int = 1) -> int:
    return factor * max(int(file_size), 0) + FLOOR_ELEMENTS


_CURRENT: ContextVar[ArrayBudget | None] = ContextVar("mocap_ros_array_budget", default=None)


@contextlib.contextmanager
def array_budget(label: str, limit: int) -> Iterator[ArrayBudget]:
    """Make ``limit`` the element budget of every checked array built in this context."""
    budget = ArrayBudget(label, limit)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def current_budget() -> ArrayBudget:
    budget = _CURRENT.get()
    if budget is None:
        raise HostileArrayError("numpy array reconstruction outside a budgeted model-file load")
    return budget


def _shape(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > _MAX_NDIM:
        raise HostileArrayError(f"{what}: shape {value!r:.80} is not a tuple of <= 32 sizes")
    if not all(isinstance(s, int) and s >= 0 for s in value):
        raise HostileArrayError(f"{what}: shape {value!r:.80} has a non-integer or negative size")
    return tuple(int(s) for s in value)


def plain_dtype(dtype: object, what: str) -> np.dtype:
    """A fresh, canonical copy of a plain dtype (no fields, no subarray, non-zero itemsize)."""
    if not isinstance(dtype, np.dtype):
        raise HostileArrayError(f"{what}: dtype is a {type(dtype).__name__}")
    if dtype.names is not None or dtype.fields is not None or dtype.subdtype is not None:
        raise HostileArrayError(f"{what}: structured or subarray dtype {dtype!r:.80} refused")
    if dtype.kind not in _PLAIN_KINDS:
        raise HostileArrayError(f"{what}: dtype kind {dtype.kind!r} refused")
    canon = np.dtype(dtype.str)  # rebuilt from its type string: no state from the file
    if canon.itemsize != dtype.itemsize or canon.itemsize == 0 or canon.kind != dtype.kind:
        raise HostileArrayError(f"{what}: inconsistent dtype {dtype!r:.80}")
    return canon


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a pickle: an argument of ``_reconstruct``, never called."""

    __slots__ = ()

    def __call__(self, *args: object, **kwargs: object) -> Any:
        raise HostileArrayError(
            "the file calls numpy.ndarray(...) directly (a view of any shape and strides over "
            "its bytes); only numpy's own array pickles (_reconstruct + state) are accepted"
        )

    def __repr__(self) -> str:
        return "<numpy.ndarray (reconstruction token)>"


NDARRAY_TOKEN = _NdarrayToken()


class CheckedArray(np.ndarray):
    """What ``checked_reconstruct`` returns; its BUILD (``__setstate__``) checks the state.

    Only numpy's pickled-array state is accepted: ``(version, shape, dtype, is_fortran,
    rawdata)`` with a plain dtype and exactly ``prod(shape) * itemsize`` raw bytes (or, for
    object arrays, a list of exactly ``prod(shape)`` items), charged to the current budget.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise HostileArrayError("numpy array state is not numpy's (version, shape, ...)")
        if len(state) == 5:
            if state[0] != 1:
                raise HostileArrayError(f"numpy array state version {state[0]!r}")
            state = state[1:]
        shape_v, dtype_v, fortran, raw = state
        what = "pickled numpy array"
        shape = _shape(shape_v, what)
        dtype = plain_dtype(dtype_v, what)
        n = math.prod(shape)
        if dtype.kind == "O":
            if not isinstance(raw, list) or len(raw) != n:
                raise HostileArrayError(f"{what}: object array without its {n} items")
        else:
            if not isinstance(raw, (bytes, str)) or len(raw) != n * dtype.itemsize:
                size = len(raw) if isinstance(raw, (bytes, str)) else type(raw).__name__
                raise HostileArrayError(
                    f"{what}: shape {shape} {dtype} needs {n * dtype.itemsize} bytes, got {size}"
                )
        current_budget().take(n, what)
        super().__setstate__((1, shape, dtype, bool(fortran), raw))


def checked_reconstruct(subtype: object, shape: object, typecode: object) -> CheckedArray:
    """numpy's ``_reconstruct`` as pickles call it, and only that: an empty array to BUILD."""
    if subtype is not NDARRAY_TOKEN or shape != (0,) or typecode not in (b"b", "b"):
        raise HostileArrayError(
            f"numpy _reconstruct({subtype!r:.40}, {shape!r:.40}, {typecode!r:.20}) is not how "
            "numpy pickles an array"
        )
    return np.ndarray.__new__(CheckedArray, (0,), np.int8)


def checked_dtype(obj: object, align: object = False, copy: object = True) -> np.dtype:
    """``numpy.dtype(obj, align, copy)`` for a short type string, always a private copy.

    copy=True always: BUILD then sets the state of a fresh object, never numpy's shared
    builtin dtype instance. Arrays re-check (and rebuild) the dtype in :func:`plain_dtype`.
    """
    if not isinstance(obj, str) or not 0 < len(obj) <= 16:
        raise HostileArrayError(f"numpy.dtype({obj!r:.40}) is not a plain type code")
    try:
        return np.dtype(obj, bool(align), True)
    except (TypeError, ValueError) as exc:
        raise HostileArrayError(f"numpy.dtype({obj!r}): {exc}") from exc


def checked_frombuffer(buf: object, dtype: object, shape: object, order: object) -> np.ndarray:
    """numpy's protocol-5 ``_frombuffer(buf, dtype, shape, order)``, exact sizes only."""
    what = "pickled numpy array (protocol 5)"
    if not isinstance(buf, (bytes, bytearray)):
        raise HostileArrayError(f"{what}: buffer is a {type(buf).__name__}")
    dt = plain_dtype(dtype, what)
    shp = _shape(shape, what)
    n = math.prod(shp)
    if dt.kind == "O" or order not in ("C", "F") or len(buf) != n * dt.itemsize:
        raise HostileArrayError(f"{what}: {len(buf)} bytes for shape {shp} {dt} order {order!r}")
    current_budget().take(n, what)
    return np.frombuffer(buf, dtype=dt).reshape(shp, order=order)  # type: ignore[call-overload]


def checked_scalar(dtype: object, data: object = None) -> Any:
    """numpy's ``scalar(dtype, bytes)`` for plain non-object dtypes with exactly itemsize bytes."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]

    dt = plain_dtype(dtype, "pickled numpy scalar")
    if isinstance(data, str):
        data = data.encode("latin1")  # Python 2 str payloads
    if dt.kind == "O" or not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise HostileArrayError(f"pickled numpy scalar: {dt} with {type(data).__name__} data")
    current_budget().take(1, "pickled numpy scalar")
    return scalar(dt, data)


def count_elements(value: object, limit: int) -> int:
    """How many elements ``np.asarray(value)`` would make of nested lists/tuples, stopping
    as soon as the count passes ``limit`` (memo references make the tree much larger than
    the file)."""
    total = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple)):
            if depth >= _MAX_NDIM:
                raise HostileArrayError("nested lists deeper than 32 levels")
            stack.extend((x, depth + 1) for x in item)
            total += not item  # an empty list still costs a slot in the walk
        elif isinstance(item, np.ndarray):
            total += item.size
        else:
            total += 1
        if total > limit:
            break
    return total


def as_array(value: object, what: str) -> np.ndarray:
    """``np.asarray(value)`` as a plain ndarray, charging nested lists to the budget first."""
    if isinstance(value, np.ndarray):
        return np.asarray(value).view(np.ndarray)
    if isinstance(value, (list, tuple)):
        budget = current_budget()
        n = count_elements(value, budget.limit - budget.used)
        budget.take(n, what)
    return np.asarray(value).view(np.ndarray)


def _read_npy_member(fh: IO[bytes], size: int, what: str) -> np.ndarray | None:
    """One ``.npy`` member: header first, then exactly the data it announces.

    Returns None for object arrays (they are pickles; the callers use allow_pickle=False
    semantics and skip them).
    """
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape_v, fortran, dtype_v = fmt.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape_v, fortran, dtype_v = fmt.read_array_header_2_0(fh)
    else:  # 3.0 only exists for utf-8 field names, i.e. structured dtypes
        raise HostileArrayError(f"{what}: .npy format {version} refused")
    if isinstance(dtype_v, np.dtype) and dtype_v.hasobject:
        return None
    shape = _shape(shape_v, what)
    dtype = plain_dtype(dtype_v, what)
    n = math.prod(shape)
    nbytes = n * dtype.itemsize
    header = fh.tell()
    if size != header + nbytes:
        raise HostileArrayError(
            f"{what}: header says {shape} {dtype} ({nbytes} bytes) but the member holds "
            f"{size - header}"
        )
    current_budget().take(n, what)
    out = np.empty(n, dtype=dtype)
    view = memoryview(out.view(np.uint8))
    got = 0
    while got < nbytes:
        k = fh.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            raise EOFError(f"{what}: data ends after {got} of {nbytes} bytes")
        got += k
    return out.reshape(shape, order="F" if fortran else "C")


def read_npz(stream: IO[bytes], keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The ``.npy`` members of an ``.npz`` (all, or only ``keys``), checked before reading.

    Object arrays are skipped (as ``np.load(allow_pickle=False)`` would refuse them); members
    that are not ``.npy`` are ignored. Every member's header is checked against its size in
    the zip directory and the budget before its data is read, and zipfile never inflates a
    member past that size (and checks its CRC at the end). Raises HostileArrayError, or
    zipfile.BadZipFile/ValueError/EOFError/OSError for a corrupt file.
    """
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(stream) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            if keys is not None and key not in keys:
                continue
            with zf.open(info) as fh:
                arr = _read_npy_member(fh, info.file_size, f"npz member {info.filename!r}")
            if arr is not None:
                out[key] = arr
    return out
