"""``mocap-ros assets {check,fetch,synthetic} DIR``: find, validate, download or fake the assets.

``mocap_ros/cli.py`` calls ``register(subparsers)``; each sub-command sets ``func``, which takes
the parsed ``args`` and returns the process exit code.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from mocap_ros.assets import files as assets


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``assets`` command (with check/fetch/synthetic) to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "assets",
        help="check, fetch or generate FrankMocap's body-module assets",
        description="FrankMocap's extra_data/ assets: check them, download the public ones, or "
        "write synthetic stand-ins for testing.",
    )
    sub = parser.add_subparsers(dest="assets_command", metavar="{check,fetch,synthetic}")
    sub.required = True

    check = sub.add_parser("check", help="report every missing or unusable asset (exit 1 if any)")
    check.add_argument("dir", help="FrankMocap's repo root or its extra_data/ folder")
    check.add_argument("--gender", default="neutral", choices=sorted(assets.SMPL_CANDIDATES),
                       help="which SMPL model file to look for")
    check.add_argument("--smplx", action="store_true", help="also require the SMPL-X assets")
    check.add_argument("--quick", action="store_true", help="only check that the files exist")
    check.add_argument("--checkpoint", help="explicit checkpoint path (overrides DIR's)")
    check.add_argument("--mean-params", help="explicit smpl_mean_params.npz path")
    check.add_argument("--smpl-model", help="explicit SMPL model path")
    check.set_defaults(func=cmd_check)

    fetch = sub.add_parser("fetch", help="download the public files FrankMocap's script downloads")
    fetch.add_argument("dir", help="FrankMocap's repo root or its extra_data/ folder")
    fetch.add_argument("--base-url", help="a mirror keeping the original URL paths")
    fetch.add_argument(
        "--no-smplx", action="store_true", help="skip the SMPL-X checkpoint/regressor"
    )
    fetch.set_defaults(func=cmd_fetch)

    synth = sub.add_parser("synthetic", help="write synthetic assets (NOT real weights) for tests")
    synth.add_argument("dir", help="folder to play FrankMocap's repo root (gets extra_data/)")
    synth.add_argument("--seed", type=int, default=0,
                       help="random seed of the stand-in weights")
    synth.set_defaults(func=cmd_synthetic)
    return parser


def cmd_check(args: argparse.Namespace) -> int:
    paths = assets.resolve_assets(
        args.dir,
        checkpoint=args.checkpoint,
        mean_params=args.mean_params,
        smpl_model=args.smpl_model,
        gender=args.gender,
        use_smplx=args.smplx,
    )
    from mocap_ros.estimation.hmr.assets_check import check_assets

    problems = check_assets(paths, deep=not args.quick)
    bad = {p.asset for p in problems}
    print(
        f"assets in {paths.root}"
        + (" (SYNTHETIC: not real weights)" if assets.is_synthetic(paths) else "")
    )
    for name, path in paths.items():
        print(f"  {'PROBLEM' if name in bad else 'ok':8s} {name:24s} {path}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("all assets " + ("present" if args.quick else "present and loadable"))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    manifest = [
        e
        for e in assets.DEFAULT_MANIFEST
        if not (args.no_smplx and e.name in ("smplx_checkpoint", "j_regressor_extra_smplx"))
    ]
    try:
        results = assets.fetch_assets(args.dir, manifest, base_url_override=args.base_url)
    except assets.FetchError as exc:
        print(f"fetch failed: {exc}")
        return 1
    for r in results:
        for note in r.notes:
            print(f"  note: {note}")
    print("\nNot downloadable (licensed): the SMPL model. " + assets.SOURCES["smpl_model"])
    return 0


def cmd_synthetic(args: argparse.Namespace) -> int:
    from mocap_ros.tools.synthetic.files import write_synthetic_assets

    t0 = time.perf_counter()
    paths = write_synthetic_assets(args.dir, seed=args.seed)
    dt = time.perf_counter() - t0
    print(f"wrote SYNTHETIC assets (seed {args.seed}, {dt:.1f} s) - NOT real weights:")
    for name, path in paths.items():
        print(f"  {name:24s} {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
