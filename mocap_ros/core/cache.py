"""Where mocap_ros keeps generated files (ONNX exports, synthetic assets): never the source
tree. ``$MOCAP_ROS_CACHE``, else ``$XDG_CACHE_HOME/mocap_ros``, else ``~/.cache/mocap_ros``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(sub: str) -> Path:
    root = os.environ.get("MOCAP_ROS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mocap_ros")
    return Path(root) / sub
