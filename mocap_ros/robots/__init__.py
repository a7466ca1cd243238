"""Robot models for teleoperation: shipped MJCF files, loading, and collision queries.

* `model`     -- `load_robot` (shipped name, MJCF/URDF path or a URDF string such as the
                 ROS ``robot_description``), `add_environment` (floor, table box)
* `collision` -- `CollisionChecker`: distances over every non-adjacent geom pair and the
                 environment; `safe_step`: scale a joint step back to the last safe point

Shipped models (``models/``): ``fr3`` (Franka Research 3 with a Franka Hand envelope) and
``g1`` (Unitree G1 29-DoF upper body, base fixed, legs as fixed collision bodies). Both are
kinematic models with primitive collision envelopes, no meshes. Needs ``mujoco``; no rclpy.
"""

from mocap_ros.robots.collision import CollisionChecker, GeomPair, SafeStep, safe_step
from mocap_ros.robots.model import (
    SHIPPED,
    RobotModel,
    RobotModelError,
    TableSpec,
    add_environment,
    load_robot,
    load_urdf_string,
)

__all__ = [
    "SHIPPED",
    "CollisionChecker",
    "GeomPair",
    "RobotModel",
    "RobotModelError",
    "SafeStep",
    "TableSpec",
    "add_environment",
    "load_robot",
    "load_urdf_string",
    "safe_step",
]
