"""HMR checkpoint and mean-params loading: strict keys, weights_only, clear errors."""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from mocap_ros.estimation.hmr.network import HMR
from mocap_ros.io.checkpoint import (
    CheckpointError,
    MeanParamsError,
    _read_checkpoint,
    load_hmr_checkpoint,
    load_mean_params,
)


@pytest.fixture(scope="module")
def raw_checkpoint(synthetic_assets) -> dict:
    """The synthetic checkpoint's content, loaded safely once (do not mutate)."""
    return _read_checkpoint(Path(synthetic_assets.checkpoint), "cpu")


@pytest.fixture(scope="module")
def model() -> HMR:
    """One HMR for the module: a successful load overwrites every tensor, a failed one none."""
    return HMR()


def _save(obj: object, path: Path, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _with_model(raw: dict, sd: dict) -> dict:
    return {**raw, "model": sd}


def test_synthetic_checkpoint_loads_strictly_with_equal_weights(
    synthetic_assets, raw_checkpoint
) -> None:
    model = HMR()  # fresh: the shared one may hold other tests' loads
    meta = load_hmr_checkpoint(synthetic_assets.checkpoint, model)
    assert meta["layout"] == "model" and meta["file_format"] == "legacy"
    assert meta["epoch"] == 51 and meta["total_step_count"] == 46582
    assert meta["batch_size"] == 64 and meta["batch_idx"] == 0
    assert meta["dataset_perm_len"] == 10_000 and meta["has_optimizer"]
    assert meta["num_tensors"] == 331 and not meta["stripped_prefix"]
    saved = raw_checkpoint["model"]
    state = model.state_dict()
    assert list(state) == list(saved)
    for k, v in state.items():
        assert torch.equal(v, saved[k]), k
    # the mean parameters travel in the checkpoint as buffers
    assert torch.allclose(state["init_cam"], torch.tensor([[0.9, 0.0, 0.0]]))


def test_dataset_perm_is_numpy_and_needs_the_numpy_allowlist(
    synthetic_assets, raw_checkpoint
) -> None:
    perm = raw_checkpoint["dataset_perm"]
    assert isinstance(perm, np.ndarray) and perm.dtype == np.int64
    assert np.array_equal(np.sort(perm), np.arange(perm.size))
    raw = Path(synthetic_assets.checkpoint).read_bytes()
    # a 2020 (numpy 1.x, torch < 1.6) file names numpy.core, and is not a zip
    assert b"numpy.core.multiarray\n_reconstruct" in raw and b"numpy._core" not in raw
    assert raw[:2] != b"PK"
    with pytest.raises(pickle.UnpicklingError):  # plain weights_only refuses numpy
        torch.load(synthetic_assets.checkpoint, weights_only=True)
    # the allow-list was scoped to our load
    names = {str(g) for g in torch.serialization.get_safe_globals()}
    assert not any("numpy" in n for n in names)


def test_zip_format_with_current_numpy_names_loads(
    tmp_path: Path, raw_checkpoint, model: HMR
) -> None:
    p = _save(dict(raw_checkpoint), tmp_path / "zip.pt")
    raw = p.read_bytes()
    assert raw[:2] == b"PK"
    meta = load_hmr_checkpoint(p, model)
    assert meta["file_format"] == "zip" and meta["dataset_perm_len"] == 10_000


def test_list_or_none_dataset_perm_as_spin_saves_it(
    tmp_path: Path, raw_checkpoint, model: HMR
) -> None:
    for perm in (list(range(10)), None):
        p = _save({**raw_checkpoint, "dataset_perm": perm}, tmp_path / "spin.pt")
        load_hmr_checkpoint(p, model)


def test_module_prefix_bare_and_state_dict_layouts(
    tmp_path: Path, raw_checkpoint, model: HMR
) -> None:
    sd = raw_checkpoint["model"]
    prefixed = OrderedDict(("module." + k, v) for k, v in sd.items())
    meta = load_hmr_checkpoint(
        _save(_with_model(raw_checkpoint, prefixed), tmp_path / "dp.pt"), model
    )
    assert meta["stripped_prefix"]
    meta = load_hmr_checkpoint(_save(OrderedDict(sd), tmp_path / "bare.pt"), model)
    assert meta["layout"] == "bare"
    meta = load_hmr_checkpoint(_save({"state_dict": sd, "epoch": 3}, tmp_path / "sd.pt"), model)
    assert meta["layout"] == "state_dict" and meta["epoch"] == 3
    # a prefix on only some keys is not stripped: those keys are reported
    partial = OrderedDict(sd)
    partial["module.fc1.weight"] = partial.pop("fc1.weight")
    with pytest.raises(CheckpointError, match=r"missing keys: fc1\.weight"):
        load_hmr_checkpoint(_save(_with_model(raw_checkpoint, partial), tmp_path / "p.pt"), model)


def test_deleted_renamed_and_misshaped_keys_are_named(
    tmp_path: Path, raw_checkpoint, model: HMR
) -> None:
    sd = OrderedDict(raw_checkpoint["model"])
    deleted = OrderedDict(sd)
    del deleted["layer3.2.bn2.running_var"]
    with pytest.raises(CheckpointError) as info:
        load_hmr_checkpoint(_save(_with_model(raw_checkpoint, deleted), tmp_path / "d.pt"), model)
    assert "1 missing keys: layer3.2.bn2.running_var" in str(info.value)

    renamed = OrderedDict(sd)
    renamed["decpose.w"] = renamed.pop("decpose.weight")
    with pytest.raises(CheckpointError) as info:
        load_hmr_checkpoint(_save(_with_model(raw_checkpoint, renamed), tmp_path / "r.pt"), model)
    assert "missing keys: decpose.weight" in str(info.value)
    assert "unexpected keys: decpose.w" in str(info.value)

    shaped = OrderedDict(sd)
    shaped["deccam.weight"] = torch.zeros(4, 1024)
    with pytest.raises(
        CheckpointError,
        match=r"deccam\.weight: checkpoint \(4, 1024\) vs model "
        r"\(3, 1024\)",
    ):
        load_hmr_checkpoint(_save(_with_model(raw_checkpoint, shaped), tmp_path / "s.pt"), model)

    many = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("layer4"))
    with pytest.raises(CheckpointError, match=r"\.\.\. and \d+ more"):
        load_hmr_checkpoint(_save(_with_model(raw_checkpoint, many), tmp_path / "m.pt"), model)


def test_missing_batchnorm_counters_are_tolerated(
    tmp_path: Path, raw_checkpoint, model: HMR
) -> None:
    sd = OrderedDict(
        (k, v) for k, v in raw_checkpoint["model"].items() if not k.endswith("num_batches_tracked")
    )
    load_hmr_checkpoint(_save(_with_model(raw_checkpoint, sd), tmp_path / "old.pt"), model)


def test_corrupt_truncated_and_non_checkpoint_files(
    tmp_path: Path, synthetic_assets, raw_checkpoint, model: HMR
) -> None:
    legacy = Path(synthetic_assets.checkpoint).read_bytes()
    zipped = _save(dict(raw_checkpoint), tmp_path / "z.pt").read_bytes()
    p = tmp_path / "bad.pt"
    for data in (
        legacy[: len(legacy) // 2],
        legacy[:50],
        zipped[: len(zipped) // 2],
        os.urandom(4096),
        b"",
    ):
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match="corrupt"):
            load_hmr_checkpoint(p, model)
    for obj, msg in (
        (torch.zeros(3), "expected a dict"),
        ({"epoch": 1}, "no model weights"),
        ({"model": {"a": 1}}, "not tensors"),
    ):
        with pytest.raises(CheckpointError, match=msg):
            load_hmr_checkpoint(_save(obj, p), model)
    with pytest.raises(FileNotFoundError, match=r"dl\.fbaipublicfiles\.com"):
        load_hmr_checkpoint(tmp_path / "nope.pt", model)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_checkpoint_is_refused_and_runs_nothing(
    tmp_path: Path, legacy: bool, model: HMR
) -> None:
    marker = tmp_path / "pwned"
    p = _save(
        {"model": {"w": torch.zeros(1)}, "epoch": _Evil(marker)},
        tmp_path / "evil.pt",
        legacy=legacy,
    )
    with pytest.raises(CheckpointError) as info:
        load_hmr_checkpoint(p, model)
    assert f"{os.system.__module__}.system" in str(info.value)
    assert "nothing from the file was executed" in str(info.value)
    assert not marker.exists()


def test_map_location_is_passed(synthetic_assets, model: HMR) -> None:
    load_hmr_checkpoint(synthetic_assets.checkpoint, model, map_location=torch.device("cpu"))
    assert next(model.parameters()).device.type == "cpu"


def test_mean_params(tmp_path: Path, synthetic_assets) -> None:
    mp = load_mean_params(synthetic_assets.mean_params)
    assert {k: v.shape for k, v in mp.items()} == {"pose": (144,), "shape": (10,), "cam": (3,)}
    assert all(v.dtype == np.float32 for v in mp.values())
    p = tmp_path / "smpl_mean_params.npz"

    def write(**arrays: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        p.write_bytes(buf.getvalue())
        return p

    assert load_mean_params(write(pose=mp["pose"][None], shape=mp["shape"], cam=mp["cam"]))[
        "pose"
    ].shape == (144,)
    with pytest.raises(MeanParamsError, match="missing keys: cam"):
        load_mean_params(write(pose=mp["pose"], shape=mp["shape"]))
    with pytest.raises(MeanParamsError, match=r"pose has shape \(72,\)"):
        load_mean_params(write(pose=np.zeros(72), shape=mp["shape"], cam=mp["cam"]))
    with pytest.raises(MeanParamsError, match="NaN"):
        load_mean_params(write(pose=mp["pose"], shape=mp["shape"], cam=np.array([np.nan, 0, 0])))
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(MeanParamsError, match="truncated or corrupt"):
        load_mean_params(p)
    with pytest.raises(FileNotFoundError, match=r"spin/data\.tar\.gz"):
        load_mean_params(tmp_path / "missing.npz")
