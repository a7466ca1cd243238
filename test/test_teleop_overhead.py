"""An arm raised straight up and a few degrees past vertical is followed, not refused.

The shoulder chart (teleop/angles.py) has one singularity, the arm pointing straight up (a
swing of pi): an arm 5 degrees past vertical reads as the opposite swing, flexion -175 deg
instead of +185 deg. The loop benchmark's overhead hold (issue 19) lost ~5 % of its control
steps to "out_of_range" on that flip, for both robots. The flip is continued from the last
accepted pose, and only from a recent one near the singularity: a pose that arrives reading
-175 deg with nothing before it is still refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mocap_ros.teleop.angles import (
    ANATOMICAL_RANGES,
    angles_to_local_rotations,
    continue_overhead,
    local_rotations_to_angles,
)
from mocap_ros.teleop.controller import TeleopController
from mocap_ros.teleop.retarget import RobotJointMap

DEG = math.pi / 180.0
CONFIG = Path(__file__).resolve().parents[1] / "config"


def g1() -> RobotJointMap:
    return RobotJointMap.from_yaml(CONFIG / "teleop_g1.yaml")


def _pose(flexion_deg: float) -> np.ndarray:
    """The right arm raised forward by ``flexion_deg`` (past 180: over the head, backward),
    built as a rotation, the way an estimator delivers it."""
    return angles_to_local_rotations({"right_shoulder_flexion": flexion_deg * DEG})


def test_the_chart_flips_past_vertical():
    """What the fix is about, seen in the chart itself (independent of the controller)."""
    past = local_rotations_to_angles(_pose(185.0))
    assert past["right_shoulder_flexion"] < -170 * DEG  # the opposite swing
    assert not (ANATOMICAL_RANGES["right_shoulder_flexion"][0]
                <= past["right_shoulder_flexion"])


def test_continue_overhead_only_from_near_the_singularity():
    up = local_rotations_to_angles(_pose(176.0))
    past = local_rotations_to_angles(_pose(185.0))
    cont = continue_overhead(past, up)
    assert math.isclose(cont["right_shoulder_flexion"], 185 * DEG, abs_tol=1e-6)
    assert cont["left_shoulder_flexion"] == past["left_shoulder_flexion"]
    low = local_rotations_to_angles(_pose(30.0))
    assert continue_overhead(past, low) == past  # not near the singularity: no continuation
    assert continue_overhead(past, None) == past


def _drive(ctl: TeleopController, flexions: list[float], t0: float = 10.0) -> list[str]:
    reasons = []
    t = t0
    ctl.enable(t, None)
    for f in flexions:
        t += 1.0 / 30.0
        d = ctl.on_pose(t, t, True, 0.95, _pose(f))
        reasons.append(d.reason or "accepted")
        ctl.step(t)
    return reasons


def test_an_arm_past_vertical_is_followed_after_a_near_vertical_pose():
    jm: RobotJointMap = g1()
    ctl = TeleopController(jm)
    # a slow raise to the top and a little past it, 1 degree a frame (30 deg/s)
    ramp = [150.0 + k for k in range(40)]  # 150 .. 189 deg
    reasons = _drive(ctl, ramp)
    assert reasons.count("out_of_range") == 0, list(zip(ramp, reasons, strict=True))
    assert all(r == "accepted" for r in reasons), list(zip(ramp, reasons, strict=True))
    assert ctl.last_angles["right_shoulder_flexion"] > 185 * DEG


def test_a_first_pose_past_vertical_is_still_refused():
    ctl = TeleopController(g1())
    assert _drive(ctl, [185.0]) == ["out_of_range"]


def test_past_the_widened_range_is_refused_even_by_continuation():
    ctl = TeleopController(g1())
    top = ANATOMICAL_RANGES["right_shoulder_flexion"][1] / DEG
    ramp = [170.0 + k for k in range(int(top - 170.0) + 6)]
    reasons = _drive(ctl, ramp)
    beyond = [r for f, r in zip(ramp, reasons, strict=True) if f > top + 0.5]
    assert beyond and all(r == "out_of_range" for r in beyond)
