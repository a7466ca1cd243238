"""What every verb shares: MocapConfig from flags and YAML, and the built-in default model
files (generated stand-ins) when HMR is asked for without FrankMocap's."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import yaml

from mocap_ros.core.config import MocapConfig

log = logging.getLogger(__name__)


def default_synthetic_dir() -> Path:
    """Where generated stand-in model files live (never in the source tree)."""
    from mocap_ros.core.cache import cache_dir

    return cache_dir("synthetic")


def ensure_synthetic_assets(root: Path | None = None, seed: int = 0) -> Path:
    """Generate the synthetic FrankMocap layout once; reuse it afterwards."""
    from mocap_ros.tools.synthetic.files import write_synthetic_assets

    root = root or default_synthetic_dir()
    if not (root / "SYNTHETIC.txt").exists():
        log.info("generating synthetic model files in %s", root)
        write_synthetic_assets(root, seed=seed)
    return root


def add_config_args(p: argparse.ArgumentParser) -> None:
    """One flag per MocapConfig field (``--n-iter``...), plus ``--config FILE.yaml``."""
    p.add_argument("--config", help="YAML file with MocapConfig keys (ROS params files work: "
                   "the mocap_node/ros__parameters section is used)")
    for f in dataclasses.fields(MocapConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": meta["description"]}
        if isinstance(f.default, bool):
            kw["action"] = argparse.BooleanOptionalAction
        elif f.name == "roi":
            kw.update(nargs=4, type=float, metavar=("X", "Y", "W", "H"))
        else:
            kw["type"] = type(f.default)
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
        p.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace) -> MocapConfig:
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        for section in ("mocap_node", "/**"):
            if section in loaded and "ros__parameters" in loaded[section]:
                loaded = loaded[section]["ros__parameters"]
                break
        names = {f.name for f in dataclasses.fields(MocapConfig)}
        values.update({k: v for k, v in loaded.items() if k in names})
    for f in dataclasses.fields(MocapConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = list(v) if f.name == "roi" else v
    return MocapConfig.from_dict(values)


def with_default_assets(cfg: MocapConfig, hmr_only: bool = False) -> MocapConfig:
    """The built-in default when no model files are given: the landmarks backend (real
    poses, no licensed files); where HMR is asked for (backend=hmr, or a command that only
    measures HMR), generated stand-ins in the real formats."""
    if cfg.assets_dir or cfg.checkpoint:
        return cfg
    if cfg.backend == "hmr" or hmr_only:
        return cfg.replace(assets_dir=str(ensure_synthetic_assets()), backend="hmr")
    return cfg
