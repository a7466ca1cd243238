"""Shared pytest fixtures.

Synthetic assets (``mocap_ros.tools.synthetic``): the licensed SMPL files and FrankMocap's
checkpoint
never exist on test machines, so tests use files generated in exactly their formats. They are
generated ONCE per test session (about 2-3 s on 2 cores, ~230 MB in a pytest tmp dir):

``synthetic_assets_root`` -> Path
    A folder playing FrankMocap's repo root, containing ``extra_data/`` with
    ``body_module/pretrained_weights/2020_05_31-00_50_43-best-51.749683916568756.pt`` (HMR,
    seed 0, pre-1.6 torch format, ~108 MB), ``body_module/data_from_spin/smpl_mean_params.npz``
    and ``J_regressor_extra.npy``, ``smpl/basicModel_{neutral,m,f}_lbs_10_207_0_v1.0.0.pkl``
    (original chumpy/scipy pickle format, procedural 6890-vertex body) and ``SYNTHETIC.txt``
    (also in the root itself).

``synthetic_assets`` -> mocap_ros.assets.files.AssetPaths
    Paths of that tree (``checkpoint``, ``mean_params``, ``smpl_model`` = neutral,
    ``j_regressor_extra``, ``root`` = extra_data/).

``synthetic_generation_seconds`` -> float
    How long the generation took (for timing assertions/reports).

The files are shared by every test in the session: treat them as read-only and copy one to
``tmp_path`` before modifying it. The synthetic network gives a body near the mean pose for
any image; the body model is a mannequin, not SMPL's shape space.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mocap_ros.assets.files import AssetPaths

# Headless off-screen rendering for every test (the synthetic operator, sim pictures).
# MuJoCo picks its GL backend once, when it is first imported: a test that imports mujoco
# before another sets MUJOCO_GL leaves GLFW in place, and the next renderer aborts the whole
# pytest process (no display). So it is set here, before any test module is imported.
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (ONNX exports, default synthetic assets) go to the session's tmp dir, never
    to the user's ~/.cache."""
    import os

    os.environ["MOCAP_ROS_CACHE"] = str(tmp_path_factory.mktemp("mocap_ros_cache"))


@pytest.fixture(scope="session")
def _synthetic_generation(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, AssetPaths, float]:
    from mocap_ros.tools.synthetic.files import (
        write_synthetic_assets,  # torch import only when used
    )

    root = tmp_path_factory.mktemp("frankmocap_synthetic")
    t0 = time.perf_counter()
    paths = write_synthetic_assets(root, seed=0)
    return root, paths, time.perf_counter() - t0


@pytest.fixture(scope="session")
def synthetic_assets_root(_synthetic_generation: tuple[Path, AssetPaths, float]) -> Path:
    """FrankMocap-like repo root holding the synthetic ``extra_data/`` (read-only)."""
    return _synthetic_generation[0]


@pytest.fixture(scope="session")
def synthetic_assets(_synthetic_generation: tuple[Path, AssetPaths, float]) -> AssetPaths:
    """``AssetPaths`` of the session's synthetic assets (read-only files)."""
    return _synthetic_generation[1]


@pytest.fixture(scope="session")
def synthetic_generation_seconds(_synthetic_generation: tuple[Path, AssetPaths, float]) -> float:
    return _synthetic_generation[2]


@pytest.fixture(scope="module")
def cfg(synthetic_assets_root: Path) -> object:
    """A CPU MocapConfig on the synthetic assets."""
    from mocap_ros.core.config import MocapConfig

    return MocapConfig(assets_dir=str(synthetic_assets_root), device="cpu")


@pytest.fixture(scope="module")
def models(cfg: object) -> object:
    """The synthetic models, loaded once per test module (tests may share them read-only)."""
    from mocap_ros.estimation.hmr.pipeline import load_models

    return load_models(cfg)


@pytest.fixture(scope="module")
def pipe(cfg: object, models: object) -> object:
    from mocap_ros.estimation.hmr.pipeline import MocapPipeline

    return MocapPipeline(cfg, models=models)
