"""IK step timing on this CPU: ``python -m mocap_ros.tools.bench_ik [--json out.json]``.

Prints the median and p99 of one `TaskIK.solve` call (mink QP + final collision guard)
for the FR3 with and without collision constraints, while the end effector tracks a
circle in front of the robot (100 Hz control, dt = 0.01 s). A table, not a test: timing
depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from mocap_ros.tools.machine import cpu_model


def bench(robot_name: str, collision: bool, steps: int, dt: float) -> dict[str, object]:
    from mocap_ros.robots.model import add_environment, load_robot
    from mocap_ros.teleop.ik import IKParams, TaskIK

    robot = add_environment(load_robot(robot_name))
    ik = TaskIK(robot, "tcp", params=IKParams(collision=collision), elbow_body="fr3_link4")
    q = robot.home.copy()
    centre, _ = ik.site_pose(q)
    times = []
    scaled = 0
    for k in range(steps):
        a = 2.0 * math.pi * k / 200.0  # one circle every 2 s
        # dips 0.5 m below the home height, into the floor: exercises the constraints
        target = centre + np.array([0.1, 0.25 * math.cos(a), 0.25 * math.sin(a) - 0.25])
        t0 = time.perf_counter()
        q = ik.solve(q, target, None, dt)
        times.append(time.perf_counter() - t0)
        scaled += int(ik.last.scaled_back)
    ms = np.asarray(times[min(20, steps // 4):]) * 1e3  # skip warm-up (a quarter, at most 20)
    return {
        "robot": robot_name,
        "collision": collision,
        "pairs": len(ik.checker.pairs),  # checked by the final guard in both rows
        "steps": len(ms),
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "guard_scaled_steps": scaled,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.steps < 4:
        ap.error("--steps must be at least 4 (a quarter, at most 20, is warm-up)")
    from importlib.metadata import version

    rows = [bench("fr3", c, args.steps, args.dt) for c in (False, True)]
    cpu = cpu_model()
    print(f"CPU: {cpu}   mujoco {version('mujoco')}   mink {version('mink')}")
    print(f"{'robot':6} {'QP coll.':9} {'pairs':>5} {'median ms':>10} {'p99 ms':>8} "
          f"{'max ms':>8} {'guard':>6}")
    for r in rows:
        print(f"{r['robot']:6} {r['collision']!s:9} {r['pairs']:>5} {r['median_ms']:>10.3f} "
              f"{r['p99_ms']:>8.3f} {r['max_ms']:>8.3f} {r['guard_scaled_steps']:>6}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
