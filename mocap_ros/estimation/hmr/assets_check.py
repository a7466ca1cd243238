"""Deep check of a FrankMocap asset set: every file loaded as the pipeline will load it
(the checkpoint into the HMR network, the SMPL file through the restricted unpickler). Here,
not in :mod:`mocap_ros.assets`, because it needs the network."""

from __future__ import annotations

from pathlib import Path

from mocap_ros.assets.files import AssetPaths, Problem, source_of


def _check_loadable(name: str, path: Path, paths: AssetPaths) -> list[Problem]:
    """Load one existing asset and report what is wrong with it (deep check)."""
    import numpy as np

    from mocap_ros.io.checkpoint import load_hmr_checkpoint, load_mean_params
    from mocap_ros.io.smpl_file import ModelFileError, load_smpl_file, smpl_problems

    src = source_of(name, path)
    try:
        if name in ("checkpoint", "smplx_checkpoint"):
            from mocap_ros.estimation.hmr.network import HMR

            load_hmr_checkpoint(path, HMR())
        elif name == "mean_params":
            load_mean_params(path)
        elif name in ("smpl_model", "smplx_model"):
            data = load_smpl_file(path, validate=False)
            return [Problem(name, path, msg, src) for msg in smpl_problems(data)]
        elif name in ("j_regressor_extra", "j_regressor_extra_smplx"):
            reg = np.load(path, allow_pickle=False)
            n_verts = 10475 if "smplx" in path.name.lower() else 6890
            if reg.shape != (9, n_verts) or reg.dtype.kind != "f":
                return [
                    Problem(
                        name,
                        path,
                        f"shape {reg.shape} dtype {reg.dtype}, expected (9, {n_verts}) float",
                        src,
                    )
                ]
    except ModelFileError as exc:
        return [Problem(name, path, str(exc), src)]
    except (
        ValueError,
        OSError,
        EOFError,
    ) as exc:  # CheckpointError/MeanParamsError are ValueErrors
        return [Problem(name, path, str(exc), src)]
    return []


def check_assets(paths: AssetPaths, deep: bool = True) -> list[Problem]:
    """Every problem with an asset set (empty: usable). ``deep`` also loads each file."""
    problems: list[Problem] = []
    for name, path in paths.items():
        src = source_of(name, path)
        if not path.exists():
            problems.append(Problem(name, path, "missing", src))
        elif not path.is_file():
            problems.append(Problem(name, path, "not a file", src))
        elif path.stat().st_size == 0:
            problems.append(Problem(name, path, "empty file (interrupted download?)", src))
        elif deep:
            problems.extend(_check_loadable(name, path, paths))
    return problems
