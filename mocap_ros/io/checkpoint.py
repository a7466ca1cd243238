"""Load FrankMocap's HMR body checkpoint and SPIN's ``smpl_mean_params.npz``, safely and strictly.

FrankMocap does ``torch.load(path)['model']`` and ``load_state_dict(..., strict=False)``: an
unrestricted unpickle of a downloaded file, and silent acceptance of missing weights. Here:

* ``torch.load(..., weights_only=True)``: torch's restricted unpickler, which builds tensors,
  containers and primitives only. Anything else named by the file (``os.system`` ...) is
  refused before it runs; we report it as ``CheckpointError``.
* The file is SPIN's/EFT's ``CheckpointSaver`` format: ``{'model', 'optimizer', 'epoch',
  'batch_idx', 'batch_size', 'dataset_perm', 'total_step_count'}``. ``dataset_perm`` is a
  numpy array in EFT's files (SPIN's own sampler stores a list or None, which need nothing),
  so weights_only needs a few numpy globals: see ``_numpy_safe_globals``. They are the
  checked reconstructors of ``safe_arrays`` (never ``numpy.ndarray`` as a callable), within
  an element budget of ``file size + 2**20``.
* ``smpl_mean_params.npz`` is read member by member, each ``.npy`` header checked against
  the member's size and the budget before its data is read.
* Strict key matching after stripping a DataParallel ``module.`` prefix; every missing,
  unexpected or mis-shaped tensor is reported.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mocap_ros.io.safe_arrays import (
    NDARRAY_TOKEN,
    NPZ_FACTOR,
    CheckedArray,
    HostileArrayError,
    array_budget,
    checked_dtype,
    checked_reconstruct,
    element_budget,
    read_npz,
)

CHECKPOINT_HELP = (
    "FrankMocap's body checkpoint is public: its scripts/download_data_body_module.sh fetches "
    "https://dl.fbaipublicfiles.com/eft/2020_05_31-00_50_43-best-51.749683916568756.pt into "
    "extra_data/body_module/pretrained_weights/ (`mocap-ros assets fetch DIR` does the same)."
)
MEAN_PARAMS_HELP = (
    "smpl_mean_params.npz is part of SPIN's data archive "
    "(http://visiondata.cis.upenn.edu/spin/data.tar.gz), which FrankMocap unpacks as "
    "extra_data/body_module/data_from_spin/ (`mocap-ros assets fetch DIR` does the same)."
)
MEAN_PARAM_SHAPES: dict[str, int] = {"pose": 144, "shape": 10, "cam": 3}
_SHOW = 10  # how many offending keys an error lists before "... and N more"
_META_KEYS = ("epoch", "batch_idx", "batch_size", "total_step_count")


class CheckpointError(ValueError):
    """The checkpoint is unreadable, unsafe, or does not match the model."""


class MeanParamsError(ValueError):
    """smpl_mean_params.npz is unreadable or lacks pose (144,), shape (10,), cam (3,)."""


def _numpy_safe_globals() -> list[Any]:
    """The numpy globals weights_only must accept for a numpy int array, and nothing more.

    A numpy array pickles as ``_reconstruct(ndarray, (0,), b'b')`` + BUILD with a state whose
    dtype is ``dtype('i8', False, True)`` + BUILD. The stream names the function by its module
    path at save time: a 2020 checkpoint (numpy 1.x) says ``numpy.core.multiarray``, numpy >= 2
    writes ``numpy._core.multiarray``; the (object, name) form registers one object under a
    name. What those names give is ``safe_arrays``' checked versions: ``numpy.ndarray`` is a
    token that only ``_reconstruct`` accepts (called, it refuses: numpy's real constructor
    builds views of any shape and strides), ``_reconstruct`` returns a ``CheckedArray``
    whose BUILD checks shape, dtype, exact byte count and the load's element budget.
    torch's BUILD checks the *runtime* type of the object being built, so ``CheckedArray``
    is registered under a name without a dot (a GLOBAL always yields ``module.name``, so the
    file cannot name it) and the dtype classes int64 (what a permutation is) and int32 (what
    numpy 1.x on Windows gives) under theirs (calling those builds a harmless dtype).
    ``_codecs.encode`` (the array's bytes under protocol 2) is allowed by torch already.
    Loads using these must run inside ``safe_arrays.array_budget``.
    """
    return [
        (checked_reconstruct, "numpy.core.multiarray._reconstruct"),
        (checked_reconstruct, "numpy._core.multiarray._reconstruct"),
        (NDARRAY_TOKEN, "numpy.ndarray"),
        (checked_dtype, "numpy.dtype"),
        (CheckedArray, "mocap_ros_checked_ndarray"),
        type(np.dtype(np.int64)),
        type(np.dtype(np.int32)),
    ]


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" ... and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def _plain_arrays(obj: Any, depth: int = 0) -> Any:
    """The loaded content with every ``CheckedArray`` as a plain ndarray (so it pickles as
    one again, e.g. when a test or tool re-saves the checkpoint)."""
    if isinstance(obj, CheckedArray):
        return obj.view(np.ndarray)
    if depth > 16:
        return obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _plain_arrays(v, depth + 1)
    elif isinstance(obj, list):
        obj[:] = [_plain_arrays(v, depth + 1) for v in obj]
    elif type(obj) is tuple:
        return tuple(_plain_arrays(v, depth + 1) for v in obj)
    return obj


def _read_checkpoint(path: Path, map_location: Any) -> Any:
    label = str(path)
    try:
        # safe_globals is a context manager: the numpy names are allowed only for this load
        # (torch keeps them in a process-wide set while the block runs).
        with (
            torch.serialization.safe_globals(_numpy_safe_globals()),
            array_budget(label, element_budget(path.stat().st_size)),
        ):
            return _plain_arrays(torch.load(path, map_location=map_location, weights_only=True))
    except HostileArrayError as exc:
        raise CheckpointError(f"{label}: refusing to load: {exc}") from exc
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        m = re.search(r"GLOBAL ([\w.]+)", msg) or re.search(r"function (<[^>]*>|[\w.]+)", msg)
        if m or "Weights only load failed" in msg:
            what = m.group(1) if m else "a non-tensor object"
            raise CheckpointError(
                f"{label}: refusing to load: the checkpoint names {what}, which a weights "
                "checkpoint does not contain; nothing from the file was executed "
                "(torch.load weights_only=True)."
            ) from exc
        raise CheckpointError(
            f"{label}: not a readable PyTorch checkpoint (corrupt?): {msg}"
        ) from exc
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        zipfile.BadZipFile,
        MemoryError,
    ) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CheckpointError(
            f"{label}: not a readable PyTorch checkpoint (truncated or corrupt?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


def _pick_state_dict(ckpt: Any, label: str) -> tuple[Mapping[str, Any], str]:
    """The model's state dict inside a checkpoint, and which layout it had.

    'model': SPIN/EFT/FrankMocap (``checkpoint['model']``). 'state_dict': the other common
    trainer layout (e.g. Lightning). 'bare': the file is ``model.state_dict()`` itself.
    """
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{label}: expected a dict checkpoint, found {type(ckpt).__name__}")
    for key in ("model", "state_dict"):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            return ckpt[key], key
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt, "bare"
    raise CheckpointError(
        f"{label}: no model weights found: expected a 'model' or 'state_dict' entry or a bare "
        f"state dict; top-level keys are {_first(sorted(map(str, ckpt)))}"
    )


def load_hmr_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Load FrankMocap's body checkpoint into ``model`` with strict key matching.

    Accepted layouts: SPIN/EFT ``{'model': state_dict, ...}``, ``{'state_dict': ...}``, or a
    bare state dict; keys may carry DataParallel's ``module.`` prefix (stripped only when every
    key has it). BatchNorm ``num_batches_tracked`` counters may be absent (pre-1.0 torch files;
    they do not affect inference); every other mismatch raises ``CheckpointError``.

    Returns metadata: ``layout``, ``file_format`` ('zip' for torch >= 1.6 files, 'legacy'
    before), ``stripped_prefix``, ``num_tensors``, ``epoch``/``batch_idx``/``batch_size``/
    ``total_step_count`` when present, ``dataset_perm_len``, ``has_optimizer``, ``other_keys``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"HMR checkpoint not found: {p}. {CHECKPOINT_HELP}")
    label = str(p)
    ckpt = _read_checkpoint(p, map_location)
    sd, layout = _pick_state_dict(ckpt, label)
    non_tensor = [str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise CheckpointError(
            f"{label}: state dict entries that are not tensors: {_first(non_tensor)}"
        )
    keys = [str(k) for k in sd]
    stripped = bool(keys) and all(k.startswith("module.") for k in keys)
    weights: OrderedDict[str, torch.Tensor] = OrderedDict(
        (k[len("module.") :] if stripped else k, v) for k, v in zip(keys, sd.values(), strict=True)
    )

    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    # Counters only: fill them so load_state_dict stays strict about everything else.
    for k in [k for k in missing if k.endswith("num_batches_tracked")]:
        weights[k] = torch.zeros_like(expected[k])
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    unexpected = [k for k in weights if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in weights and weights[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_first(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {_first(mismatched)}")
    if problems:
        raise CheckpointError(
            f"{label} does not match {type(model).__name__} ({layout} layout"
            f"{', module. prefix stripped' if stripped else ''}):\n  - " + "\n  - ".join(problems)
        )
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:  # e.g. dtype that cannot be copied; keys were checked above
        raise CheckpointError(f"{label}: load_state_dict failed: {exc}") from exc

    meta: dict[str, Any] = {
        "layout": layout,
        "file_format": "zip" if zipfile.is_zipfile(p) else "legacy",
        "stripped_prefix": stripped,
        "num_tensors": len(weights),
    }
    if layout != "bare":
        for k in _META_KEYS:
            if k in ckpt:
                meta[k] = ckpt[k]
        perm = ckpt.get("dataset_perm")
        if perm is not None and hasattr(perm, "__len__"):
            meta["dataset_perm_len"] = len(perm)
        meta["has_optimizer"] = isinstance(ckpt.get("optimizer"), Mapping)
        meta["other_keys"] = sorted(
            str(k) for k in ckpt if k not in (layout, "optimizer", "dataset_perm", *_META_KEYS)
        )
    return meta


def load_mean_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """SPIN's ``smpl_mean_params.npz`` as float32 ``pose`` (144,), ``shape`` (10,), ``cam`` (3,).

    A leading batch axis of 1 is accepted. Loaded with allow_pickle=False (the real file holds
    plain arrays only).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SMPL mean parameters not found: {p}. {MEAN_PARAMS_HELP}")
    try:
        # headers checked before data; object arrays skipped (the real file has none)
        with p.open("rb") as fh, array_budget(str(p), element_budget(p.stat().st_size, NPZ_FACTOR)):
            raw = read_npz(fh, tuple(MEAN_PARAM_SHAPES))
    except HostileArrayError as exc:
        raise MeanParamsError(f"{p}: refusing to load: {exc}") from exc
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise MeanParamsError(
            f"{p}: not a readable .npz file (truncated or corrupt?): {exc}"
        ) from exc
    problems = []
    missing = [k for k in MEAN_PARAM_SHAPES if k not in raw]
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    for key, n in MEAN_PARAM_SHAPES.items():
        if key not in raw:
            continue
        a = raw[key]
        if a.dtype.kind not in "fiu" or a.size != n or a.shape not in ((n,), (1, n)):
            problems.append(f"{key} has shape {a.shape} dtype {a.dtype}, expected ({n},) float")
            continue
        a = a.reshape(n).astype(np.float32)
        if not np.isfinite(a).all():
            problems.append(f"{key} contains NaN or Inf")
        out[key] = a
    if problems:
        raise MeanParamsError(f"{p}: not SPIN's smpl_mean_params.npz: " + "; ".join(problems))
    return out
