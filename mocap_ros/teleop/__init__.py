"""Teleoperation core: SMPL poses -> anatomical angles -> safe robot joint commands.

Pure numpy, no rclpy: the ROS node is a thin edge around `TeleopController`.

* `angles`     -- operator's anatomical joint angles from SMPL local rotations (+ inverse)
* `filters`    -- `OneEuroFilter` (wrap-aware) and `RateLimiter` (position/vel/acc limits)
* `retarget`   -- `RobotJointMap`: validated YAML map human angle -> robot joint
* `safety`     -- `SafetyGate`: which poses may become motion, and why not
* `controller` -- `TeleopController`: gate + map + filter + rate limiter, fixed-rate `step`
* `gripper`    -- the robot YAML's `gripper` section: finger joints / GripperCommand goals
                  from the operator's hands, with hysteresis, holds and limits
"""

from mocap_ros.teleop.angles import (
    ANATOMICAL_RANGES,
    ANGLE_NAMES,
    angles_to_local_rotations,
    local_rotations_to_angles,
)
from mocap_ros.teleop.controller import StepResult, TeleopController, TeleopStatus
from mocap_ros.teleop.filters import OneEuroFilter, OneEuroParams, RateLimiter
from mocap_ros.teleop.retarget import JointMapError, RobotJointMap
from mocap_ros.teleop.safety import HOLD_REASONS, Decision, SafetyGate, SafetyParams

__all__ = [
    "ANATOMICAL_RANGES",
    "ANGLE_NAMES",
    "HOLD_REASONS",
    "Decision",
    "JointMapError",
    "OneEuroFilter",
    "OneEuroParams",
    "RateLimiter",
    "RobotJointMap",
    "SafetyGate",
    "SafetyParams",
    "StepResult",
    "TeleopController",
    "TeleopStatus",
    "angles_to_local_rotations",
    "local_rotations_to_angles",
]
