"""A FrankMocap-layout HMR checkpoint with seeded weights: SPIN/EFT saver keys, written
by ``torch.save`` in the pre-1.6 (non-zip) format with numpy 1.x global names, as a May 2020
file is."""

from __future__ import annotations

import os
import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np

from mocap_ros.tools.synthetic.smpl import mean_params_arrays


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
    __name__="mocap_ros.tools.synthetic.hmr.numpy1_pickle", Pickler=_Numpy1NamesPickler,
    dump=pickle.dump
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
    """``mocap_ros.estimation.hmr.network.HMR`` with deterministic synthetic weights (global
    RNG untouched)."""
    import torch

    from mocap_ros.estimation.hmr.network import HMR

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

    from mocap_ros.io.checkpoint import load_mean_params

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

