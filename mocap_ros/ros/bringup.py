"""What ``mocap-ros up --teleop`` and ``teleop.launch.py`` both start, built in one place.

The two ways to bring teleoperation up used to be wired apart: ``up`` had no operator lock
and kept mocap_node's ``full_frame`` box, where the launch file used the person detector (so
``up --backend hmr`` refused every pose as unconfirmed). Both now take mocap_node's
overrides and teleop_node's parameters from ``teleop_bringup``; the launch files also take
``required`` (a node whose exit ends the launch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# mocap_node's operator lock service, as teleop_node calls it (mocap_node's ~/lock)
LOCK_SERVICE = "/mocap_node/lock"
# A robot follows only bodies a person detector confirmed (teleop_node's require_person_check):
# with HMR, full_frame would report a body in an empty room.
TELEOP_BBOX_MODE = "detector"


@dataclass
class TeleopBringup:
    """Parameter overrides of mocap_node, and teleop_node's parameters."""

    mocap: dict[str, Any] = field(default_factory=dict)
    teleop: dict[str, Any] = field(default_factory=dict)


def robot_config_path(robot: str, folder: str | os.PathLike[str]) -> Path:
    """``fr3``, ``teleop_fr3.yaml`` -> ``folder``/teleop_fr3.yaml; a path is taken as it is.
    ValueError naming the shipped robot maps when there is no such file."""
    folder = Path(folder)
    given = Path(robot).expanduser()
    if os.sep in robot or given.is_file():
        if not given.is_file():
            raise ValueError(f"robot map {robot}: no such file")
        return given
    name = robot if given.suffix in (".yaml", ".yml") else f"teleop_{robot}.yaml"
    path = folder / name
    if not path.is_file():
        known = sorted(p.stem.removeprefix("teleop_") for p in folder.glob("teleop_*.yaml"))
        raise ValueError(f"robot map {robot}: no {name} in {folder}; known: "
                         + ", ".join(known))
    return path


def teleop_bringup(robot_config: str | os.PathLike[str], *, operator_lock: bool = False,
                   bbox_mode: str | None = None,
                   teleop: dict[str, Any] | None = None) -> TeleopBringup:
    """mocap_node overrides and teleop_node parameters for teleoperation. ``bbox_mode``
    None: the detector. ``operator_lock``: mocap_node locks on to the person followed when
    teleop is enabled, and teleop_node asks for that lock on ~/enable."""
    mocap: dict[str, Any] = {"bbox_mode": bbox_mode or TELEOP_BBOX_MODE}
    params: dict[str, Any] = {"robot_config": str(robot_config), **(teleop or {})}
    if operator_lock:
        mocap["operator_lock"] = True
        params["operator_lock_service"] = LOCK_SERVICE
    return TeleopBringup(mocap=mocap, teleop=params)


def required(node: Any) -> list[Any]:
    """For launch files: ``node`` and a handler that ends the launch when it exits (the
    others are of no use without it: a camera_node left running after mocap_node refused a
    parameter). A non-zero exit outside a shutdown is raised, so ``ros2 launch`` itself
    exits 1 and says why."""
    from launch.actions import RegisterEventHandler, Shutdown
    from launch.event_handlers import OnProcessExit

    def on_exit(event: Any, context: Any) -> list[Any]:
        if event.returncode not in (0, None) and not context.is_shutdown:
            raise RuntimeError(f"{event.action.name} exited with code {event.returncode}: "
                               "stopping the launch (a required node)")
        return [Shutdown(reason=f"{event.action.name} exited")]

    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit))]
