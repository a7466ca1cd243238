"""``mocap-ros docs params``: regenerate (or ``--check``) the generated reference pages."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_docs(args: argparse.Namespace) -> int:
    from mocap_ros.tools import param_docs

    return param_docs.main(check=args.check, docs_dir=args.docs_dir)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "docs", help="regenerate docs/parameters.md and docs/robot_yaml.md from the code",
        description="Writes the node parameter tables (from the settings dataclasses the "
        "nodes declare) and the robot YAML key tables (from the teleop loaders) into docs/.")
    p.add_argument("what", choices=("params",), help="params: node parameters and robot "
                   "YAML keys")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page "
                   "differs from what the code generates")
    p.add_argument("--docs-dir", type=Path, help="where the pages are (default: the "
                   "checkout's docs/)")
    p.set_defaults(func=cmd_docs)
